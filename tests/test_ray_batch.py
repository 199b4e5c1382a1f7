"""``solarstream batch --ray``: the same job on the session's local Ray, through the real command (a
child process joined through ``RAY_ADDRESS``), against the emulator on 127.0.0.1 in this process.

The Ray engine gives the records the local engine gives; one limiter holds an enforced limit for
four workers; a worker killed mid-request (``ray.kill`` or SIGKILL of its process) loses nothing
and duplicates nothing; the driver killed with kill -9 is resumed by running the command again."""

from __future__ import annotations

import asyncio
import collections
import os
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from solarstream.emulator import Emulator
from tests.batchkit import (
    UNBOUND,
    against,
    batch_line,
    by_id,
    content,
    expected_answer,
    prompts_file,
    records,
    run_batch,
    sent_prompts,
    short_line,
    write_jsonl,
)
from tests.raykit import run_ray_batch, spawn_ray_batch, worker, worker_names

#: limits given so that nothing is learned from the emulator's advertised tier-0 limits
GIVEN = ["--rpm", "1000000", "--tpm", "1000000000"]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(history=5000, **UNBOUND) as emulator:
        yield emulator


def outcome(record: dict[str, Any]) -> tuple[Any, ...]:
    """What a record says, without what differs from run to run (ids, timestamps)."""
    response = record["response"]
    error = record["error"]
    text = content(record) if error is None else None
    return (response["status_code"] if response else None, error["code"] if error else None, text)


async def test_the_ray_and_local_engines_write_the_same_records(tmp_path: Path, emu: Emulator,
                                                                 ray_address: str) -> None:
    lines: list[Any] = [batch_line(f"b-{i}", f"batch line {i}", max_tokens=50) for i in range(8)]
    lines += [short_line(None, f"short line {i}") for i in range(8)]  # ids line-9 ... line-16
    lines.append(short_line("refused", "[emulate:error status=422 code=unprocessable] no"))
    lines.append(short_line("again", "[emulate:error status=503 times=1] once more"))
    source = write_jsonl(tmp_path / "in.jsonl", lines)
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    status_local, err_local = await run_batch(str(source), "-o", str(local), *against(emu), *GIVEN)
    async with Emulator(**UNBOUND) as fresh:  # (its 503 "times=1" not yet spent)
        status_ray, err_ray = await run_ray_batch(ray_address, str(source), "-o", str(on_ray), *against(fresh),
                                                  *GIVEN, "--ray", "--ray-workers", "2")
    assert (status_local, status_ray) == (1, 1), (err_local, err_ray)  # one request failed: exit 1 for both
    want = {cid: outcome(r) for cid, r in by_id(local).items()}
    assert {cid: outcome(r) for cid, r in by_id(on_ray).items()} == want
    assert len(want) == 18
    assert want["refused"] == (422, "unprocessable", None)
    assert want["again"][:2] == (200, None)  # retried after the 503, on either engine
    assert want["line-9"][2] == expected_answer("short line 0")
    assert err_ray.splitlines()[-1] == err_local.splitlines()[-1]  # "1 requests failed ..."
    for err in (err_local, err_ray):
        assert "17 succeeded, 1 failed, 0 already done before this run; 18 of 18 have a record" in err
        assert "; 1 retries, 0 rate-limited (0 pauses)" in err


async def test_input_problems_exit_2_before_ray_is_involved(tmp_path: Path, emu: Emulator, ray_address: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [short_line("a", "fine"), "{not json"])
    status, err = await run_ray_batch(ray_address, str(source), *against(emu), "--ray")
    assert status == 2
    assert f"{source}:2: not valid JSON" in err
    assert emu.request_count == 0
    assert worker_names() == []


async def test_an_answer_that_stops_the_job_stops_it_on_ray_too(tmp_path: Path, emu: Emulator,
                                                               ray_address: str) -> None:
    source, _ = prompts_file(tmp_path / "in.jsonl", 6)
    args = [str(source), "--base-url", emu.base_url, "--api-key", "not-an-upstage-key", *GIVEN]
    status_local, err_local = await run_batch(*args, "-o", str(tmp_path / "local.jsonl"))
    status, err = await run_ray_batch(ray_address, *args, "-o", str(tmp_path / "ray.jsonl"), "--ray")
    assert (status_local, status) == (1, 1)
    def last(text: str) -> str:
        return re.sub(r"request id [0-9a-f-]+", "request id …", text.splitlines()[-1])

    assert last(err) == last(err_local)  # the same error line, with its hint
    assert "401" in last(err)
    assert "not-an-upstage-key" not in err
    assert records(tmp_path / "ray.jsonl") == []  # the request that met it has no record: a rerun sends it


