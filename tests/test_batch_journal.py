"""The batch journal and its id table, in-process and exact: OUTPUT scanned back into resume state,
torn tails (a file cut where ``kill -9`` would leave it), records appended once and synced on
schedule, error records dropped atomically, and the id table's hashing, probing and memory.

These are the tests mutation testing runs over ``batch/journal.py`` and ``batch/ids.py``
(docs/testing.md); the runs of the real command that is killed are in tests/test_batch_resume.py.
The only stand-in is a spy around ``os.fsync`` that calls the real one (or fails one call as a
disk error would): what a sync did is otherwise visible only after a power cut.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import os
import resource
import signal
import stat
import threading
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from solarstream.batch import ids
from solarstream.batch.formats import BatchResult
from solarstream.batch.ids import DONE_ERROR, DONE_OK, IN_INPUT, IdTable, id_hash
from solarstream.batch.journal import (
    OutputError,
    RecordWriter,
    Scan,
    drop_error_records,
    remove_stale_temporary,
    scan_output,
    stray_ids,
)

T = TypeVar("T")
_REAL_FSYNC = os.fsync


def ok(custom_id: str) -> bytes:
    """A success record as the job writes it (fixed ids, so files compare byte for byte)."""
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": f"answer {custom_id}"}}]}
    return BatchResult(custom_id, True, 200, f"req-{custom_id}", body, id=f"batch_req_{custom_id}").to_json()


def failed(custom_id: str) -> bytes:
    """An error record as the job writes it."""
    return BatchResult(custom_id, False, 503, f"req-{custom_id}", None,
                       {"code": "service_unavailable", "message": "try later"}, id=f"batch_req_{custom_id}").to_json()


def journal(path: Path, *lines: bytes) -> Path:
    path.write_bytes(b"".join(lines))
    return path


async def scanned(path: Path, table: IdTable | None = None, label: str | None = None) -> Scan:
    return await scan_output(path, table if table is not None else IdTable(), label)


async def refusal(path: Path, label: str | None = None) -> str:
    with pytest.raises(OutputError) as caught:
        await scanned(path, label=label)
    return str(caught.value)


async def turns_given(work: Awaitable[T]) -> tuple[T, int]:
    """``work``'s result and how many times it let other tasks run (a ticker counts its turns)."""
    turns = 0

    async def ticker() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.get_running_loop().create_task(ticker())
    try:
        result = await work
    finally:
        task.cancel()
    return result, turns


class Hashed(str):
    """A custom_id whose ``hash`` is chosen, to put ids into chosen slots of the table."""

    value: int

    def __new__(cls, text: str, value: int) -> Hashed:
        obj = super().__new__(cls, text)
        obj.value = value
        return obj

    def __hash__(self) -> int:
        return self.value


# --- the id table ------------------------------------------------------------------------------


def test_an_ids_key_is_its_hash_as_an_unsigned_64_bit_number_never_0() -> None:
    assert id_hash(Hashed("a", 5)) == 5
    assert id_hash(Hashed("b", -5)) == 2**64 - 5
    assert id_hash(Hashed("c", 2**63 - 1)) == 2**63 - 1
    assert id_hash(Hashed("d", -(2**63))) == 2**63
    assert id_hash(Hashed("e", 0)) == 1  # 0 marks an empty slot
    for text in ("row-1", "", "ключ", "🙂" * 40):
        key = id_hash(text)
        assert 0 < key < 2**64
        assert id_hash("".join(list(text))) == key  # an equal string, another object: the same key


def test_add_returns_the_flags_before_and_flags_accumulate() -> None:
    table = IdTable()
    assert len(table) == 0
    assert table.get("a") == 0
    assert table.add("a", IN_INPUT) == 0
    assert table.add("b", DONE_ERROR) == 0
    assert table.add("a", DONE_OK) == IN_INPUT
    assert table.add("a", DONE_OK) == IN_INPUT | DONE_OK
    assert table.get("a") == IN_INPUT | DONE_OK
    assert table.get("b") == DONE_ERROR
    assert table.get("c") == 0
    assert len(table) == 2


