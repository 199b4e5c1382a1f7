"""AsyncClient and Client against the emulator: one suite, run once per side (async, sync).

The sync client blocks its caller, and the emulator serves on the test's event loop, so the sync
side runs each call in a worker thread (``asyncio.to_thread``); the calls themselves are the
plain sync API.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import aiohttp
import pytest

from solarstream import (
    APIConnectionError,
    AsyncClient,
    AuthenticationError,
    Client,
    InvalidRequestError,
    MissingAuthError,
    ModelNotSupportedError,
    SolarstreamError,
    StreamError,
    StreamTruncatedError,
)
from solarstream.client import AsyncChatCompletionStream, ChatCompletionStream, ModelList
from solarstream.emulator import Emulator, answers
from solarstream.errors import APIStatusError
from solarstream.types import ChatCompletion, ChatCompletionChunk
from tests.helpers import ask, chunk_text, expected_usage

T = TypeVar("T")

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


class Side:
    """The operations the suite needs, done through AsyncClient or through Client."""

    name: str

    def __init__(self, **options: Any) -> None:
        raise NotImplementedError

    async def complete(self, **kw: Any) -> ChatCompletion:
        raise NotImplementedError

    async def stream(self, **kw: Any) -> tuple[list[ChatCompletionChunk], Any]:
        """All chunks of a streamed answer, and the stream object (for its assembled state)."""
        raise NotImplementedError

    async def stream_some(self, count: int, **kw: Any) -> tuple[list[ChatCompletionChunk], Any]:
        """The first ``count`` chunks, then ``close()``."""
        raise NotImplementedError

    async def open_and_close(self, **kw: Any) -> None:
        """Create a stream and close it without reading a chunk (HTTP errors raise at ``create()``)."""
        raise NotImplementedError

    async def models(self) -> ModelList:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class AsyncSide(Side):
    name = "async"

    def __init__(self, **options: Any) -> None:
        self.client = AsyncClient(**options)

    async def complete(self, **kw: Any) -> ChatCompletion:
        completion: ChatCompletion = await self.client.chat.completions.create(stream=False, **kw)
        return completion

    async def stream(self, **kw: Any) -> tuple[list[ChatCompletionChunk], Any]:
        stream = await self.client.chat.completions.create(stream=True, **kw)
        assert isinstance(stream, AsyncChatCompletionStream)
        async with stream:
            chunks = [chunk async for chunk in stream]
        return chunks, stream

    async def stream_some(self, count: int, **kw: Any) -> tuple[list[ChatCompletionChunk], Any]:
        stream = await self.client.chat.completions.create(stream=True, **kw)
        chunks = []
        async for chunk in stream:
            chunks.append(chunk)
            if len(chunks) == count:
                break
        await stream.close()
        return chunks, stream

    async def open_and_close(self, **kw: Any) -> None:
        stream = await self.client.chat.completions.create(stream=True, **kw)
        await stream.aclose()

    async def models(self) -> ModelList:
        return await self.client.models.list()

    async def close(self) -> None:
        await self.client.aclose()


class SyncSide(Side):
    name = "sync"

    def __init__(self, **options: Any) -> None:
        self.client = Client(**options)

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(fn)

    async def complete(self, **kw: Any) -> ChatCompletion:
        return await self._call(lambda: self.client.chat.completions.create(stream=False, **kw))

    async def stream(self, **kw: Any) -> tuple[list[ChatCompletionChunk], Any]:
        def work() -> tuple[list[ChatCompletionChunk], Any]:
            stream = self.client.chat.completions.create(stream=True, **kw)
            assert isinstance(stream, ChatCompletionStream)
            with stream:
                chunks = list(stream)
            return chunks, stream

        return await self._call(work)

    async def stream_some(self, count: int, **kw: Any) -> tuple[list[ChatCompletionChunk], Any]:
        def work() -> tuple[list[ChatCompletionChunk], Any]:
            stream = self.client.chat.completions.create(stream=True, **kw)
            chunks = []
            for chunk in stream:
                chunks.append(chunk)
                if len(chunks) == count:
                    break
            stream.close()
            return chunks, stream

        return await self._call(work)

    async def open_and_close(self, **kw: Any) -> None:
        def work() -> None:
            self.client.chat.completions.create(stream=True, **kw).close()

        await self._call(work)

    async def models(self) -> ModelList:
        return await self._call(self.client.models.list)

    async def close(self) -> None:
        await self._call(self.client.close)


@pytest.fixture(params=["async", "sync"])
async def side(request: pytest.FixtureRequest, emu: Emulator) -> AsyncIterator[Side]:
    cls = AsyncSide if request.param == "async" else SyncSide
    s = cls(api_key=emu.api_key, base_url=emu.base_url, max_retries=0)
    yield s
    await s.close()


# --- answers ------------------------------------------------------------------------------------


async def test_streams_text_in_pieces(side: Side) -> None:
    chunks, stream = await side.stream(model="solar-mini", messages=ask("Привет! Как дела?"))
    text = chunk_text(chunks)
    assert text == answers.answer_text("Привет! Как дела?")
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert pieces == answers.pieces(text)  # word by word, as the emulator sends it
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert chunks[0].model == "solar-mini-250422"
    assert stream.content == text
    assert stream.finish_reason == "stop"
    assert stream.done
    assert stream.completion().choices[0].message.content == text
    # to_dict gives the wire form back
    assert json.loads(json.dumps(chunks[1].to_dict()))["object"] == "chat.completion.chunk"


async def test_non_streaming_completion_has_usage(side: Side) -> None:
    completion = await side.complete(model="solar-mini", messages=ask("Hello"))
    assert isinstance(completion, ChatCompletion)
    message = completion.choices[0].message
    assert message.role == "assistant"
    assert message.content == answers.answer_text("Hello")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    usage = completion.usage
    assert {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens} == expected_usage(ask("Hello"), message.content)


async def test_alias_resolves_before_sending(side: Side, emu: Emulator) -> None:
    await side.complete(model="solar-1-mini-chat", messages=ask("Hi"))
    assert emu.requests[-1].json["model"] == "solar-mini"


async def test_unknown_model_goes_as_written_and_the_api_judges(side: Side, emu: Emulator) -> None:
    with pytest.raises(ModelNotSupportedError):
        await side.complete(model="solar-ultra-9000", messages=ask("Hi"))
    assert emu.requests[-1].json["model"] == "solar-ultra-9000"


@pytest.mark.parametrize(("model", "effort"), [("solar-pro3", "high"), ("solar-pro4", "medium")])
async def test_reasoning_streams_apart_from_the_answer(side: Side, model: str, effort: str) -> None:
    chunks, stream = await side.stream(model=model, messages=ask("Why is the sky blue?"), reasoning_effort=effort)
    reasoning = "".join(c.choices[0].delta.reasoning or "" for c in chunks if c.choices)
    assert reasoning == answers.reasoning_text(model, effort, "Why is the sky blue?")
    assert chunk_text(chunks) == answers.answer_text("Why is the sky blue?")
    assert stream.reasoning == reasoning
    assert stream.completion().choices[0].message.reasoning == reasoning
    completion = await side.complete(model=model, messages=ask("Why is the sky blue?"), reasoning_effort=effort)
    assert completion.choices[0].message.reasoning == reasoning


async def test_reasoning_effort_rejected_before_sending_for_models_without_reasoning(
    side: Side, emu: Emulator
) -> None:
    with pytest.raises(InvalidRequestError, match="reasoning_effort") as info:
        await side.complete(model="solar-mini", messages=ask("Hi"), reasoning_effort="high")
    assert info.value.status_code is None
    assert emu.requests == []


async def test_tool_calls_stream_as_deltas_and_assembled(side: Side) -> None:
    chunks, stream = await side.stream(
        model="solar-pro4", messages=ask("Weather in Seoul? [emulate:tools]"), tools=[WEATHER_TOOL],
    )
    deltas = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or ()]
    arguments = answers.json_answer_for(WEATHER_TOOL["function"]["parameters"])  # type: ignore[index]
    assert arguments == '{"city": "emulated city"}'
    # the first delta names the call, the rest carry the arguments in pieces
    assert [(d.id is not None, d.function.name if d.function else None) for d in deltas] == [
        (True, "get_weather")] + [(False, None)] * len(answers.split_arguments(arguments))
    assert ["".join(d.function.arguments or "" for d in deltas[1:] if d.function)] == [arguments]
    calls = stream.tool_calls
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [(deltas[0].id, "get_weather", arguments)]
    assert stream.finish_reason == "tool_calls"
    assert stream.completion().choices[0].message.tool_calls == calls


async def test_forced_tool_call_with_finish_stop_is_still_tool_calls(side: Side) -> None:
    completion = await side.complete(
        model="solar-pro4", messages=ask("Weather? [emulate:tools finish=stop]"), tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    assert [(c.function.name, c.function.arguments) for c in choice.message.tool_calls] == [
        ("get_weather", '{"city": "emulated city"}')]


@pytest.mark.parametrize("variant", ["", "[emulate:usage-separate]"])
async def test_include_usage_gives_a_usage_chunk(side: Side, variant: str) -> None:
    chunks, stream = await side.stream(model="solar-mini", messages=ask(f"Count {variant}"),
                                       stream_options={"include_usage": True})
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1
    usage = with_usage[0].usage
    assert usage is not None
    expected = expected_usage(ask(f"Count {variant}"), answers.answer_text("Count"))
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == tuple(expected.values())
    assert stream.usage == usage


async def test_models_list_is_live(side: Side, emu: Emulator, session: aiohttp.ClientSession) -> None:
    models = await side.models()
    assert emu.requests[-1].path == "/v1/models"
    async with session.get(emu.base_url + "/models", headers={"Authorization": f"Bearer {emu.api_key}"}) as resp:
        wire = await resp.json()
    assert [m.id for m in models] == [m["id"] for m in wire["data"]]  # what the server listed, in its order
    assert models.to_dict() == wire


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("directive", "status", "code"),
    [
        ("[emulate:error status=401 code=invalid_api_key]", 401, "invalid_api_key"),
        ("[emulate:rate-limit header=none]", 429, "too_many_requests"),
        ("[emulate:html-error]", 502, None),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_http_errors_raise_at_create(side: Side, directive: str, status: int, code: str | None,
                                           stream: bool) -> None:
    """As in the OpenAI SDK, ``create(stream=True)`` sends the request: the error raises before any
    chunk is read (``open_and_close`` reads none). Which class each status gets is test_errors.py's."""
    call = side.open_and_close if stream else side.complete
    with pytest.raises(APIStatusError) as info:
        await call(model="solar-mini", messages=ask(f"Hi {directive}"))
    assert (info.value.status_code, info.value.code) == (status, code)


