"""Code written for the openai SDK, run unchanged through the gateway — and on solarstream's own clients.

The programs here are what the SDK's users write: the ``model_dump()`` tool loop, ``user=``,
``store=False``, ``parse()`` with a pydantic model, ``_request_id``, embeddings (the SDK asks for
base64). Each runs with the real ``openai`` client against ``serve`` in front of the emulator and,
where the API is the same, with ``solarstream.Client``/``AsyncClient`` against the emulator, so the
parameter policy is proven identical in the gateway and the library (docs/compatibility.md).
Answers are the emulator's, exactly; what reached the upstream is read from the emulator.
"""

from __future__ import annotations

import json
import logging
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import openai
import pydantic
import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletionMessageParam

import solarstream
from solarstream import errors
from solarstream.emulator import answers
from solarstream.emulator.embeddings import vector
from solarstream.providers.upstage import models as _models
from solarstream.server.testing import GatewayThread, RunningGateway
from tests.dropin import WEATHER_RESULT, WEATHER_TOOL, float32, loopback_only, weather_arguments

KEY = "gw-dropin-key-7788"
ORIGIN = "https://app.example"
PROMPT = "What is the weather in Seoul?"


class Weather(pydantic.BaseModel):
    city: str
    degrees: int


@pytest.fixture(autouse=True)
def _loopback_only(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Nothing reaches beyond loopback, and the gateway logs no error (an exception after the answer
    was sent, say) while serving the SDK."""
    with loopback_only() as attempts:
        yield
    assert attempts == [], f"a client tried to reach beyond loopback: {attempts}"
    assert [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR] == []


@pytest.fixture(scope="module")
def gw() -> Iterator[RunningGateway]:
    with GatewayThread(api_key=KEY, cors_origins=(ORIGIN,)) as running:
        yield running


@pytest.fixture(scope="module")
def strict_gw() -> Iterator[RunningGateway]:
    with GatewayThread(api_key=KEY, strict_params=True) as running:
        yield running


@pytest.fixture(scope="module")
def sdk(gw: RunningGateway) -> Iterator[OpenAI]:
    with OpenAI(base_url=gw.base_url, api_key=KEY, max_retries=0, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def ours(gw: RunningGateway) -> Iterator[solarstream.Client]:
    """solarstream's sync client, straight at the emulator (the same upstream as the gateway's)."""
    client = solarstream.Client(api_key=gw.emulator.api_key, base_url=gw.emulator.base_url, max_retries=0,
                                timeout=30)
    yield client
    client.close()


@pytest.fixture(params=["openai", "solarstream"])
def client(request: pytest.FixtureRequest, sdk: OpenAI, ours: solarstream.Client) -> Any:
    """Either client: the programs below are written once, for both."""
    return sdk if request.param == "openai" else ours


@pytest.fixture
async def asdk(gw: RunningGateway) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=gw.base_url, api_key=KEY, max_retries=0, timeout=30) as c:
        yield c


@pytest.fixture
async def aours(gw: RunningGateway) -> AsyncIterator[solarstream.AsyncClient]:
    async with solarstream.AsyncClient(api_key=gw.emulator.api_key, base_url=gw.emulator.base_url,
                                       max_retries=0, timeout=30) as c:
        yield c


def sent(gw: RunningGateway) -> dict[str, Any]:
    """The body the upstream received last."""
    body: dict[str, Any] = gw.emulator.requests[-1].json
    return body


def user(content: str) -> list[Any]:
    return [{"role": "user", "content": content}]


TOOLS: list[Any] = [WEATHER_TOOL]


def dump(message: Any) -> dict[str, Any]:
    """What the program keeps of an answer: the SDK's ``model_dump()``, solarstream's ``to_dict()``."""
    value: dict[str, Any] = message.model_dump() if isinstance(message, pydantic.BaseModel) else message.to_dict()
    return value


# --- the tool loop ------------------------------------------------------------------------------------


def tool_loop(client: Any, keep: Callable[[Any], Any], model: str = "solar-pro3") -> tuple[Any, Any]:
    """Ask, append the answer (as the program keeps it) and a tool result, ask again."""
    messages: list[Any] = user(PROMPT)
    first = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
    message = first.choices[0].message
    messages.append(keep(message))
    for call in message.tool_calls:
        messages.append({"role": "tool", "tool_call_id": call.id, "content": WEATHER_RESULT})
    return first, client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])


@pytest.mark.parametrize("keep", [dump, lambda message: message], ids=["model_dump", "object"])
def test_tool_loop(client: Any, gw: RunningGateway, keep: Callable[[Any], Any]) -> None:
    first, second = tool_loop(client, keep)
    calls = first.choices[0].message.tool_calls
    assert first.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in calls] == ["get_weather"]
    assert json.loads(calls[0].function.arguments) == weather_arguments()
    assert second.choices[0].message.content == answers.tool_result_text("get_weather", WEATHER_RESULT)
    # solar-pro3 reasons, so the kept answer carried `reasoning` (and, from the SDK, refusal, audio,
    # annotations, function_call set to None): none of it reached Upstage, whose API refuses unknown keys
    assistant = sent(gw)["messages"][1]
    call = {"id": calls[0].id, "type": "function",
            "function": {"name": "get_weather", "arguments": calls[0].function.arguments}}
    assert assistant == {"role": "assistant", "content": None, "tool_calls": [call]}


async def test_tool_loop_async(asdk: AsyncOpenAI, aours: solarstream.AsyncClient) -> None:
    for client in (asdk, aours):
        messages: list[Any] = user(PROMPT)
        first = await client.chat.completions.create(model="solar-pro3", messages=messages, tools=TOOLS)
        message = first.choices[0].message
        assert message.tool_calls
        messages += [dump(message), {"role": "tool", "tool_call_id": message.tool_calls[0].id,
                                     "content": WEATHER_RESULT}]
        second = await client.chat.completions.create(model="solar-pro3", messages=messages)
        assert second.choices[0].message.content == answers.tool_result_text("get_weather", WEATHER_RESULT)


def test_tool_loop_under_strict_params(strict_gw: RunningGateway) -> None:
    """``None`` means "not set": the SDK's ``refusal=None`` ... pass even when no-ops are refused."""
    with OpenAI(base_url=strict_gw.base_url, api_key=KEY, max_retries=0, timeout=30) as sdk:
        _, second = tool_loop(sdk, dump, model="solar-mini")  # solar-mini does not reason
        assert second.choices[0].message.content == answers.tool_result_text("get_weather", WEATHER_RESULT)
        with pytest.raises(openai.BadRequestError) as info:
            tool_loop(sdk, dump, model="solar-pro3")  # its answer carries reasoning text, which would be dropped
    assert info.value.param == "messages[1].reasoning"
    assert "strict_params=True refuses it" in info.value.message


