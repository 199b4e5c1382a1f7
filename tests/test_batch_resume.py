"""Resuming, exactly once: the real command killed with SIGKILL at many points (chosen by events: the
N-th request reaching the upstream), torn last lines cut at every kind of place, Ctrl-C and SIGTERM,
``--retry-failed``, and an OUTPUT that belongs to another job. After each, a rerun leaves exactly
one record per custom_id with the right answer, and the upstream never sees a request for an id
that already had a record."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from solarstream.emulator import Emulator
from tests.batchkit import (
    UNBOUND,
    against,
    by_id,
    completion_reply,
    content,
    expected_answer,
    prompts_file,
    records,
    run_batch,
    sent_prompts,
    short_line,
    spawn_batch,
    write_jsonl,
)
from tests.rawserver import RawServer, Reply

N = 24


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(history=5000, **UNBOUND) as emulator:
        yield emulator


def ids_of(prompts: dict[str, str], sent: list[str]) -> list[str]:
    by_prompt = {text: cid for cid, text in prompts.items()}
    return [by_prompt[text] for text in sent]


def assert_complete(output: Path, prompts: dict[str, str]) -> None:
    final = by_id(output)
    assert set(final) == set(prompts)
    for cid, record in final.items():
        assert record["error"] is None
        assert record["response"]["status_code"] == 200
        assert content(record) == expected_answer(prompts[cid])
    assert output.read_bytes().endswith(b"\n")


@pytest.mark.parametrize(("concurrency", "after"), [(1, 0), (1, 1), (1, 5), (1, 12), (1, 23), (4, 0), (4, 7),
                                                    (4, 19)])
async def test_kill_9_at_any_point_then_a_rerun_finishes_exactly_once(
        tmp_path: Path, emu: Emulator, concurrency: int, after: int) -> None:
    source, prompts = prompts_file(tmp_path / "in.jsonl", N)
    output = tmp_path / "out.jsonl"
    args = [str(source), "-o", str(output), "--concurrency", str(concurrency), *against(emu)]
    proc = await spawn_batch(*args)
    await asyncio.wait_for(emu.wait_for_requests(after + 1), 60)  # request after+1 is in flight
    proc.kill()
    await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    recorded = {r["custom_id"] for r in records(output)} if output.exists() else set()
    if concurrency == 1:  # one at a time: every earlier request has its record
        assert len(recorded) >= after
    seen = emu.request_count
    status, err = await run_batch(*args)
    assert status == 0, err
    assert_complete(output, prompts)
    resent = ids_of(prompts, sent_prompts(emu, seen))
    assert sorted(resent) == sorted(set(prompts) - recorded)  # each missing id once; no recorded id again
    assert f"{len(recorded)} already done before this run" in err


def cut_last_line(output: Path, keep: int) -> bytes:
    """Cut OUTPUT ``keep`` bytes into its last line, as a write killed part way would leave it."""
    data = output.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    output.write_bytes(data[: start + keep])
    return data[start:]


@pytest.mark.parametrize("keep", [1, 40, -2])
async def test_a_torn_last_line_is_cut_off_and_its_request_redone(tmp_path: Path, emu: Emulator, keep: int) -> None:
    source, prompts = prompts_file(tmp_path / "in.jsonl", 6)
    output = tmp_path / "out.jsonl"
    args = [str(source), "-o", str(output), "--concurrency", "1", *against(emu)]
    assert (await run_batch(*args))[0] == 0
    last = cut_last_line(output, keep if keep > 0 else len(output.read_bytes()))
    torn_id = next(cid for cid in prompts if f'"custom_id":"{cid}"'.encode() in last)
    if keep < 0:
        output.write_bytes(output.read_bytes()[: keep])  # two bytes short: '}' and the line break are missing
    seen = emu.request_count
    status, err = await run_batch(*args)
    assert status == 0, err
    assert ids_of(prompts, sent_prompts(emu, seen)) == [torn_id]
    assert_complete(output, prompts)


async def test_a_whole_last_record_without_its_line_break_is_kept(tmp_path: Path, emu: Emulator) -> None:
    source, prompts = prompts_file(tmp_path / "in.jsonl", 4)
    output = tmp_path / "out.jsonl"
    args = [str(source), "-o", str(output), *against(emu)]
    assert (await run_batch(*args))[0] == 0
    output.write_bytes(output.read_bytes().rstrip(b"\n"))
    write_jsonl(source, [*(short_line(c, t) for c, t in prompts.items()), short_line("new", "one more")])
    seen = emu.request_count
    status, err = await run_batch(*args)
    assert status == 0, err
    assert sent_prompts(emu, seen) == ["one more"]
    assert_complete(output, {**prompts, "new": "one more"})


async def test_a_tail_of_zeros_after_a_power_cut_is_cut_off(tmp_path: Path, emu: Emulator) -> None:
    source, prompts = prompts_file(tmp_path / "in.jsonl", 4)
    output = tmp_path / "out.jsonl"
    args = [str(source), "-o", str(output), *against(emu)]
    assert (await run_batch(*args))[0] == 0
    output.write_bytes(output.read_bytes() + b"\0" * 300)
    seen = emu.request_count
    status, err = await run_batch(*args)
    assert status == 0, err
    assert sent_prompts(emu, seen) == []
    assert_complete(output, prompts)


async def test_a_damaged_record_before_the_end_is_refused(tmp_path: Path, emu: Emulator) -> None:
    source, _ = prompts_file(tmp_path / "in.jsonl", 4)
    output = tmp_path / "out.jsonl"
    args = [str(source), "-o", str(output), *against(emu)]
    assert (await run_batch(*args))[0] == 0
    lines = output.read_bytes().splitlines(keepends=True)
    output.write_bytes(lines[0] + b"{garbage\n" + b"".join(lines[1:]))
    before, seen = output.read_bytes(), emu.request_count
    status, err = await run_batch(*args)
    assert status == 2
    assert err.strip().splitlines()[-1] == (f"solarstream: error: {output}:2: not a batch output record (an object "
                                            "with custom_id and response or error); is this the output of this job? "
                                            "Choose another -o/--output")
    assert output.read_bytes() == before
    assert emu.request_count == seen


async def test_an_output_of_another_job_is_refused(tmp_path: Path, emu: Emulator) -> None:
    other, _ = prompts_file(tmp_path / "other.jsonl", 3, prefix="other")
    output = tmp_path / "out.jsonl"
    assert (await run_batch(str(other), "-o", str(output), *against(emu)))[0] == 0
    mine = write_jsonl(tmp_path / "mine.jsonl", [short_line("id-0", "mine"), short_line("x", "mine too")])
    before, seen = output.read_bytes(), emu.request_count
    status, err = await run_batch(str(mine), "-o", str(output), *against(emu))
    assert status == 2
    assert err.strip().splitlines()[-1] == (
        f"solarstream: error: {output} holds 2 records for custom_ids that {mine} does not have (such as 'id-1', "
        "'id-2'): it is another job's output; choose another -o/--output")
    assert output.read_bytes() == before
    assert emu.request_count == seen


async def test_retry_failed_replaces_error_records_and_a_plain_rerun_does_not_resend_them(
        tmp_path: Path, emu: Emulator) -> None:
    prompts = {"a": "alpha", "b": "beta [emulate:error status=503 times=1]", "c": "gamma"}
    source = write_jsonl(tmp_path / "in.jsonl", (short_line(c, t) for c, t in prompts.items()))
    output = tmp_path / "out.jsonl"
    args = [str(source), "-o", str(output), "--max-attempts", "1", *against(emu)]
    status, err = await run_batch(*args)
    assert status == 1
    first = by_id(output)
    assert first["b"]["response"]["status_code"] == 503
    assert first["b"]["error"]["code"] == "service_unavailable"
    assert "1 requests failed" in err
    assert "--retry-failed sends them again" in err

    seen = emu.request_count
    status, err = await run_batch(*args)  # a plain rerun: the error stays, nothing is sent
    assert status == 1
    assert emu.request_count == seen
    assert by_id(output) == first
    assert "1 failed before this run (not sent again)" in err

    (tmp_path / "out.jsonl.retry-failed.tmp").write_bytes(b"left by a killed rewrite")
    status, err = await run_batch(*args, "--retry-failed")
    assert status == 0, err
    assert sent_prompts(emu, seen) == [prompts["b"]]
    final = by_id(output)
    assert final["a"] == first["a"]
    assert final["c"] == first["c"]
    assert final["b"]["error"] is None
    assert content(final["b"]) == expected_answer("beta")
    assert not (tmp_path / "out.jsonl.retry-failed.tmp").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_ctrl_c_and_sigterm_cancel_in_flight_and_a_rerun_finishes(
        tmp_path: Path, emu: Emulator, sig: signal.Signals) -> None:
    source, prompts = prompts_file(tmp_path / "in.jsonl", 8)
    output = tmp_path / "out.jsonl"
    async with RawServer() as server:
        # the first two answer, the next ones never do
        server.enqueue(completion_reply(expected_answer("prompt number 0")),
                       completion_reply(expected_answer("prompt number 1")), *[Reply(end="hang")] * 6)
        proc = await spawn_batch(str(source), "-o", str(output), "--concurrency", "3", "--base-url",
                                 server.base_url, "--api-key", "up_test_key")
        # the first request goes alone; then three workers: when the fifth request arrives, the
        # worker that sent it has written the second record, and three requests hang in flight
        await server.wait_requests(5, timeout=60)
        proc.send_signal(sig)
        _, err_bytes = await asyncio.wait_for(proc.communicate(), 60)
        await server.wait_client_disconnects(3, timeout=30)  # the hanging requests were cancelled
    err = err_bytes.decode()
    assert proc.returncode == 130, err
    assert "interrupted:" in err
    assert "run the same command again to continue" in err
    done = by_id(output)
    assert set(done) == {"id-0", "id-1"}
    seen = emu.request_count
    status, err = await run_batch(str(source), "-o", str(output), *against(emu))
    assert status == 0, err
    assert sorted(ids_of(prompts, sent_prompts(emu, seen))) == sorted(set(prompts) - {"id-0", "id-1"})
    assert_complete(output, prompts)
