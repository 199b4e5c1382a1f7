"""``BatchSummary``: what a job did, kept up to date while it runs (progress displays read it)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SolarstreamError

__all__ = ["BatchSummary", "format_duration"]


def format_duration(seconds: float) -> str:
    """``0.4s``, ``12.3s``, ``4m05s``, ``2h03m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


@dataclass
class BatchSummary:
    """A job's counts. ``ok`` (and ``exit_status`` 0) when every INPUT line has a success record."""

    input: Path
    output: Path
    #: requests in INPUT (non-blank lines)
    total: int = 0
    #: records written by this run
    succeeded: int = 0
    failed: int = 0
    #: of ``failed``: lines that could not be sent (``--skip-invalid``)
    invalid: int = 0
    #: ids that had a success record before this run (not sent again)
    already_done: int = 0
    #: ids that had an error record before this run and were not sent again (no ``retry_failed``)
    already_failed: int = 0
    #: error records dropped to be sent again (``retry_failed``)
    retried_failed: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    #: attempts after the first (429 retries included), 429s received, job-wide pauses they caused
    retries: int = 0
    rate_limited: int = 0
    pauses: int = 0
    #: the job was interrupted (Ctrl-C, SIGTERM); a rerun continues it
    interrupted: bool = False
    #: the answer that stopped the job (invalid key, exhausted quota, ...); a rerun continues it
    stopped_by: SolarstreamError | None = None
    #: why it stopped, in one line
    stop_message: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def elapsed(self) -> float:
        return (self.finished if self.finished is not None else time.monotonic()) - self.started

    @property
    def done(self) -> int:
        """Records written by this run."""
        return self.succeeded + self.failed

    @property
    def recorded(self) -> int:
        """Ids with a record now."""
        return self.already_done + self.already_failed + self.done

    @property
    def remaining(self) -> int:
        """Ids without a record yet (stopped or interrupted runs leave some)."""
        return max(self.total - self.recorded, 0)

    @property
    def ok(self) -> bool:
        return self.total > 0 and self.already_done + self.succeeded == self.total

    @property
    def exit_status(self) -> int:
        """0 every line succeeded, 130 interrupted, 1 otherwise (failures, or stopped on an API error)."""
        if self.interrupted:
            return 130
        return 0 if self.ok else 1

    def lines(self) -> list[str]:
        """The end summary, for people."""
        failed = self.failed + self.already_failed
        counts = f"{self.succeeded:,} succeeded, {self.failed:,} failed"
        if self.invalid:
            counts += f" ({self.invalid:,} invalid)"
        counts += f", {self.already_done:,} already done before this run"
        if self.already_failed:
            counts += f", {self.already_failed:,} failed before this run (not sent again)"
        out = [f"batch: {counts}; {self.recorded:,} of {self.total:,} have a record"]
        detail = f"tokens: {self.tokens_in:,} in, {self.tokens_out:,} out; elapsed {format_duration(self.elapsed)}"
        if self.retries or self.rate_limited:
            detail += f"; {self.retries:,} retries, {self.rate_limited:,} rate-limited ({self.pauses:,} pauses)"
        out.append(detail + f"; results in {self.output}")
        if self.interrupted and not self.total:
            out = ["interrupted before any request was sent; run the same command again to start"]
        elif self.interrupted:
            out.append(f"interrupted: {self.remaining:,} requests have no record yet; run the same command again "
                       "to continue")
        elif self.stop_message is not None:
            out.append(f"stopped: {self.remaining:,} requests have no record yet; fix the cause and run the same "
                       "command again to continue")
        elif failed:
            out.append(f"{failed:,} requests failed (their error records are in the results); "
                       "--retry-failed sends them again")
        return out