# --- what is dropped, what is refused ----------------------------------------------------------------

DROPPED: list[tuple[str, Any]] = [
    ("user", "u1"),
    ("safety_identifier", "s-42"),
    ("store", False),
    ("logprobs", False),
    ("top_logprobs", 0),
    ("n", 1),
    ("metadata", {"app": "dropin"}),
    ("service_tier", "auto"),
    ("modalities", ["text"]),
]


@pytest.mark.parametrize(("name", "value"), DROPPED, ids=[f"{n}={v!r}" for n, v in DROPPED])
def test_no_op_parameters_are_dropped(client: Any, gw: RunningGateway, name: str, value: Any) -> None:
    completion = client.chat.completions.create(model="solar-mini", messages=user("hello"), **{name: value})
    assert completion.choices[0].message.content == answers.answer_text("hello")
    assert sent(gw) == {"model": "solar-mini", "messages": user("hello"), "stream": False}


@pytest.mark.parametrize("parallel", [False, True])
def test_parallel_tool_calls_is_dropped(client: Any, gw: RunningGateway, parallel: bool) -> None:
    completion = client.chat.completions.create(model="solar-mini", messages=user(PROMPT), tools=[WEATHER_TOOL],
                                                parallel_tool_calls=parallel)
    calls = completion.choices[0].message.tool_calls
    assert [json.loads(c.function.arguments) for c in calls] == [weather_arguments()]
    assert "parallel_tool_calls" not in sent(gw)
    assert sent(gw)["tools"] == [WEATHER_TOOL]


def test_developer_role_is_sent_as_system(client: Any, gw: RunningGateway) -> None:
    messages = [{"role": "developer", "content": "Answer briefly."}, *user("hello")]
    completion = client.chat.completions.create(model="solar-mini", messages=messages)
    assert completion.choices[0].message.content == answers.answer_text("hello")
    assert sent(gw)["messages"][0] == {"role": "system", "content": "Answer briefly."}


