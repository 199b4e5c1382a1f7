"""Run a command's coroutine on a fresh event loop, turning Ctrl-C into a clean cancellation.

Ctrl-C cancels the running task (so ``async with`` blocks close streams and connections) and
then surfaces as ``KeyboardInterrupt``, which the group turns into exit status 130. The
interactive mode replaces the handler per answer (see ``interactive.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["SigintCancels", "run"]

T = TypeVar("T")


class _StderrLines(logging.Handler):
    """Library warnings (a retired model name, a retry) as one plain line each on stderr
    (whatever ``sys.stderr`` is at the time, so test runners that swap it see them)."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(f"solarstream: {record.levelname.lower()}: {record.getMessage()}\n")
        sys.stderr.flush()


class SigintCancels:
    """While active, Ctrl-C cancels ``task`` (so its ``async with`` blocks close streams and
    connections) instead of raising ``KeyboardInterrupt`` wherever the loop happens to be."""

    def __init__(self, loop: asyncio.AbstractEventLoop, task: asyncio.Future[Any]) -> None:
        self._loop = loop
        self._task = task
        #: whether Ctrl-C was pressed (a cancellation from elsewhere leaves it False)
        self.interrupted = False

    def _on_interrupt(self) -> None:
        self.interrupted = True
        self._task.cancel()

    def __enter__(self) -> SigintCancels:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not main thread, Windows
            self._loop.add_signal_handler(signal.SIGINT, self._on_interrupt)
        return self

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            self._loop.remove_signal_handler(signal.SIGINT)  # back to KeyboardInterrupt


def run(main: Coroutine[Any, Any, T]) -> T:
    log = logging.getLogger("solarstream")
    handler = _StderrLines(logging.WARNING)
    log.addHandler(handler)
    loop = asyncio.new_event_loop()
    task = loop.create_task(main)
    sigint = SigintCancels(loop, task)
    try:
        with sigint:
            return loop.run_until_complete(task)
    except asyncio.CancelledError:
        if sigint.interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            log.removeHandler(handler)
