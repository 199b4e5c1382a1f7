"""Engines: what runs a job's pending requests. The job around them (reading INPUT, the pre-pass,
resuming, writing OUTPUT, progress) is the same whatever the engine.

An engine takes a ``WorkSource`` (the requests still to send, handed out one at a time) and
reports each ``BatchResult`` to ``emit`` as it completes. It raises ``JobStopped`` when an answer
means no other request can succeed, and is cancelled to interrupt. ``LocalEngine`` runs the
requests on this event loop; a Ray engine (``--ray``) plugs in through ``select_engine``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Protocol

from ..errors import InvalidRequestError
from .defaults import DEFAULT_CONCURRENCY
from .formats import BatchResult, Work

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Engine",
    "EngineFactory",
    "EngineUnavailable",
    "LocalEngine",
    "WorkSource",
    "select_engine",
]

Emit = Callable[[BatchResult], Awaitable[None]]

_END: Work = Work("", 0, "", None)  # the end of a sync source (a Work no line can produce: line 0)


class WorkSource:
    """The requests still to send, handed to the engine's workers one at a time: from a sync
    iterator (the INPUT reader), which may yield ``None`` to mean "nothing yet, let the event loop
    run" (so skipping a million done lines never blocks Ctrl-C), or from an async iterator (a
    caller's generator)."""

    def __init__(self, items: Iterable[Work | None] | AsyncIterator[Work]) -> None:
        self._sync: Iterator[Work | None] | None = None
        self._async: AsyncIterator[Work] | None = None
        if isinstance(items, AsyncIterator):
            self._async = items
        else:
            self._sync = iter(items)
        self._lock = asyncio.Lock()
        self.exhausted = False

    async def next(self) -> Work | None:
        """The next request, or ``None`` when there are no more."""
        item: Work | None
        if self.exhausted:
            return None
        if self._sync is not None:
            # no await inside next(): workers never interleave there
            item = next(self._sync, _END)
            while item is None:  # the source asks to let the event loop run
                await asyncio.sleep(0)
                item = next(self._sync, _END)
            if item is _END:
                item = None
        else:
            assert self._async is not None
            async with self._lock:  # an async generator must not be entered twice at once
                if self.exhausted:
                    return None
                try:
                    item = await self._async.__anext__()
                except StopAsyncIteration:
                    item = None
        if item is None:
            self.exhausted = True
        return item


class Engine(Protocol):
    """Runs the requests of ``source``, reporting each result to ``emit`` in completion order."""

    async def run(self, source: WorkSource, emit: Emit) -> None: ...


class LocalEngine:
    """``concurrency`` workers on this event loop, each taking the next request when its last is done.

    ``execute`` turns one ``Work`` into its result (``transport.Executor``). A ``JobStopped`` from
    one request cancels the others in flight (they get no record) and is raised. With
    ``probe_first`` the first request goes alone: when the limits are to be learned from the
    API's headers, its answer tells them before a burst of ``concurrency`` requests could hit them.
    """

    def __init__(self, execute: Callable[[Work], Awaitable[BatchResult]], *,
                 concurrency: int = DEFAULT_CONCURRENCY, probe_first: bool = False) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidRequestError(f"concurrency must be a whole number, 1 or more, not {concurrency!r}",
                                      param="concurrency")
        self.execute = execute
        self.concurrency = concurrency
        self.probe_first = probe_first

    async def run(self, source: WorkSource, emit: Emit) -> None:
        async def worker() -> None:
            while (work := await source.next()) is not None:
                await emit(await self.execute(work))

        if self.probe_first:
            first = await source.next()
            if first is None:
                return
            await emit(await self.execute(first))
        workers = [asyncio.create_task(worker()) for _ in range(self.concurrency)]
        try:
            done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in workers:
                task.cancel()
            for task in workers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


class EngineUnavailable(InvalidRequestError):
    """The engine asked for is not installed or does not exist yet (a usage error: exit status 2)."""


#: what builds an engine other than the local one; the command calls it as
#: ``factory(address=, workers=, provider=, limiter=, policy=, stream=, concurrency=, stats=)``
#: (``address`` is ``""`` for a bare ``--ray``; ``stats`` the job's ``RunStats``, which the engine
#: counts attempts and retries into) and hands the engine to the job
EngineFactory = Callable[..., Engine]


def select_engine(ray: str | None = None, ray_workers: int | None = None) -> EngineFactory | None:
    """The factory of the engine asked for: ``None`` for the local engine, else the Ray engine's
    (``solarstream.ray.RayEngine``), or ``EngineUnavailable`` saying what to install."""
    if ray is None:
        if ray_workers is not None:
            raise InvalidRequestError("--ray-workers needs --ray (the Ray engine)", param="ray_workers")
        return None
    try:
        module = importlib.import_module("solarstream.ray")
        factory: EngineFactory = module.RayEngine
    except (ImportError, AttributeError):
        raise EngineUnavailable(
            "the Ray engine is not available: Ray is not installed; pip install 'solarstream[ray]' "
            "(or run without --ray to use the local engine)", param="ray") from None
    return factory
