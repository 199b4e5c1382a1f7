"""Rate limits, for real: a 429 storm pauses the whole job once (no herd), the limiter holds limits
the emulator enforces (given with ``rpm``/``tpm``, or learned from its headers), and the core
``Limiter``'s pause rules that make that so. Real time is the behaviour here; bounds are generous."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from solarstream import Limiter, batch
from solarstream.emulator import Emulator
from solarstream.errors import InvalidRequestError
from tests.batchkit import by_id, completion_reply, content, error_reply, expected_answer, prompts_file
from tests.rawserver import RawServer


async def test_a_429_storm_is_one_job_wide_pause_not_a_herd(tmp_path: Path) -> None:
    source, _ = prompts_file(tmp_path / "in.jsonl", 8)
    loop = asyncio.get_running_loop()
    async with RawServer() as server:
        server.enqueue(*[error_reply(429, "too_many_requests", "Too many requests",
                                     headers=[("retry-after-ms", "400")]) for _ in range(8)],
                       *[completion_reply(f"answer {i}") for i in range(8)])
        job = asyncio.ensure_future(batch.arun(source, tmp_path / "out.jsonl", base_url=server.base_url,
                                               api_key="up_x", concurrency=8,
                                               rpm=1e9, tpm=1e12))  # given: nobody goes alone to learn them
        await server.wait_requests(1)
        first = loop.time()  # no 429 can have been answered before this
        await server.wait_requests(8)  # every request is in flight, each answered 429
        await server.wait_requests(9)
        first_retry = loop.time() - first
        summary = await asyncio.wait_for(job, 30)
    assert summary.ok
    assert len(server.requests) == 16  # each request once more, no more
    assert (summary.rate_limited, summary.pauses) == (8, 1)  # eight 429s, one pause for all
    assert first_retry >= 0.39  # nobody went again before the pause ended
    assert summary.retries == 8


async def test_the_limiter_holds_a_requests_limit_it_is_given(tmp_path: Path) -> None:
    source, prompts = prompts_file(tmp_path / "in.jsonl", 15)
    async with Emulator(rpm=5, tpm=10**9, rate_window=1.0) as emu:
        summary = await batch.arun(source, tmp_path / "out.jsonl", base_url=emu.base_url, api_key=emu.api_key,
                                   rpm=300, concurrency=8)  # 300 a minute: the emulator's 5 a second
    assert summary.ok
    assert emu.rate_limited <= 1  # a burst of 8 would have been refused at once
    assert summary.elapsed >= 10 / 5 * 0.9  # paced, not sent as fast as possible
    assert all(content(r) == expected_answer(prompts[c]) for c, r in by_id(tmp_path / "out.jsonl").items())


async def test_the_limits_are_learned_from_the_headers_and_kept_to(tmp_path: Path) -> None:
    source, _ = prompts_file(tmp_path / "in.jsonl", 24)
    async with Emulator(rpm=8, tpm=10**9, rate_window=1.0) as emu:
        summary = await batch.arun(source, tmp_path / "out.jsonl", base_url=emu.base_url, api_key=emu.api_key,
                                   concurrency=8)
    assert summary.ok
    assert emu.rate_limited <= 1
    assert summary.elapsed >= 16 / 8 * 0.9


async def test_a_tokens_limit_is_learned_and_kept_to(tmp_path: Path) -> None:
    # ~36 tokens a request, 2,000 a window: a request is a small part of the budget, as with real
    # limits (the pacing allows one request's worth of burst, which the 3% headroom covers)
    source, _ = prompts_file(tmp_path / "in.jsonl", 150)
    async with Emulator(rpm=10**6, tpm=2000, rate_window=1.0) as emu:
        summary = await batch.arun(source, tmp_path / "out.jsonl", base_url=emu.base_url, api_key=emu.api_key,
                                   concurrency=16)
        stats = emu.rate_stats("solar-mini")
    assert summary.ok
    assert emu.rate_limited <= 2  # at most 1.3%
    used = summary.tokens_in + summary.tokens_out
    assert summary.elapsed >= (used - 2000) / 2000 * 0.9  # at most the limit, after the first window
    assert stats.accepted == 150


def test_rpm_and_limiter_are_one_or_the_other(tmp_path: Path) -> None:
    source, _ = prompts_file(tmp_path / "in.jsonl", 1)
    with pytest.raises(InvalidRequestError, match="not both"):
        batch.run(source, limiter=Limiter(rpm=10), rpm=5)


# --- the core Limiter's pause rules the job relies on ---------------------------------------------


async def test_a_429_during_a_pause_moves_its_end_but_is_not_a_new_pause() -> None:
    limiter = Limiter()
    limiter.pause(0.2)
    limiter.pause(0.3)
    assert limiter.stats.pauses == 1
    await limiter.acquire()
    limiter.pause(0.05)
    assert limiter.stats.pauses == 2


async def test_requests_waiting_for_their_slot_queue_again_behind_a_pause() -> None:
    limiter = Limiter(rpm=600, headroom=1.0)  # a slot every 0.1 s
    loop = asyncio.get_running_loop()
    start = loop.time()
    done: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        done.append(loop.time() - start)

    tasks = [asyncio.ensure_future(one()) for _ in range(4)]
    await asyncio.sleep(0)  # all four have their slots: 0, 0.1, 0.2, 0.3 s
    limiter.pause(0.5)  # a 429 arrives: nobody may start before 0.5 s
    await asyncio.gather(*tasks)
    assert done[0] < 0.1  # it had started before the 429
    later = sorted(done[1:])
    assert later[0] >= 0.5
    assert all(b - a >= 0.09 for a, b in itertools.pairwise(later))  # paced again, not a herd