def test_clear_removes_only_the_given_flags_and_the_id_stays() -> None:
    table = IdTable()
    table.add("a", IN_INPUT | DONE_ERROR)
    table.add("b", IN_INPUT | DONE_OK | DONE_ERROR)
    table.clear("a", DONE_ERROR)
    table.clear("b", DONE_OK | DONE_ERROR)
    assert (table.get("a"), table.get("b")) == (IN_INPUT, IN_INPUT)
    table.clear("a", IN_INPUT)
    assert table.get("a") == 0
    assert len(table) == 2  # still known: adding it again does not count it twice
    assert table.add("a", DONE_OK) == 0
    assert len(table) == 2
    assert table.get("a") == DONE_OK


def test_clearing_an_unknown_id_changes_nothing() -> None:
    table = IdTable()
    table.add("a", DONE_ERROR)
    table.clear("b", DONE_ERROR)
    assert (len(table), table.get("a"), table.get("b")) == (1, DONE_ERROR, 0)
    assert table.count(DONE_OK | DONE_ERROR | IN_INPUT) == 1


def test_count_takes_ids_with_any_of_the_flags_and_none_of_the_lacking() -> None:
    table = IdTable()
    table.add("in-only", IN_INPUT)
    table.add("done", IN_INPUT | DONE_OK)
    table.add("failed", IN_INPUT | DONE_ERROR)
    table.add("stray-ok", DONE_OK)
    table.add("stray-error", DONE_ERROR)
    table.add("cleared", DONE_OK)
    table.clear("cleared", DONE_OK)
    assert table.count(DONE_OK | DONE_ERROR) == 4
    assert table.count(DONE_OK) == 2
    assert table.count(IN_INPUT) == 3
    assert table.count(DONE_OK | DONE_ERROR, lacking=IN_INPUT) == 2
    assert table.count(IN_INPUT, lacking=DONE_OK | DONE_ERROR) == 1
    assert table.count(IN_INPUT | DONE_OK | DONE_ERROR) == 5


def test_ids_in_the_same_slot_are_kept_apart_also_across_the_end_of_the_table() -> None:
    table = IdTable()  # 1024 slots: the slot is the key's low 10 bits
    same_slot = [Hashed(f"s{i}", 7 + i * 1024) for i in range(4)]
    at_the_end = [Hashed("end", 1023), Hashed("wraps", 2047), Hashed("first", 1024)]
    for flags, custom_id in enumerate([*same_slot, *at_the_end], 1):
        assert table.add(custom_id, flags) == 0
    assert [table.get(c) for c in [*same_slot, *at_the_end]] == [1, 2, 3, 4, 5, 6, 7]
    assert len(table) == 7
    # unknown ids whose slots are taken are looked for along the chain, not found
    assert table.get(Hashed("absent", 7 + 9 * 1024)) == 0
    assert table.get(Hashed("absent too", 3071)) == 0
    table.clear(same_slot[2], 3)
    assert [table.get(c) for c in same_slot] == [1, 2, 0, 4]


def test_two_ids_with_one_64_bit_hash_are_one_entry() -> None:
    """The documented price of 9 bytes an id: a shared hash (~3·10⁻⁸ for a million ids) makes two
    ids one; the job then sees a duplicate in INPUT, never a lost or doubled record."""
    table = IdTable()
    assert table.add(Hashed("one", 99), IN_INPUT) == 0
    assert table.add(Hashed("other", 99), IN_INPUT) == IN_INPUT
    assert table.get(Hashed("third", 99)) == IN_INPUT
    assert len(table) == 1
    assert table.add(Hashed("zero", 0), DONE_OK) == 0  # hash 0 is key 1
    assert table.get(Hashed("one too", 1)) == DONE_OK


def test_every_id_survives_the_table_growing_also_in_long_chains() -> None:
    table = IdTable()
    chained = [Hashed(f"c{i}", 5 + i * 1024) for i in range(700)]  # all in slot 5 of the first table
    plain = [f"row-{i}" for i in range(5000)]
    for i, custom_id in enumerate(chained):
        assert table.add(custom_id, (DONE_OK, DONE_ERROR, IN_INPUT)[i % 3]) == 0
    for plain_id in plain:
        assert table.add(plain_id, IN_INPUT) == 0
    assert len(table) == 5700
    assert [table.get(c) for c in chained] == [(DONE_OK, DONE_ERROR, IN_INPUT)[i % 3] for i in range(700)]
    assert all(table.get(c) == IN_INPUT for c in plain)
    assert table.count(DONE_OK) == 234
    assert table.count(IN_INPUT) == 5233
    assert table.add(chained[-1], IN_INPUT) == DONE_OK  # found again after the moves, not added twice
    assert len(table) == 5700


