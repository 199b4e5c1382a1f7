"""Library log lines during a job: each distinct one once, and no per-request retry lines.

A job makes the same request a million times: a retired model name would log its warning for
every line, and every retry its own "retrying in ..." line. While a job runs, this filter on the
``solarstream`` logger lets each distinct message through once and drops the retry lines (the
job counts retries itself: ``BatchSummary.retries``, the progress display).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

__all__ = ["once_per_job"]

_MAX_REMEMBERED = 1000


class _OncePerJob(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.funcName == "call_with_retries":
            return False
        message = record.getMessage()
        if message in self._seen:
            return False
        if len(self._seen) < _MAX_REMEMBERED:
            self._seen.add(message)
        return True


@contextlib.contextmanager
def once_per_job() -> Iterator[None]:
    logger = logging.getLogger("solarstream")
    job_filter = _OncePerJob()
    logger.addFilter(job_filter)
    try:
        yield
    finally:
        logger.removeFilter(job_filter)
