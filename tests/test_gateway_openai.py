"""The official ``openai`` SDK, sync and async, against the gateway in front of the emulator.

Each gateway error must surface as the SDK's own exception class, with the envelope's code and param.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
)

from solarstream.emulator import answers
from solarstream.providers.upstage import models as _models
from solarstream.server.testing import GatewayThread, RunningGateway
from tests.helpers import ask, expected_usage

KEY = "gw-sdk-key-5150"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello from the SDK"}]


@pytest.fixture(scope="module")
def gw() -> Iterator[RunningGateway]:
    with GatewayThread(api_key=KEY) as running:
        yield running


@pytest.fixture
def client(gw: RunningGateway) -> Iterator[OpenAI]:
    with OpenAI(base_url=gw.base_url, api_key=KEY, max_retries=0) as c:
        yield c


@pytest.fixture
async def aclient(gw: RunningGateway) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=gw.base_url, api_key=KEY, max_retries=0) as c:
        yield c


def user(content: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": content}]


# --- success ---------------------------------------------------------------------------------------


def test_sync_completion(client: OpenAI) -> None:
    completion = client.chat.completions.create(model="solar-mini", messages=MESSAGES)
    assert completion.model == "solar-mini-250422"
    answer = answers.answer_text("hello from the SDK")
    assert completion.choices[0].message.content == answer
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"}) == \
        expected_usage(ask("hello from the SDK"), answer)


def test_sync_stream_matches_the_completion(client: OpenAI) -> None:
    whole = client.chat.completions.create(model="solar-pro4", messages=MESSAGES)
    with client.chat.completions.create(model="solar-pro4", messages=MESSAGES, stream=True,
                                        stream_options={"include_usage": True}) as stream:
        chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == whole.choices[0].message.content == answers.answer_text("hello from the SDK")
    assert pieces == answers.pieces("".join(pieces))  # it streamed word by word
    [usage] = [c.usage for c in chunks if c.usage is not None]
    assert usage == whole.usage


async def test_async_completion_and_stream(aclient: AsyncOpenAI) -> None:
    whole = await aclient.chat.completions.create(model="syn-pro", messages=MESSAGES)
    stream = await aclient.chat.completions.create(model="syn-pro", messages=MESSAGES,
                                                   stream=True)
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(pieces) == whole.choices[0].message.content == answers.answer_text("hello from the SDK")
    assert [p for p in pieces if p] == answers.pieces("".join(pieces))  # it really streamed in pieces


def test_models(client: OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == [entry.id for entry in _models.listed()]
    assert client.models.retrieve("solar-mini").owned_by == "upstage"
    assert client.models.retrieve("solar-pro").id == "solar-pro"  # a retired name that chat maps
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


TOOLS: list[ChatCompletionFunctionToolParam] = [{"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
ARGUMENTS = '{"city": "emulated city"}'  # what the emulator fills in for that schema


def test_tool_calls_come_through_whole(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model="solar-pro4", messages=user("[emulate:tools] weather in Seoul?"), tools=TOOLS
    )
    assert completion.choices[0].finish_reason == "tool_calls"
    calls = completion.choices[0].message.tool_calls
    assert calls is not None
    assert all(isinstance(c, ChatCompletionMessageFunctionToolCall) for c in calls)
    assert [(c.function.name, c.function.arguments) for c in calls] == [("get_weather", ARGUMENTS)]  # type: ignore[union-attr]


def test_tool_calls_stream_through(client: OpenAI) -> None:
    with client.chat.completions.create(model="solar-pro4", messages=user("[emulate:tools] weather in Seoul?"),
                                        tools=TOOLS, stream=True) as stream:
        chunks = list(stream)
    deltas = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or ()]
    first = deltas[0]
    assert first.id
    assert (first.index, first.function and first.function.name) == (0, "get_weather")
    assert len(deltas) > 2  # the arguments arrive in pieces
    assert all(d.index == 0 and d.id is None for d in deltas[1:])
    assert "".join(d.function.arguments or "" for d in deltas if d.function) == ARGUMENTS
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


# --- errors, as the SDK's own classes ------------------------------------------------------------------


def test_wrong_gateway_key_is_authentication_error(gw: RunningGateway) -> None:
    with OpenAI(base_url=gw.base_url, api_key="wrong", max_retries=0) as c, \
            pytest.raises(openai.AuthenticationError) as info:
        c.chat.completions.create(model="solar-mini", messages=MESSAGES)
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"


@pytest.mark.parametrize("stream", [False, True])
def test_errors_map_to_sdk_classes(client: OpenAI, stream: bool) -> None:
    cases: list[tuple[dict[str, object], type[openai.APIStatusError], int, str | None]] = [
        ({"model": "solar-mini", "temperature": 9}, openai.BadRequestError, 400, "temperature"),
        ({"model": "solar-mini", "extra_body": {"store": True}}, openai.BadRequestError, 400, "store"),
        ({"model": "no-such-model"}, openai.NotFoundError, 404, "model"),
    ]
    for kwargs, cls, status, param in cases:
        with pytest.raises(cls) as info:
            client.chat.completions.create(messages=MESSAGES, stream=stream, **kwargs)  # type: ignore[call-overload]
        assert info.value.status_code == status
        assert info.value.param == param


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("directive", "cls", "status", "code"),
    [
        ("[emulate:rate-limit]", openai.RateLimitError, 429, "rate_limit_exceeded"),
        ("[emulate:rate-limit code=usage_limit_exceeded]", openai.RateLimitError, 429, "insufficient_quota"),
        ("[emulate:error status=401]", openai.AuthenticationError, 401, "invalid_api_key"),
        ("[emulate:error status=500]", openai.InternalServerError, 502, "upstream_error"),
        ("[emulate:html-error status=502]", openai.InternalServerError, 502, "upstream_error"),
        ("[emulate:error status=400 code=invalid_request_body]", openai.BadRequestError, 400,
         "invalid_request_body"),
    ],
)
async def test_upstream_errors_map_to_sdk_classes(
    aclient: AsyncOpenAI, stream: bool, directive: str, cls: type[openai.APIStatusError], status: int, code: str
) -> None:
    with pytest.raises(cls) as info:
        await aclient.chat.completions.create(model="solar-mini", messages=user(f"{directive} hi"),
                                              stream=stream)
    assert info.value.status_code == status
    assert info.value.code == code
    assert "up_emulator" not in str(info.value)


def test_oversized_body_is_an_api_status_error(gw: RunningGateway) -> None:
    with OpenAI(base_url=gw.base_url, api_key=KEY, max_retries=0) as c, \
            pytest.raises(openai.APIStatusError) as info:
        c.chat.completions.create(model="solar-mini", messages=user("x" * 5_000_000))
    assert info.value.status_code == 413
    assert info.value.code == "request_too_large"


def test_midstream_error_raises_in_the_sdk_stream(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="solar-mini", messages=user("[emulate:midstream-error after=2] hi"), stream=True
    )
    received: list[str] = []

    def consume() -> None:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")

    with stream, pytest.raises(openai.APIError) as info:
        consume()
    assert "".join(received) == "".join(answers.pieces(answers.answer_text("hi"))[:2])  # two pieces, then the error
    assert "Emulated error inside the stream (internal_server_error)" in info.value.message


def test_the_sdk_retries_a_429_from_the_gateway(gw: RunningGateway) -> None:
    # the emulator refuses once (times=1) with Retry-After; the gateway passes the 429 on (it makes no
    # retries of its own), and the SDK's second attempt succeeds
    before = len(gw.emulator.requests)
    prompt = "[emulate:rate-limit times=1 header=retry-after] once"
    with OpenAI(base_url=gw.base_url, api_key=KEY, max_retries=1) as c:
        completion = c.chat.completions.create(model="solar-mini", messages=user(prompt))
    assert completion.choices[0].message.content == answers.answer_text("once")
    assert len(gw.emulator.requests) - before == 2  # the refused attempt and the retry