def traced_bytes(build: Callable[[], object]) -> int:
    """The bytes that code in batch/ids.py allocated while ``build()`` ran and that are still alive
    (only that file's: a tool tracing the calls, as mutmut does, allocates too)."""
    tracemalloc.start()
    try:
        kept = build()
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert kept is not None
    mine = snapshot.filter_traces([tracemalloc.Filter(True, ids.__file__)])
    return sum(stat.size for stat in mine.statistics("filename"))


def holds_slots(table_bytes: int, slots: int) -> bool:
    """9 bytes a slot (an 8-byte key and a byte of flags), and a little for the two objects."""
    return 9 * slots <= table_bytes < 9 * slots + 512


def test_the_table_costs_9_bytes_a_slot_and_is_at_most_half_full() -> None:
    assert holds_slots(traced_bytes(IdTable), 1024)
    assert holds_slots(traced_bytes(lambda: IdTable(capacity=512)), 1024)
    assert holds_slots(traced_bytes(lambda: IdTable(capacity=513)), 2048)
    assert holds_slots(traced_bytes(lambda: IdTable(capacity=1024)), 2048)
    assert holds_slots(traced_bytes(lambda: IdTable(capacity=1_000_000)), 2**21)  # 18 MiB for a million

    names = [f"row-{i}" for i in range(1025)]

    def filled(count: int) -> IdTable:
        table = IdTable()
        for custom_id in names[:count]:
            table.add(custom_id, IN_INPUT)
        return table

    assert holds_slots(traced_bytes(lambda: filled(512)), 1024)
    assert holds_slots(traced_bytes(lambda: filled(513)), 2048)
    assert holds_slots(traced_bytes(lambda: filled(1024)), 2048)
    assert holds_slots(traced_bytes(lambda: filled(1025)), 4096)


# --- scanning OUTPUT -----------------------------------------------------------------------------


async def test_a_scan_counts_the_records_and_marks_their_ids(tmp_path: Path) -> None:
    output = journal(tmp_path / "out.jsonl", ok("a"), failed("b"), b"\n", ok("c"), b"  \t\r\n", failed("d"))
    table = IdTable()
    table.add("a", IN_INPUT)  # what INPUT has is no second record
    scan = await scanned(output, table)
    assert scan == Scan(ok=2, errors=2, torn_at=None, needs_newline=False)
    assert scan.records == 4
    assert [table.get(c) for c in "abcde"] == [IN_INPUT | DONE_OK, DONE_ERROR, DONE_OK, DONE_ERROR, 0]
    assert len(table) == 4


async def test_an_empty_output_is_nothing_done(tmp_path: Path) -> None:
    table = IdTable()
    assert await scanned(journal(tmp_path / "out.jsonl"), table) == Scan(0, 0, None, False)
    assert Scan().records == 0
    assert len(table) == 0


async def test_every_cut_through_the_last_record_is_a_torn_tail_or_a_missing_line_break(tmp_path: Path) -> None:
    """A write killed part way leaves any prefix of its line: each is found and its id left to redo."""
    head = ok("a") + failed("b")
    last = ok("c")
    output = tmp_path / "out.jsonl"
    for keep in range(1, len(last)):
        journal(output, head, last[:keep])
        table = IdTable()
        scan = await scanned(output, table)
        if keep == len(last) - 1:  # only the line break is missing: a whole record
            assert scan == Scan(ok=2, errors=1, torn_at=None, needs_newline=True), keep
            assert table.get("c") == DONE_OK
        else:
            assert scan == Scan(ok=1, errors=1, torn_at=len(head), needs_newline=False), keep
            assert table.get("c") == 0, keep
        assert (table.get("a"), table.get("b")) == (DONE_OK, DONE_ERROR)


async def test_a_tail_of_zeros_after_a_power_cut_is_a_torn_tail(tmp_path: Path) -> None:
    output = journal(tmp_path / "out.jsonl", ok("a"), ok("b"), b"\0" * 300)
    assert await scanned(output) == Scan(ok=2, errors=0, torn_at=2 * len(ok("a")), needs_newline=False)


