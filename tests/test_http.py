"""The HTTP layer against the raw server: retries, connection reuse, cancellation, timeouts."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from typing import Any

import pytest

from solarstream import Upstage
from solarstream._http import Timeout
from solarstream._retry import RetryPolicy
from solarstream.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    RateLimitError,
    ServerError,
    StreamTruncatedError,
)
from solarstream.providers.base import default_of
from tests.conftest import API_KEY, MESSAGES, kw
from tests.helpers import FAST_RETRY, collect
from tests.rawserver import RawServer, Reply, chunk, json_reply, sse, sse_reply, text_stream


def err(status: int, code: str | None = None, headers: list[tuple[str, str]] | None = None) -> Reply:
    body: dict[str, Any] = {"error": {"message": f"status {status}", "code": code}}
    return json_reply(status, body, headers or [])


async def run_text(http: Upstage, server: RawServer, **extra: Any) -> str:
    return "".join([p async for p in http.stream("solar-pro4", MESSAGES, **kw(server, **extra)).text()])


def retry_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    return [float(m.group(1)) for r in caplog.records
            if (m := re.match(r"retrying in ([\d.]+)s", r.getMessage()))]


# --- the fake itself ------------------------------------------------------------------------------

async def test_raw_server_pieces_arrive_as_separate_reads(server: RawServer, http: Upstage) -> None:
    pieces = [b"data: ", b"\xd0", b"\x96\n", b"\n"]
    for framing in ("chunked", "length", "close"):
        server.enqueue(Reply(pieces=pieces, framing=framing))
        response = await http.http.send("GET", server.url + "/x", headers={})
        reads = []
        while data := await response.read_chunk():
            reads.append(data)
        await response.finish()
        assert reads == pieces, framing


# --- retries ---------------------------------------------------------------------------------------

async def test_reset_before_headers_is_retried(server: RawServer, http: Upstage) -> None:
    server.enqueue(Reply(status=None, end="reset"), sse_reply(text_stream(["ok"])))
    assert await run_text(http, server) == "ok"
    assert len(server.requests) == 2


async def test_close_before_headers_is_retried(server: RawServer, http: Upstage) -> None:
    server.enqueue(Reply(status=None, end="close"), sse_reply(text_stream(["ok"])))
    assert await run_text(http, server) == "ok"
    assert len(server.requests) == 2


@pytest.mark.parametrize(("status", "code"), [
    (408, None), (429, "too_many_requests"), (500, None), (502, None), (503, None),
])
async def test_retryable_statuses(server: RawServer, http: Upstage, status: int, code: str | None) -> None:
    server.enqueue(err(status, code), err(status, code), sse_reply(text_stream(["third time"])))
    assert await run_text(http, server) == "third time"
    assert len(server.requests) == 3
    server.enqueue(*[err(status, code) for _ in range(3)])
    with pytest.raises(APIStatusError) as info:
        await run_text(http, server)
    assert (info.value.status_code, info.value.code) == (status, code)
    assert len(server.requests) == 6  # 1 + max_retries (2), then raised


async def test_max_retries_kwarg_counts_attempts(server: RawServer, http: Upstage) -> None:
    server.enqueue(*[err(503) for _ in range(4)])
    with pytest.raises(ServerError):
        await run_text(http, server, max_retries=3)
    assert len(server.requests) == 4
    server.enqueue(err(503))
    with pytest.raises(ServerError):
        await run_text(http, server, max_retries=0)
    assert len(server.requests) == 5


async def test_max_retries_kwarg_keeps_the_clients_backoff(
    server: RawServer, http: Upstage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "solarstream")
    server.enqueue(err(500), err(500), sse_reply(text_stream(["ok"])))
    assert await run_text(http, server, max_retries=5) == "ok"
    delays = retry_delays(caplog)
    assert len(delays) == 2
    assert all(d <= FAST_RETRY.backoff_max for d in delays), delays


async def test_advertised_delays_are_honoured(
    server: RawServer, http: Upstage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "solarstream")
    server.enqueue(err(429, "too_many_requests", [("retry-after-ms", "300")]), sse_reply(text_stream(["after wait"])))
    started = time.monotonic()
    assert await run_text(http, server) == "after wait"
    assert time.monotonic() - started >= 0.3  # it waited the advertised time (the backoff here is 1 ms)
    assert len(server.requests) == 2
    [delay] = retry_delays(caplog)
    assert 0.3 <= delay <= 0.4, delay  # the advertised delay plus at most the jitter


async def test_both_upstage_retry_headers_on_the_wire_the_later_wins(
    server: RawServer, http: Upstage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "solarstream")
    headers = [("X-Upstage-RateLimit-Retry-After-Requests", "0.05"), ("X-Upstage-RateLimit-Retry-After-Tokens", "0.2")]
    server.enqueue(err(429, "too_many_requests", headers), sse_reply(text_stream(["after wait"])))
    started = time.monotonic()
    assert await run_text(http, server) == "after wait"
    assert time.monotonic() - started >= 0.2
    assert retry_delays(caplog) == [0.2]  # the tokens header's (plus at most 1 ms of jitter, rounded away)


async def test_advertised_delay_beyond_the_limit_raises_at_once(server: RawServer) -> None:
    http = Upstage(retry=RetryPolicy(max_retries=2, backoff=0.001, max_retry_after=5))
    try:
        server.enqueue(err(429, "too_many_requests", [("Retry-After", "120")]))
        with pytest.raises(RateLimitError) as info:
            await run_text(http, server)
        assert info.value.retry_after == 120
        assert len(server.requests) == 1
    finally:
        await http.aclose()


@pytest.mark.parametrize(("status", "code"), [
    (401, "invalid_api_key"), (400, "invalid_request_body"), (429, "usage_limit_exceeded"),
    (401, "api_key_is_blocked"), (404, None),
])
async def test_never_retried_statuses(server: RawServer, http: Upstage, status: int, code: str | None) -> None:
    server.enqueue(err(status, code), sse_reply(text_stream(["must not be reached"])))
    with pytest.raises(APIStatusError) as info:
        await run_text(http, server)
    assert (info.value.status_code, info.value.code) == (status, code)
    assert len(server.requests) == 1


@pytest.mark.parametrize("end", ["reset", "close"])
async def test_nothing_is_retried_after_the_first_body_byte(server: RawServer, http: Upstage, end: str) -> None:
    server.enqueue(Reply(pieces=[sse(chunk("partial"))], end=end), sse_reply(text_stream(["duplicate"])))  # type: ignore[arg-type]
    pieces, exc = await collect(http.stream("solar-pro4", MESSAGES, **kw(server)).text())
    assert isinstance(exc, StreamTruncatedError)
    assert pieces == ["partial"]
    assert len(server.requests) == 1


async def test_headers_then_reset_is_not_retried(server: RawServer, http: Upstage) -> None:
    server.enqueue(Reply(pieces=[], end="reset"), sse_reply(text_stream(["duplicate"])))
    with pytest.raises(StreamTruncatedError):
        await run_text(http, server)
    assert len(server.requests) == 1


async def test_connection_refused_is_a_connection_error(http: Upstage) -> None:
    async with RawServer() as gone:
        base = gone.base_url
    with pytest.raises(APIConnectionError) as info:
        await Upstage.create_async("solar-pro4", MESSAGES, base_url=base, api_key="up_x", max_retries=0)
    assert "127.0.0.1" in str(info.value)


# --- connection reuse -------------------------------------------------------------------------------

async def test_sequential_classmethod_streams_share_one_connection(server: RawServer) -> None:
    for i in range(4):
        server.enqueue(sse_reply(text_stream([f"answer {i}"])))
    for i in range(4):
        assert await Upstage.create_async("solar-pro4", MESSAGES, **kw(server)) == f"answer {i}"
    assert server.connections == 1
    assert [r.connection for r in server.requests] == [0, 0, 0, 0]


async def test_one_http_client_reuses_its_connection_for_streams_and_json(server: RawServer, http: Upstage) -> None:
    completion = {"id": "x", "object": "chat.completion", "created": 1, "model": "solar-mini-250422",
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole"},
                               "finish_reason": "stop"}],
                  "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
    server.enqueue(sse_reply(text_stream(["a"])), json_reply(200, completion), sse_reply(text_stream(["b"])))
    assert await run_text(http, server) == "a"
    result = await http.complete("solar-mini", MESSAGES, **kw(server))
    assert result.choices[0].message.content == "whole"
    assert await run_text(http, server) == "b"
    assert server.connections == 1


@pytest.mark.parametrize("framing", ["chunked", "length"])
async def test_trailing_bytes_after_done_still_reuse_the_connection(
    server: RawServer, http: Upstage, framing: str
) -> None:
    body = text_stream(["x"]) + b": trailing comment\n\n"
    server.enqueue(Reply(pieces=[body[:-10], body[-10:]], framing=framing), sse_reply(text_stream(["y"])))  # type: ignore[arg-type]
    assert await run_text(http, server) == "x"
    assert await run_text(http, server) == "y"
    assert server.connections == 1
    assert server.client_disconnects == 0


async def test_aclose_mid_stream_drops_the_connection(server: RawServer) -> None:
    server.enqueue(Reply(pieces=[sse(chunk("first"))], end="hang"), sse_reply(text_stream(["next"])))
    gen = Upstage.create_async_generator("solar-pro4", MESSAGES, **kw(server))
    assert await gen.__anext__() == "first"
    await gen.aclose()  # type: ignore[attr-defined]
    await server.wait_client_disconnects(1)
    assert await Upstage.create_async("solar-pro4", MESSAGES, **kw(server)) == "next"
    assert server.connections == 2


async def test_break_out_of_the_loop_drops_the_connection(server: RawServer) -> None:
    server.enqueue(Reply(pieces=[sse(chunk("first")), sse(chunk("second"))], end="hang"))
    async for _ in Upstage.create_async_generator("solar-pro4", MESSAGES, **kw(server)):
        break
    # the generator is finalised by the event loop once dropped: the server sees the client leave
    await server.wait_client_disconnects(1)


async def test_stream_context_manager_exit_drops_the_connection(server: RawServer) -> None:
    server.enqueue(Reply(pieces=[sse(chunk("first"))], end="hang"))
    async with Upstage.stream("solar-pro4", MESSAGES, **kw(server)) as stream:
        async for c in stream:
            assert c.choices[0].delta.content == "first"
            break
    await server.wait_client_disconnects(1)


async def test_cancelling_a_consumer_disconnects_promptly(server: RawServer) -> None:
    server.enqueue(Reply(pieces=[sse(chunk("first"))], end="hang"), sse_reply(text_stream(["after"])))
    got_first = asyncio.Event()

    async def consume() -> None:
        async for _ in Upstage.create_async_generator("solar-pro4", MESSAGES, **kw(server)):
            got_first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_first.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await server.wait_client_disconnects(1, timeout=5)  # a hang guard, not a timing assertion
    assert await Upstage.create_async("solar-pro4", MESSAGES, **kw(server)) == "after"
    assert server.connections == 2


async def test_cancelling_while_waiting_for_headers_disconnects(server: RawServer) -> None:
    server.enqueue(Reply(status=None, end="hang"))
    task = asyncio.create_task(Upstage.create_async("solar-pro4", MESSAGES, **kw(server)))
    await server.wait_requests(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await server.wait_client_disconnects(1, timeout=5)


# --- timeouts --------------------------------------------------------------------------------------

async def test_idle_read_timeout(server: RawServer) -> None:
    server.enqueue(Reply(pieces=[sse(chunk("so far"))], end="hang"))
    pieces, exc = await collect(Upstage.create_async_generator("solar-pro4", MESSAGES, **kw(server, timeout=0.2)))
    assert isinstance(exc, APITimeoutError)
    assert "idle" in str(exc)
    assert pieces == ["so far"]
    await server.wait_client_disconnects(1)


async def test_first_byte_timeout(server: RawServer) -> None:
    server.enqueue(Reply(status=None, end="hang"))
    with pytest.raises(APITimeoutError, match="first byte"):
        await Upstage.create_async("solar-pro4", MESSAGES, **kw(server, timeout=0.2))
    assert len(server.requests) == 1  # a timeout is not retried: the server may be working on it


async def test_read_timeout_applies_right_after_the_headers(server: RawServer) -> None:
    """A Timeout object with a long first-byte and a short idle read: a stall straight after the
    headers is an idle read, so the short limit applies."""
    server.enqueue(Reply(pieces=[], end="hang"))
    http = Upstage(timeout=Timeout(connect=5, first_byte=30, read=0.2))
    try:
        with pytest.raises(APITimeoutError):
            await asyncio.wait_for(run_text(http, server), 10)
    finally:
        await http.aclose()


async def test_non_streamed_completion_honours_timeout(server: RawServer) -> None:
    server.enqueue(Reply(status=None, end="hang"))
    with pytest.raises(APITimeoutError):
        await asyncio.wait_for(Upstage.complete("solar-pro4", MESSAGES, **kw(server, timeout=0.2)), 10)


async def test_non_streamed_completion_honours_max_retries(server: RawServer) -> None:
    server.enqueue(err(503, headers=[("retry-after-ms", "1")]), err(503))
    with pytest.raises(ServerError):
        await Upstage.complete("solar-pro4", MESSAGES, **kw(server, max_retries=0))
    assert len(server.requests) == 1


async def test_a_netrc_entry_does_not_break_requests(
    server: RawServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("default login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    server.enqueue(sse_reply(text_stream(["fine"])))
    assert await Upstage.create_async("solar-pro4", MESSAGES, **kw(server)) == "fine"
    assert server.requests[0].headers["authorization"] == "Bearer up_SeCrEtKeY4Tests9x7Q2"


async def test_class_level_calls_share_one_default_instance() -> None:
    assert default_of(Upstage) is default_of(Upstage)
    assert Upstage.stream.__self__ is default_of(Upstage)  # type: ignore[attr-defined]
    assert Upstage().stream.__self__ is not default_of(Upstage)  # type: ignore[attr-defined]


# --- connect timeouts ------------------------------------------------------------------------------


async def test_a_connect_timeout_is_retried(http: Upstage, caplog: pytest.LogCaptureFixture) -> None:
    """A listener whose accept queue is full drops new SYNs, so connecting times out: nothing was
    sent, so the attempt is retried (unlike a first-byte timeout, where the server may be working)."""
    caplog.set_level(logging.WARNING, "solarstream")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.create_connection(("127.0.0.1", port), timeout=5)]  # the queue (of one) is full
        try:
            with pytest.raises(APITimeoutError) as info:
                await http.complete("solar-pro4", MESSAGES, base_url=f"http://127.0.0.1:{port}/v1", api_key=API_KEY,
                                    timeout=Timeout(connect=0.2, first_byte=5, read=5), max_retries=1)
        finally:
            for filler in fillers:
                filler.close()
    assert info.value.timer == "connect"
    assert info.value.retryable
    assert str(info.value) == f"could not connect to 127.0.0.1:{port} within 0.2s (connect timeout)"
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("retrying")] == [
        f"retrying in 0.00s after could not connect to 127.0.0.1:{port} within 0.2s (connect timeout) "
        "(attempt 2 of 2)"]
