"""How a running job shows itself on stderr: a live bar on a terminal (tqdm), one plain line every
~10 s otherwise, or nothing (``--quiet``). Displays read the live ``BatchSummary`` and the limiter.

tqdm is imported only when a bar is shown (about 9 ms once aiohttp is loaded; rich.progress costs
about 35 ms and two dependencies), so ``solarstream --help`` and quiet or piped runs never pay for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from ..errors import InvalidRequestError
from .summary import BatchSummary, format_duration

if TYPE_CHECKING:
    from .._retry import Limiter

__all__ = ["PLAIN_INTERVAL", "Display", "make_display", "status_line"]

#: seconds between two plain progress lines
PLAIN_INTERVAL = 10.0
_POSTFIX_INTERVAL = 0.5


class Display(Protocol):
    def start(self, summary: BatchSummary, limiter: Limiter | None) -> None: ...
    def update(self, summary: BatchSummary) -> None: ...
    def write(self, line: str) -> None: ...
    def close(self) -> None: ...


def _rate(summary: BatchSummary) -> float:
    elapsed = summary.elapsed
    return summary.done / elapsed if elapsed > 0 else 0.0


def _tokens_per_minute(summary: BatchSummary) -> float:
    elapsed = summary.elapsed
    return (summary.tokens_in + summary.tokens_out) * 60 / elapsed if elapsed > 0 else 0.0


def _waits(limiter: Limiter | None) -> int:
    return limiter.stats.pauses if limiter is not None else 0


def status_line(summary: BatchSummary, limiter: Limiter | None = None) -> str:
    """One plain progress line: done/total, percent, requests/s, tokens/min, failures, waits, ETA."""
    total = summary.total or 1
    rate = _rate(summary)
    parts = [f"batch: {summary.recorded:,}/{summary.total:,} ({summary.recorded * 100 / total:.1f}%)",
             f"{rate:,.1f} req/s", f"{_tokens_per_minute(summary):,.0f} tokens/min",
             f"{summary.failed + summary.already_failed:,} failed", f"{_waits(limiter):,} rate-limit pauses"]
    if rate > 0 and summary.remaining:
        parts.append(f"ETA {format_duration(summary.remaining / rate)}")
    return " · ".join(parts)


class NoDisplay:
    """``--quiet``: nothing (errors still reach stderr through ``write``)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def start(self, summary: BatchSummary, limiter: Limiter | None) -> None:
        pass

    def update(self, summary: BatchSummary) -> None:
        pass

    def write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class PlainDisplay(NoDisplay):
    """A line every ``interval`` seconds while the job runs (logs and pipes)."""

    def __init__(self, stream: TextIO, interval: float = PLAIN_INTERVAL) -> None:
        super().__init__(stream)
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self, summary: BatchSummary, limiter: Limiter | None) -> None:
        self._task = asyncio.get_running_loop().create_task(self._tick(summary, limiter))

    async def _tick(self, summary: BatchSummary, limiter: Limiter | None) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.write(status_line(summary, limiter))

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


class BarDisplay(NoDisplay):
    """A tqdm bar: done/total, percent, requests/s, ETA; failures, tokens/min and pauses beside it."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._bar: Any = None
        self._limiter: Limiter | None = None
        self._shown = 0
        self._postfix_at = 0.0

    def start(self, summary: BatchSummary, limiter: Limiter | None) -> None:
        from tqdm import tqdm

        self._limiter = limiter
        self._shown = summary.recorded
        self._bar = tqdm(total=summary.total, initial=summary.recorded, unit="req", desc="batch", file=self.stream,
                         dynamic_ncols=True, mininterval=0.2, smoothing=0.05, leave=True)
        self._postfix(summary)

    def _postfix(self, summary: BatchSummary) -> None:
        self._postfix_at = time.monotonic()
        failed = summary.failed + summary.already_failed
        self._bar.set_postfix_str(f"{failed:,} failed, {_tokens_per_minute(summary):,.0f} tok/min, "
                                  f"{_waits(self._limiter):,} rate-limit pauses", refresh=False)

    def update(self, summary: BatchSummary) -> None:
        if self._bar is None:
            return
        if time.monotonic() - self._postfix_at >= _POSTFIX_INTERVAL:
            self._postfix(summary)
        recorded = summary.recorded
        self._bar.update(recorded - self._shown)
        self._shown = recorded

    def write(self, line: str) -> None:
        if self._bar is None:
            super().write(line)
        else:
            self._bar.write(line, file=self.stream)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


def make_display(kind: str | bool, stream: TextIO | None = None, interval: float = PLAIN_INTERVAL) -> Display:
    """``"auto"`` (or True): a bar on a terminal, plain lines otherwise; ``"bar"``, ``"plain"``,
    ``"none"`` (or False)."""
    stream = stream or sys.stderr
    if kind is True:
        kind = "auto"
    if kind is False or kind == "none":
        return NoDisplay(stream)
    if kind == "auto":
        kind = "bar" if _is_terminal(stream) else "plain"
    if kind == "bar":
        with contextlib.suppress(ImportError):
            import tqdm  # noqa: F401

            return BarDisplay(stream)
        kind = "plain"
    if kind == "plain":
        return PlainDisplay(stream, interval)
    raise InvalidRequestError(f"progress must be True, False, 'auto', 'bar', 'plain' or 'none', not {kind!r}",
                              param="progress")
