"""The router's stream: a ``ChatStream`` that fails over until output, then is the chosen upstream's.

Opening it (``start()``, which ``AsyncClient.create(stream=True)`` calls, or the first iteration)
runs the router's loop: each attempt opens a deployment's stream and reads it up to its first chunk
that carries output, holding back what came before (the role announcement). Nothing is handed out
before that, so a failure there moves to the next deployment without a duplicated or reordered
piece. From the first output on, the stream belongs to that deployment and its failures are raised
as they are (``StreamTruncatedError``, ...): ``started`` is then true.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from .._stream import ChatStream, carries_output
from ..errors import SolarstreamError

__all__ = ["Opened", "RoutedStream", "carries_output"]

#: leading chunks without output held back at most (a broken upstream could send them forever)
MAX_HELD = 64


class Opened:
    """A deployment's stream, read up to its first output: the chunks held so far and the bookkeeping
    to run when it ends (``finish(error)``: counts a success or a failure, once)."""

    __slots__ = ("_finish", "deployment", "held", "inner")

    def __init__(self, inner: ChatStream, held: list[dict[str, Any]], deployment: str,
                 finish: Callable[[ChatStream, SolarstreamError | None], None]) -> None:
        self.inner = inner
        self.held = held
        self.deployment = deployment
        self._finish: Callable[[ChatStream, SolarstreamError | None], None] | None = finish

    def finish(self, error: SolarstreamError | None) -> None:
        finish, self._finish = self._finish, None
        if finish is not None:
            finish(self.inner, error)


async def _never() -> Any:
    raise AssertionError("a routed stream opens through its router")


class RoutedStream(ChatStream):
    """See the module docstring. ``deployment`` names the deployment that answered, once one has."""

    def __init__(self, open_routed: Callable[[], Awaitable[Opened]], *, model: str) -> None:
        super().__init__(_never, model=model)
        self._open_routed = open_routed
        self._opened: Opened | None = None

    @property
    def deployment(self) -> str | None:
        return self._opened.deployment if self._opened is not None else None

    async def start(self) -> None:
        """Choose a deployment and read its stream up to the first output, failing over as needed;
        an error that no deployment got past raises here."""
        if self._opened is None and self._payloads is None and not self._closed:
            self._opened = await self._open_routed()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        opened = self._opened
        error: SolarstreamError | None = None
        try:
            if opened is None:
                opened = self._opened = await self._open_routed()
            track = self._track
            held, opened.held = opened.held, []
            for payload in held:
                track(payload)
                yield payload
            inner = opened.inner
            async for payload in inner.payloads():  # the generator the attempt paused at its first output
                track(payload)
                yield payload
            self.done = inner.done
        except SolarstreamError as exc:
            error = exc
            raise
        finally:
            self._closed = True
            if opened is not None:
                await opened.inner.aclose()
                opened.finish(error if error is not None or self.done else _CLOSED_EARLY)
            self._closing()

    async def aclose(self) -> None:
        self._closed = True
        if self._payloads is not None:
            await self._payloads.aclose()  # type: ignore[attr-defined]
        if self._opened is not None:  # started and never iterated (else these have been done: no-ops)
            await self._opened.inner.aclose()
            self._opened.finish(_CLOSED_EARLY)
        self._closing()

    @property
    def request_id(self) -> str | None:
        return self._opened.inner.request_id if self._opened is not None else None

    @property
    def response_headers(self) -> Mapping[str, str]:
        return self._opened.inner.response_headers if self._opened is not None else {}


class _ClosedEarly(SolarstreamError):
    """Marker: the caller stopped reading (neither a success nor a failure of the deployment)."""


_CLOSED_EARLY = _ClosedEarly("closed by the caller before the end")
