"""Sync over async: one long-lived background event loop runs the async core for sync callers.

So sync code has no second implementation, and it works from inside a running loop's thread
(Jupyter) without nest_asyncio: the work never runs on the caller's loop.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

__all__ = ["iterate", "run"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="solarstream-sync", daemon=True)
            thread.start()
            _loop, _thread = loop, thread
            atexit.register(_shutdown)
        return _loop


def _shutdown() -> None:
    """Close the sessions opened on the background loop (their closers are async generators)."""
    global _loop, _thread
    loop, thread = _loop, _thread
    _loop = _thread = None
    if loop is None or thread is None or not thread.is_alive():
        return
    with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
        asyncio.run_coroutine_threadsafe(loop.shutdown_asyncgens(), loop).result(timeout=5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    if not thread.is_alive():
        loop.close()


def _wait(future: concurrent.futures.Future[T]) -> T:
    try:
        return future.result()
    except BaseException:
        # KeyboardInterrupt in the caller's thread: cancel the work on the loop as well
        future.cancel()
        raise


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the background loop and wait for its result."""
    loop = _background_loop()
    if threading.current_thread() is _thread:
        coro.close()
        raise RuntimeError("solarstream's sync API cannot be called from its own background loop")
    return _wait(asyncio.run_coroutine_threadsafe(coro, loop))


def iterate(source: AsyncIterator[T]) -> Iterator[T]:
    """Drive an async iterator from sync code, one item at a time; closing it closes the source."""
    loop = _background_loop()
    try:
        while True:
            try:
                yield _wait(asyncio.run_coroutine_threadsafe(_next(source), loop))
            except StopAsyncIteration:
                return
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None and loop.is_running():
            with contextlib.suppress(
                concurrent.futures.TimeoutError, concurrent.futures.CancelledError, RuntimeError
            ):
                asyncio.run_coroutine_threadsafe(aclose(), loop).result(timeout=5)


async def _next(source: AsyncIterator[T]) -> T:
    return await source.__anext__()
