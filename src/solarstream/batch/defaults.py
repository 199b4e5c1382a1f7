"""The job's defaults, importable without the rest (the command's ``--help`` shows them)."""

from __future__ import annotations

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_MAX_ATTEMPTS"]

#: requests in flight by default. The limiter, not this, sets the pace: 64 keeps ~640 requests a
#: minute going at 6 s an answer, and requests waiting for the limiter cost nothing but a task
DEFAULT_CONCURRENCY = 64
#: attempts per request for server errors, timeouts and connection errors (429s do not count)
DEFAULT_MAX_ATTEMPTS = 5
