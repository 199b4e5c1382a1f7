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
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, TypeVar

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from .._stream import ChatStream
from ..errors import SolarstreamError
from ..types import ChatCompletionChunk
from .errors import GatewayError, error_frame, from_exception

__all__ = ["DONE", "ClientGone", "EventStreamResponse", "chunk_frame", "race_disconnect"]

log = logging.getLogger("solarstream.server")

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
T = TypeVar("T")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def chunk_frame(chunk: ChatCompletionChunk) -> bytes:
    return b"data: " + _dumps(chunk.to_dict()) + b"\n\n"


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
        first: list[ChatCompletionChunk],
        *,
        draining: asyncio.Event,
        on_close: Callable[[ChatStream, Outcome], None],
    ) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers(SSE_HEADERS)
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
        if self._first:
            await send(_body(b"".join(chunk_frame(chunk) for chunk in self._first)))
        try:
            async for chunk in self._stream:
                await send(_body(chunk_frame(chunk)))
        except SolarstreamError as exc:
            error = from_exception(exc)
            log.warning("upstream stream failed after it started: %s", error.message)
            await send(_body(error_frame(error) + DONE, more=False))
            return "error"
        await send(_body(DONE, more=False))
        return "done"


def _body(data: bytes, *, more: bool = True) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}