async def test_a_line_that_is_not_a_record_before_the_end_is_refused_with_its_line_number(tmp_path: Path) -> None:
    output = journal(tmp_path / "out.jsonl", ok("a"), b"\n", b"{garbage\n", ok("b"))
    advice = ("not a batch output record (an object with custom_id and response or error); is this the output "
              "of this job? Choose another -o/--output")
    assert await refusal(output) == f"{output}:3: {advice}"
    assert await refusal(output, label="results.jsonl") == f"results.jsonl:3: {advice}"
    journal(output, b'{"custom_id": "a", "body": {}}\n')  # JSON, but not a record
    assert await refusal(output) == f"{output}:1: {advice}"


@pytest.mark.parametrize(("first", "second"), [(ok, ok), (ok, failed), (failed, ok), (failed, failed)])
async def test_a_second_record_for_an_id_is_refused(
        tmp_path: Path, first: Callable[[str], bytes], second: Callable[[str], bytes]) -> None:
    output = journal(tmp_path / "out.jsonl", first("a"), ok("b"), second("a"))
    assert await refusal(output, label="o.jsonl") == (
        "o.jsonl:3: a second record for custom_id 'a'; OUTPUT must hold one record per id (was it written by "
        "another tool or edited?)")


async def test_a_second_record_as_the_last_line_without_its_line_break_is_refused_too(tmp_path: Path) -> None:
    output = journal(tmp_path / "out.jsonl", ok("a"), ok("a").rstrip(b"\n"))
    assert await refusal(output) == (
        f"{output}:2: a second record for custom_id 'a'; OUTPUT must hold one record per id (was it written by "
        "another tool or edited?)")


async def test_a_long_scan_lets_the_loop_run_every_4096_lines(tmp_path: Path) -> None:
    output = journal(tmp_path / "out.jsonl", *(ok(f"id-{i}") for i in range(8192)), ok("last"))
    scan, turns = await turns_given(scanned(output))
    assert (scan.ok, turns) == (8193, 2)  # after lines 4096 and 8192


async def test_stray_ids_are_the_first_records_lacking_a_flag_in_file_order(tmp_path: Path) -> None:
    output = journal(tmp_path / "out.jsonl", ok("k1"), failed("s1"), b"\n", ok("s2"), ok("k2"), failed("s3"),
                     ok("s4"), ok("s5"), ok("s6")[:20])
    table = IdTable()
    await scanned(output, table)
    for custom_id in ("k1", "k2", "s6"):
        table.add(custom_id, IN_INPUT)
    assert stray_ids(output, table, IN_INPUT) == ["s1", "s2", "s3"]
    assert stray_ids(output, table, IN_INPUT, limit=1) == ["s1"]
    assert stray_ids(output, table, IN_INPUT, limit=10) == ["s1", "s2", "s3", "s4", "s5"]
    assert stray_ids(output, table, DONE_ERROR, limit=10) == ["k1", "s2", "k2", "s4", "s5"]
    assert stray_ids(output, table, IN_INPUT | DONE_OK | DONE_ERROR, limit=10) == []


# --- appending -----------------------------------------------------------------------------------


class FsyncSpy:
    """``os.fsync``, called through, noting what each call synced (inode, directory or not), from
    which thread, and whether a child process would inherit the descriptor; ``hold()`` makes the
    next call off the loop's thread wait for ``release()``, ``fail_next()`` makes it fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool, bool]] = []
        self.errors: list[OSError] = []
        self.inheritable: list[bool] = []
        self.held = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._changed = asyncio.Event()
        self._hold: threading.Event | None = None
        self._release = threading.Event()
        self._fail = False
        #: fail every sync of a directory, as some file systems do
        self.fail_directories = False

    def __call__(self, fd: int) -> None:
        info = os.fstat(fd)
        self.inheritable.append(os.get_inheritable(fd))
        off_loop = threading.get_ident() != self._loop_thread
        if off_loop and self._hold is not None:
            self._hold = None
            self._loop.call_soon_threadsafe(self.held.set)
            self._release.wait(30)
        try:
            if off_loop and self._fail:
                self._fail = False
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            if stat.S_ISDIR(info.st_mode) and self.fail_directories:
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
            _REAL_FSYNC(fd)
        except OSError as exc:
            self.errors.append(exc)
            raise
        finally:
            self.calls.append((info.st_ino, stat.S_ISDIR(info.st_mode), off_loop))
            self._loop.call_soon_threadsafe(self._changed.set)

    def hold(self) -> None:
        self._hold = self._release = threading.Event()

    def fail_next(self) -> None:
        """The next call off the loop's thread fails as a disk error would (EIO)."""
        self._fail = True

    def release(self) -> None:
        self._release.set()

    def of(self, path: Path) -> list[bool]:
        """The syncs of ``path`` (its current inode), in order: True for one run off the loop."""
        inode = path.stat().st_ino
        return [off for ino, is_dir, off in self.calls if ino == inode and not is_dir]

    def dirs(self, path: Path) -> int:
        inode = path.stat().st_ino
        return sum(1 for ino, is_dir, _ in self.calls if ino == inode and is_dir)

    async def until(self, path: Path, count: int) -> None:
        while len(self.of(path)) < count:
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), 30)


