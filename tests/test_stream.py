"""Stream semantics end to end: bytes from the raw server through ChatStream to text and events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import pytest

from solarstream import Upstage
from solarstream.errors import StreamError, StreamTruncatedError
from solarstream.types import Finish, ReasoningDelta, StreamEvent, TextDelta, ToolCallDelta, ToolCalls, UsageReport
from tests.conftest import MESSAGES, kw
from tests.helpers import collect
from tests.rawserver import RawServer, Reply, chunk, sse, sse_reply, text_stream

T = TypeVar("T")
USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8,
         "completion_tokens_details": {"reasoning_tokens": 2}}


def text(server: RawServer, **extra: Any) -> AsyncIterator[str]:
    return Upstage.create_async_generator("solar-pro4", MESSAGES, **kw(server, **extra))


def events(server: RawServer, **extra: Any) -> AsyncIterator[StreamEvent]:
    return Upstage.stream_events("solar-pro4", MESSAGES, **kw(server, **extra))


async def test_done_ends_the_stream(server: RawServer) -> None:
    server.enqueue(sse_reply(text_stream(["Hel", "lo", "!"])))
    assert await collect(text(server)) == (["Hel", "lo", "!"], None)


async def test_finish_reason_without_done_is_complete(server: RawServer) -> None:
    server.enqueue(sse_reply(text_stream(["a", "b"], done=False)))
    assert await collect(text(server)) == (["a", "b"], None)


@pytest.mark.parametrize("framing", ["chunked", "length", "close"])
async def test_body_ending_without_done_or_finish_is_truncated(server: RawServer, framing: str) -> None:
    body = text_stream(["one ", "two"], done=False, finish=None)
    server.enqueue(Reply(pieces=[body], framing=framing))  # type: ignore[arg-type]
    pieces, exc = await collect(text(server))
    assert pieces == ["one ", "two"]  # what arrived was yielded first
    assert isinstance(exc, StreamTruncatedError)
    assert "incomplete" in str(exc)


async def test_unterminated_last_event_is_not_used(server: RawServer) -> None:
    tail = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
    body = text_stream(["a"], done=False, finish=None) + tail
    server.enqueue(Reply(pieces=[body], framing="length"))
    pieces, exc = await collect(text(server))
    assert pieces == ["a"]
    assert isinstance(exc, StreamTruncatedError)


async def test_connection_reset_mid_stream(server: RawServer) -> None:
    head = text_stream(["first ", "second"], done=False, finish=None)
    server.enqueue(Reply(pieces=[head], framing="chunked", end="reset"))
    pieces, exc = await collect(text(server))
    assert pieces == ["first ", "second"]
    assert isinstance(exc, StreamTruncatedError)


async def test_connection_closed_inside_a_chunked_body(server: RawServer) -> None:
    head = text_stream(["x"], done=False, finish=None)
    server.enqueue(Reply(pieces=[head], framing="chunked", end="close"))
    pieces, exc = await collect(text(server))
    assert pieces == ["x"]
    assert isinstance(exc, StreamTruncatedError)


@pytest.mark.parametrize("event_line", ["", "event: error\n"])
async def test_error_object_mid_stream(server: RawServer, event_line: str) -> None:
    error = {"error": {"message": "upstream overloaded", "type": "server_error", "code": "overloaded"}}
    body = sse(chunk("partial")) + f"{event_line}data: {json.dumps(error)}\n\n".encode()
    server.enqueue(sse_reply(body))
    pieces, exc = await collect(text(server))
    assert pieces == ["partial"]
    assert type(exc) is StreamError
    assert exc.code == "overloaded"
    assert "upstream overloaded" in str(exc)
    assert exc.body == error


async def test_error_event_with_other_shape(server: RawServer) -> None:
    body = sse(chunk("p")) + b'event: error\ndata: {"message": "boom", "code": "internal"}\n\n'
    server.enqueue(sse_reply(body))
    pieces, exc = await collect(text(server))
    assert pieces == ["p"]
    assert isinstance(exc, StreamError)
    assert "boom" in str(exc)


@pytest.mark.parametrize("data", ["<html>502 Bad Gateway</html>", "{not json", "[1, 2]", '"a string"'])
async def test_non_json_or_non_object_data_is_a_stream_error(server: RawServer, data: str) -> None:
    server.enqueue(sse_reply(sse(chunk("ok"), data)))
    pieces, exc = await collect(text(server))
    assert pieces == ["ok"]
    assert type(exc) is StreamError
    assert data[:5] in str(exc)


async def test_comments_and_crlf_do_not_change_the_text(server: RawServer) -> None:
    body = (b": ping\r\n\r\n" + sse(chunk("a"), eol="\r\n") + b": ping\r\n\r\n"
            + sse(chunk("b"), chunk(finish="stop"), "[DONE]", eol="\r\n"))
    server.enqueue(sse_reply(body))
    assert await collect(text(server)) == (["a", "b"], None)


@pytest.mark.parametrize("separate", [False, True])
async def test_usage_reaches_events_and_the_stream(server: RawServer, separate: bool) -> None:
    if separate:
        body = sse(chunk("hi"), chunk(finish="stop"), chunk(usage=USAGE, no_choices=True), "[DONE]")
    else:
        body = sse(chunk("hi"), chunk(finish="stop", usage=USAGE), "[DONE]")
    server.enqueue(sse_reply(body), sse_reply(body))
    got, exc = await collect(events(server))
    assert exc is None
    reports = [e for e in got if isinstance(e, UsageReport)]
    assert len(reports) == 1
    assert reports[0].usage.total_tokens == 8
    assert reports[0].usage.reasoning_tokens == 2
    assert [e for e in got if isinstance(e, Finish)] == [Finish("stop", 0)]
    stream = Upstage.stream("solar-pro4", MESSAGES, **kw(server))
    async with stream:
        chunks = [c async for c in stream]
    assert stream.usage is not None
    assert stream.usage.prompt_tokens == 5
    assert stream.finish_reason == "stop"
    assert any(c.usage is not None for c in chunks)
    assert stream.completion().usage == stream.usage


@pytest.mark.parametrize("key", ["reasoning", "reasoning_content"])
async def test_reasoning_from_either_field(server: RawServer, key: str) -> None:
    body = sse(chunk(reasoning="Let me ", reasoning_key=key), chunk(reasoning="think.", reasoning_key=key),
               chunk("Answer"), chunk(finish="stop"), "[DONE]")
    server.enqueue(sse_reply(body), sse_reply(body))
    got, exc = await collect(events(server))
    assert exc is None
    assert [e.text for e in got if isinstance(e, ReasoningDelta)] == ["Let me ", "think."]
    assert [e.text for e in got if isinstance(e, TextDelta)] == ["Answer"]
    stream = Upstage.stream("solar-pro4", MESSAGES, **kw(server))
    async with stream:
        chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.reasoning or "" for c in chunks if c.choices) == "Let me think."
    assert stream.completion().choices[0].message.reasoning == "Let me think."
    assert stream.completion().choices[0].message.content == "Answer"


def _tool_stream(finish: str) -> bytes:
    calls = [
        [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}],
        [{"index": 0, "function": {"arguments": '{"city": '}}],
        [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}],
        [{"index": 0, "function": {"arguments": '"Seoul"}'}}],
    ]
    return sse(*[chunk(tool_calls=c) for c in calls], chunk(finish=finish), "[DONE]")


@pytest.mark.parametrize("finish", ["tool_calls", "stop"])
async def test_tool_call_deltas_assemble(server: RawServer, finish: str) -> None:
    server.enqueue(sse_reply(_tool_stream(finish)), sse_reply(_tool_stream(finish)))
    got, exc = await collect(events(server))
    assert exc is None
    deltas = [e for e in got if isinstance(e, ToolCallDelta)]
    assert len(deltas) == 4
    assembled = [e for e in got if isinstance(e, ToolCalls)]
    assert len(assembled) == 1
    calls = assembled[0].calls
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("call_a", "get_weather", '{"city": "Seoul"}'),
        ("call_b", "get_time", "{}"),
    ]
    assert json.loads(calls[0].function.arguments or "") == {"city": "Seoul"}
    # "stop" with tool calls present is reported as "tool_calls"
    assert [e for e in got if isinstance(e, Finish)] == [Finish("tool_calls", 0)]
    stream = Upstage.stream("solar-pro4", MESSAGES, **kw(server))
    async with stream:
        async for _ in stream:
            pass
    assert stream.finish_reason == "tool_calls"
    completion = stream.completion()
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.choices[0].message.tool_calls == list(calls)


async def test_chunk_view_matches_the_wire(server: RawServer) -> None:
    server.enqueue(sse_reply(text_stream(["Hel", "lo"], usage=USAGE)))
    stream = Upstage.stream("solar-pro4", MESSAGES, **kw(server))
    async with stream:
        chunks = [c async for c in stream]
    assert chunks[0].id == "e1a90437-df41-45cd-acc6-a7bacbdd2a86"
    assert chunks[0].model == "solar-pro4-260806"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[1].to_dict()["choices"][0]["delta"] == {"content": "Hel"}
    assert stream.content == "Hello"
    assert stream.done


async def test_create_async_returns_the_whole_text(server: RawServer) -> None:
    server.enqueue(sse_reply(text_stream(["Whole ", "answer."])))
    assert await Upstage.create_async("solar-pro4", MESSAGES, **kw(server)) == "Whole answer."


async def test_request_carries_the_whole_history(server: RawServer) -> None:
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "How are you?"},
    ]
    server.enqueue(sse_reply(text_stream(["ok"])))
    pieces = [p async for p in Upstage.create_async_generator("solar-mini", history, temperature=0.3, **kw(server))]
    assert pieces == ["ok"]
    sent = server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.json()["messages"] == history
    assert sent.json()["stream"] is True
    assert sent.json()["temperature"] == 0.3
    assert sent.headers["authorization"] == "Bearer up_SeCrEtKeY4Tests9x7Q2"


async def test_a_null_error_field_is_not_an_error(server: RawServer) -> None:
    # some OpenAI-compatible servers put "error": null on every chunk
    body = sse({**chunk("Hel"), "error": None}, {**chunk("lo"), "error": None}, chunk(finish="stop"), "[DONE]")
    server.enqueue(sse_reply(body))
    pieces, error = await collect(text(server))
    assert error is None
    assert pieces == ["Hel", "lo"]
