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

import pytest

from solarstream import (
    APIConnectionError,
    AsyncClient,
    AuthenticationError,
    Client,
    InvalidRequestError,
    MissingAuthError,
    ModelNotSupportedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    SolarstreamError,
    StreamError,
    StreamTruncatedError,
)
from solarstream.client import AsyncChatCompletionStream, ChatCompletionStream, ModelList
from solarstream.emulator import Emulator
from solarstream.types import ChatCompletion, ChatCompletionChunk

T = TypeVar("T")

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


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
        """Create a stream and close it without reading a chunk."""
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


def text_of(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# --- answers ------------------------------------------------------------------------------------


async def test_streams_text_in_pieces(side: Side) -> None:
    chunks, stream = await side.stream(model="solar-mini", messages=ask("Привет! Как дела?"))
    text = text_of(chunks)
    assert "emulator" in text
    assert "Привет! Как дела?" in text
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert chunks[0].model.startswith("solar-mini")
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
    assert message.content
    assert "Hello" in message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0


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
    assert reasoning
    assert "emulat" in reasoning.lower()
    assert reasoning not in text_of(chunks)
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
    assert len(deltas) > 1  # the arguments come in pieces
    assert deltas[0].function is not None
    assert deltas[0].function.name == "get_weather"
    calls = stream.tool_calls
    assert len(calls) == 1
    assert calls[0].function.name == "get_weather"
    joined = "".join((d.function.arguments or "") for d in deltas if d.function)
    assert calls[0].function.arguments == joined
    assert isinstance(json.loads(joined), dict)
    assert stream.finish_reason == "tool_calls"
    assert stream.completion().choices[0].message.tool_calls == calls


async def test_forced_tool_call_with_finish_stop_is_still_tool_calls(side: Side) -> None:
    completion = await side.complete(
        model="solar-pro4", messages=ask("Weather? [emulate:tools finish=stop]"), tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls
    assert choice.message.tool_calls[0].function.name == "get_weather"


@pytest.mark.parametrize("variant", ["", "[emulate:usage-separate]"])
async def test_include_usage_gives_a_usage_chunk(side: Side, variant: str) -> None:
    chunks, stream = await side.stream(model="solar-mini", messages=ask(f"Count {variant}"),
                                       stream_options={"include_usage": True})
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1
    assert with_usage[0].usage is not None
    assert with_usage[0].usage.total_tokens > 0
    assert stream.usage == with_usage[0].usage


async def test_models_list_is_live(side: Side, emu: Emulator) -> None:
    models = await side.models()
    ids = [m.id for m in models]
    assert "solar-pro4" in ids
    assert len(models) == len(ids)
    assert models.to_dict()["object"] == "list"
    assert emu.requests[-1].path.endswith("/models")


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("directive", "error"),
    [
        ("[emulate:error status=401 code=invalid_api_key]", AuthenticationError),
        ("[emulate:error status=401 code=api_key_is_blocked]", QuotaExceededError),
        ("[emulate:rate-limit]", RateLimitError),
        ("[emulate:rate-limit code=usage_limit_exceeded]", QuotaExceededError),
        ("[emulate:error status=400 code=invalid_request_body]", InvalidRequestError),
        ("[emulate:error status=503]", ServerError),
        ("[emulate:html-error]", ServerError),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_http_errors_raise_their_class_at_create(
    side: Side, directive: str, error: type[SolarstreamError], stream: bool
) -> None:
    call = side.stream if stream else side.complete
    with pytest.raises(error) as info:
        await call(model="solar-mini", messages=ask(f"Hi {directive}"))
    assert info.value.status_code is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("directive", "error"),
    [
        ("[emulate:truncate after=2]", StreamTruncatedError),
        ("[emulate:reset after=2]", StreamTruncatedError),
        ("[emulate:midstream-error after=2]", StreamError),
    ],
)
async def test_errors_inside_the_stream(side: Side, directive: str, error: type[SolarstreamError]) -> None:
    with pytest.raises(error):
        await side.stream(model="solar-mini", messages=ask(f"Hi {directive}"))


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
        with pytest.raises(APIConnectionError):
            await dead.complete(model="solar-mini", messages=ask("Hi"))
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
    assert completion.choices[0].message.content


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
        assert completion.choices[0].message.content
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
                result.append(text_of(list(stream)))

    def kernel() -> None:
        try:
            asyncio.run(notebook_cell())
        except BaseException as exc:  # report in the test, not in the thread
            errors.append(exc)

    thread = threading.Thread(target=kernel)
    thread.start()
    await asyncio.to_thread(thread.join)
    assert not errors
    assert "jupyter" in result[0]
