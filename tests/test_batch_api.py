"""``solarstream.batch`` from Python: ``run``/``arun`` on files, ``aresults``/``results`` on any iterable
(read lazily, results as they complete, the same limiter and retry rules), and the progress lines."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import solarstream.batch as batch_module
from solarstream import Upstage, batch
from solarstream.batch.progress import PlainDisplay, make_display, status_line
from solarstream.batch.summary import BatchSummary
from solarstream.emulator import Emulator
from solarstream.errors import AuthenticationError, InvalidRequestError
from tests.batchkit import UNBOUND, EmulatorThread, by_id, content, expected_answer, prompts_file, short_line


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(history=1000, **UNBOUND) as emulator:
        yield emulator


def test_the_public_surface() -> None:
    assert batch_module.__all__ == ["DEFAULT_CONCURRENCY", "DEFAULT_MAX_ATTEMPTS", "BatchInputError", "BatchResult",
                                    "BatchSummary", "EngineUnavailable", "OutputError", "aresults", "arun",
                                    "results", "run"]
    for name in batch_module.__all__:
        assert getattr(batch_module, name) is not None
    assert batch.DEFAULT_CONCURRENCY == 64
    assert batch.DEFAULT_MAX_ATTEMPTS == 5


def test_run_is_the_synchronous_twin_and_resumes(tmp_path: Path) -> None:
    source, prompts = prompts_file(tmp_path / "jobs.jsonl", 5)
    with EmulatorThread() as emu:
        first = batch.run(source, base_url=emu.base_url, api_key=emu.api_key)
        again = batch.run(source, base_url=emu.base_url, api_key=emu.api_key)
        sent = emu.request_count
    assert first.output == tmp_path / "jobs.results.jsonl"
    assert (first.succeeded, first.ok, first.exit_status) == (5, True, 0)
    assert (again.succeeded, again.already_done, again.ok) == (0, 5, True)
    assert sent == 5
    records = by_id(first.output)
    assert {c: content(r) for c, r in records.items()} == {c: expected_answer(p) for c, p in prompts.items()}


async def test_arun_with_a_provider_instance(tmp_path: Path, emu: Emulator) -> None:
    source, _ = prompts_file(tmp_path / "in.jsonl", 3)
    async with Upstage(api_key=emu.api_key, base_url=emu.base_url) as provider:
        summary = await batch.arun(source, tmp_path / "out.jsonl", provider=provider)
    assert summary.ok
    assert summary.tokens_in > 0
    assert summary.tokens_out > 0


async def test_aresults_streams_results_for_any_iterable(emu: Emulator) -> None:
    requests: list[Any] = ["a plain prompt", short_line("mine", "with an id"), {"messages": [
        {"role": "user", "content": "a short line"}]}, short_line("bad", "x", temperature=7), short_line("mine", "y")]
    got = {r.custom_id: r async for r in batch.aresults(requests, model="solar-mini", base_url=emu.base_url,
                                                          api_key=emu.api_key)}
    assert got["line-1"].content == expected_answer("a plain prompt")
    assert got["mine"].ok
    assert got["mine"].content == expected_answer("with an id")
    assert got["line-3"].content == expected_answer("a short line")
    assert got["bad"].error == {"code": "invalid_request", "message": "temperature: must be between 0 and 2, not 7"}
    assert got["bad"].to_dict()["response"] is None
    assert len(emu.requests) == 3  # the bad one and the duplicate were never sent


async def test_aresults_reads_its_input_lazily(emu: Emulator) -> None:
    pulled = 0

    def endless() -> Iterator[str]:
        nonlocal pulled
        while True:
            pulled += 1
            yield f"prompt {pulled}"

    results = batch.aresults(endless(), model="solar-mini", concurrency=2, base_url=emu.base_url,
                             api_key=emu.api_key)
    seen = []
    async for result in results:
        seen.append(result)
        if len(seen) == 3:
            break
    await results.aclose()  # type: ignore[attr-defined]
    assert all(r.ok for r in seen)
    assert pulled <= 3 + 2 + 1  # what was asked for, what was in flight, and one more


async def test_aresults_takes_an_async_iterable(emu: Emulator) -> None:
    async def rows() -> AsyncIterator[dict[str, Any]]:
        for i in range(4):
            yield short_line(f"row-{i}", f"row {i}")

    got = [r async for r in batch.aresults(rows(), base_url=emu.base_url, api_key=emu.api_key)]
    assert sorted(r.custom_id for r in got) == ["row-0", "row-1", "row-2", "row-3"]
    assert all(r.content == expected_answer(f"row {r.custom_id[4:]}") for r in got)


async def test_aresults_raises_what_stopped_the_job_after_the_finished_results(emu: Emulator) -> None:
    requests = [short_line("a", "one"), short_line("b", "two [emulate:error status=401]"), short_line("c", "three")]
    got: list[str] = []

    async def collect() -> None:
        async for result in batch.aresults(requests, concurrency=1, base_url=emu.base_url, api_key=emu.api_key):
            got.append(result.custom_id)

    with pytest.raises(AuthenticationError):
        await collect()
    assert got == ["a"]
    assert len(emu.requests) == 2


def test_results_is_the_synchronous_twin() -> None:
    with EmulatorThread() as emu:
        got = list(batch.results(["one", "two"], model="solar-mini", base_url=emu.base_url, api_key=emu.api_key))
    assert sorted(r.content or "" for r in got) == sorted([expected_answer("one"), expected_answer("two")])


def test_status_line_says_what_a_person_wants_to_know() -> None:
    summary = BatchSummary(Path("in.jsonl"), Path("out.jsonl"), total=1000, succeeded=400, failed=10,
                           already_done=90, tokens_in=30_000, tokens_out=10_000)
    summary.started -= 20  # 20 s into the run
    line = status_line(summary)
    assert line.startswith("batch: 500/1,000 (50.0%) · 20.5 req/s · ")
    assert " tokens/min · 10 failed · 0 rate-limit pauses · ETA 24.4s" in line


async def test_plain_progress_writes_a_line_every_interval() -> None:
    written: asyncio.Queue[str] = asyncio.Queue()

    class Stream(io.StringIO):
        def write(self, text: str) -> int:
            written.put_nowait(text)
            return len(text)

    display = PlainDisplay(Stream(), interval=0.01)
    summary = BatchSummary(Path("in"), Path("out"), total=4, succeeded=1)
    display.start(summary, None)
    first = await asyncio.wait_for(written.get(), 10)
    summary.succeeded = 3
    while "3/4" not in (line := await asyncio.wait_for(written.get(), 10)):
        pass
    display.close()
    assert first.startswith("batch: 1/4 (25.0%)")
    assert line.endswith("\n")


def test_progress_kinds() -> None:
    stream = io.StringIO()  # not a terminal
    assert type(make_display("auto", stream)).__name__ == "PlainDisplay"
    assert type(make_display(False, stream)).__name__ == "NoDisplay"
    assert type(make_display("bar", stream)).__name__ == "BarDisplay"
    with pytest.raises(InvalidRequestError, match="progress must be"):
        make_display("fancy", stream)


def test_summary_lines() -> None:
    summary = BatchSummary(Path("in.jsonl"), Path("out.jsonl"), total=10, succeeded=6, failed=1, already_done=2,
                           already_failed=1, tokens_in=1234, tokens_out=567)
    summary.finished = summary.started + 12.34
    assert summary.lines() == [
        "batch: 6 succeeded, 1 failed, 2 already done before this run, 1 failed before this run (not sent again); "
        "10 of 10 have a record",
        "tokens: 1,234 in, 567 out; elapsed 12.3s; results in out.jsonl",
        "2 requests failed (their error records are in the results); --retry-failed sends them again",
    ]
    assert (summary.ok, summary.exit_status, summary.remaining) == (False, 1, 0)