@pytest.fixture
async def fsync(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FsyncSpy]:
    spy = FsyncSpy()
    monkeypatch.setattr(os, "fsync", spy)
    yield spy
    spy.release()


async def test_records_are_appended_after_what_output_holds(tmp_path: Path) -> None:
    output = journal(tmp_path / "out.jsonl", ok("a"))
    writer = RecordWriter(output)
    writer.open()
    writer.write(failed("b"))
    writer.write(ok("c"))
    assert writer.written == 2
    assert output.read_bytes() == ok("a") + failed("b") + ok("c")  # each record in the file as written
    await writer.aclose()
    table = IdTable()
    assert await scanned(output, table) == Scan(ok=2, errors=1)


async def test_a_new_output_is_created_readable_by_all_and_its_directory_synced(
        tmp_path: Path, fsync: FsyncSpy) -> None:
    output = tmp_path / "out.jsonl"
    umask = os.umask(0o022)
    try:
        writer = RecordWriter(output)
        writer.open(Scan())
    finally:
        os.umask(umask)
    assert stat.S_IMODE(output.stat().st_mode) == 0o644
    assert fsync.dirs(tmp_path) == 1
    await writer.aclose()
    again = RecordWriter(output)
    again.open(Scan())
    await again.aclose()
    assert fsync.dirs(tmp_path) == 1  # an existing OUTPUT's directory entry is already durable
    assert output.read_bytes() == b""


async def test_the_output_descriptor_is_not_inherited_by_child_processes(tmp_path: Path, fsync: FsyncSpy) -> None:
    output = tmp_path / "out.jsonl"
    writer = RecordWriter(output, sync_interval=0)
    writer.open()
    writer.write(ok("a"))
    await writer.aclose()
    assert fsync.inheritable == [False, False, False]  # the new entry's directory, the record, the close


async def test_opening_cuts_off_a_torn_tail_and_the_rerun_leaves_every_id_once(
        tmp_path: Path, fsync: FsyncSpy) -> None:
    head = ok("a") + failed("b")
    output = journal(tmp_path / "out.jsonl", head, ok("c")[:30])
    table = IdTable()
    scan = await scanned(output, table)
    writer = RecordWriter(output)
    writer.open(scan)
    assert scan.torn_at is None
    assert output.read_bytes() == head
    assert fsync.of(output) == [False]  # the cut is synced before anything is appended
    writer.write(ok("c"))
    await writer.aclose()
    assert output.read_bytes() == head + ok("c")
    again = IdTable()
    assert await scanned(output, again) == Scan(ok=2, errors=1)
    assert [again.get(c) for c in "abc"] == [DONE_OK, DONE_ERROR, DONE_OK]


async def test_opening_ends_a_whole_last_record_with_its_line_break(tmp_path: Path) -> None:
    output = journal(tmp_path / "out.jsonl", ok("a"), ok("b").rstrip(b"\n"))
    scan = await scanned(output)
    writer = RecordWriter(output)
    writer.open(scan)
    assert scan == Scan(ok=2, errors=0, torn_at=None, needs_newline=False)
    assert output.read_bytes() == ok("a") + ok("b")
    writer.write(ok("c"))
    await writer.aclose()
    assert writer.written == 1  # the line break is not a record
    assert output.read_bytes() == ok("a") + ok("b") + ok("c")


async def test_every_kill_point_of_an_append_resumes_to_each_id_exactly_once(tmp_path: Path) -> None:
    """Cut the file at every byte of the record being appended, as ``kill -9`` could leave it,
    then resume as the job does: scan, open, write what has no record. Never two, never none."""
    output = tmp_path / "out.jsonl"
    records = {"a": ok("a"), "b": failed("b"), "c": ok("c")}
    whole = b"".join(records.values())
    start = len(records["a"] + records["b"])
    for cut in range(start, len(whole) + 1):
        output.write_bytes(whole[:cut])
        table = IdTable()
        scan = await scanned(output, table)
        writer = RecordWriter(output)
        writer.open(scan)
        for custom_id, line in records.items():
            if not table.get(custom_id):
                writer.write(line)
        await writer.aclose()
        assert writer.written == (0 if cut >= len(whole) - 1 else 1), cut
        assert output.read_bytes() == whole, cut