@pytest.mark.parametrize(
    ("directive", "error"),
    [
        ("[emulate:truncate after=2]", StreamTruncatedError),
        ("[emulate:reset after=2]", StreamTruncatedError),
        ("[emulate:midstream-error after=2]", StreamError),
    ],
)
async def test_errors_inside_the_stream(side: Side, directive: str, error: type[SolarstreamError]) -> None:
    with pytest.raises(error) as info:
        await side.stream(model="solar-mini", messages=ask(f"Hi {directive}"))
    assert type(info.value) is error


async def test_wrong_key_and_missing_key(emu: Emulator, side: Side, monkeypatch: pytest.MonkeyPatch) -> None:
    cls = type(side)
    wrong = cls(api_key="sk-WrongKind0fKey", base_url=emu.base_url, max_retries=0)
    try:
        with pytest.raises(AuthenticationError) as info:
            await wrong.complete(model="solar-mini", messages=ask("Hi"))
        assert "sk-WrongKind0fKey" not in str(info.value)
    finally:
        await wrong.close()
    with pytest.raises(MissingAuthError, match="UPSTAGE_API_KEY"):
        cls(base_url=emu.base_url)


async def test_connection_refused_is_an_api_connection_error(side: Side) -> None:
    cls = type(side)
    dead = cls(api_key="up_x", base_url="http://127.0.0.1:9/v1", max_retries=0)
    try:
        with pytest.raises(APIConnectionError) as info:
            await dead.complete(model="solar-mini", messages=ask("Hi"))
        assert "127.0.0.1:9" in str(info.value)
    finally:
        await dead.close()


