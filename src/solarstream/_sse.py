"""An incremental server-sent-events decoder: bytes in, events out. Pure: no I/O, no clock.

Follows the WHATWG event-stream rules: lines end in CRLF, LF or CR (also when the CR and the
LF arrive in different reads); one leading BOM is stripped; ``:`` lines are comments; a field
without a colon has an empty value; one space after the colon is removed; ``data`` lines
accumulate joined by ``\\n``; a blank line dispatches only if data was seen; ``retry`` counts
only if all ASCII digits; an ``id`` containing NUL is ignored; an unterminated event at EOF is
discarded. Lines are split on bytes and decoded whole, so a UTF-8 character split across reads
is safe. There is no per-line limit, only a cap on one event's size.
"""

from __future__ import annotations

from collections.abc import Iterator

from .errors import StreamError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEDecoder", "ServerSentEvent"]

DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"
#: An unterminated ``data: ...`` line counts as what it will add once it ends (its value and the
#: ``\n`` that joins lines): its length less this. So the cap gives the same verdict however the
#: event is split into reads.
_LINE_OVERHEAD = len(b"data: ") - 1


class ServerSentEvent:
    """One dispatched event. A plain slotted class: one is built per streamed chunk."""

    __slots__ = ("data", "event", "id", "retry")

    def __init__(self, data: str, event: str = "message", id: str = "", retry: int | None = None) -> None:
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ServerSentEvent) and (self.data, self.event, self.id, self.retry) == (
            other.data, other.event, other.id, other.retry)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ServerSentEvent(data={self.data!r}, event={self.event!r}, id={self.id!r}, retry={self.retry!r})"


class SSEDecoder:
    """Feed it network reads in order; it returns the events each read completes."""

    __slots__ = (
        "_bom_pending",
        "_data",
        "_event",
        "_failed",
        "_last_id",
        "_max_event_size",
        "_retry",
        "_size",
        "_skip_lf",
        "_tail",
        "_tail_size",
        "comments",
    )

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self._max_event_size = max_event_size
        self._tail: list[bytes] = []  # pieces of an unterminated line carried to the next read
        self._tail_size = 0
        self._failed: StreamError | None = None
        self._skip_lf = False  # the last read ended in CR: a leading LF of the next read ends nothing
        self._bom_pending = True
        self._data: list[bytes] = []
        self._size = 0
        self._event = ""
        self._last_id = ""
        self._retry: int | None = None
        #: Comment lines seen so far (servers send them as keep-alives).
        self.comments = 0

    @property
    def pending(self) -> bool:
        """Whether bytes of an event that has not been dispatched yet are held."""
        return bool(self._tail or self._data or self._event)

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events this read completes. Past the size cap it raises ``StreamError`` — after
        returning the events completed before the oversized one, so none of them is lost — and
        every later ``feed()`` or ``close()`` raises it again (the rest of the stream is not read
        from the middle of the oversized event)."""
        events: list[ServerSentEvent] = []
        try:
            events.extend(self.events(chunk))
        except StreamError:
            if not events:
                raise
        return events  # past the cap: what completed first; the next feed() or close() raises

    def events(self, chunk: bytes) -> Iterator[ServerSentEvent]:
        """``feed()`` one event at a time, for a reader that acts on the first event of a read
        before the rest are decoded (a read can hold a whole answer). Past the size cap it raises
        ``StreamError`` after the events completed before. Iterate it to the end (or drop the
        decoder) before the next read."""
        if self._failed is not None:
            raise self._failed
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if self._tail and b"\n" not in chunk and b"\r" not in chunk:
            # still inside one long line: keep the pieces, join once the line ends (no O(n²) copying)
            self._tail.append(chunk)
            self._tail_size += len(chunk)
            if self._tail_size - _LINE_OVERHEAD + self._size > self._max_event_size:
                raise self._too_large()
            return
        buffer = b"".join((*self._tail, chunk))  # one piece: the piece itself, not a copy
        self._tail.clear()
        self._tail_size = 0
        if self._bom_pending:
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer):
                self._keep_tail(buffer)  # could still be a BOM: wait for more
                return
            self._bom_pending = False
            if buffer.startswith(_BOM):
                buffer = buffer[len(_BOM) :]
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):
                self._skip_lf = True
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._keep_tail(lines.pop())
        data = self._data
        limit = self._max_event_size
        for line in lines:
            if not line:
                if data:
                    yield self._dispatch()
                else:
                    self._event = ""
            elif line[:6] == b"data: ":
                self._size += len(line) - 5
                if self._size > limit:
                    raise self._too_large()
                data.append(line[6:])
            else:
                self._field(line)
                if self._size > limit:
                    raise self._too_large()
        if self._tail_size - _LINE_OVERHEAD + self._size > limit:
            raise self._too_large()

    def _keep_tail(self, piece: bytes) -> None:
        if piece:
            self._tail.append(piece)
            self._tail_size = len(piece)

    def close(self) -> bool:
        """End of stream. Returns whether an unterminated event was discarded."""
        if self._failed is not None:
            raise self._failed
        discarded = self.pending
        self._tail.clear()
        self._tail_size = 0
        self._data.clear()
        self._size = 0
        self._event = ""
        return discarded

    def _field(self, line: bytes) -> None:
        name, colon, value = line.partition(b":")
        if not name and colon:
            self.comments += 1
            return
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._add_data(value)
        elif name == b"event":
            self._event = value.decode(errors="replace")
        elif name == b"id":
            if b"\0" not in value:
                self._last_id = value.decode(errors="replace")
        elif name == b"retry" and value.isdigit():  # bytes.isdigit is ASCII-only, as the spec wants
            self._retry = int(value)
        # any other field name is ignored

    def _add_data(self, value: bytes) -> None:
        self._size += len(value) + 1  # feed() checks the cap
        self._data.append(value)

    def _dispatch(self) -> ServerSentEvent:
        raw = b"\n".join(self._data)  # one line: the line itself, not a copy
        event = ServerSentEvent(raw.decode(errors="replace"), self._event or "message", self._last_id, self._retry)
        self._data.clear()
        self._size = 0
        self._event = ""
        return event

    def _too_large(self) -> StreamError:
        """Fail for good: the held bytes are let go, and every later call raises this error."""
        self._tail.clear()
        self._data.clear()
        self._failed = StreamError(
            f"a server-sent event exceeded {self._max_event_size} bytes; the stream is malformed "
            "or the limit (max_event_size) is too low for it"
        )
        return self._failed
