"""The pre-pass: every INPUT line is read and checked before anything is sent.

Checked: valid JSON (or UTF-8 text with ``prompts``), a known shape, the URL, a model, a unique
custom_id, and the request itself through ``check`` — the provider's own ``prepare_chat``, so a
line passes exactly when ``Upstage`` would send it. Lines stream through; what is kept is the id
table (its ``IN_INPUT`` flags, which resuming then reads) and the first ``SHOWN`` problems.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidRequestError, SolarstreamError
from .formats import ParseOptions, Problem, Work, parse_line
from .ids import IN_INPUT, IdTable
from .reader import FileStamp, read_lines

__all__ = ["SHOWN", "BatchInputError", "Report", "prepass", "refuse"]

#: problems shown one by one; beyond them, a count
SHOWN = 20
_YIELD_EVERY = 4095


@dataclass
class Report:
    """What the pre-pass found."""

    #: requests (non-blank lines)
    total: int = 0
    #: lines that cannot be sent as they are
    invalid: int = 0
    duplicates: int = 0
    #: the first ``SHOWN`` of each kind of problem, in line order
    invalid_shown: list[Problem] = field(default_factory=list)
    duplicates_shown: list[Problem] = field(default_factory=list)
    stamp: FileStamp | None = None


class BatchInputError(SolarstreamError):
    """INPUT cannot run as it is: ``problems`` are the first lines at fault (``INPUT:LINE: ...``),
    ``count`` how many there are in all. Nothing was sent. A usage error: exit status 2."""

    def __init__(self, message: str, *, label: str = "", problems: list[Problem] | None = None,
                 count: int = 0) -> None:
        super().__init__(message)
        self.label = label
        self.problems = problems or []
        self.count = count

    def lines(self) -> list[str]:
        """The problems as ``INPUT:LINE: what is wrong``, then how many more there are."""
        out = [f"{self.label}:{p.line}: {p.message}" for p in self.problems]
        if self.count > len(self.problems):
            out.append(f"{self.label}: ... and {self.count - len(self.problems)} more")
        return out


async def prepass(path: Path, table: IdTable, options: ParseOptions, check: Callable[[Work], None], *,
                  settled: int = 0) -> Report:
    """Check every line of ``path``; ids are added to ``table`` with ``IN_INPUT``.

    Lines whose id already has one of the ``settled`` flags (a record that will not be sent again)
    are only read for their id: what is never sent cannot be wrong, and resuming a long job does
    not check its done lines again. The event loop gets a turn every few thousand lines, so Ctrl-C
    is seen at once even on a million lines.
    """
    report = Report(stamp=FileStamp.of(path))
    for number, raw in read_lines(path):
        report.total += 1
        if not report.total & _YIELD_EVERY:
            await asyncio.sleep(0)
        parsed = parse_line(raw, number, options)
        before = table.add(parsed.custom_id, IN_INPUT)
        if before & IN_INPUT:
            report.duplicates += 1
            if len(report.duplicates_shown) < SHOWN:
                report.duplicates_shown.append(Problem(number, "", parsed.custom_id))
        elif before & settled:
            continue
        if isinstance(parsed, Work):
            try:
                check(parsed)
            except InvalidRequestError as exc:
                parsed = Problem(number, exc.message, parsed.custom_id)
        if isinstance(parsed, Problem):
            report.invalid += 1
            if len(report.invalid_shown) < SHOWN:
                report.invalid_shown.append(parsed)
    if report.duplicates_shown:
        _describe_duplicates(path, options, report)
    return report


def _describe_duplicates(path: Path, options: ParseOptions, report: Report) -> None:
    """Say where each shown duplicate first appeared (a second read, only when there are duplicates)."""
    wanted = {p.custom_id for p in report.duplicates_shown}
    first: dict[str, int] = {}
    for number, raw in read_lines(path):
        custom_id = parse_line(raw, number, options).custom_id
        if custom_id in wanted and custom_id not in first:
            first[custom_id] = number
            if len(first) == len(wanted):
                break
    report.duplicates_shown = [
        Problem(p.line, f"duplicate custom_id {p.custom_id!r} (first on line {first.get(p.custom_id, '?')}); "
                        "each request needs its own id", p.custom_id)
        for p in report.duplicates_shown
    ]


def refuse(report: Report, label: str, skip_invalid: bool) -> BatchInputError | None:
    """The error that stops the job before anything is sent, if any."""
    if report.total == 0:
        return BatchInputError(f"{label} holds no requests (it is empty or every line is blank); nothing to do",
                               label=label)
    invalid = 0 if skip_invalid else report.invalid
    if not (report.duplicates or invalid):
        return None
    shown = sorted(([] if skip_invalid else report.invalid_shown) + report.duplicates_shown, key=lambda p: p.line)
    what = []
    if invalid:
        what.append(f"{invalid} invalid line{'s' if invalid != 1 else ''}")
    if report.duplicates:
        what.append(f"{report.duplicates} duplicate custom_id{'s' if report.duplicates != 1 else ''}")
    fix = ("give each request its own custom_id (--skip-invalid does not help: OUTPUT holds one record per id)"
           if report.duplicates else
           "fix them, or pass --skip-invalid to record them as errors and send the rest")
    return BatchInputError(f"{label}: {' and '.join(what)}; nothing was sent: {fix}", label=label,
                           problems=shown[:SHOWN], count=report.duplicates + invalid)
