"""What a ChatStream knows and says: its state before, during and after reading, tool-call assembly,
the typed events (with their choice indexes), non-stream answers and in-band errors, word for word.

test_stream.py covers the wire semantics (endings, truncation, framing); this module the assembled
answer. The raw server sends the exact bytes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from solarstream import Upstage
from solarstream._stream import ChatStream, ToolCallAssembler
from solarstream.errors import StreamError, StreamTruncatedError
from solarstream.types import (
    Finish,
    FunctionCall,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCalls,
    UsageReport,
)
from tests.conftest import API_KEY, MESSAGES, kw
from tests.helpers import collect
from tests.rawserver import CHUNK_ID, MODEL_ID, RawServer, Reply, chunk, json_reply, sse, sse_reply, text_stream

USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def stream_of(server: RawServer, **extra: Any) -> ChatStream:
    return Upstage.stream("solar-pro4", MESSAGES, **kw(server, **extra))


def call(index: int, *, id: str | None = None, name: str | None = None, arguments: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"index": index, "function": {}}
    if id is not None:
        out["id"] = id
        out["type"] = "function"
    if name is not None:
        out["function"]["name"] = name
    if arguments is not None:
        out["function"]["arguments"] = arguments
    return out


# --- tool-call assembly ----------------------------------------------------------------------------


def test_the_assembler_keeps_the_first_id_and_name_and_orders_calls_by_index() -> None:
    calls = ToolCallAssembler()
    assert not calls
    calls.add(2, "call_c", "third", '{"c"')
    calls.add(0, "call_a", "first", "")
    calls.add(0, "call_x", "renamed", '{"a": 1}')  # a repeated id or name does not replace the first
    calls.add(2, None, None, ": 3}")
    calls.add(1, None, None, "{}")  # no id, no name: a stand-in id, an empty name
    calls.add(0, "", "", None)
    assert calls
    assert calls.calls() == [
        ToolCall("call_a", FunctionCall("first", '{"a": 1}')),
        ToolCall("call_1", FunctionCall("", "{}")),
        ToolCall("call_c", FunctionCall("third", '{"c": 3}')),
    ]


def test_an_id_or_name_that_comes_late_is_still_taken() -> None:
    calls = ToolCallAssembler()
    calls.add(0, None, None, '{"q": ')
    calls.add(0, "call_late", "lookup", '"x"}')
    calls.add(1, "call_b", None, "")
    calls.add(1, None, "named_later", "{}")  # a name in a delta without an id
    calls.add(2, None, "named_first", "")
    calls.add(2, "call_id_later", None, "{}")  # an id after the name
    assert calls.calls() == [ToolCall("call_late", FunctionCall("lookup", '{"q": "x"}')),
                             ToolCall("call_b", FunctionCall("named_later", "{}")),
                             ToolCall("call_id_later", FunctionCall("named_first", "{}"))]


async def test_repeated_ids_and_names_and_out_of_order_indexes_on_the_wire(server: RawServer) -> None:
    deltas = [
        [call(1, id="call_b", name="get_time", arguments="")],
        [call(0, id="call_a", name="get_weather", arguments='{"city": ')],
        [call(1, id="call_b", name="get_time", arguments='{"tz": "KST"}')],  # a server repeating itself
        [call(0, id="call_z", name="other", arguments='"Seoul"}')],  # a different id later: the first wins
    ]
    body = sse(*[chunk(tool_calls=d) for d in deltas], chunk(finish="tool_calls"), "[DONE]")
    server.enqueue(sse_reply(body), sse_reply(body))
    got, exc = await collect(Upstage.stream_events("solar-pro4", MESSAGES, **kw(server)))
    assert exc is None
    assert [e for e in got if isinstance(e, ToolCallDelta)] == [
        ToolCallDelta(1, "call_b", "get_time", ""),
        ToolCallDelta(0, "call_a", "get_weather", '{"city": '),
        ToolCallDelta(1, "call_b", "get_time", '{"tz": "KST"}'),
        ToolCallDelta(0, "call_z", "other", '"Seoul"}'),
    ]
    expected = (ToolCall("call_a", FunctionCall("get_weather", '{"city": "Seoul"}')),
                ToolCall("call_b", FunctionCall("get_time", '{"tz": "KST"}')))
    assert [e for e in got if isinstance(e, ToolCalls)] == [ToolCalls(expected)]
    stream = stream_of(server)
    completion = await stream.get_final_completion()
    message = completion.choices[0].message
    assert message.tool_calls == list(expected)
    assert message.content is None  # tool calls and no text: no content, as in the OpenAI API
    assert completion.choices[0].finish_reason == "tool_calls"


async def test_a_tool_call_without_an_index_is_call_zero(server: RawServer) -> None:
    body = sse(chunk(tool_calls=[{"id": "call_q", "function": {"name": "q", "arguments": "{}"}}]),
               chunk(finish="tool_calls"), "[DONE]")
    server.enqueue(sse_reply(body))
    got, _ = await collect(Upstage.stream_events("solar-pro4", MESSAGES, **kw(server)))
    assert [e for e in got if isinstance(e, ToolCallDelta)] == [ToolCallDelta(0, "call_q", "q", "{}")]
    assert [e for e in got if isinstance(e, ToolCalls)] == [ToolCalls((ToolCall("call_q", FunctionCall("q", "{}")),))]


# --- events, with their choice index ---------------------------------------------------------------


async def test_events_carry_the_choice_index_and_come_in_order(server: RawServer) -> None:
    second = {"index": 1, "delta": {"content": "other", "reasoning": "why"}, "finish_reason": None}
    body = sse(
        chunk(reasoning="Hmm. "),
        chunk("Hi"),
        {**chunk("!"), "choices": [chunk("!")["choices"][0], second]},
        chunk(tool_calls=[call(0, id="call_a", name="f")]),
        chunk(usage=USAGE, no_choices=True),
        chunk(finish="stop"),
        chunk(no_choices=True),  # a later chunk without usage: no second report
        "[DONE]",
    )
    server.enqueue(sse_reply(body))
    stream = stream_of(server)
    events = [e async for e in stream.events()]
    usage = stream.usage
    assert usage is not None
    assert events == [
        ReasoningDelta("Hmm. ", 0),
        TextDelta("Hi", 0),
        TextDelta("!", 0),
        ReasoningDelta("why", 1),
        TextDelta("other", 1),
        ToolCallDelta(0, "call_a", "f", ""),
        UsageReport(usage),
        ToolCalls((ToolCall("call_a", FunctionCall("f", "")),)),
        Finish("tool_calls", 0),  # "stop" with tool calls is reported as what happened
    ]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (5, 3, 8)
    # only choice 0 is the answer
    assert (stream.content, stream.reasoning) == ("Hi!", "Hmm. ")


async def test_finish_of_another_choice_keeps_its_index(server: RawServer) -> None:
    body = sse(chunk("a"), {**chunk(), "choices": [{"index": 1, "delta": {}, "finish_reason": "length"}]},
               chunk(finish="stop"), "[DONE]")
    server.enqueue(sse_reply(body))
    got, _ = await collect(Upstage.stream_events("solar-pro4", MESSAGES, **kw(server)))
    assert [e for e in got if isinstance(e, Finish)] == [Finish("length", 1), Finish("stop", 0)]


# --- the stream's state ---------------------------------------------------------------------------


async def test_state_before_during_and_after_reading(server: RawServer) -> None:
    server.enqueue(sse_reply(sse(chunk(role="assistant", content=""), chunk("Hel"), chunk("lo"),
                                 chunk(finish="stop", usage=USAGE), "[DONE]"),
                             headers=[("x-request-id", "req-42")]))
    stream = stream_of(server)
    assert (stream.id, stream.model, stream.created) == ("", "", 0)
    assert (stream.started, stream.done, stream.finish_reason, stream.usage) == (False, False, None, None)
    assert (stream.content, stream.reasoning, stream.request_id) == ("", None, None)
    assert stream.response_headers == {}
    assert stream.requested_model == "solar-pro4"
    payloads = stream.payloads()
    first = await payloads.__anext__()
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert not stream.started  # the role chunk is not output
    assert (stream.id, stream.model, stream.created) == (CHUNK_ID, MODEL_ID, 1707269210)
    assert stream.request_id == "req-42"
    assert stream.response_headers["x-request-id"] == "req-42"
    await payloads.__anext__()
    assert stream.started
    assert stream.content == "Hel"
    rest = [p async for p in payloads]
    assert len(rest) == 2
    assert stream.done
    assert stream.finish_reason == "stop"
    completion = stream.completion()
    assert (completion.id, completion.model, completion.created) == (CHUNK_ID, MODEL_ID, 1707269210)
    assert completion.request_id == "req-42"
    assert [(c.index, c.message.content, c.finish_reason) for c in completion.choices] == [(0, "Hello", "stop")]
    assert completion.usage == stream.usage
    await stream.aclose()


async def test_the_first_chunk_with_an_id_names_the_stream(server: RawServer) -> None:
    anonymous = {k: v for k, v in chunk("a").items() if k not in ("id", "model", "created")}
    server.enqueue(sse_reply(sse(anonymous, chunk("b"), chunk(finish="stop"), "[DONE]")))
    stream = stream_of(server)
    assert await stream.get_final_text() == "ab"
    assert (stream.id, stream.model, stream.created) == (CHUNK_ID, MODEL_ID, 1707269210)


async def test_an_answer_without_ids_keeps_empty_ones(server: RawServer) -> None:
    bare = [{"choices": [{"index": 0, "delta": {"content": "x"}}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
    server.enqueue(sse_reply(sse(*bare, "[DONE]")))
    stream = stream_of(server)
    completion = await stream.get_final_completion()
    assert (completion.id, completion.model, completion.created) == ("", "", 0)
    assert completion.choices[0].message.content == "x"


@pytest.mark.parametrize(("delta", "started"), [
    ({"content": "t"}, True), ({"reasoning": "r"}, True), ({"reasoning_content": "r"}, True),
    ({"tool_calls": [call(0, id="c", name="f")]}, True), ({"role": "assistant"}, False), ({"content": ""}, False),
])
async def test_started_means_output_was_handed_out(server: RawServer, delta: dict[str, Any], started: bool) -> None:
    body = sse({**chunk(), "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}, chunk(finish="stop"),
               "[DONE]")
    server.enqueue(sse_reply(body))
    stream = stream_of(server)
    async with stream:
        await stream.payloads().__anext__()
        assert stream.started is started


async def test_output_of_another_choice_does_not_count_as_started(server: RawServer) -> None:
    other = {**chunk(), "choices": [{"index": 1, "delta": {"content": "x"}, "finish_reason": None}]}
    server.enqueue(sse_reply(sse(other, chunk(finish="stop"), "[DONE]")))
    stream = stream_of(server)
    async with stream:
        await stream.payloads().__anext__()
        assert not stream.started
        assert stream.content == ""


async def test_a_stream_with_no_text_and_no_calls_has_empty_content(server: RawServer) -> None:
    server.enqueue(sse_reply(sse(chunk(finish="length"), "[DONE]")), sse_reply(sse(chunk(finish="stop"), "[DONE]")))
    completion = await stream_of(server).get_final_completion()
    assert completion.choices[0].message.content == ""
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "length"
    assert await stream_of(server).get_final_text() == ""


async def test_text_and_tool_calls_together_keep_both(server: RawServer) -> None:
    body = sse(chunk("Let me check."), chunk(tool_calls=[call(0, id="c1", name="f", arguments="{}")]),
               chunk(finish="tool_calls"), "[DONE]")
    server.enqueue(sse_reply(body), sse_reply(body))
    message = (await stream_of(server).get_final_completion()).choices[0].message
    assert message.content == "Let me check."
    assert message.tool_calls == [ToolCall("c1", FunctionCall("f", "{}"))]
    assert await stream_of(server).get_final_text() == "Let me check."


async def test_only_tool_calls_give_empty_final_text(server: RawServer) -> None:
    server.enqueue(sse_reply(sse(chunk(tool_calls=[call(0, id="c1", name="f")]), chunk(finish="tool_calls"),
                                 "[DONE]")))
    assert await stream_of(server).get_final_text() == ""


async def test_completion_of_an_unread_stream_says_how_to_read_it(server: RawServer) -> None:
    stream = stream_of(server)
    with pytest.raises(StreamError) as info:
        stream.completion()
    assert str(info.value) == ("completion() on a stream that was never read: iterate it first, or use "
                               "'await stream.get_final_completion()', which reads it to the end")
    assert server.requests == []


# --- start() and closing -------------------------------------------------------------------------


async def test_start_sends_once_and_iterating_reads_that_response(server: RawServer) -> None:
    server.enqueue(sse_reply(text_stream(["one"])), sse_reply(text_stream(["two"])))
    stream = stream_of(server)
    await stream.start()
    assert len(server.requests) == 1
    await stream.start()  # a second start sends nothing more
    assert len(server.requests) == 1
    assert await stream.get_final_text() == "one"
    await stream.start()  # nor does a start after the end
    assert len(server.requests) == 1


async def test_a_stream_closed_before_it_started_sends_nothing(server: RawServer) -> None:
    stream = stream_of(server)
    await stream.aclose()
    await stream.start()
    assert [c async for c in stream] == []
    assert server.requests == []


async def test_closing_a_started_unread_stream_drops_its_connection(server: RawServer) -> None:
    server.enqueue(Reply(pieces=[sse(chunk("first"))], end="hang"))
    stream = stream_of(server)
    await stream.start()
    await stream.aclose()
    await server.wait_client_disconnects(1)
    assert [c async for c in stream] == []


async def test_on_close_is_called_once(server: RawServer) -> None:
    server.enqueue(sse_reply(text_stream(["x"])))
    http = Upstage(api_key=API_KEY, base_url=server.base_url)
    closed: list[ChatStream] = []
    request = http.prepare_chat("solar-pro4", MESSAGES, stream=True)
    stream = ChatStream(lambda: http.send(request), model="solar-pro4", on_close=closed.append)
    try:
        assert await stream.get_final_text() == "x"
        await stream.aclose()
        assert closed == [stream]
    finally:
        await http.aclose()


async def test_stop_is_kept_unless_the_provider_says_it_means_tool_calls(server: RawServer) -> None:
    body = sse(chunk(tool_calls=[call(0, id="c1", name="f")]), chunk(finish="stop"), "[DONE]")
    server.enqueue(sse_reply(body), sse_reply(body), sse_reply(body))
    http = Upstage(api_key=API_KEY, base_url=server.base_url)
    try:
        for flag, reason in ((False, "stop"), (True, "tool_calls")):
            request = http.prepare_chat("solar-pro4", MESSAGES, stream=True)
            stream = ChatStream(lambda r=request: http.send(r), stop_with_tool_calls=flag)  # type: ignore[misc]
            await stream.get_final_completion()
            assert stream.finish_reason == reason
        plain = ChatStream(lambda: http.send(request))  # by default "stop" is taken as said
        assert plain.requested_model == ""
        await plain.get_final_completion()
        assert plain.finish_reason == "stop"
    finally:
        await http.aclose()


# --- answers that are not event streams ---------------------------------------------------------------


def answer(content_type: str | None, body: bytes) -> Reply:
    headers = (("Content-Type", content_type),) if content_type is not None else ()
    return Reply(200, headers, [body], framing="length")


@pytest.mark.parametrize("content_type", ["text/event-stream", "Text/Event-Stream; charset=utf-8",
                                          " text/event-stream ;charset=utf-8; q=1", "", None])
async def test_event_streams_are_recognised(server: RawServer, content_type: str | None) -> None:
    server.enqueue(answer(content_type, text_stream(["ok"])))
    assert await stream_of(server).get_final_text() == "ok"


@pytest.mark.parametrize(("content_type", "body", "shown"), [
    ("application/json", b'{"id": "x", "error": null}',
     'HTTP 200 application/json: {"id": "x", "error": null}'),  # an "error" that is null is no error
    ("text/html; charset=utf-8", b"<html>\n  <b>Welcome</b>\n</html>",
     "HTTP 200 text/html; charset=utf-8: <html> <b>Welcome</b> </html>"),
    ("text/plain", b"", "HTTP 200 text/plain: (empty body)"),
    ("text/plain", b"caf\xe9", "HTTP 200 text/plain: caf\ufffd"),  # not UTF-8: shown, not a crash
    ("application/json", b"[1, 2]", "HTTP 200 application/json: [1, 2]"),
    ("text/event-streams", b"data: x\n\n", "HTTP 200 text/event-streams: data: x"),
])
async def test_an_answer_that_is_not_an_event_stream_says_what_it_was(
    server: RawServer, content_type: str, body: bytes, shown: str
) -> None:
    server.enqueue(answer(content_type, body), sse_reply(text_stream(["next"])))
    with pytest.raises(StreamError) as info:
        await stream_of(server).start()
    assert type(info.value) is StreamError
    assert str(info.value) == f"expected an event stream but got {shown}; is the base URL an OpenAI-compatible API?"
    assert info.value.body == shown.split(": ", 1)[1].replace("(empty body)", "")
    assert await Upstage.create_async("solar-pro4", MESSAGES, **kw(server)) == "next"


async def test_an_error_body_without_an_event_stream_is_the_streams_error(server: RawServer) -> None:
    error = {"error": {"message": f"quota gone for {API_KEY}", "code": "quota"}}
    server.enqueue(json_reply(200, error))
    with pytest.raises(StreamError) as info:
        await stream_of(server).start()
    assert str(info.value) == "the stream reported an error (quota): quota gone for ***"
    assert info.value.code == "quota"
    assert API_KEY not in json.dumps(info.value.body)


async def test_the_key_is_redacted_from_quoted_bodies(server: RawServer) -> None:
    server.enqueue(answer("text/html", f"<p>bad key {API_KEY}</p>".encode()),
                   sse_reply(sse(chunk("a"), f"oops {API_KEY}")))
    with pytest.raises(StreamError) as info:
        await stream_of(server).start()
    assert str(info.value).endswith(": <p>bad key ***</p>; is the base URL an OpenAI-compatible API?")
    pieces, exc = await collect(stream_of(server).text())
    assert pieces == ["a"]
    assert str(exc) == "the stream sent data that is not JSON: oops ***"
    assert isinstance(exc, StreamError)
    assert exc.body == "oops ***"


# --- errors inside the stream ---------------------------------------------------------------------------


@pytest.mark.parametrize(("event", "message", "code"), [
    ({"error": {"message": "upstream overloaded", "code": "overloaded", "type": "server_error"}},
     "the stream reported an error (overloaded): upstream overloaded", "overloaded"),
    ({"error": {"message": "m", "type": "server_error"}}, "the stream reported an error (server_error): m",
     "server_error"),
    ({"error": {"code": 503}}, 'the stream reported an error (503): {"code": 503}', "503"),
    ({"error": {"detail": "überlastet"}}, 'the stream reported an error: {"detail": "überlastet"}', None),
    ({"error": "boom"}, "the stream reported an error: boom", None),
    ({"error": {"message": "x" * 400}}, "the stream reported an error: " + "x" * 299 + "…", None),
])
async def test_an_error_payload_says_what_the_server_said(
    server: RawServer, event: dict[str, Any], message: str, code: str | None
) -> None:
    server.enqueue(sse_reply(sse(chunk("partial"), event)))
    pieces, exc = await collect(stream_of(server).text())
    assert pieces == ["partial"]
    assert type(exc) is StreamError
    assert (str(exc), exc.code, exc.body) == (message, code, event)


@pytest.mark.parametrize("falsy", [None, {}, "", False, 0, []])
async def test_an_error_field_that_is_present_but_falsy(server: RawServer, falsy: Any) -> None:
    """Some OpenAI-compatible servers put ``"error": null`` on every chunk: only null is no error;
    any other value in "error" is the server reporting one (with nothing to say about it)."""
    body = sse({**chunk("Hel"), "error": falsy}, {**chunk("lo"), "error": falsy}, chunk(finish="stop"), "[DONE]")
    server.enqueue(sse_reply(body))
    pieces, exc = await collect(stream_of(server).text())
    if falsy is None:
        assert (pieces, exc) == (["Hel", "lo"], None)
    else:
        assert pieces == []
        assert isinstance(exc, StreamError)
        assert str(exc).startswith("the stream reported an error")


async def test_truncation_says_how_much_arrived(server: RawServer) -> None:
    body = text_stream(["one ", "two"], done=False, finish=None)
    server.enqueue(Reply(pieces=[body], framing="length"))
    stream = stream_of(server)
    pieces, exc = await collect(stream.text())
    assert pieces == ["one ", "two"]
    assert type(exc) is StreamTruncatedError
    assert str(exc) == (f"the stream ended after {len(body)} bytes without [DONE] or a finish reason; "
                        "the answer is incomplete")
    assert not stream.done


async def test_a_finish_reason_without_done_is_a_whole_answer(server: RawServer) -> None:
    server.enqueue(Reply(pieces=[text_stream(["a"], done=False)], framing="length"), sse_reply(text_stream(["b"])))
    stream = stream_of(server)
    assert await stream.get_final_text() == "a"
    assert stream.done
    assert await Upstage.create_async("solar-pro4", MESSAGES, **kw(server)) == "b"
    assert server.connections == 1  # the connection went back to the pool
