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

__all__ = ["run"]

T = TypeVar("T")


class _StderrLines(logging.Handler):
    """Library warnings (a retired model name, a retry) as one plain line each on stderr
    (whatever ``sys.stderr`` is at the time, so test runners that swap it see them)."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(f"solarstream: {record.levelname.lower()}: {record.getMessage()}\n")
        sys.stderr.flush()


def run(main: Coroutine[Any, Any, T]) -> T:
    log = logging.getLogger("solarstream")
    handler = _StderrLines(logging.WARNING)
    log.addHandler(handler)
    loop = asyncio.new_event_loop()
    task = loop.create_task(main)
    interrupted = False

    def on_interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        task.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not main thread, Windows
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not main thread, Windows
            loop.remove_signal_handler(signal.SIGINT)
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            log.removeHandler(handler)
