"""A fake upstream that answers with exact bytes and exact chunking.

Each request takes the next scripted ``Reply`` from a queue. A reply says what status line and
headers to send (or none at all), how the body is framed (Content-Length, chunked, or delimited by
closing the connection), the body pieces (each written and drained on its own, with a few loop
turns between them so the client reads them separately), and how the exchange ends: ``finish``
(keep the connection for the next request), ``close`` (FIN), ``reset`` (RST) or ``hang`` (send
nothing more until the client goes away). The server records every request, counts TCP
connections, and lets tests await client disconnects instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

End = Literal["finish", "close", "reset", "hang"]
Framing = Literal["length", "chunked", "close", "raw"]

_REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    408: "Request Timeout", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}


@dataclass
class Reply:
    """One scripted response. ``status=None`` sends no status line at all (then ``end`` decides)."""

    status: int | None = 200
    headers: Sequence[tuple[str, str]] = (("Content-Type", "text/event-stream"),)
    pieces: Sequence[bytes] = ()
    framing: Framing = "chunked"
    end: End = "finish"
    #: loop turns after each written piece, so the client reads each piece on its own
    turns: int = 3

    def head(self) -> bytes:
        assert self.status is not None
        lines = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        if self.framing == "length":
            lines.append(f"Content-Length: {sum(len(p) for p in self.pieces)}")
        elif self.framing == "chunked":
            lines.append("Transfer-Encoding: chunked")
        elif self.framing == "close":
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Connection:
    index: int
    peer: tuple[str, int]
    requests: int = 0
    #: who ended it: "client" (EOF or reset from the client) or "server" (a scripted close/reset)
    closed_by: str | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class RawServer:
    """``async with RawServer() as server``: serves on 127.0.0.1, a free port, on the running loop."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[Request] = []
        self.conns: list[Connection] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self.port = 0

    # --- scripting and observing -------------------------------------------------------------

    def enqueue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        return len(self.conns)

    @property
    def client_disconnects(self) -> int:
        return sum(1 for c in self.conns if c.closed_by == "client")

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait (event-driven) until ``predicate()`` holds; ``timeout`` only guards against hangs."""
        if predicate():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(future, timeout)
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    async def wait_client_disconnects(self, count: int, timeout: float = 10.0) -> None:
        await self.wait_until(lambda: self.client_disconnects >= count, timeout)

    async def wait_requests(self, count: int, timeout: float = 10.0) -> None:
        await self.wait_until(lambda: len(self.requests) >= count, timeout)

    # --- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def _notify(self) -> None:
        for predicate, future in list(self._waiters):
            if not future.done() and predicate():
                future.set_result(None)

    # --- serving -------------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = writer.get_extra_info("peername")
        conn = Connection(len(self.conns), (peer[0], peer[1]))
        self.conns.append(conn)
        self._notify()
        try:
            conn.closed_by = await self._serve(conn, reader, writer)
        except (ConnectionError, OSError):
            conn.closed_by = "client"
        except asyncio.CancelledError:  # the server is shutting down; end quietly (asyncio's
            conn.closed_by = conn.closed_by or "server"  # stream callback cannot take a cancelled task)
        finally:
            conn.closed.set()
            self._writers.discard(writer)
            if not writer.is_closing():
                writer.close()
            self._tasks.discard(task)
            self._notify()

    async def _serve(self, conn: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return "client"
            request = _parse_request(head, conn.index)
            length = int(request.headers.get("content-length", "0"))
            if request.headers.get("transfer-encoding", "").lower() == "chunked":
                request.body = await _read_chunked(reader)
            elif length:
                request.body = await reader.readexactly(length)
            self.requests.append(request)
            conn.requests += 1
            self._notify()
            reply = self.replies.pop(0) if self.replies else _unscripted()
            outcome = await self._answer(reply, reader, writer)
            if outcome is not None:
                return outcome

    async def _answer(self, reply: Reply, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str | None:
        if reply.status is not None:
            writer.write(reply.head())
            await writer.drain()
            await _turns(reply.turns)
        for piece in reply.pieces:
            if reply.framing == "chunked":
                if not piece:
                    continue
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            else:
                writer.write(piece)
            await writer.drain()
            await _turns(reply.turns)
        if reply.end == "finish":
            if reply.status is not None and reply.framing == "chunked":
                writer.write(b"0\r\n\r\n")
                await writer.drain()
            if reply.framing != "close":
                return None
            reply = Reply(end="close")
        if reply.end == "close":
            writer.close()
            await writer.wait_closed()
            return "server"
        if reply.end == "reset":
            _reset(writer)
            return "server"
        # hang: nothing more until the client goes away
        while await reader.read(65536):
            pass
        return "client"


async def _turns(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _parse_request(head: bytes, connection: int) -> Request:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return Request(method, path, headers, b"", connection)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return body
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def _unscripted() -> Reply:
    body = b'{"error":{"message":"rawserver: no scripted reply left","code":"rawserver_unscripted"}}'
    return Reply(418, (("Content-Type", "application/json"),), [body], framing="length")


# --- helpers to build SSE bodies ---------------------------------------------------------------

CHUNK_ID = "e1a90437-df41-45cd-acc6-a7bacbdd2a86"
MODEL_ID = "solar-pro4-260806"


def chunk(
    content: str | None = None,
    *,
    finish: str | None = None,
    usage: dict[str, Any] | None = None,
    reasoning: str | None = None,
    reasoning_key: str = "reasoning",
    tool_calls: list[dict[str, Any]] | None = None,
    role: str | None = None,
    no_choices: bool = False,
) -> dict[str, Any]:
    """A chat.completion.chunk dict as Upstage sends it."""
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta[reasoning_key] = reasoning
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    obj: dict[str, Any] = {
        "id": CHUNK_ID, "object": "chat.completion.chunk", "created": 1707269210, "model": MODEL_ID,
        "choices": [] if no_choices else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        obj["usage"] = usage
    return obj


def sse(*objs: dict[str, Any] | str, eol: str = "\n") -> bytes:
    """Each object (or raw data string) as one ``data:`` event."""
    out = []
    for obj in objs:
        data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
        out.append(f"data: {data}{eol}{eol}")
    return "".join(out).encode()


def text_stream(pieces: Iterable[str], *, done: bool = True, finish: str | None = "stop",
                usage: dict[str, Any] | None = None) -> bytes:
    """A whole streamed answer whose content deltas are ``pieces``."""
    objs: list[dict[str, Any] | str] = [chunk("", role="assistant")]
    objs += [chunk(p) for p in pieces]
    if finish is not None:
        objs.append(chunk(finish=finish, usage=usage))
    if done:
        objs.append("[DONE]")
    return sse(*objs)


def json_reply(status: int, body: Any, headers: Sequence[tuple[str, str]] = ()) -> Reply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Reply(status, (("Content-Type", "application/json"), *headers), [raw], framing="length")


def sse_reply(body: bytes, *, framing: Framing = "chunked", end: End = "finish",
              headers: Sequence[tuple[str, str]] = ()) -> Reply:
    """A 200 event stream sent as one piece."""
    return Reply(200, (("Content-Type", "text/event-stream"), *headers), [body], framing=framing, end=end)
