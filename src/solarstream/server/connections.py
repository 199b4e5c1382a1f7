"""Connection limits in front of the app: bounded request heads, timeouts, and a connection cap.

uvicorn's httptools protocol bounds none of this: a connection that never finishes its request head
has no timer (the keep-alive timer starts only after a response, and the first byte of the next
request cancels it for good), httptools buffers a header of any size, and the number of connections
is limited only by the process's file descriptors. About a thousand half-sent requests exhaust a
default ``ulimit -n`` of 1024, and then ``accept()`` fails for everyone.

``GuardedHttpToolsProtocol`` is uvicorn's protocol with, per connection:

* a head budget: the request line and headers may be ``max_head_bytes`` long and have
  ``max_headers`` fields (the data is fed to the parser in slices, so a larger head is refused
  before httptools has buffered it): 431, then the connection closes; chunk framing and trailers of
  a chunked body share a budget of the same size;
* one clock at a time: ``head_timeout`` from accept (or from the first byte after an idle
  keep-alive) to the end of the head, ``body_timeout`` from there to the end of the body,
  ``keepalive_timeout`` while idle between requests; none while the app answers (streams are long);
* a place under ``max_connections``, held in a ``ConnectionGuard`` shared by the server.

At the cap a new connection is not refused: the connection that has waited longest without a request
in progress (a half-sent head, or an idle keep-alive) is closed to make room. A flood of slow
connections therefore only evicts itself, oldest first, while a client that sends its request at
once is served; a newcomer is refused (503) only when every connection is in a request, which the
app's own ``--max-concurrency`` and the timeouts bound.
"""

from __future__ import annotations

import asyncio
import http
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .config import GatewayConfig
from .errors import GatewayError

__all__ = ["ConnectionGuard", "ConnectionLimits", "GuardedHttpToolsProtocol", "guarded_protocol"]

log = logging.getLogger("solarstream.server")

#: framing bytes allowed per chunk of a chunked body ("<hex size>\r\n" ... "\r\n")
_CHUNK_FRAMING = 32
#: after a 431: seconds to read and drop what the client is still sending, so it can read the answer
_LINGER_SECONDS = 1.0
_LINGER_BYTES = 1024 * 1024
#: at most one warning about the cap this often
_WARN_EVERY = 10.0

Clock = Literal["head", "body", "idle", "linger"]


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    max_head_bytes: int
    max_headers: int
    head_timeout: float
    body_timeout: float
    keepalive_timeout: float

    @classmethod
    def from_config(cls, config: GatewayConfig, max_connections: int | None = None) -> ConnectionLimits:
        return cls(max_connections or config.max_connections, config.max_head_bytes, config.max_headers,
                   config.head_timeout, config.body_timeout, config.keepalive_timeout)


