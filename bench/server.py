"""A minimal HTTP/1.1 server that streams pre-encoded chat chunks, fast enough not to be measured.

Raw ``asyncio.Protocol``: it parses just enough of a request (request line, Content-Length, the body),
keeps connections alive, honours write flow control (so 500 slow readers do not pile up hundreds of
megabytes in its buffers), and answers ``POST /v1/chat/completions`` and ``/v1/solar/chat/completions``
with a pre-built ``text/event-stream`` body. The number of text chunks is asked for in the messages
(``bench:chunks=N``, see ``payload.messages_for``). Run it alone with ``python -m bench.server``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import deque

from .payload import chunk_count_of, sse_body

__all__ = ["CHAT_PATHS", "BenchServer", "start_server"]

CHAT_PATHS = frozenset({b"/v1/chat/completions", b"/v1/solar/chat/completions"})
_SLICE = 256 * 1024
_MAX_HEADER = 64 * 1024
_CLOSE = memoryview(b"")  # a marker in the write queue: close the connection after what precedes it


def _head(status: str, content_type: bytes, extra: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: " + content_type
        + b"\r\nCache-Control: no-cache\r\nx-request-id: bench\r\n" + extra + b"\r\n"
    )


class _Connection(asyncio.Protocol):
    __slots__ = ("_buffer", "_chunked", "_paused", "_queue", "_transport")

    def __init__(self, chunked: bool) -> None:
        self._chunked = chunked
        self._buffer = bytearray()
        self._queue: deque[memoryview] = deque()
        self._paused = False
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._queue.clear()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._pump()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEADER:
                    self._transport.close()
                return
            head = bytes(self._buffer[:end])
            lines = head.split(b"\r\n")
            length, close = 0, False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value.strip())
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
            if len(self._buffer) < end + 4 + length:
                return  # wait for the whole body
            body = bytes(self._buffer[end + 4 : end + 4 + length])
            del self._buffer[: end + 4 + length]
            self._answer(lines[0], body, close)

    def _answer(self, request_line: bytes, body: bytes, close: bool) -> None:
        method, _, rest = request_line.partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        if method == b"POST" and path in CHAT_PATHS:
            payload = sse_body(chunk_count_of(body), self._chunked)
            framing = b"Transfer-Encoding: chunked\r\n" if self._chunked else b"Content-Length: %d\r\n" % len(
                payload)
            self._send(_head("200 OK", b"text/event-stream", framing), payload)
        elif path == b"/health":
            self._send(_head("200 OK", b"text/plain", b"Content-Length: 2\r\n"), b"ok")
        else:
            error = b'{"error":{"message":"no such route in the bench server","code":"not_found"}}'
            self._send(_head("404 Not Found", b"application/json", b"Content-Length: %d\r\n" % len(error)),
                       error)
        if close:
            self._queue.append(_CLOSE)
            self._pump()

    def _send(self, head: bytes, payload: bytes) -> None:
        self._queue.append(memoryview(head))
        view = memoryview(payload)
        self._queue.extend(view[i : i + _SLICE] for i in range(0, len(view), _SLICE))
        self._pump()

    def _pump(self) -> None:
        transport = self._transport
        while self._queue and not self._paused and transport is not None:
            piece = self._queue.popleft()
            if piece is _CLOSE:
                transport.close()
                return
            transport.write(piece)


class BenchServer:
    """The server on the running loop; ``base_url`` is what clients are given."""

    def __init__(self, server: asyncio.Server) -> None:
        self._server = server
        self.port: int = server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    async def aclose(self) -> None:
        self._server.close()
        await self._server.wait_closed()


async def start_server(host: str = "127.0.0.1", port: int = 0, *, chunked: bool = True) -> BenchServer:
    """Listen with a backlog deep enough for 500 simultaneous connects (no SYN retransmits)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(chunked), host, port, backlog=2048)
    return BenchServer(server)


async def _serve(port: int, chunked: bool) -> None:
    server = await start_server(port=port, chunked=chunked)
    print(server.port, flush=True)  # the parent reads the port from the first line
    try:
        await asyncio.Event().wait()
    finally:
        await server.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--content-length", action="store_true", help="Content-Length instead of chunked")
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    try:
        asyncio.run(_serve(args.port, not args.content_length))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