REFUSED: list[tuple[dict[str, Any], str, str]] = [
    ({"store": True}, "store", "does not store completions"),
    ({"n": 3}, "n", "one answer per request"),
    ({"logprobs": True}, "logprobs", "no log probabilities"),
    ({"top_logprobs": 2}, "top_logprobs", "no log probabilities"),
    ({"service_tier": "flex"}, "service_tier", "no service tiers"),
    ({"modalities": ["text", "audio"]}, "modalities", "text only"),
    ({"audio": {"voice": "alloy", "format": "wav"}}, "audio", "do not produce audio"),
    ({"prediction": {"type": "content", "content": "x"}}, "prediction", "predicted outputs"),
    ({"tools": [openai.pydantic_function_tool(Weather)]}, "tools[0].function.strict", "strict tools"),
    ({"reasoning_effort": "low"}, "reasoning_effort", "solar-mini does not reason"),
    ({"response_format": {"type": "json_object"}}, "response_format", 'needs the word "JSON"'),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]},
     "messages[0].content[0]", "image input is not supported"),
]


@pytest.mark.parametrize(("kwargs", "param", "reason"), REFUSED, ids=[p for _, p, _ in REFUSED])
def test_harmful_values_are_refused_before_sending(
    sdk: OpenAI, ours: solarstream.Client, gw: RunningGateway, kwargs: dict[str, Any], param: str, reason: str
) -> None:
    """The same refusal, word for word, from the gateway (as the SDK's class) and from the library."""
    request: dict[str, Any] = {"model": "solar-mini", "messages": user("hello"), **kwargs}
    before = gw.emulator.request_count
    with pytest.raises(openai.BadRequestError) as theirs:
        sdk.chat.completions.create(**request)
    with pytest.raises(errors.InvalidRequestError) as mine:
        ours.chat.completions.create(**request)
    assert gw.emulator.request_count == before  # refused before anything was sent
    assert theirs.value.status_code == 400
    assert theirs.value.param == mine.value.param == param
    assert reason in mine.value.message
    assert isinstance(theirs.value.body, dict)
    assert theirs.value.body["message"] == mine.value.message
    assert (theirs.value.request_id or "").startswith("req_")  # the gateway's own id: nothing went upstream


def test_strict_params_refuse_what_would_be_dropped(strict_gw: RunningGateway, gw: RunningGateway) -> None:
    strict_client = solarstream.Client(api_key=gw.emulator.api_key, base_url=gw.emulator.base_url, max_retries=0,
                                       strict_params=True)
    with OpenAI(base_url=strict_gw.base_url, api_key=KEY, max_retries=0, timeout=30) as sdk:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"user": "u1"}, "user"), ({"store": False}, "store"),
            ({"messages": [{"role": "developer", "content": "Be brief."}, *user("hi")]}, "messages[0].role")]
        for kwargs, param in cases:
            request: dict[str, Any] = {"model": "solar-mini", "messages": user("hi"), **kwargs}
            with pytest.raises(openai.BadRequestError) as theirs:
                sdk.chat.completions.create(**request)
            with pytest.raises(errors.InvalidRequestError) as mine:
                strict_client.chat.completions.create(**request)
            assert theirs.value.param == mine.value.param == param
            assert "strict_params=True" in mine.value.message
            assert isinstance(theirs.value.body, dict)
            assert theirs.value.body["message"] == mine.value.message
        # what is not a no-op is still sent under strict_params
        completion = sdk.chat.completions.create(model="solar-mini", messages=user("hi"), temperature=0.2)
        assert completion.choices[0].message.content == answers.answer_text("hi")
    strict_client.close()


# --- structured output ----------------------------------------------------------------------------------


def expected_weather(gw: RunningGateway) -> Weather:
    """What the emulator answers for the json_schema the SDK sent (built from the schema, exactly)."""
    schema = sent(gw)["response_format"]["json_schema"]["schema"]
    return Weather.model_validate_json(answers.json_answer_for(schema))


WEATHER_MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]


def test_parse_with_a_pydantic_model(sdk: OpenAI, gw: RunningGateway) -> None:
    for parse in (sdk.chat.completions.parse, sdk.beta.chat.completions.parse):
        completion = parse(model="solar-pro4", messages=WEATHER_MESSAGES, response_format=Weather)
        assert sent(gw)["response_format"]["type"] == "json_schema"
        assert sent(gw)["response_format"]["json_schema"]["name"] == "Weather"
        assert completion.choices[0].message.parsed == expected_weather(gw) == Weather(city="emulated city",
                                                                                        degrees=1)


