"""Run a command's coroutine on a fresh event loop, turning Ctrl-C into a clean cancellation.

Ctrl-C cancels the running task (so ``async with`` blocks close streams and connections) and
then surfaces as ``KeyboardInterrupt``, which the group turns into exit status 130. The
interactive mode replaces the handler per answer (see ``interactive.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
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