async def test_write_before_open_and_after_close_is_a_programming_error(tmp_path: Path) -> None:
    writer = RecordWriter(tmp_path / "out.jsonl")
    with pytest.raises(AssertionError, match=r"^RecordWriter.open\(\) first$"):
        writer.write(ok("a"))
    writer.open()
    await writer.aclose()
    await writer.aclose()  # twice is fine
    with pytest.raises(AssertionError, match=r"^RecordWriter.open\(\) first$"):
        writer.write(ok("a"))


async def test_with_interval_0_every_record_is_synced_as_it_is_written(tmp_path: Path, fsync: FsyncSpy) -> None:
    output = tmp_path / "out.jsonl"
    writer = RecordWriter(output, sync_interval=0)
    writer.open()
    writer.write(ok("a"))
    assert fsync.of(output) == [False]
    writer.write(ok("b"))
    assert fsync.of(output) == [False, False]
    await writer.aclose()
    assert fsync.of(output) == [False, False, False]  # and once more at the close
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_records_are_synced_once_per_interval_off_the_loop_and_at_the_close(
        tmp_path: Path, fsync: FsyncSpy) -> None:
    output = tmp_path / "out.jsonl"
    writer = RecordWriter(output, sync_interval=0.01)
    assert RecordWriter(output).sync_interval == 1.0
    writer.open()
    for custom_id in "abc":
        writer.write(ok(custom_id))
    assert fsync.of(output) == []  # not on the loop, not at once
    await fsync.until(output, 1)
    writer.write(ok("d"))
    await fsync.until(output, 2)  # a record after a sync is synced in the next interval
    await writer.aclose()
    assert fsync.of(output) == [True, True, False]
    assert writer.written == 4


async def test_a_record_written_while_a_sync_is_under_way_is_synced_in_the_next_interval(
        tmp_path: Path, fsync: FsyncSpy) -> None:
    output = tmp_path / "out.jsonl"
    writer = RecordWriter(output, sync_interval=0.01)
    writer.open()
    fsync.hold()
    writer.write(ok("a"))
    await fsync.held.wait()  # the first sync has begun in its thread
    writer.write(ok("b"))
    fsync.release()
    await fsync.until(output, 2)  # "b" is synced without waiting for the close
    writer.write(ok("c"))
    await fsync.until(output, 3)  # and the schedule goes on
    await writer.aclose()
    assert fsync.of(output) == [True, True, True, False]
    assert fsync.errors == []


def open_descriptors() -> int:
    return len(os.listdir("/dev/fd"))


async def test_closing_leaves_a_sync_under_way_its_own_descriptor_and_no_task(
        tmp_path: Path, fsync: FsyncSpy) -> None:
    output = tmp_path / "out.jsonl"
    before = open_descriptors()
    writer = RecordWriter(output, sync_interval=0.01)
    writer.open()
    fsync.hold()
    writer.write(ok("a"))
    await fsync.held.wait()  # a sync has begun in its thread
    await writer.aclose()  # does not wait for it
    assert fsync.of(output) == [False]
    assert asyncio.all_tasks() == {asyncio.current_task()}
    with pytest.raises(AssertionError):
        writer.write(ok("b"))
    fsync.release()
    await fsync.until(output, 2)
    assert fsync.of(output) == [False, True]
    assert fsync.errors == []  # the sync in its thread still had a descriptor, its own
    await asyncio.to_thread(lambda: None)  # the thread's close is done before it takes new work
    assert open_descriptors() == before


