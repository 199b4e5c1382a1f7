"""Server-sent events out: frames, and a response that stops the upstream the moment the client goes.

Starlette's ``StreamingResponse`` (ASGI spec 2.4 servers such as uvicorn) notices a disconnect only
when its next write fails, so a slow upstream would keep running for nothing. ``EventStreamResponse``
watches ``receive()`` for ``http.disconnect`` beside the pump and cancels it at once; cancelling the
pump closes the upstream connection (``ChatStream`` closes its response on cancellation). It also
watches the gateway's drain event, so a shutting-down server ends every stream with an in-band
error and ``[DONE]`` instead of cutting the socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from typing import Any, TypeVar

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from .._json import dumps
from .._stream import ChatStream
from ..errors import SolarstreamError
from .errors import GatewayError, error_frame, from_exception

__all__ = ["DONE", "ClientGone", "EventStreamResponse", "chunk_frame", "race_disconnect"]

log = logging.getLogger("solarstream.server")

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
T = TypeVar("T")


def chunk_frame(payload: dict[str, Any]) -> bytes:
    """One upstream chunk, forwarded as it came (parsed and checked by ``ChatStream``, not rebuilt)."""
    return b"data: " + dumps(payload) + b"\n\n"


class ClientGone(Exception):
    """The client disconnected before the answer started."""


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def race_disconnect(receive: Receive, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` unless the client disconnects first; then cancel it and raise ``ClientGone``."""
    work = asyncio.ensure_future(awaitable)
    watcher = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        work.cancel()
        raise
    finally:
        watcher.cancel()
    if work.done():
        return work.result()
    work.cancel()
    with suppress(asyncio.CancelledError, Exception):
        await work
    raise ClientGone


#: how a stream ended, for the access log: "done", "error", "client_disconnected", "shutdown"
Outcome = str


class EventStreamResponse(Response):
    """Streams the chunks already read (``first``), then the rest of ``stream``, as SSE frames."""

    media_type = "text/event-stream"

    def __init__(
        self,
        stream: ChatStream,
        first: list[dict[str, Any]],
        *,
        draining: asyncio.Event,
        on_close: Callable[[ChatStream, Outcome], None],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers({**SSE_HEADERS, **(headers or {})})
        self._stream = stream
        self._first = first
        self._draining = draining
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outcome: Outcome = "done"
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            pump = asyncio.ensure_future(self._pump(send))
            gone = asyncio.ensure_future(_wait_disconnect(receive))
            drain = asyncio.ensure_future(self._draining.wait())
            try:
                await asyncio.wait({pump, gone, drain}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                gone.cancel()
                drain.cancel()
                if not pump.done():
                    pump.cancel()
                    with suppress(asyncio.CancelledError):
                        await pump
            if not pump.cancelled():
                outcome = pump.result()
            elif gone.done() and not gone.cancelled():
                outcome = "client_disconnected"
            else:
                outcome = "shutdown"
                error = GatewayError(503, "the gateway is shutting down; the answer is incomplete, retry the "
                                          "request", type="server_error", code="server_shutting_down")
                await send(_body(error_frame(error) + DONE, more=False))
        finally:
            await self._stream.aclose()
            self._on_close(self._stream, outcome)

    async def _pump(self, send: Send) -> Outcome:
        """Forward frames, one write per batch: a reader turns chunks into frames while the writer
        sends whatever has piled up since its last write (all the chunks of one upstream read, say),
        so a fast upstream costs one socket write per read, not one per chunk."""
        frames = [chunk_frame(payload) for payload in self._first]
        wake = asyncio.Event()
        room = asyncio.Event()
        room.set()
        outcome: Outcome = ""

        async def read() -> None:
            nonlocal outcome
            try:
                async for payload in self._stream.payloads():
                    frames.append(chunk_frame(payload))
                    wake.set()
                    if len(frames) >= _MAX_PENDING_FRAMES:  # the client reads slower than upstream sends
                        room.clear()
                        await room.wait()
                frames.append(DONE)
                outcome = "done"
            except SolarstreamError as exc:
                error = from_exception(exc)
                log.warning("upstream stream failed after it started: %s", error.message)
                frames.append(error_frame(error) + DONE)
                outcome = "error"
            except Exception:
                log.exception("internal error while streaming")
                frames.append(error_frame(from_exception(RuntimeError())) + DONE)
                outcome = "error"
            finally:
                wake.set()

        reader = asyncio.ensure_future(read())
        try:
            while True:
                await wake.wait()
                wake.clear()
                finished = bool(outcome)
                data = b"".join(frames)
                frames.clear()
                room.set()
                if finished:
                    await send(_body(data, more=False))
                    return outcome
                if data:
                    await send(_body(data))
        finally:
            if not reader.done():
                reader.cancel()
                with suppress(asyncio.CancelledError):
                    await reader


#: frames the reader may queue before it waits for the writer (backpressure from a slow client)
_MAX_PENDING_FRAMES = 256


def _body(data: bytes, *, more: bool = True) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}
