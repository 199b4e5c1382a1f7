"""Bounded memory: a long-running emulator keeps the last N requests and nothing else that grows.

tracemalloc measures what the in-process emulator keeps (deterministic, unlike RSS); the command's
RSS under the same load is checked in test_emulator_command.py.
"""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc
from typing import Any

import aiohttp

from solarstream.emulator import Emulator
from solarstream.emulator.state import MAX_COUNTERS

MiB = 1024 * 1024
BIG = "x" * 100_000  # 100 KB of content: 25,004 prompt tokens, inside solar-mini's 32K window


async def send(session: aiohttp.ClientSession, emu: Emulator, body: dict[str, Any], *, key: str = "up_emulator",
               emulate: str | None = None, path: str = "/chat/completions") -> int:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if emulate:
        headers["X-Emulate"] = emulate
    async with session.post(emu.base_url + path, data=json.dumps(body), headers=headers) as r:
        await r.read()
        return r.status


async def load(session: aiohttp.ClientSession, emu: Emulator, start: int, count: int) -> None:
    """``count`` 100 KB requests, eight at a time, each with its own key and prompt-cache key
    (client-controlled data the emulator must not pile up)."""
    gate = asyncio.Semaphore(8)

    async def one(i: int) -> None:
        body = {"model": "solar-mini", "messages": [{"role": "user", "content": BIG}],
                "prompt_cache_key": f"cache-{i}-" + "k" * 1000}
        async with gate:
            assert await send(session, emu, body, key=f"up_client{i}") == 200

    await asyncio.gather(*(one(i) for i in range(start, start + count)))


async def test_a_thousand_100kb_requests_keep_memory_flat(session: aiohttp.ClientSession) -> None:
    async with Emulator(history=10) as emu:
        await load(session, emu, 0, 100)  # warm up: pools, caches, the history fills
        gc.collect()
        tracemalloc.start()
        try:
            await load(session, emu, 100, 1000)
            gc.collect()
            kept, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert emu.request_count == 1100
        assert len(emu.requests) == 10
        assert emu.requests[-1].json["messages"][0]["content"] == BIG
    # unbounded, the same load kept ~190 MiB (each body twice: bytes and parsed), and ~100 MiB with
    # the history big enough to keep them all; bounded, ~3 MiB: the 1,000 keys' rate buckets, pools
    assert kept < 8 * MiB, f"{kept / MiB:.1f} MiB kept after 1,000 requests of 100 KB"


async def test_history_keeps_the_last_n_and_counts_them_all(session: aiohttp.ClientSession) -> None:
    async with Emulator(history=3) as emu:
        for i in range(5):
            await send(session, emu, {"model": "solar-mini", "messages": [{"role": "user", "content": f"m{i}"}]})
        records = await asyncio.wait_for(emu.wait_for_requests(5), 10)  # more than the history holds
        assert [r.json["messages"][0]["content"] for r in records] == ["m2", "m3", "m4"]
        assert emu.requests == records
        assert emu.request_count == 5
        waiting = asyncio.ensure_future(emu.wait_for_requests(6))
        await asyncio.sleep(0)
        assert not waiting.done()
        await send(session, emu, {"model": "solar-mini", "messages": [{"role": "user", "content": "m5"}]})
        records = await asyncio.wait_for(waiting, 10)
        assert [r.json["messages"][0]["content"] for r in records] == ["m3", "m4", "m5"]


async def test_history_zero_keeps_nothing(session: aiohttp.ClientSession) -> None:
    async with Emulator(history=0) as emu:
        assert await send(session, emu, {"model": "solar-mini", "messages": [{"role": "user", "content": "hi"}]}) == 200
        assert emu.requests == []
        assert emu.request_count == 1


async def test_a_given_up_wait_does_not_linger(session: aiohttp.ClientSession) -> None:
    async with Emulator() as emu:
        waits = [asyncio.ensure_future(emu.wait_for_requests(100)) for _ in range(3)]
        await asyncio.sleep(0)  # let them start waiting
        for wait in waits:
            wait.cancel()  # as asyncio.wait_for does when its timeout passes
        await asyncio.gather(*waits, return_exceptions=True)
        assert len(emu.state._waiters) == 3
        await send(session, emu, {"model": "solar-mini", "messages": [{"role": "user", "content": "hi"}]})
        assert emu.state._waiters == []


async def test_scenario_counters_are_bounded(session: aiohttp.ClientSession) -> None:
    body = {"model": "solar-mini", "messages": [{"role": "user", "content": "hi"}]}
    async with Emulator() as emu:
        for i in range(MAX_COUNTERS + 50):
            assert await send(session, emu, body, emulate=f"error status=500 code=c{i} times=1") == 500
        assert len(emu.attempts) == MAX_COUNTERS
        assert "error body=envelope code=c0 status=500 times=1" not in emu.attempts  # the oldest went first
        assert emu.attempts[f"error body=envelope code=c{MAX_COUNTERS + 49} status=500 times=1"] == 1
        # a free-text option is short: a huge one would make every counter key huge
        status = await send(session, emu, body, emulate="error code=" + "c" * 65)
        assert status == 400

