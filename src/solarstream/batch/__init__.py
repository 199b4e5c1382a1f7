"""Batch jobs: many chat requests at the account's rate limit, resumable, exactly once.

::

    from solarstream import batch

    summary = batch.run("requests.jsonl", model="solar-mini")       # -> requests.results.jsonl
    print(summary.succeeded, summary.failed, summary.ok)
    summary = await batch.arun("prompts.txt", "out.jsonl", prompts=True, model="solar-mini", rpm=100)

    async for result in batch.aresults(({"messages": [...]} for row in rows), model="solar-mini"):
        print(result.custom_id, result.ok, result.content)

The pieces (each engine-agnostic, so other engines reuse them): ``formats`` (the line shapes and
records), ``reader`` (INPUT, streamed), ``prepass`` (every line checked before anything is sent),
``ids`` (a compact table of ids), ``journal`` (OUTPUT: resume, torn lines, atomic rewrites),
``transport`` (one request through the core's limiter and retry policy), ``engine`` (the local
engine and the engine interface), ``job`` (the steps of a run), ``progress`` and ``summary``.
See docs/batch.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .defaults import DEFAULT_CONCURRENCY, DEFAULT_MAX_ATTEMPTS

if TYPE_CHECKING:
    from .api import aresults, arun, results, run
    from .engine import EngineUnavailable
    from .formats import BatchResult
    from .journal import OutputError
    from .prepass import BatchInputError
    from .summary import BatchSummary

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_ATTEMPTS",
    "BatchInputError",
    "BatchResult",
    "BatchSummary",
    "EngineUnavailable",
    "OutputError",
    "aresults",
    "arun",
    "results",
    "run",
]

#: loaded on first use, so ``import solarstream.batch`` (and the command's ``--help``) stays cheap
_HOMES = {
    "aresults": ".api",
    "arun": ".api",
    "results": ".api",
    "run": ".api",
    "EngineUnavailable": ".engine",
    "BatchResult": ".formats",
    "OutputError": ".journal",
    "BatchInputError": ".prepass",
    "BatchSummary": ".summary",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'solarstream.batch' has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