# --- early close ------------------------------------------------------------------------------------


async def test_early_close_releases_the_connection(side: Side, emu: Emulator) -> None:
    chunks, stream = await side.stream_some(
        2, model="solar-mini", messages=ask("A long answer please [emulate:slow delay_ms=50]"))
    assert len(chunks) == 2
    assert not stream.done
    await asyncio.wait_for(emu.wait_for_disconnects(1), 10)  # the server saw the client leave (an event)
    # and the client still works afterwards
    completion = await side.complete(model="solar-mini", messages=ask("Again"))
    assert completion.choices[0].message.content == answers.answer_text("Again")


async def test_closing_an_unread_stream_releases_it(side: Side, emu: Emulator) -> None:
    await side.open_and_close(model="solar-mini", messages=ask("Never read [emulate:slow delay_ms=50]"))
    await asyncio.wait_for(emu.wait_for_disconnects(1), 10)


# --- environment, repr, jupyter ------------------------------------------------------------------


async def test_environment_variables(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTAGE_API_KEY", emu.api_key)
    monkeypatch.setenv("UPSTAGE_API_BASE", emu.base_url)
    async with AsyncClient() as client:
        assert client.base_url == emu.base_url
        completion = await client.chat.completions.create(model="solar-mini", messages=ask("env"))
        assert completion.choices[0].message.content == answers.answer_text("env")
    monkeypatch.setenv("UPSTAGE_BASE_URL", "http://127.0.0.1:1/v1")
    assert AsyncClient().base_url == "http://127.0.0.1:1/v1"  # UPSTAGE_BASE_URL wins


def test_reprs_never_show_the_key_or_proxy_password() -> None:
    secret = "up_TopSecretKey123"
    for cls in (AsyncClient, Client):
        client = cls(api_key=secret, proxy="http://user:pa55w0rd@127.0.0.1:3128")
        text = repr(client)
        assert secret not in text
        assert "pa55w0rd" not in text
        assert "127.0.0.1:3128" in text


async def test_sync_client_works_inside_a_running_loop_thread(emu: Emulator) -> None:
    """What Jupyter does: the sync API called from a thread whose event loop is running."""
    result: list[str] = []
    errors: list[BaseException] = []

    async def notebook_cell() -> None:
        with Client(api_key=emu.api_key, base_url=emu.base_url) as client:
            stream = client.chat.completions.create(model="solar-mini", messages=ask("jupyter"), stream=True)
            with stream:
                result.append(chunk_text(list(stream)))

    def kernel() -> None:
        try:
            asyncio.run(notebook_cell())
        except BaseException as exc:  # report in the test, not in the thread
            errors.append(exc)

    thread = threading.Thread(target=kernel)
    thread.start()
    await asyncio.to_thread(thread.join)
    assert not errors
    assert result == [answers.answer_text("jupyter")]
