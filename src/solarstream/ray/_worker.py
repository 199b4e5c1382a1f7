"""``BatchWorker``: the Ray actor that sends a job's requests, one ``Work`` in, one ``BatchResult`` out.

Each request goes through the batch job's own ``Executor`` (the provider's ``prepare_chat``, the
core's retry loop, the job's error rules), with the cluster's ``SharedLimiter``. A worker writes
nothing: the result goes back to the driver, which keeps OUTPUT, so a worker killed mid-request
leaves no trace and its request is simply sent again by another. An answer that stops the job
comes back as a ``Stopped`` value (an exception would arrive wrapped in Ray's own).

Library warnings (a retired model name) are collected, each distinct one once, and go back with
the results for the driver to show once per job, instead of each worker printing its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import ray

from .._retry import RetryPolicy
from ..batch.formats import BatchResult, Work
from ..batch.logs import once_per_job
from ..batch.transport import Executor, JobStopped
from ..errors import SolarstreamError
from ._limiter import LimiterConfig, SharedLimiter
from ._provider import ProviderRecipe

__all__ = ["WORKER_OPTIONS", "Answer", "BatchWorker", "RemoteWorker", "Stopped"]


@dataclass(frozen=True)
class Stopped:
    """A ``JobStopped`` as a value: the error and the job's message for it."""

    error: SolarstreamError
    message: str


@dataclass(frozen=True)
class Answer:
    """What ``execute`` returns: the outcome, and warnings logged since the last answer."""

    outcome: BatchResult | Stopped
    notes: tuple[str, ...] = field(default=())


class _Notes(logging.Handler):
    """Collects the ``solarstream`` logger's warnings (deduplicated by the job's filter)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.pending) < 100:
            self.pending.append(record.getMessage())

    def take(self) -> tuple[str, ...]:
        notes, self.pending = tuple(self.pending), []
        return notes


class BatchWorker:
    """One worker of a Ray batch job (an async actor: ``execute`` runs many requests at once)."""

    def __init__(self, recipe: ProviderRecipe, limiter: Any, config: LimiterConfig, policy: RetryPolicy,
                 stream: bool) -> None:
        self._recipe = recipe
        self._limiter = SharedLimiter(limiter, config)
        self._policy = policy
        self._stream = stream
        self._executor: Executor | None = None
        self._notes = _Notes()
        self._logs = contextlib.ExitStack()
        logger = logging.getLogger("solarstream")
        logger.addHandler(self._notes)
        logger.propagate = False  # Ray would print a worker's stderr on the driver as well
        self._logs.enter_context(once_per_job())

    def _get_executor(self) -> Executor:
        if self._executor is None:
            self._executor = Executor(self._recipe.build(), limiter=self._limiter, policy=self._policy,
                                      stream=self._stream)
        return self._executor

    async def execute(self, work: Work) -> Answer:
        """Send ``work``; its result (or the stop it met) and the warnings logged meanwhile."""
        try:
            outcome: BatchResult | Stopped = await self._get_executor()(work)
        except JobStopped as stop:
            outcome = Stopped(stop.error, stop.message)
        return Answer(outcome, self._notes.take())

    async def ping(self) -> int:
        """The worker's process id, once it is up (its provider is built on first use)."""
        return os.getpid()

    async def aclose(self) -> None:
        if self._executor is not None:
            await self._executor.provider.aclose()


RemoteWorker: Any = ray.remote(BatchWorker)
#: no CPU reserved (a worker waits on the network); never restarted by Ray: the driver sends a lost
#: worker's requests again itself, and starts another worker
WORKER_OPTIONS: dict[str, Any] = {"num_cpus": 0, "max_restarts": 0, "max_task_retries": 0}