def test_parse_through_the_stream_helper(sdk: OpenAI, gw: RunningGateway) -> None:
    with sdk.chat.completions.stream(model="solar-pro4", messages=WEATHER_MESSAGES, response_format=Weather) as s:
        deltas = [event.delta for event in s if event.type == "content.delta"]
        final = s.get_final_completion()
    assert len(deltas) > 1
    assert final.choices[0].message.parsed == expected_weather(gw)
    assert "".join(deltas) == final.choices[0].message.content


async def test_parse_async(asdk: AsyncOpenAI, gw: RunningGateway) -> None:
    completion = await asdk.chat.completions.parse(model="solar-pro4", messages=WEATHER_MESSAGES,
                                                   response_format=Weather)
    assert completion.choices[0].message.parsed == expected_weather(gw)


# the SDK's own ParsedChatCompletionMessage warns about its generic `parsed` field when dumped
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
def test_a_parsed_answer_goes_back_into_the_conversation(sdk: OpenAI, gw: RunningGateway) -> None:
    first = sdk.chat.completions.parse(model="solar-pro4", messages=WEATHER_MESSAGES, response_format=Weather)
    kept = first.choices[0].message
    assert kept.model_dump()["parsed"] == {"city": "emulated city", "degrees": 1}
    for message in (kept.model_dump(), kept):
        messages: list[Any] = [*WEATHER_MESSAGES, message, {"role": "user", "content": "And tomorrow?"}]
        second = sdk.chat.completions.parse(model="solar-pro4", messages=messages, response_format=Weather)
        assert second.choices[0].message.parsed == expected_weather(gw)
        assert sent(gw)["messages"][1] == {"role": "assistant", "content": kept.content}


# --- errors and request ids -------------------------------------------------------------------------------

UPSTREAM_ERRORS = [
    ("[emulate:rate-limit]", openai.RateLimitError, errors.RateLimitError),
    ("[emulate:rate-limit code=usage_limit_exceeded]", openai.RateLimitError, errors.QuotaExceededError),
    ("[emulate:error status=503]", openai.InternalServerError, errors.ServerError),
    ("[emulate:error status=400 code=invalid_request_body]", openai.BadRequestError, errors.InvalidRequestError),
]


@pytest.mark.parametrize(("directive", "sdk_class", "our_class"), UPSTREAM_ERRORS, ids=[d for d, *_ in UPSTREAM_ERRORS])
def test_upstream_errors_keep_their_request_id(
    sdk: OpenAI, ours: solarstream.Client, directive: str, sdk_class: type[openai.APIStatusError],
    our_class: type[errors.APIStatusError],
) -> None:
    with pytest.raises(sdk_class) as theirs:
        sdk.chat.completions.create(model="solar-mini", messages=user(f"{directive} hi"))
    with pytest.raises(our_class) as mine:
        ours.chat.completions.create(model="solar-mini", messages=user(f"{directive} hi"))
    for request_id in (theirs.value.request_id, mine.value.request_id):
        assert request_id is not None
        assert uuid.UUID(request_id)  # the emulator's id, forwarded by the gateway


def test_request_ids_and_rate_limit_headers(sdk: OpenAI, ours: solarstream.Client) -> None:
    completion = sdk.chat.completions.create(model="solar-mini", messages=user("hi"))
    assert uuid.UUID(completion._request_id or "")
    raw = sdk.chat.completions.with_raw_response.create(model="solar-mini", messages=user("hi"))
    assert raw.headers["x-request-id"] == raw.parse()._request_id
    assert int(raw.headers["x-upstage-ratelimit-limit-requests"]) > 0
    with sdk.chat.completions.create(model="solar-mini", messages=user("hi"), stream=True) as stream:
        assert uuid.UUID(stream.response.headers["x-request-id"])
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == answers.answer_text("hi")
    mine = ours.chat.completions.create(model="solar-mini", messages=user("hi"))
    assert uuid.UUID(mine.request_id or "")


# --- models ---------------------------------------------------------------------------------------------