class OneThread(concurrent.futures.ThreadPoolExecutor):
    """An executor of one thread that says when work is handed to it (on the loop's thread)."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.submitted = asyncio.Event()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        self.submitted.set()
        return super().submit(fn, *args, **kwargs)


async def test_a_sync_still_queued_for_a_thread_at_the_close_runs_and_closes_its_descriptor(
        tmp_path: Path, fsync: FsyncSpy) -> None:
    loop = asyncio.get_running_loop()
    executor = OneThread()
    loop.set_default_executor(executor)
    busy = threading.Event()
    blocker = loop.run_in_executor(None, busy.wait, 30)  # the only thread is taken
    executor.submitted.clear()
    output = tmp_path / "out.jsonl"
    writer = RecordWriter(output, sync_interval=0.001)
    writer.open()
    before = open_descriptors()
    writer.write(ok("a"))
    await asyncio.wait_for(executor.submitted.wait(), 30)  # the sync is queued, with its copy
    assert open_descriptors() == before + 1
    await writer.aclose()
    busy.set()
    await blocker
    await loop.run_in_executor(None, lambda: None)  # one thread, in order: the sync has run
    executor.shutdown(wait=True)
    assert fsync.of(output) == [False, True]
    assert open_descriptors() == before - 1  # OUTPUT's own is closed, and the copy too


async def test_closing_before_the_interval_ends_cancels_the_wait_and_syncs_once(
        tmp_path: Path, fsync: FsyncSpy) -> None:
    output = tmp_path / "out.jsonl"
    writer = RecordWriter(output, sync_interval=3600)
    writer.open()
    writer.write(ok("a"))
    await asyncio.sleep(0)  # the syncer has started its wait
    await writer.aclose()
    assert fsync.of(output) == [False]
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert output.read_bytes() == ok("a")


async def test_a_failed_sync_in_the_interval_does_not_stop_the_syncs(tmp_path: Path, fsync: FsyncSpy) -> None:
    output = tmp_path / "out.jsonl"
    writer = RecordWriter(output, sync_interval=0.01)
    writer.open()
    fsync.hold()
    fsync.fail_next()
    writer.write(ok("a"))
    await fsync.held.wait()
    writer.write(ok("b"))  # while the sync that is to fail runs
    fsync.release()
    await fsync.until(output, 2)  # "b" is synced in the next interval all the same
    await writer.aclose()
    assert fsync.of(output) == [True, True, False]
    assert [e.errno for e in fsync.errors] == [errno.EIO]
    assert output.read_bytes() == ok("a") + ok("b")


async def test_the_syncer_ends_once_every_record_is_synced(tmp_path: Path, fsync: FsyncSpy) -> None:
    """An idle job does not sync every interval: the next record starts a new round."""
    output = tmp_path / "out.jsonl"
    writer = RecordWriter(output, sync_interval=0.01)
    writer.open()
    writer.write(ok("a"))
    writer.write(ok("b"))
    (syncer,) = asyncio.all_tasks() - {asyncio.current_task()}
    await asyncio.wait_for(syncer, 30)
    assert fsync.of(output) == [True]
    writer.write(ok("c"))
    (again,) = asyncio.all_tasks() - {asyncio.current_task()}
    assert again is not syncer
    await asyncio.wait_for(again, 30)
    assert fsync.of(output) == [True, True]
    await writer.aclose()
    assert fsync.of(output) == [True, True, False]


async def test_a_file_system_that_cannot_sync_a_directory_is_no_error(tmp_path: Path, fsync: FsyncSpy) -> None:
    fsync.fail_directories = True
    output = tmp_path / "out.jsonl"
    writer = RecordWriter(output)
    writer.open()
    writer.write(failed("a"))
    writer.write(ok("b"))
    await writer.aclose()
    table = IdTable()
    assert await drop_error_records(output, table, await scanned(output, table)) == 1  # a rename, synced
    assert output.read_bytes() == ok("b")
    assert [e.errno for e in fsync.errors] == [errno.EINVAL, errno.EINVAL]


async def test_a_record_that_does_not_fit_is_an_os_error_and_leaves_a_torn_tail(tmp_path: Path) -> None:
    """The file size limit (as a full disk) cuts a write short: the rest is tried, which fails,
    so the job stops with "cannot write OUTPUT"; the torn record is cut off by the rerun."""
    output = tmp_path / "out.jsonl"
    writer = RecordWriter(output, sync_interval=0)
    writer.open()
    writer.write(ok("a"))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(ok("a")) + 10, hard))
    try:
        with pytest.raises(OSError, match="File too large") as caught:
            writer.write(ok("b"))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert caught.value.errno == errno.EFBIG
    assert writer.written == 1
    await writer.aclose()
    assert output.read_bytes() == ok("a") + ok("b")[:10]
    assert await scanned(output) == Scan(ok=1, errors=0, torn_at=len(ok("a")))


async def test_a_close_cancelled_has_still_synced_and_closed_output(tmp_path: Path, fsync: FsyncSpy) -> None:
    output = tmp_path / "out.jsonl"
    writer = RecordWriter(output, sync_interval=3600)
    writer.open()
    writer.write(ok("a"))
    closing = asyncio.get_running_loop().create_task(writer.aclose())
    await asyncio.sleep(0)  # it has closed OUTPUT and waits for the syncer to end
    closing.cancel()  # a second Ctrl-C
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert fsync.of(output) == [False]
    with pytest.raises(AssertionError):
        writer.write(ok("b"))


# --- dropping error records (--retry-failed) -----------------------------------------------------


async def test_dropping_error_records_rewrites_output_with_the_rest_and_frees_their_ids(
        tmp_path: Path, fsync: FsyncSpy) -> None:
    output = journal(tmp_path / "out.jsonl", ok("a"), failed("b"), b"\n", failed("c"), ok("d"), ok("e")[:25])
    table = IdTable()
    scan = await scanned(output, table)
    assert scan == Scan(ok=2, errors=2, torn_at=len(ok("a") + failed("b") + b"\n" + failed("c") + ok("d")))
    assert await drop_error_records(output, table, scan) == 2
    assert output.read_bytes() == ok("a") + ok("d")  # no errors, no blank line, no torn tail
    assert scan == Scan(ok=2, errors=0, torn_at=None, needs_newline=False)
    assert [table.get(c) for c in "abcde"] == [DONE_OK, 0, 0, DONE_OK, 0]
    assert sorted(os.listdir(tmp_path)) == ["out.jsonl"]
    assert fsync.of(output) == [False]  # the new file was synced before it took OUTPUT's name ...
    assert fsync.dirs(tmp_path) == 1  # ... and the rename after

    writer = RecordWriter(output)
    writer.open(scan)
    writer.write(failed("b"))
    await writer.aclose()
    assert output.read_bytes() == ok("a") + ok("d") + failed("b")


async def test_dropping_keeps_a_whole_last_record_and_ends_it_with_its_line_break(tmp_path: Path) -> None:
    output = journal(tmp_path / "out.jsonl", failed("a"), ok("b").rstrip(b"\n"))
    table = IdTable()
    scan = await scanned(output, table)
    assert scan.needs_newline
    assert await drop_error_records(output, table, scan) == 1
    assert output.read_bytes() == ok("b")
    assert scan == Scan(ok=1, errors=0, torn_at=None, needs_newline=False)


async def test_dropping_from_a_file_cut_right_after_a_record_keeps_every_whole_record(tmp_path: Path) -> None:
    head = ok("a") + failed("b")
    output = journal(tmp_path / "out.jsonl", head, b"{")
    table = IdTable()
    scan = await scanned(output, table)
    assert scan.torn_at == len(head)
    assert await drop_error_records(output, table, scan) == 1
    assert output.read_bytes() == ok("a")


async def test_dropping_with_no_error_records_leaves_the_records_as_they_were(tmp_path: Path) -> None:
    output = journal(tmp_path / "out.jsonl", ok("a"), ok("b"))
    table = IdTable()
    scan = await scanned(output, table)
    assert await drop_error_records(output, table, scan) == 0
    assert output.read_bytes() == ok("a") + ok("b")
    assert scan == Scan(ok=2, errors=0)


async def test_a_long_rewrite_lets_the_loop_run_every_4096_lines(tmp_path: Path) -> None:
    output = journal(tmp_path / "out.jsonl", *(failed(f"id-{i}") if i % 2 else ok(f"id-{i}") for i in range(8193)))
    table = IdTable()
    scan = await scanned(output, table)
    dropped, turns = await turns_given(drop_error_records(output, table, scan))
    assert (dropped, turns, scan.ok, scan.errors) == (4096, 2, 4097, 0)


def test_a_temporary_left_by_a_killed_rewrite_is_removed_and_nothing_else(tmp_path: Path) -> None:
    output = journal(tmp_path / "out.jsonl", ok("a"))
    temporary = journal(tmp_path / "out.jsonl.retry-failed.tmp", ok("a")[:10])
    other = journal(tmp_path / "other.jsonl.retry-failed.tmp", b"x")
    remove_stale_temporary(output)
    assert not temporary.exists()
    assert output.read_bytes() == ok("a")
    assert other.exists()
    remove_stale_temporary(output)  # nothing to remove is fine
    remove_stale_temporary(tmp_path / "missing.jsonl")
