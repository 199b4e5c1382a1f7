"""``BatchJob``: one run of INPUT into OUTPUT — resume, pre-pass, then the engine — whatever the engine.

1. OUTPUT (if any) is scanned: the ids it has records for, and a torn last line.
2. The pre-pass reads all of INPUT: nothing is sent unless every line is good (or ``skip_invalid``)
   and every custom_id unique; an OUTPUT holding ids that INPUT lacks is refused.
3. ``retry_failed`` drops the old error records (atomically) so their ids are sent again.
4. INPUT is read again; lines without a record go to the engine, and each result is appended to
   OUTPUT as it completes.

Nothing is modified before step 3, so a refused job leaves OUTPUT exactly as it was.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .defaults import DEFAULT_CONCURRENCY, DEFAULT_MAX_ATTEMPTS
from .engine import Engine, LocalEngine, WorkSource
from .formats import BatchResult, ParseOptions, Problem, Work, parse_line
from .ids import DONE_ERROR, DONE_OK, IN_INPUT, IdTable
from .journal import (
    OutputError,
    RecordWriter,
    Scan,
    drop_error_records,
    remove_stale_temporary,
    scan_output,
    stray_ids,
)
from .logs import once_per_job
from .prepass import BatchInputError, prepass, refuse
from .progress import Display, NoDisplay
from .reader import FileStamp, count_lines, read_lines
from .summary import BatchSummary
from .transport import Executor, JobStopped, RunStats, batch_retry_policy, prepare

if TYPE_CHECKING:
    from .._retry import Limiter
    from ..providers.openai_compatible import OpenAICompatibleProvider

__all__ = ["BatchJob", "JobSettings", "default_output", "learns_limits"]


def learns_limits(limiter: Limiter) -> bool:
    """Whether the limits are still to be learned from the API's headers (then the first request
    goes alone, so that its answer tells them before a burst of requests could hit them)."""
    return limiter.learn and (limiter.rpm is None or limiter.tpm is None)


def default_output(input: Path) -> Path:
    """INPUT with ``.results.jsonl`` in place of ``.jsonl`` (added when INPUT has another suffix)."""
    name = input.name
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else name
    return input.with_name(stem + ".results.jsonl")


@dataclass(frozen=True)
class JobSettings:
    """What a job does; the same for every engine."""

    input: Path
    output: Path
    parse: ParseOptions = field(default_factory=ParseOptions)
    stream: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    skip_invalid: bool = False
    retry_failed: bool = False
    #: INPUT and OUTPUT as the user wrote them, for messages
    input_label: str | None = None
    output_label: str | None = None


class BatchJob:
    """Runs ``settings`` with ``provider`` and ``limiter``; ``interrupt()`` stops it cleanly."""

    def __init__(self, settings: JobSettings, provider: OpenAICompatibleProvider, limiter: Limiter, *,
                 display: Display | None = None, engine: Engine | None = None, stats: RunStats | None = None) -> None:
        self.settings = settings
        self.provider = provider
        self.limiter = limiter
        self.display = display or NoDisplay(sys.stderr)
        #: the run's attempts and retries (an engine given here counts into the same ``stats``)
        self.stats = stats or RunStats()
        self.policy = batch_retry_policy(settings.max_attempts)
        self.engine = engine or LocalEngine(
            Executor(provider, limiter=limiter, policy=self.policy, stream=settings.stream, stats=self.stats),
            concurrency=settings.concurrency, probe_first=learns_limits(limiter))
        self.summary = BatchSummary(settings.input, settings.output)
        self._task: asyncio.Future[BatchSummary] | None = None
        self._interrupted = False
        self._writer: RecordWriter | None = None

    @property
    def input_label(self) -> str:
        return self.settings.input_label or str(self.settings.input)

    @property
    def output_label(self) -> str:
        return self.settings.output_label or str(self.settings.output)

    def interrupt(self) -> None:
        """End the run now: requests in flight are cancelled (they get no record), OUTPUT is left
        consistent, and ``run()`` returns a summary with ``interrupted`` set; a rerun continues."""
        self._interrupted = True
        if self._task is not None:
            self._task.cancel()

    # --- the steps -----------------------------------------------------------------------------

    def _check_paths(self) -> None:
        s = self.settings
        if not s.input.is_file():
            raise BatchInputError(f"{self.input_label}: no such file", label=self.input_label)
        if s.output.exists() and (s.output.is_dir() or os.path.samefile(s.input, s.output)):
            raise OutputError(f"{self.output_label} is {'a directory' if s.output.is_dir() else 'INPUT itself'}; "
                              "choose another -o/--output")
        if not s.output.parent.is_dir():
            raise OutputError(f"cannot write {self.output_label}: {s.output.parent} is not a directory")

    def _check(self, work: Work) -> None:
        prepare(self.provider, work, self.settings.stream)

    async def _resume(self, table: IdTable) -> Scan:
        s = self.settings
        remove_stale_temporary(s.output)
        return await scan_output(s.output, table, self.output_label) if s.output.exists() else Scan()

    def _refuse_strays(self, table: IdTable) -> None:
        strays = table.count(DONE_OK | DONE_ERROR, lacking=IN_INPUT)
        if strays:
            shown = ", ".join(repr(i) for i in stray_ids(self.settings.output, table, IN_INPUT))
            raise OutputError(
                f"{self.output_label} holds {strays:,} record{'s' if strays != 1 else ''} for custom_ids that "
                f"{self.input_label} does not have (such as {shown}): it is another job's output; choose another "
                "-o/--output")

    def _pending(self, table: IdTable) -> Generator[Work | None, None, None]:
        """The second read of INPUT: the lines that still need a record, in order (and a ``None``
        every few thousand skipped lines, so resuming past a million done lines never blocks)."""
        options = self.settings.parse
        skipped = 0
        for number, raw in read_lines(self.settings.input):
            parsed = parse_line(raw, number, options)
            if table.get(parsed.custom_id) & (DONE_OK | DONE_ERROR):
                skipped += 1
                if not skipped & 4095:
                    yield None
                continue
            if isinstance(parsed, Problem):  # skip_invalid: recorded, never sent
                self._record(BatchResult.failure(parsed.custom_id, "invalid_request", parsed.message))
                continue
            yield parsed

    def _record(self, result: BatchResult) -> None:
        assert self._writer is not None
        self._writer.write(result.to_json())
        summary = self.summary
        if result.ok:
            summary.succeeded += 1
            summary.tokens_in += result.prompt_tokens
            summary.tokens_out += result.completion_tokens
        else:
            summary.failed += 1
            if result.error is not None and result.error.get("code") == "invalid_request":
                summary.invalid += 1
        self.display.update(summary)

    async def _emit(self, result: BatchResult) -> None:
        self._record(result)

    # --- the run ---------------------------------------------------------------------------------

    async def run(self) -> BatchSummary:
        """Run the job; raises ``BatchInputError`` or ``OutputError`` (nothing sent) for bad input."""
        with once_per_job():
            self._task = task = asyncio.ensure_future(self._run())
            try:
                return await task
            except asyncio.CancelledError:
                if not (self._interrupted and task.cancelled()):
                    raise  # the caller was cancelled: so is the job (OUTPUT was closed consistently)
                self.summary.interrupted = True
                self.summary.finished = self.summary.finished or time.monotonic()
                return self.summary

    async def _run(self) -> BatchSummary:
        s, summary = self.settings, self.summary
        self._check_paths()
        table = IdTable(capacity=count_lines(s.input))
        scan = await self._resume(table)
        self.provider.resolve_api_key()  # no key: one error now, not one per line
        # lines with a record that stays are not checked again (a plain rerun after --skip-invalid
        # finds its invalid lines recorded, and a resume does not re-check a million done lines)
        settled = DONE_OK | (0 if s.retry_failed else DONE_ERROR)
        report = await prepass(s.input, table, s.parse, self._check, settled=settled)
        error = refuse(report, self.input_label, s.skip_invalid)
        if error is not None:
            raise error
        self._refuse_strays(table)
        summary.total = report.total
        if s.retry_failed and scan.errors:
            summary.retried_failed = await drop_error_records(s.output, table, scan)
        summary.already_done, summary.already_failed = scan.ok, scan.errors
        stats = self.limiter.stats
        rate_limited, pauses = stats.rate_limited, stats.pauses
        self._writer = RecordWriter(s.output)
        self._writer.open(scan)
        self.display.start(summary, self.limiter)
        try:
            if FileStamp.of(s.input) != report.stamp:
                raise BatchInputError(f"{self.input_label} changed while it was being checked; run again",
                                      label=self.input_label)
            pending = self._pending(table)
            try:
                await self.engine.run(WorkSource(pending), self._emit)
            except JobStopped as stop:
                summary.stopped_by, summary.stop_message = stop.error, stop.message
            except OSError as exc:  # disk full, a file gone
                reading = exc.filename is not None and os.fspath(exc.filename) == os.fspath(s.input)
                target = f"read {self.input_label}" if reading else f"write {self.output_label}"
                message = f"cannot {target}: {exc.strerror or exc}"
                summary.stopped_by, summary.stop_message = OutputError(message), message
            finally:
                pending.close()  # closes INPUT now, not when collected
        finally:
            summary.finished = time.monotonic()
            summary.retries = self.stats.retries
            summary.rate_limited = stats.rate_limited - rate_limited
            summary.pauses = stats.pauses - pauses
            self.display.close()
            await self._writer.aclose()
        return summary