def test_models_list_and_retrieve_every_name_chat_accepts(client: Any) -> None:
    listed = [entry.id for entry in _models.listed()]
    assert {"solar-pro4-260806", "solar-pro", "solar-1-mini-chat", "solar-embedding-2-query"} <= set(listed)
    if client.__class__ is OpenAI:  # the gateway lists the table; solarstream's client asks the upstream
        assert [m.id for m in client.models.list()] == listed
    for name in listed:
        assert client.models.retrieve(name).id == name


@pytest.mark.parametrize(("name", "answered_by"), [
    ("solar-pro", "solar-pro4-260806"),  # retired: its successor answers
    ("solar-1-mini-chat", "solar-mini-250422"),  # renamed
    ("solar-mini-250422", "solar-mini-250422"),  # dated
    ("solar-pro2", "solar-pro3-260323"),
])
def test_chat_maps_every_solar_name(client: Any, name: str, answered_by: str) -> None:
    completion = client.chat.completions.create(model=name, messages=user("hi"))
    assert completion.model == answered_by


def test_an_unknown_name_passes_through_to_a_non_default_base_url(
    sdk: OpenAI, ours: solarstream.Client, gw: RunningGateway
) -> None:
    """Not Upstage's own URL (here, the emulator): the name is sent as written; the server judges."""
    with pytest.raises(openai.NotFoundError) as theirs:
        sdk.chat.completions.create(model="gpt-4o", messages=user("hi"))
    assert sent(gw)["model"] == "gpt-4o"
    with pytest.raises(errors.ModelNotSupportedError):
        ours.chat.completions.create(model="gpt-4o", messages=user("hi"))
    assert sent(gw)["model"] == "gpt-4o"
    assert theirs.value.param == "model"
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("gpt-4o")


# --- embeddings -------------------------------------------------------------------------------------------


def test_embeddings_in_every_encoding(sdk: OpenAI, ours: solarstream.Client, gw: RunningGateway) -> None:
    texts = ["first passage", "second passage"]
    model = "solar-embedding-2-passage"
    expected = [vector(_models.EMBEDDING_MODELS[model], text) for text in texts]
    default = sdk.embeddings.create(model=model, input=texts)  # the SDK asks for base64 and decodes it
    assert [e.embedding for e in default.data] == [float32(v) for v in expected]
    assert "encoding_format" not in sent(gw)  # the gateway asks Upstage for floats and encodes them itself
    assert uuid.UUID(default._request_id or "")
    floats = sdk.embeddings.create(model=model, input=texts, encoding_format="float")
    assert [e.embedding for e in floats.data] == expected
    mine = ours.embeddings.create(model=model, input=texts)
    assert [e.embedding for e in mine.data] == expected
    assert mine.usage is not None
    assert default.usage.total_tokens == floats.usage.total_tokens == mine.usage.total_tokens > 0


def test_embeddings_refusals(sdk: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as tokens:
        sdk.embeddings.create(model="solar-embedding-2-query", input=[[1, 2, 3]])
    assert tokens.value.param == "input[0]"
    assert "token arrays are not supported" in tokens.value.message
    with pytest.raises(openai.BadRequestError) as dims:
        sdk.embeddings.create(model="solar-embedding-2-query", input="hi", dimensions=256)
    assert dims.value.param == "dimensions"


# --- a browser page on another origin (the JS SDK sends the same x-stainless-* headers) ----------------------


def test_cors_preflight_allows_the_sdk_headers(gw: RunningGateway, sdk: OpenAI) -> None:
    asked = sorted({"authorization", "content-type", "x-stainless-retry-count", "x-stainless-timeout"}
                   | {name.lower() for name, value in sdk.default_headers.items()
                      if isinstance(value, str) and name.lower() not in ("accept", "content-type", "user-agent")})
    preflight = urllib.request.Request(f"{gw.base_url}/chat/completions", method="OPTIONS", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": ", ".join(asked)})
    with urllib.request.urlopen(preflight, timeout=30) as answer:
        assert answer.status == 204
        assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
        allowed = {h.strip() for h in answer.headers["Access-Control-Allow-Headers"].split(",")}
    assert set(asked) <= allowed
    with OpenAI(base_url=gw.base_url, api_key=KEY, max_retries=0, default_headers={"Origin": ORIGIN}) as page:
        raw = page.chat.completions.with_raw_response.create(model="solar-mini", messages=user("hi"))
    assert raw.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in raw.headers["access-control-expose-headers"].lower()
    assert raw.parse().choices[0].message.content == answers.answer_text("hi")
