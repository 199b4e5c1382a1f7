"""The gateway against hostile connections, on real sockets: oversized and slow heads, idle and slow
connections, and floods at the connection cap. Timeouts are set small through ``GatewayConfig``;
each wait has a generous bound, and where real time is the behaviour only its lower bound (the
server's own timer) is asserted exactly."""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from solarstream.emulator import answers
from solarstream.server import GatewayConfig
from solarstream.server.config import DEFAULT_MAX_CONNECTIONS
from solarstream.server.connections import ConnectionGuard
from solarstream.server.serving import connection_budget, fd_reserve, raise_fd_limit
from solarstream.server.testing import RunningGateway, running_gateway
from tests.rawclient import RawClient, RawClients, request_bytes

CHAT = json.dumps({"model": "solar-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
JSON = {"Content-Type": "application/json"}


def port_of(gw: RunningGateway) -> int:
    return int(gw.url.rsplit(":", 1)[1])


def guard_of(gw: RunningGateway) -> ConnectionGuard:
    return gw.server.guard


@pytest.fixture
async def gw() -> AsyncIterator[RunningGateway]:
    async with running_gateway(max_head_bytes=4096, max_headers=20) as running:
        yield running


_clients: RawClients | None = None


@pytest.fixture(autouse=True)
async def _raw_clients() -> AsyncIterator[None]:
    global _clients
    _clients = RawClients()
    try:
        yield
    finally:
        await _clients.aclose()
        _clients = None


async def connect(gw: RunningGateway) -> RawClient:
    """A raw connection to ``gw``, closed at the end of the test."""
    assert _clients is not None
    return await _clients.connect(port_of(gw))


def padded_head(host: str, size: int) -> bytes:
    """A GET /health head of exactly ``size`` bytes (request line, Host, X-Pad, blank line)."""
    bare = request_bytes("GET", "/health", host, {"X-Pad": ""})
    return request_bytes("GET", "/health", host, {"X-Pad": "a" * (size - len(bare))})


# --- head size and header count ---------------------------------------------------------------


async def test_a_head_of_exactly_the_limit_is_served_one_byte_more_gets_431(gw: RunningGateway) -> None:
    ok = await connect(gw)
    head = padded_head(ok.host, 4096)
    assert len(head) == 4096
    await ok.send(head)
    assert (await ok.response()).status == 200
    ok.close()

    over = await connect(gw)
    await over.send(padded_head(over.host, 4097))
    response = await over.response()
    assert response.status == 431
    error = response.json()["error"]
    assert error["code"] == "request_header_fields_too_large"
    assert "4096 bytes" in error["message"]
    assert response.headers["connection"] == "close"
    assert await over.rest() == b""  # and then the connection closes
    assert guard_of(gw).too_large == 1


async def test_too_many_header_fields_get_431(gw: RunningGateway) -> None:
    client = await connect(gw)
    fields = {f"X-{i}": "v" for i in range(19)}  # + Host = 20, the limit
    assert (await client.request("GET", "/health", fields)).status == 200
    fields["X-19"] = "v"
    response = await client.request("GET", "/health", fields)
    assert response.status == 431
    assert response.json()["error"]["code"] == "request_header_fields_too_large"
    assert await client.rest() == b""


async def test_a_32_mib_header_is_cut_off_early() -> None:
    """Before: httptools buffered all of it and the request was answered. Now the server reads the
    head budget, answers 431 (or resets, if the client is still sending), and closes."""
    async with running_gateway() as gw:
        client = await connect(gw)
        sent = 0

        async def flood() -> None:
            nonlocal sent
            await client.send(b"GET /health HTTP/1.1\r\nHost: " + client.host.encode() + b"\r\nX-Big: ")
            block = b"a" * (1 << 20)
            for _ in range(32):
                client.writer.write(block)
                await client.writer.drain()
                sent += len(block)

        sender = asyncio.ensure_future(flood())
        answer = await client.rest()
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            await asyncio.wait_for(sender, 10)
        assert sent < 32 << 20
        assert guard_of(gw).too_large == 1
        async with aiohttp.ClientSession() as session, session.get(f"{gw.url}/health") as resp:
            assert resp.status == 200


async def test_trailers_of_a_chunked_body_share_the_head_budget(gw: RunningGateway) -> None:
    client = await connect(gw)
    head = request_bytes("POST", "/v1/chat/completions", client.host, {**JSON, "Transfer-Encoding": "chunked"})
    chunked = f"{len(CHAT):x}\r\n".encode() + CHAT + b"\r\n0\r\n"
    await client.send(head + chunked + b"X-Trailer: " + b"t" * 20_000 + b"\r\n\r\n")
    response = await client.response()
    assert response.status == 431
    assert guard_of(gw).too_large == 1
    assert gw.emulator.requests == []  # the body never reached the app in full


# --- timeouts ----------------------------------------------------------------------------------


async def test_a_slowloris_head_is_cut_after_the_head_timeout() -> None:
    """The client keeps dribbling header bytes; the deadline counts from the accept, not the last byte."""
    async with running_gateway(head_timeout=0.5) as gw:
        started = time.monotonic()  # before the connect: the server's clock starts at its accept
        client = await connect(gw)
        await client.send(b"GET /health HTTP/1.1\r\nHost: " + client.host.encode() + b"\r\n")
        closed = asyncio.ensure_future(client.rest())
        while not closed.done():  # the attack itself: a byte every 50 ms
            client.writer.write(b"X")
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        answer = closed.result()
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b'"code":"request_timeout"' in answer
        assert 0.5 <= elapsed < 5
        assert guard_of(gw).timed_out == 1


async def test_a_connection_that_sends_nothing_is_closed_after_the_head_timeout() -> None:
    async with running_gateway(head_timeout=0.3) as gw:
        started = time.monotonic()  # before the connect: the server's clock starts at its accept
        client = await connect(gw)
        assert await client.rest() == b""  # closed, with nothing to answer
        assert 0.3 <= time.monotonic() - started < 5


async def test_an_idle_keepalive_connection_is_closed() -> None:
    async with running_gateway(keepalive_timeout=0.3) as gw:
        client = await connect(gw)
        # before the request: the server's idle clock starts once it has sent the answer, which can be
        # before this side has read it
        started = time.monotonic()
        assert (await client.request("GET", "/health")).status == 200
        assert await client.rest() == b""
        assert 0.3 <= time.monotonic() - started < 5


async def test_the_second_head_on_a_keepalive_connection_has_a_deadline_too() -> None:
    """uvicorn cancels its keep-alive timer at the next request's first byte and starts none."""
    async with running_gateway(head_timeout=0.4, keepalive_timeout=30) as gw:
        client = await connect(gw)
        started = time.monotonic()  # before the first request: the second head's clock cannot start earlier
        assert (await client.request("GET", "/health")).status == 200
        await client.send(b"GET /health HTTP/1.1\r\n")  # and never the rest
        assert (await client.response()).status == 408
        assert 0.4 <= time.monotonic() - started < 5


async def test_a_slow_body_is_cut_after_the_body_timeout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="solarstream.server")
    async with running_gateway(body_timeout=0.4) as gw:
        client = await connect(gw)
        head = request_bytes("POST", "/v1/chat/completions", client.host,
                             {**JSON, "Content-Length": str(len(CHAT))})
        started = time.monotonic()  # before the send: the server's clock starts when the head arrives
        await client.send(head + CHAT[:10])  # the rest never comes
        response = await client.response()
        assert response.status == 408
        assert "request body" in response.json()["error"]["message"]
        assert 0.4 <= time.monotonic() - started < 5
        assert gw.emulator.requests == []
        await gw.server.gateway.wait_idle()
    lines = [r.getMessage() for r in caplog.records if r.name == "solarstream.server"]
    assert [r.levelname for r in caplog.records if r.levelno >= logging.ERROR] == []  # a client's doing, not a bug
    assert any(line.startswith("POST /v1/chat/completions 499 ") and "outcome=client_disconnected" in line
               for line in lines), lines


async def test_a_long_stream_is_not_cut_by_the_timeouts() -> None:
    """No clock runs while the app answers: a stream may outlast every timeout."""
    async with running_gateway(head_timeout=0.2, body_timeout=0.2, keepalive_timeout=0.2) as gw:
        body = json.dumps({"model": "solar-mini", "stream": True,
                           "messages": [{"role": "user", "content": "[emulate:speed chunks=8 delay_ms=100] hi"}]})
        async with aiohttp.ClientSession() as session, session.post(
                f"{gw.base_url}/chat/completions", data=body, headers=JSON) as resp:
            raw = await resp.read()
        assert resp.status == 200
        assert raw.endswith(b"data: [DONE]\n\n")
        assert guard_of(gw).timed_out == 0


# --- the connection cap ------------------------------------------------------------------------


async def test_at_the_cap_the_longest_waiting_connection_makes_room() -> None:
    async with running_gateway(max_connections=6) as gw:
        guard = guard_of(gw)
        idle = []
        for _ in range(6):  # six connections that never finish a head, admitted in this order
            idle.append(await connect(gw))
            await idle[-1].send(b"GET /health HTTP/1.1\r\n")
            await guard.wait_until(lambda g: g.open == len(idle))
        async with aiohttp.ClientSession() as session, session.get(f"{gw.base_url}/models") as resp:
            assert resp.status == 200  # a seventh is served ...
            assert (guard.evicted, guard.refused, guard.open) == (1, 0, 6)
        assert await idle[0].rest() == b""  # ... by closing the oldest of the six


async def test_at_the_cap_with_every_connection_in_a_request_a_newcomer_gets_503() -> None:
    async with running_gateway(max_connections=3) as gw:
        guard = guard_of(gw)
        busy = []
        for _ in range(3):  # each is in a request: the app waits for a body that does not come
            client = await connect(gw)
            await client.send(request_bytes("POST", "/v1/chat/completions", client.host,
                                            {**JSON, "Content-Length": str(len(CHAT))}) + CHAT[:5])
            busy.append(client)
        await guard.wait_until(lambda g: g.open == 3 and g.evictable == 0)
        newcomer = await connect(gw)
        response = await newcomer.response()
        assert response.status == 503
        assert response.json()["error"]["code"] == "too_many_connections"
        assert response.headers["retry-after"] == "1"
        assert guard.refused == 1
        for client in busy:  # the requests finish: room again
            await client.send(CHAT[5:])
            assert (await client.response()).status == 200
        async with aiohttp.ClientSession() as session, session.get(f"{gw.base_url}/models") as resp:
            assert resp.status == 200


@pytest.fixture
def more_files() -> Iterator[int]:
    """Raise this process's soft RLIMIT_NOFILE for a flood test (client and server ends are both here);
    gives how many slow connections fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 3000
    new = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    try:
        yield min(1000, (max(new, soft) - 600) // 2)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_a_thousand_slow_connections_do_not_lock_out_a_client(more_files: int) -> None:
    """~1,000 half-sent heads against a cap of half that: the flood evicts itself; clients are served."""
    slow_count = more_files
    cap = slow_count // 2
    assert slow_count >= 200, "the open-file limit is too low for this test"
    async with running_gateway(max_connections=cap) as gw:
        guard = guard_of(gw)
        slow: list[RawClient] = []

        async def open_slow(n: int) -> None:
            for _ in range(n):
                client = await connect(gw)
                client.writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                slow.append(client)

        await asyncio.gather(*(open_slow(slow_count // 10) for _ in range(10)))
        await guard.wait_until(lambda g: g.accepted >= slow_count)
        assert guard.open <= cap
        assert guard.evicted >= slow_count - cap
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{gw.base_url}/models") as resp:
                assert resp.status == 200
            async with session.post(f"{gw.base_url}/chat/completions", data=CHAT, headers=JSON) as resp:
                body: dict[str, Any] = await resp.json()
                assert resp.status == 200
            assert body["choices"][0]["message"]["content"] == answers.answer_text("hi")
        assert guard.refused == 0


def test_the_cap_fits_the_open_file_limit() -> None:
    """At `ulimit -n 1024` there is room for 704 connections beside the reserve; the cap is lowered to that."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    config = GatewayConfig(upstream_api_key="")
    assert fd_reserve(config) == 128 + 2 * 64 + 64
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        assert connection_budget(config) == 704
        assert connection_budget(replace(config, max_connections=500)) == 500
        wanted = DEFAULT_MAX_CONNECTIONS + fd_reserve(config)
        if hard == resource.RLIM_INFINITY or hard >= wanted:
            raise_fd_limit(config)  # what serve does first
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == wanted
            assert connection_budget(config) == DEFAULT_MAX_CONNECTIONS
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