async def test_one_limiter_holds_an_enforced_limit_for_four_workers(tmp_path: Path, ray_address: str) -> None:
    limit, window, count, skip = 40, 2.0, 130, 5  # 20 requests a second, learned from the headers
    source, _ = prompts_file(tmp_path / "in.jsonl", count)
    loop = asyncio.get_running_loop()
    async with Emulator(rpm=limit, tpm=10**9, rate_window=window, history=10) as emu:
        job = asyncio.ensure_future(run_ray_batch(ray_address, str(source), "-o", str(tmp_path / "out.jsonl"),
                                                  *against(emu), "--ray", "--ray-workers", "4",
                                                  "--concurrency", "16"))
        await asyncio.wait_for(emu.wait_for_requests(skip), 60)  # past the first, sent alone to learn
        start = loop.time()
        await asyncio.wait_for(emu.wait_for_requests(count), 60)
        rate = (count - skip) / (loop.time() - start)
        status, err = await job
        limited = emu.rate_limited
    assert status == 0, err
    assert len(by_id(tmp_path / "out.jsonl")) == count
    assert rate >= 0.95 * limit / window, rate  # the whole limit is used (paced at 97% of it)...
    assert rate <= 1.02 * limit / window, rate  # ...and no more, with four workers sending
    assert limited <= count // 100  # at most 1% answered 429


@pytest.mark.parametrize("how", ["ray.kill", "SIGKILL"])
async def test_a_worker_killed_mid_request_loses_nothing_and_duplicates_nothing(
        tmp_path: Path, emu: Emulator, ray_address: str, how: str) -> None:
    import ray

    # the first two requests are held by the emulator for 2 s: one on each worker when one is killed
    stalled = [short_line(f"slow-{i}", f"[emulate:stall seconds=2] held {i}") for i in range(2)]
    prompts = {f"id-{i}": f"prompt number {i}" for i in range(10)}
    source = write_jsonl(tmp_path / "in.jsonl", [*stalled, *(short_line(c, p) for c, p in prompts.items())])
    output = tmp_path / "out.jsonl"
    job = asyncio.ensure_future(run_ray_batch(ray_address, str(source), "-o", str(output), *against(emu), *GIVEN,
                                              "--ray", "--ray-workers", "2", "--concurrency", "2"))
    await asyncio.wait_for(emu.wait_for_requests(2), 60)  # both held, one by each worker
    names = worker_names()
    assert len(names) == 2
    victim = worker(names[0])
    if how == "ray.kill":
        ray.kill(victim)
    else:
        os.kill(await victim.ping.remote(), signal.SIGKILL)
    await asyncio.wait_for(emu.wait_for_disconnects(1), 30)  # its request was cut off
    status, err = await job
    assert status == 0, err
    final = by_id(output)  # (fails on a second record for an id)
    assert set(final) == {"slow-0", "slow-1", *prompts}
    assert all(content(final[c]) == expected_answer(p) for c, p in prompts.items())
    assert all(final[f"slow-{i}"]["error"] is None for i in range(2))
    sent = collections.Counter(sent_prompts(emu))
    assert sorted(sent.values()) == [1] * 11 + [2]  # the killed worker's request went again, once
    assert "a Ray worker was lost" in err


async def test_the_driver_killed_with_kill_9_is_resumed_by_running_it_again(
        tmp_path: Path, emu: Emulator, ray_address: str) -> None:
    source, prompts = prompts_file(tmp_path / "in.jsonl", 24)
    output = tmp_path / "out.jsonl"
    args = [str(source), "-o", str(output), *against(emu), *GIVEN, "--ray", "--ray-workers", "2", "--concurrency", "2"]
    proc = await spawn_ray_batch(ray_address, *args)
    await asyncio.wait_for(emu.wait_for_requests(8), 60)
    proc.kill()
    await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    for _ in range(300):  # Ray ends a dead driver's actors; their last requests reach the emulator first
        if not worker_names():
            break
        await asyncio.sleep(0.1)
    assert worker_names() == []
    recorded = {r["custom_id"] for r in records(output)}
    seen = emu.request_count
    status, err = await run_ray_batch(ray_address, *args)
    assert status == 0, err
    final = by_id(output)
    assert set(final) == set(prompts)
    assert all(content(r) == expected_answer(prompts[c]) for c, r in final.items())
    by_prompt = {text: cid for cid, text in prompts.items()}
    resent = collections.Counter(by_prompt[text] for text in sent_prompts(emu, seen))
    assert set(resent) == set(prompts) - recorded  # every missing id sent; no recorded id again
    # each once, but for the (at most --concurrency) requests the dead driver's workers had in flight:
    # Ray may take a moment to end their processes, so one may still reach the emulator after ``seen``
    assert sum(resent.values()) - len(resent) <= 2, resent
    assert f"{len(recorded)} already done before this run" in err


async def test_a_finished_job_run_again_sends_nothing(tmp_path: Path, emu: Emulator, ray_address: str) -> None:
    source, _ = prompts_file(tmp_path / "in.jsonl", 3)
    args = [str(source), "-o", str(tmp_path / "out.jsonl"), *against(emu), *GIVEN, "--ray"]
    assert (await run_ray_batch(ray_address, *args))[0] == 0
    status, err = await run_ray_batch(ray_address, *args)
    assert status == 0, err
    assert "3 already done before this run" in err
    assert emu.request_count == 3
