"""A raw HTTP/1.1 client for the gateway's network-boundary tests: the exact bytes a hostile client
sends (half heads, forged paths, floods), and the server's answer as it came, or its closing."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["RawClient", "RawClients", "RawResponse", "request_bytes"]

#: a hang guard for each read, not a timing assertion
READ_TIMEOUT = 10.0


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names; the last value wins
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request_bytes(method: str, target: str, host: str, headers: dict[str, str] | None = None,
                  body: bytes = b"") -> bytes:
    """A request as bytes, headers in the order given (Host first)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
        self.reader = reader
        self.writer = writer
        self.port = port

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        return cls(reader, writer, port)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def request(self, method: str, target: str, headers: dict[str, str] | None = None,
                      body: bytes = b"") -> RawResponse:
        await self.send(request_bytes(method, target, self.host, headers, body))
        return await self.response()

    async def response(self) -> RawResponse:
        """The next response (its body by Content-Length, or up to the close)."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await asyncio.wait_for(self.reader.readexactly(int(headers["content-length"])), READ_TIMEOUT)
        else:
            body = await self.rest()
        return RawResponse(int(status_line.split()[1]), headers, body)

    async def rest(self, timeout: float = READ_TIMEOUT) -> bytes:
        """What the server sends until it closes the connection (a reset counts as closing)."""
        return await asyncio.wait_for(self._read_all(), timeout)

    async def _read_all(self) -> bytes:
        chunks = []
        try:
            while chunk := await self.reader.read(65536):
                chunks.append(chunk)
        except (ConnectionResetError, BrokenPipeError):
            pass
        return b"".join(chunks)

    def close(self) -> None:
        self.writer.close()


class RawClients:
    """Opens raw connections and closes every one of them at the end (a test's fixture)."""

    def __init__(self) -> None:
        self.opened: list[RawClient] = []

    async def connect(self, port: int) -> RawClient:
        client = await RawClient.connect(port)
        self.opened.append(client)
        return client

    async def aclose(self) -> None:
        for client in self.opened:
            client.close()
        for client in self.opened:
            with contextlib.suppress(ConnectionError):
                await client.writer.wait_closed()

