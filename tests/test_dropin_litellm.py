"""LiteLLM as a client of the gateway: ``litellm.completion(model="openai/solar-mini", api_base=gateway)``.

Completions, streams, tools (the ``model_dump()`` loop, also with a reasoning model, whose answers
LiteLLM dumps with its ``provider_specific_fields``), async calls, errors and embeddings, against
``serve`` in front of the emulator. LiteLLM fetches a model cost map from the internet at import
unless ``LITELLM_LOCAL_MODEL_COST_MAP`` is set; it is imported under the loopback guard, so a
fetch would fail the module.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from solarstream.emulator import answers
from solarstream.emulator.embeddings import vector
from solarstream.providers.upstage import models as _models
from solarstream.server.testing import GatewayThread, RunningGateway
from tests.dropin import WEATHER_RESULT, WEATHER_TOOL, float32, loopback_only, weather_arguments

KEY = "gw-litellm-key-2718"
PROMPT = "What is the weather in Seoul?"
TOOLS = [WEATHER_TOOL]

# LiteLLM's own TypedDicts make pydantic warn when a stream is read; LiteLLM ignores it at import
pytestmark = pytest.mark.filterwarnings("ignore:Item .* is using the `ReadOnly` qualifier")


@pytest.fixture(scope="module")
def litellm() -> Iterator[ModuleType]:
    """LiteLLM, imported with its local cost map and quiet about itself (no "Give Feedback" banners)."""
    with pytest.MonkeyPatch.context() as env, loopback_only() as attempts:
        env.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm as module

        env.setattr(module, "suppress_debug_info", True)
        yield module
    assert attempts == [], f"LiteLLM tried to reach beyond loopback: {attempts}"


@pytest.fixture(autouse=True)
def _loopback_only(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with loopback_only() as attempts:
        yield
    assert attempts == [], f"LiteLLM tried to reach beyond loopback: {attempts}"
    gateway_errors = [r.getMessage() for r in caplog.get_records("call")
                      if r.levelno >= logging.ERROR and not r.name.startswith("LiteLLM")]
    assert gateway_errors == []


@pytest.fixture(autouse=True)
def _an_event_loop_for_sync_calls(request: pytest.FixtureRequest) -> Iterator[None]:
    """LiteLLM's sync calls run its service hooks on ``asyncio.get_event_loop()``, which makes a loop
    (never closed) when the thread has none: give each sync test one, and close it afterwards."""
    if inspect.iscoroutinefunction(request.function):
        yield
        return
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture(scope="module")
def gw() -> Iterator[RunningGateway]:
    with GatewayThread(api_key=KEY) as running:
        yield running


@pytest.fixture
def kw(gw: RunningGateway) -> dict[str, Any]:
    """What a LiteLLM user passes to reach an OpenAI-compatible server."""
    return {"api_base": gw.base_url, "api_key": KEY, "num_retries": 0, "max_retries": 0, "timeout": 30}


def sent(gw: RunningGateway) -> dict[str, Any]:
    body: dict[str, Any] = gw.emulator.requests[-1].json
    return body


def user(content: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": content}]


# --- chat -----------------------------------------------------------------------------------------------


def test_completion(litellm: ModuleType, gw: RunningGateway, kw: dict[str, Any]) -> None:
    response = litellm.completion(model="openai/solar-mini", messages=user("hello from LiteLLM"), **kw)
    assert response.choices[0].message.content == answers.answer_text("hello from LiteLLM")
    assert response.choices[0].finish_reason == "stop"
    assert response.model == "solar-mini-250422"
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens > 0
    assert sent(gw) == {"model": "solar-mini", "messages": user("hello from LiteLLM"), "stream": False}


def test_stream(litellm: ModuleType, kw: dict[str, Any]) -> None:
    chunks = list(litellm.completion(model="openai/solar-mini", messages=user("hello, streamed"), stream=True, **kw))
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(pieces) == answers.answer_text("hello, streamed")
    assert len([p for p in pieces if p]) > 3
    rebuilt = litellm.stream_chunk_builder(chunks, messages=user("hello, streamed"))
    assert rebuilt.choices[0].message.content == answers.answer_text("hello, streamed")


async def test_acompletion_and_async_stream(litellm: ModuleType, kw: dict[str, Any]) -> None:
    response = await litellm.acompletion(model="openai/solar-mini", messages=user("hello, async"), **kw)
    assert response.choices[0].message.content == answers.answer_text("hello, async")
    stream = await litellm.acompletion(model="openai/solar-mini", messages=user("async stream"), stream=True, **kw)
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(pieces) == answers.answer_text("async stream")


def test_no_op_parameters(litellm: ModuleType, gw: RunningGateway, kw: dict[str, Any]) -> None:
    response = litellm.completion(model="openai/solar-mini", messages=user(PROMPT), tools=TOOLS, user="u1",
                                  parallel_tool_calls=False, **kw)
    assert [c.function.name for c in response.choices[0].message.tool_calls] == ["get_weather"]
    assert set(sent(gw)) == {"model", "messages", "stream", "tools"}


def test_reasoning(litellm: ModuleType, kw: dict[str, Any]) -> None:
    response = litellm.completion(model="openai/solar-pro3", messages=user("hi"), reasoning_effort="high", **kw)
    message = response.choices[0].message
    assert message.content == answers.answer_text("hi")
    assert message.reasoning_content == answers.reasoning_text("solar-pro3", "high", "hi")


# --- tools ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["solar-mini", "solar-pro3"])  # solar-pro3 reasons: provider_specific_fields
@pytest.mark.parametrize("keep", ["model_dump", "object"])
def test_tool_loop(litellm: ModuleType, gw: RunningGateway, kw: dict[str, Any], model: str, keep: str) -> None:
    messages: list[Any] = user(PROMPT)
    first = litellm.completion(model=f"openai/{model}", messages=messages, tools=TOOLS, **kw)
    message = first.choices[0].message
    calls = message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [("get_weather",
                                                                                     weather_arguments())]
    messages.append(message.model_dump() if keep == "model_dump" else message)
    messages.append({"role": "tool", "tool_call_id": calls[0].id, "content": WEATHER_RESULT})
    second = litellm.completion(model=f"openai/{model}", messages=messages, tools=TOOLS, **kw)
    assert second.choices[0].message.content == answers.tool_result_text("get_weather", WEATHER_RESULT)
    kept = sent(gw)["messages"][1]
    assert set(kept) <= {"role", "content", "tool_calls"}  # LiteLLM leaves content out when it is None
    assert [c["id"] for c in kept["tool_calls"]] == [calls[0].id]


def test_multi_turn_with_a_reasoning_model(litellm: ModuleType, gw: RunningGateway, kw: dict[str, Any]) -> None:
    first = litellm.completion(model="openai/solar-pro3", messages=user("hi"), **kw)
    kept = first.choices[0].message.model_dump()
    assert kept["provider_specific_fields"]["reasoning"] == answers.reasoning_text("solar-pro3", None, "hi")
    second = litellm.completion(model="openai/solar-pro3", messages=[*user("hi"), kept, *user("and?")], **kw)
    assert second.choices[0].message.content == answers.answer_text("and?")
    assert sent(gw)["messages"][1] == {"role": "assistant", "content": answers.answer_text("hi")}


def test_tool_calls_stream(litellm: ModuleType, kw: dict[str, Any]) -> None:
    chunks = list(litellm.completion(model="openai/solar-mini", messages=user(PROMPT), tools=TOOLS, stream=True,
                                     **kw))
    rebuilt = litellm.stream_chunk_builder(chunks, messages=user(PROMPT))
    calls = rebuilt.choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [("get_weather",
                                                                                     weather_arguments())]
    assert rebuilt.choices[0].finish_reason == "tool_calls"


# --- errors and embeddings ----------------------------------------------------------------------------------


def test_errors_are_litellm_classes(litellm: ModuleType, gw: RunningGateway, kw: dict[str, Any]) -> None:
    cases: list[tuple[dict[str, Any], type[Exception], int, str]] = [
        ({"temperature": 9}, litellm.BadRequestError, 400, "temperature: must be between 0 and 2"),
        ({"n": 3}, litellm.BadRequestError, 400, "n: Upstage gives one answer per request"),
        ({"model": "openai/gpt-4o"}, litellm.NotFoundError, 404, "Invalid model 'gpt-4o'"),
        ({"messages": user("[emulate:rate-limit] hi")}, litellm.RateLimitError, 429, "upstream rate limit"),
        ({"api_key": "wrong-key"}, litellm.AuthenticationError, 401, "the gateway key is wrong"),
    ]
    for overrides, cls, status, words in cases:
        request = {**kw, "model": "openai/solar-mini", "messages": user("hi"), **overrides}
        with pytest.raises(cls) as info:
            litellm.completion(**request)
        assert getattr(info.value, "status_code", None) == status
        assert words in str(info.value)


def test_embedding(litellm: ModuleType, gw: RunningGateway, kw: dict[str, Any]) -> None:
    response = litellm.embedding(model="openai/solar-embedding-2-query", input=["where is Seoul?"], **kw)
    expected = vector(_models.EMBEDDING_MODELS["solar-embedding-2-query"], "where is Seoul?")
    got = response.data[0]["embedding"]
    assert got in (expected, float32(expected))  # floats, or base64 decoded by the SDK under LiteLLM
    assert sent(gw)["input"] == ["where is Seoul?"]
