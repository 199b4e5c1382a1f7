"""OUTPUT as the job's journal: what is already done, and appending records so that nothing is lost
or written twice, whenever the process dies.

* A record is appended only once its request is over, with one ``write`` of the whole line to a
  file opened ``O_APPEND``. A process killed at any moment leaves every earlier record whole; the
  only damage possible is a torn last line (a write cut short), which ``scan`` detects — a last
  line without its line break that is not a whole record — and ``RecordWriter.open`` cuts off, so
  its request is sent again.
* The page cache survives ``kill -9``; ``fsync`` (once a second while records come, and at the end)
  only bounds what a power cut can take (bench/BATCH_RESULTS.md measures what it costs).
* ``--retry-failed`` drops the error records by writing the kept records to a new file and
  renaming it over OUTPUT (fsync'd file and directory): killed before the rename, OUTPUT is as
  it was; after it, the dropped ids simply have no record yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import SolarstreamError
from .formats import read_record
from .ids import DONE_ERROR, DONE_OK, IdTable

__all__ = [
    "OutputError",
    "RecordWriter",
    "Scan",
    "drop_error_records",
    "remove_stale_temporary",
    "scan_output",
    "stray_ids",
]

#: at most this often, records written since the last fsync are synced (0: after every record)
SYNC_INTERVAL = 1.0
_YIELD_EVERY = 4095


class OutputError(SolarstreamError):
    """OUTPUT cannot be resumed from (not records, or another job's): a usage error, exit status 2."""


@dataclass
class Scan:
    """What OUTPUT held when the job started."""

    ok: int = 0
    errors: int = 0
    #: byte offset where a torn last line starts (it is cut off before appending), else None
    torn_at: int | None = None
    #: the last line is a whole record without its line break (one is added before appending)
    needs_newline: bool = False

    @property
    def records(self) -> int:
        return self.ok + self.errors


def _lines(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """``(line number, byte offset, raw line)`` of every line of ``path``."""
    offset = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            yield number, offset, raw
            offset += len(raw)


async def scan_output(path: Path, table: IdTable, label: str | None = None) -> Scan:
    """Mark every id OUTPUT has a record for (``DONE_OK`` or ``DONE_ERROR``) and find a torn tail."""
    label = label or str(path)
    scan = Scan()
    for number, offset, raw in _lines(path):
        if not number & _YIELD_EVERY:
            await asyncio.sleep(0)  # Ctrl-C is seen at once, however long OUTPUT is
        if raw.isspace():
            continue
        facts = read_record(raw)
        if not raw.endswith(b"\n"):  # the last line
            if facts is None:
                scan.torn_at = offset  # a write cut short: its request is redone
                break
            scan.needs_newline = True
        elif facts is None:
            raise OutputError(f"{label}:{number}: not a batch output record (an object with custom_id and "
                              "response or error); is this the output of this job? Choose another -o/--output")
        before = table.add(facts.custom_id, DONE_OK if facts.ok else DONE_ERROR)
        if before & (DONE_OK | DONE_ERROR):
            raise OutputError(f"{label}:{number}: a second record for custom_id {facts.custom_id!r}; OUTPUT must "
                              "hold one record per id (was it written by another tool or edited?)")
        if facts.ok:
            scan.ok += 1
        else:
            scan.errors += 1
    return scan


def stray_ids(path: Path, table: IdTable, flag: int, limit: int = 3) -> list[str]:
    """The first ``limit`` custom_ids of OUTPUT whose flags lack ``flag`` (for messages)."""
    found: list[str] = []
    for _, _, raw in _lines(path):
        facts = read_record(raw)
        if facts is not None and not table.get(facts.custom_id) & flag:
            found.append(facts.custom_id)
            if len(found) >= limit:
                break
    return found


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform or file system can
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _temporary(path: Path) -> Path:
    return path.with_name(path.name + ".retry-failed.tmp")


async def drop_error_records(path: Path, table: IdTable, scan: Scan) -> int:
    """Rewrite OUTPUT without its error records (and without a torn tail), atomically; their ids
    lose ``DONE_ERROR`` so they are sent again. Returns how many were dropped."""
    temporary = _temporary(path)
    dropped = 0
    # a local file: the loop gets its turns from the sleep(0) every few thousand lines
    with open(temporary, "wb") as out:  # noqa: ASYNC230
        for number, offset, raw in _lines(path):
            if not number & _YIELD_EVERY:
                await asyncio.sleep(0)
            if scan.torn_at is not None and offset >= scan.torn_at:
                break
            if raw.isspace():
                continue
            facts = read_record(raw)
            if facts is not None and not facts.ok:
                table.clear(facts.custom_id, DONE_ERROR)
                dropped += 1
                continue
            out.write(raw if raw.endswith(b"\n") else raw + b"\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    _fsync_dir(path)
    scan.errors -= dropped
    scan.torn_at = None
    scan.needs_newline = False
    return dropped


def remove_stale_temporary(path: Path) -> None:
    """A ``--retry-failed`` rewrite killed before its rename leaves its temporary file: drop it."""
    with contextlib.suppress(FileNotFoundError):
        _temporary(path).unlink()


def _sync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RecordWriter:
    """Appends records to OUTPUT, one ``write`` per record; synced at most every ``sync_interval``."""

    def __init__(self, path: Path, *, sync_interval: float = SYNC_INTERVAL) -> None:
        self.path = path
        self.sync_interval = sync_interval
        self.written = 0
        self._fd: int | None = None
        #: records written when the last sync began
        self._synced = 0
        self._syncer: asyncio.Task[None] | None = None

    def open(self, scan: Scan | None = None) -> None:
        existed = self.path.exists()
        # not inherited by child processes: os.open's descriptors never are (PEP 446)
        self._fd = fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if scan is not None and scan.torn_at is not None:
            os.ftruncate(fd, scan.torn_at)
            os.fsync(fd)
            scan.torn_at = None
        if scan is not None and scan.needs_newline:
            self._write(b"\n")
            scan.needs_newline = False
        if not existed:
            _fsync_dir(self.path)

    def _write(self, data: bytes) -> int:
        fd = self._fd
        assert fd is not None, "RecordWriter.open() first"
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        return fd

    def write(self, line: bytes) -> None:
        """Append one record line (ending in a line break)."""
        fd = self._write(line)
        self.written += 1
        if self.sync_interval <= 0:
            os.fsync(fd)
        elif self._syncer is None or self._syncer.done():
            self._syncer = asyncio.get_running_loop().create_task(self._sync_later(fd))

    async def _sync_later(self, fd: int) -> None:
        """While records come: an interval's wait, then one sync of them all, in a thread and on a
        copy of ``fd`` that the thread closes (``aclose`` cancels this task; a sync under way ends in
        its thread, and the close does not wait for it)."""
        loop = asyncio.get_running_loop()
        while self._synced < self.written:
            await asyncio.sleep(self.sync_interval)
            self._synced = self.written  # records written from now on wait for the next round
            with contextlib.suppress(OSError):  # not the job's end: the sync at the close reports it
                # shielded: a cancel must not take a queued sync off the executor (the copy would leak)
                await asyncio.shield(loop.run_in_executor(None, _sync_and_close, os.dup(fd)))

    async def aclose(self) -> None:
        """Sync what is written and close (also when the job is cancelled: OUTPUT is left whole)."""
        syncer, self._syncer = self._syncer, None
        if syncer is not None:
            syncer.cancel()
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if syncer is not None:
            await asyncio.wait({syncer})  # the syncer is gone when this returns
