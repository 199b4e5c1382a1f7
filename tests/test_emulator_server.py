"""The emulator as a server: connection counting, disconnect detection, shutdown, the CLI command."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import aiohttp
import pytest

from solarstream.emulator import Emulator
from tests.helpers import CHILD_ENV, from_child

BODY: dict[str, Any] = {"model": "solar-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": True}


def headers(emu: Emulator, emulate: str | None = None) -> dict[str, str]:
    out = {"Authorization": f"Bearer {emu.api_key}"}
    if emulate:
        out["X-Emulate"] = emulate
    return out


async def read_frames(resp: aiohttp.ClientResponse, count: int) -> bytes:
    """Read until ``count`` SSE frames arrived."""
    received = b""
    while received.count(b"\n\n") < count:
        data = await resp.content.readany()
        assert data, "the stream ended early"
        received += data
    return received


async def test_base_url_and_port(emu: Emulator) -> None:
    assert emu.port > 0
    assert emu.base_url == f"http://127.0.0.1:{emu.port}/v1"


async def test_keep_alive_reuses_one_connection(emu: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.post(emu.base_url + "/chat/completions", json=BODY, headers=headers(emu)) as r:
                await r.read()
    assert emu.connections == 1
    async with aiohttp.ClientSession() as other, \
            other.get(emu.base_url + "/models", headers=headers(emu)) as r:
        assert r.status == 200
    assert emu.connections == 2
    assert len(emu.requests) == 4


async def test_client_leaving_a_stalled_stream_is_seen(emu: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        resp = await session.post(emu.base_url + "/chat/completions", json=BODY, headers=headers(emu, "stall after=1"))
        received = await read_frames(resp, 2)
        assert received.count(b"data: ") == 2
        assert emu.disconnects == 0
        resp.close()
        assert await asyncio.wait_for(emu.wait_for_disconnects(1), 10) == 1
    assert emu.disconnects == 1


async def test_client_leaving_a_slow_stream_is_seen(emu: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        resp = await session.post(emu.base_url + "/chat/completions", json=BODY,
                                  headers=headers(emu, "speed chunks=100000 size=8 delay_ms=5"))
        await read_frames(resp, 3)
        resp.close()
        await asyncio.wait_for(emu.wait_for_disconnects(), 10)
    assert emu.disconnects == 1


async def test_client_leaving_a_stalled_non_stream_request_is_seen(emu: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        task = asyncio.ensure_future(session.post(emu.base_url + "/chat/completions",
                                                  json={**BODY, "stream": False}, headers=headers(emu, "stall")))
        await asyncio.wait_for(emu.wait_for_requests(1), 10)  # the server has it: now give up on it
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(emu.wait_for_disconnects(), 10)


async def test_finished_streams_are_not_disconnects(emu: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.post(emu.base_url + "/chat/completions", json=BODY, headers=headers(emu)) as r:
                assert (await r.read()).endswith(b"data: [DONE]\n\n")
    assert emu.disconnects == 0


async def test_shutdown_ends_a_stalled_stream_at_once() -> None:
    emu = Emulator()
    await emu.start()
    async with aiohttp.ClientSession() as session:
        resp = await session.post(emu.base_url + "/chat/completions", json=BODY,
                                  headers=headers(emu, "stall after=0 seconds=3600"))
        await read_frames(resp, 1)
        await asyncio.wait_for(emu.aclose(), 10)
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
        resp.close()
    assert emu.disconnects == 0


async def test_port_in_use_is_an_os_error(emu: Emulator) -> None:
    with pytest.raises(OSError):  # noqa: PT011 - the errno differs between systems
        async with Emulator(port=emu.port):
            pass


async def test_emulate_command_prints_how_to_connect_and_exits_0_on_ctrl_c() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from solarstream.emulator.command import emulate; emulate()",
        "--port", "0", "--scenario", "crlf",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, **CHILD_ENV},
    )
    assert proc.stdout is not None
    try:
        line = (await from_child(proc, proc.stdout.readline(), "say where it listens")).decode()
        assert "solarstream emulator" in line
        base = line.split("UPSTAGE_BASE_URL=")[1].split()[0]
        assert base.startswith("http://127.0.0.1:")
        assert base.endswith("/v1")
        assert "UPSTAGE_API_KEY=up_emulator" in line
        async with aiohttp.ClientSession() as session, session.post(
            base + "/chat/completions", json=BODY, headers={"Authorization": "Bearer up_emulator"}
        ) as r:
            raw = await r.read()
        assert raw.endswith(b"data: [DONE]\r\n\r\n")  # --scenario crlf applies
        proc.send_signal(signal.SIGINT)
        stdout, stderr = await from_child(proc, proc.communicate(), "exit on Ctrl-C")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    assert stderr == b""
    assert stdout == b""


async def test_emulate_command_rejects_unknown_scenario() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from solarstream.emulator.command import emulate; emulate()",
        "--port", "0", "--scenario", "teleport",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"unknown emulator scenario 'teleport'" in stderr
    assert b"crlf" in stderr


def test_create_app_works_outside_a_loop_and_serves_both_bases() -> None:
    from solarstream.emulator import create_app

    app = create_app(scenario="crlf")
    assert sorted(r.canonical for r in app.router.resources()) == [
        "/v1/chat/completions", "/v1/embeddings", "/v1/models",
        "/v1/solar/chat/completions", "/v1/solar/embeddings", "/v1/solar/models"]
