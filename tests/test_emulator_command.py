"""The real ``solarstream emulate`` command: rate-limit and history options, and flat memory under load."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import CHILD_ENV, from_child

CLI = [sys.executable, "-c", "from solarstream.cli import main; main()", "emulate", "--port", "0"]
AUTH = {"Authorization": "Bearer up_emulator"}
CHAT = {"model": "solar-mini", "messages": [{"role": "user", "content": "Hi"}]}


@asynccontextmanager
async def emulate(*options: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, list[str]]]:
    """Run the command; yield the process, its base URL and the lines it printed at start."""
    proc = await asyncio.create_subprocess_exec(
        *CLI, *options, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **CHILD_ENV})
    assert proc.stdout is not None
    try:
        lines = [(await from_child(proc, proc.stdout.readline(), "say where it listens")).decode()]
        if "--rpm" in options or "--tpm" in options:
            lines.append((await from_child(proc, proc.stdout.readline(), "name its limits")).decode())
        base = lines[0].split("UPSTAGE_BASE_URL=")[1].split()[0]
        yield proc, base, lines
        proc.send_signal(signal.SIGINT)
        _, stderr = await from_child(proc, proc.communicate(), "exit on Ctrl-C")
        assert proc.returncode == 0, stderr
        assert stderr == b""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_rpm_tpm_and_rate_window_are_enforced(session: aiohttp.ClientSession) -> None:
    async with emulate("--rpm", "2", "--tpm", "100000", "--rate-window", "30", "--history", "5") as (_, base, lines):
        assert lines[1] == "rate limits enforced per API key and model: 2 requests, 100000 tokens per 30 s window\n"
        statuses, headers = [], []
        for _ in range(3):
            async with session.post(base + "/chat/completions", json=CHAT, headers=AUTH) as r:
                statuses.append(r.status)
                headers.append(r.headers)
                body = await r.json()
        assert statuses == [200, 200, 429]
        assert body["error"]["code"] == "too_many_requests"
        assert headers[0]["X-Upstage-RateLimit-Limit-Requests"] == "2"
        assert headers[0]["X-Upstage-RateLimit-Limit-Tokens"] == "100000"
        assert headers[0]["X-Upstage-RateLimit-Interval-Requests"] == "30"
        assert 1 <= int(headers[2]["Retry-After"]) <= 30
        async with session.post(base + "/embeddings", json={"model": "solar-embedding-2-query", "input": "hi"},
                                headers=AUTH) as r:
            assert r.status == 200  # another model, another budget
            assert len((await r.json())["data"][0]["embedding"]) == 1024


async def test_without_limits_nothing_is_refused(session: aiohttp.ClientSession) -> None:
    async with emulate() as (_, base, lines):
        assert len(lines) == 1
        for _ in range(3):
            async with session.post(base + "/chat/completions", json=CHAT, headers=AUTH) as r:
                assert r.status == 200
                assert r.headers["X-Upstage-RateLimit-Limit-Requests"] == "100"


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--rpm", "0", "--rpm"), ("--tpm", "-5", "--tpm"), ("--rate-window", "0", "--rate-window"),
    ("--history", "-1", "--history"), ("--rpm", "many", "--rpm"), ("--rate-window", "inf", "--rate-window"),
    ("--rate-window", "nan", "--rate-window"),
])
async def test_bad_option_values_are_usage_errors(option: str, value: str, message: str) -> None:
    proc = await asyncio.create_subprocess_exec(*CLI, option, value, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert f"Invalid value for '{message}'".encode() in stderr


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the RSS from /proc")
async def test_rss_stays_flat_under_1000_requests_of_100kb(session: aiohttp.ClientSession) -> None:
    body = json.dumps({"model": "solar-mini", "messages": [{"role": "user", "content": "x" * 100_000}]})
    headers = {**AUTH, "Content-Type": "application/json"}
    async with emulate("--history", "10") as (proc, base, _):
        gate = asyncio.Semaphore(8)

        async def one() -> None:
            async with gate, session.post(base + "/chat/completions", data=body, headers=headers) as r:
                assert r.status == 200
                await r.read()

        await asyncio.gather(*(one() for _ in range(100)))  # warm up
        before = _rss_mib(proc.pid)
        await asyncio.gather(*(one() for _ in range(1000)))
        after = _rss_mib(proc.pid)
    # measured: +0.5 MiB (40.0 -> 40.5); before the history was bounded, +192 MiB
    assert after - before < 40, f"RSS {before:.1f} -> {after:.1f} MiB"