class ConnectionGuard:
    """The open connections of one server, and which of them may be evicted (oldest first)."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._open: set[GuardedHttpToolsProtocol] = set()
        self._evictable: dict[GuardedHttpToolsProtocol, None] = {}  # insertion order: longest waiting first
        self._changed = asyncio.Event()
        self._warned_at = -_WARN_EVERY
        #: counters, for tests, benchmarks and the operator
        self.accepted = 0
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0
        self.too_large = 0

    @property
    def open(self) -> int:
        return len(self._open)

    @property
    def evictable(self) -> int:
        return len(self._evictable)

    def admit(self, conn: GuardedHttpToolsProtocol) -> bool:
        """Make room for ``conn`` (evicting the longest-waiting idle connection) or refuse it."""
        if len(self._open) >= self.limits.max_connections:
            victim = next(iter(self._evictable), None)
            if victim is None:
                self.refused += 1
                self._warn("refusing new connections (503)")
                self._notify()
                return False
            self.evicted += 1
            self._warn("closing the longest-waiting connections that have no request in progress")
            victim.evict()
        self._open.add(conn)
        self.accepted += 1
        self._notify()
        return True

    def set_evictable(self, conn: GuardedHttpToolsProtocol, evictable: bool) -> None:
        if evictable == (conn in self._evictable):
            return
        if evictable:
            if conn in self._open:
                self._evictable[conn] = None  # to the end: it starts waiting now
        else:
            del self._evictable[conn]
        self._notify()

    def release(self, conn: GuardedHttpToolsProtocol) -> None:
        if conn in self._open:
            self._open.discard(conn)
            self._evictable.pop(conn, None)
            self._notify()

    async def wait_until(self, predicate: Callable[[ConnectionGuard], bool]) -> None:
        """Return once ``predicate(guard)`` holds (re-checked at every change; for tests and benchmarks)."""
        while not predicate(self):
            self._changed.clear()
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()

    def _warn(self, action: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning("connection cap reached (%d open, --max-connections %d): %s; evicted %d, refused %d so far",
                        len(self._open), self.limits.max_connections, action, self.evicted, self.refused)


def _answer(status: int, error: GatewayError | None) -> bytes:
    body = error.body() if error is not None else b""
    head = [
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        *(f"{name}: {value}" for name, value in (error.headers if error else {}).items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of ``guard`` (see the module docstring)."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading: Literal["head", "body"] | None = "head"
        self._responding = False  # a request of this connection is with the app
        self._clock: Clock | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._fed = 0  # bytes of the current message fed to the parser
        self._body_bytes = 0  # of which body
        self._chunks = 0
        self._fields = 0
        self._over = False
        self._lingering = -1  # after a 431: bytes read and dropped since; -1 when not lingering

    # -- the connection ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.guard.admit(self):
            error = GatewayError(503, f"the gateway has {self.guard.limits.max_connections} connections open, "
                                      "all of them in a request; retry in a moment", type="server_error",
                                 code="too_many_connections", headers={"retry-after": "1"})
            transport.write(_answer(503, error))
            transport.close()
            return
        self._update()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.release(self)
        self._stop_clock()
        super().connection_lost(exc)

    def evict(self) -> None:
        """Called by the guard: close to make room for a newcomer."""
        self.guard.release(self)
        self._stop_clock()
        self.transport.close()

    def shutdown(self) -> None:
        """Server shutdown: a connection that is only draining a refused request closes now."""
        if self._lingering >= 0:
            self.transport.close()
        else:
            super().shutdown()

    def data_received(self, data: bytes) -> None:
        if self._lingering >= 0:
            self._lingering += len(data)
            if self._lingering > _LINGER_BYTES:
                self.transport.close()
            return
        if self._reading is None:
            self._reading = "head"  # the next request's first bytes: its head clock starts now
            self._update()
        self._unset_keepalive_if_required()
        view = memoryview(data)
        while view:
            limit = self.guard.limits.max_head_bytes * (1 if self._reading == "head" else 2)
            room = limit + _CHUNK_FRAMING * self._chunks - (self._fed - self._body_bytes)
            if room <= 0:
                self._reject_head()
                return
            piece, view = view[:room], view[room:]
            try:
                self.parser.feed_data(piece)
            except httptools.HttpParserUpgrade:
                return  # uvicorn's behaviour without websockets: the request went to the app as it was
            except httptools.HttpParserError:
                if self._over:
                    self._reject_head()
                else:
                    msg = "Invalid HTTP request received."
                    self.logger.warning(msg)
                    self.send_400_response(msg)
                return
            # counted after the parser ran: a message that began inside this piece reset the count
            # (its share is then overcounted by the previous message's tail, which only a pipelining
            # client can see)
            self._fed += len(piece)
            if self.transport.is_closing():
                return

    # -- parser callbacks -------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._fed = self._body_bytes = self._chunks = self._fields = 0
        if self._reading is None:  # pipelined: the previous message ended inside the same read
            self._reading = "head"
            self._update()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        if self._fields > self.guard.limits.max_headers:
            self._over = True
            raise ValueError("too many header fields")  # stops the parser; data_received answers 431
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading = "body"
        self._responding = True
        self._fields = 0  # trailers, if any, get a budget of their own
        super().on_headers_complete()
        self._update()

    def on_chunk_header(self) -> None:
        self._chunks += 1

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading = None
        self._update()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        self._responding = bool(self.pipeline) or not (self.cycle is None or self.cycle.response_complete)
        self._update()

    # -- clocks -----------------------------------------------------------------------------------

    def _update(self) -> None:
        """Start the clock the connection's state calls for, unless it already runs; mark it evictable."""
        clock: Clock | None
        if self._lingering >= 0:
            clock = "linger"
        elif self._reading is not None:
            clock = self._reading
        else:
            clock = None if self._responding else "idle"
        self.guard.set_evictable(self, not self._responding)
        if clock == self._clock:
            return
        self._stop_clock()
        if clock is not None:
            limits = self.guard.limits
            seconds = {"head": limits.head_timeout, "body": limits.body_timeout,
                       "idle": limits.keepalive_timeout, "linger": _LINGER_SECONDS}[clock]
            self._clock = clock
            self._timer = self.loop.call_later(seconds, self._expired)

    def _stop_clock(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._clock = None

    def _expired(self) -> None:
        clock, self._timer, self._clock = self._clock, None, None
        if self.transport.is_closing():
            return
        if clock != "linger":
            self.guard.timed_out += 1
        limits = self.guard.limits
        if (clock == "head" and self._fed and not self._responding) or (
            clock == "body" and self.cycle is not None and not self.cycle.response_started
        ):
            seconds = limits.head_timeout if clock == "head" else limits.body_timeout
            what = "request head (request line and headers)" if clock == "head" else "request body"
            self.transport.write(_answer(408, GatewayError(
                408, f"the {what} did not arrive within {seconds:g} seconds", code="request_timeout")))
            if self.cycle is not None:
                self.cycle.keep_alive = False
        self.transport.close()

    def _reject_head(self) -> None:
        """431, then read and drop what is still coming for a moment, so the client sees the answer."""
        self.guard.too_large += 1
        limits = self.guard.limits
        if self.cycle is None or not self._responding or not self.cycle.response_started:
            self.transport.write(_answer(431, GatewayError(
                431, f"the request head is larger than this gateway accepts ({limits.max_head_bytes} bytes, "
                     f"{limits.max_headers} header fields); send fewer or shorter headers (cookies set for localhost "
                     "by other local apps add up)", code="request_header_fields_too_large")))
        if self.cycle is not None:
            self.cycle.keep_alive = False
            if not self.cycle.response_complete:
                self.cycle.disconnected = True  # the app's receive() reports a disconnect
                self.cycle.message_event.set()
        self._lingering = 0
        self._reading = None
        self._responding = False
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._update()


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedHttpToolsProtocol]:
    """A protocol class for one server (uvicorn builds protocols from a class; ours carries its guard)."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"guard": guard})
