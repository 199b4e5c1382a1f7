"""A minimal HTTP/1.1 server answering every chat request with one pre-encoded completion.

For bench/batch.py's overhead figure: it must cost far less than the clients it serves, so it is a
raw ``asyncio.Protocol`` that parses only the request line, ``Content-Length`` and the body, keeps
connections alive, and writes the same bytes every time (a ``chat.completion`` with usage and an
``x-request-id``). Run it alone with ``python -m bench.batch_server``; it prints its port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

__all__ = ["COMPLETION", "RESPONSE", "start"]

COMPLETION = json.dumps({
    "id": "bench-completion", "object": "chat.completion", "created": 1707269210, "model": "solar-mini-250422",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "A pre-encoded benchmark answer."},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
}, separators=(",", ":")).encode()

RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-request-id: bench-request\r\n"
            b"Content-Length: %d\r\n\r\n" % len(COMPLETION)) + COMPLETION
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
_MAX_HEAD = 64 * 1024


def _content_length(head: bytes) -> int:
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    value = head[at + len(b"\r\ncontent-length:"):]
    return int(value.split(b"\r\n", 1)[0])


class _Connection(asyncio.Protocol):
    __slots__ = ("_buffer", "_transport")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        out = []
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEAD and self._transport is not None:
                    self._transport.close()
                break
            head = bytes(self._buffer[:end]).lower()
            length = _content_length(head)
            if len(self._buffer) < end + 4 + length:
                break
            del self._buffer[:end + 4 + length]
            out.append(RESPONSE if head.startswith(b"post /v1/chat/completions ") else _NOT_FOUND)
        if out and self._transport is not None:
            self._transport.write(b"".join(out))


async def start(host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(_Connection, host, port, backlog=2048)


async def _serve(port: int) -> None:
    server = await start(port=port)
    print(server.sockets[0].getsockname()[1], flush=True)  # the parent reads the port from the first line
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    try:
        asyncio.run(_serve(args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
