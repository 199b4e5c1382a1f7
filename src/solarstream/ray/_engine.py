"""``RayEngine``: the engine of ``solarstream batch --ray`` — a job's requests sent by Ray workers.

The job around it is the batch job's own (``solarstream.batch.job``): INPUT, the pre-pass, OUTPUT
as the journal, resume, progress and the summary all stay on the driver. The engine only changes
who sends:

* ``workers`` ``BatchWorker`` actors (default: the cluster's CPUs) send the requests, each through
  the batch ``Executor`` with a ``SharedLimiter``; one ``LimiterActor`` holds the job's
  ``Limiter``, so ``rpm``/``tpm`` and a 429's pause hold for the whole cluster however many
  workers there are.
* The driver hands out the pending requests — at most ``concurrency`` in flight in all, each to
  the worker with the fewest — and writes each result to OUTPUT as it comes back (the local
  engine's lanes, with a remote call where it would send). Exactly once follows from the journal:
  a request has a record only once the driver wrote it.
* A worker that dies (``ray.kill``, its process killed, its node lost) takes no record with it:
  its requests in flight are sent again by the others, and a new worker takes its place (a few
  times; past that, with no worker left, the job stops and a rerun continues).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ray
from ray.exceptions import NodeDiedError, RayActorError, RayError, RayTaskError, WorkerCrashedError

from ..batch.defaults import DEFAULT_CONCURRENCY, DEFAULT_MAX_ATTEMPTS
from ..batch.engine import Emit, LocalEngine, WorkSource
from ..batch.formats import BatchResult, Work
from ..batch.job import learns_limits
from ..batch.transport import JobStopped, RunStats, batch_retry_policy
from ..errors import InvalidRequestError
from ._cluster import RayEngineError, connect, cpus
from ._limiter import NAMESPACE, LimiterConfig, limiter_actor
from ._provider import ProviderRecipe
from ._worker import WORKER_OPTIONS, Answer, RemoteWorker, Stopped

if TYPE_CHECKING:
    from .._retry import Limiter, RetryPolicy
    from ..providers.openai_compatible import OpenAICompatibleProvider

__all__ = ["RayEngine"]

log = logging.getLogger("solarstream")

#: how long the workers may take to start before the job gives up (a busy cluster, a slow node)
START_TIMEOUT = 180.0
#: what a lost worker is: its process, its node or its actor gone (its requests are sent again)
_LOST = (RayActorError, WorkerCrashedError, NodeDiedError)


@dataclass(eq=False)
class _Slot:
    """One worker: its actor, its requests in flight, whether it is still there."""

    name: str
    actor: Any
    busy: int = 0
    alive: bool = True


class _Pool:
    """The job's workers; a lost one is replaced while the budget lasts."""

    def __init__(self, spawn: Any, size: int, replacements: int) -> None:
        self._spawn = spawn
        self._serial = 0
        self.slots: list[_Slot] = [self._new() for _ in range(size)]
        self.replacements = replacements
        self.lost_count = 0

    def _new(self) -> _Slot:
        self._serial += 1
        name, actor = self._spawn(self._serial)
        return _Slot(name, actor)

    def pick(self) -> _Slot:
        return min((s for s in self.slots if s.alive), key=lambda s: s.busy)

    def lose(self, slot: _Slot, error: BaseException) -> None:
        """``slot`` died (``error``): forget it, start another while the budget lasts."""
        if not slot.alive:
            return
        slot.alive = False
        self.lost_count += 1
        with contextlib.suppress(Exception):
            ray.kill(slot.actor)  # an unreachable one must not go on sending
        log.warning("a Ray worker was lost (%s); its requests in flight are sent again", _first_line(error))
        if self.replacements > 0:
            self.replacements -= 1
            self.slots.append(self._new())
        elif not any(s.alive for s in self.slots):
            message = (f"every Ray worker was lost ({self.lost_count} in all; the last: {_first_line(error)}); "
                       "rerun the same command to continue")
            raise JobStopped(RayEngineError(message), message)

    def kill_all(self) -> None:
        for slot in self.slots:
            if slot.alive:
                with contextlib.suppress(Exception):
                    ray.kill(slot.actor)
        self.slots = []


class _Prepended(WorkSource):
    """``source`` with ``first`` (already taken from it) handed out again first."""

    def __init__(self, first: Work, source: WorkSource) -> None:  # (no super().__init__: it wraps a source)
        self._first: Work | None = first
        self._source = source

    async def next(self) -> Work | None:
        first, self._first = self._first, None
        return first if first is not None else await self._source.next()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


class RayEngine:
    """Runs a batch job's requests on Ray workers (``solarstream batch --ray [ADDRESS]``).

    ``address``: ``None`` (or ``""``) to use ``RAY_ADDRESS``, a cluster started on this machine
    with ``ray start``, or else a new local Ray; ``"auto"`` for an existing cluster only; or an
    address such as ``ray://head:10001``. ``workers``: Ray workers sending requests (default: the
    cluster's CPUs). ``concurrency``: requests in flight in all. ``limiter``: the job's limits
    (its ``rpm``, ``tpm``, ``learn``), held for the whole cluster by one actor; its ``stats`` are
    kept up to date for the progress display and the summary. ``stats``: the job's ``RunStats``.
    """

    def __init__(
        self,
        *,
        provider: OpenAICompatibleProvider,
        limiter: Limiter,
        policy: RetryPolicy | None = None,
        address: str | None = None,
        workers: int | None = None,
        stream: bool = False,
        concurrency: int = DEFAULT_CONCURRENCY,
        stats: RunStats | None = None,
    ) -> None:
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise InvalidRequestError(f"workers must be a whole number, 1 or more, not {workers!r}",
                                      param="ray_workers")
        self.provider = provider
        self.limiter = limiter
        self.policy = policy or batch_retry_policy(DEFAULT_MAX_ATTEMPTS)
        self.address = address or None
        self.workers = workers
        self.stream = stream
        self.concurrency = concurrency
        self.stats = stats or RunStats()
        self._lanes = LocalEngine(self._send, concurrency=concurrency, probe_first=learns_limits(limiter))
        self._pool: _Pool | None = None
        #: the job's id in the names of its actors (``batch-<id>-worker-<n>`` in namespace ``solarstream``)
        self.run_id = secrets.token_hex(4)

    def __repr__(self) -> str:
        return f"RayEngine(address={self.address!r}, workers={self.workers!r}, concurrency={self.concurrency!r})"

    async def run(self, source: WorkSource, emit: Emit) -> None:
        first = await source.next()
        if first is None:
            return  # every request has its record: no cluster needed
        try:
            recipe = ProviderRecipe.of(self.provider)
            started = connect(self.address)
        except (RayEngineError, InvalidRequestError) as exc:
            raise JobStopped(exc, exc.message) from None
        try:
            await self._run(recipe, _Prepended(first, source), emit)
        finally:
            if started:
                ray.shutdown()

    async def _run(self, recipe: ProviderRecipe, source: WorkSource, emit: Emit) -> None:
        config = LimiterConfig.of(self.limiter)
        actor = limiter_actor(config)
        recipe_ref = ray.put(recipe)
        size = self.workers or cpus()
        max_concurrency = self.concurrency + 4  # the job's whole concurrency may land on one worker

        def spawn(serial: int) -> tuple[str, Any]:
            name = f"batch-{self.run_id}-worker-{serial}"
            handle = RemoteWorker.options(**WORKER_OPTIONS, name=name, namespace=NAMESPACE,
                                          max_concurrency=max_concurrency, scheduling_strategy="SPREAD").remote(
                recipe_ref, actor, config, self.policy, self.stream)
            return name, handle

        pool = self._pool = _Pool(spawn, size, replacements=max(3, size))
        sync: asyncio.Task[None] | None = None
        try:
            await self._start(pool)
            sync = asyncio.get_running_loop().create_task(self._keep_stats(actor))
            await self._lanes.run(source, emit)
        finally:
            if sync is not None:
                sync.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sync
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._copy_stats(actor), 5)
            pool.kill_all()
            with contextlib.suppress(Exception):
                ray.kill(actor)
            self._pool = None

    @property
    def worker_names(self) -> list[str]:
        """The named actors of the workers now running (namespace ``solarstream``)."""
        return [s.name for s in self._pool.slots if s.alive] if self._pool is not None else []

    async def _start(self, pool: _Pool) -> None:
        """Wait until every worker is up: a worker that cannot start says why now, not per request."""
        try:
            await asyncio.wait_for(asyncio.gather(*(s.actor.ping.remote() for s in pool.slots)), START_TIMEOUT)
        except asyncio.TimeoutError:
            message = (f"{len(pool.slots)} Ray workers did not start within {START_TIMEOUT:.0f}s: the cluster may "
                       "have no room for them; check 'ray status', or pass fewer --ray-workers")
            raise JobStopped(RayEngineError(message), message) from None
        except RayError as exc:
            message = (f"the Ray workers cannot start: {_first_line(exc)}; every node needs solarstream with "
                       "the 'ray' extra, the same version as the driver (pip install 'solarstream[ray]')")
            raise JobStopped(RayEngineError(message), message) from None

    async def _keep_stats(self, actor: Any) -> None:
        while True:
            await asyncio.sleep(0.5)  # the progress display's pace
            await self._copy_stats(actor)

    async def _copy_stats(self, actor: Any) -> None:
        figures = await actor.stats.remote()
        stats = self.limiter.stats
        stats.waits, stats.waited_seconds = figures["waits"], figures["waited_seconds"]
        stats.rate_limited, stats.pauses = figures["rate_limited"], figures["pauses"]

    async def _send(self, work: Work) -> BatchResult:
        """``work`` sent by the least busy worker; sent again by another if that one is lost."""
        assert self._pool is not None
        pool = self._pool
        while True:
            slot = pool.pick()
            slot.busy += 1
            ref = slot.actor.execute.remote(work)
            try:
                answer: Answer = await ref
            except asyncio.CancelledError:  # the job is interrupted: so is the request
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
                raise
            except RayTaskError as exc:  # (before _LOST: the worker's own call may have met a lost actor)
                message = f"a Ray worker failed: {_first_line(exc)}; rerun the same command to continue"
                raise JobStopped(RayEngineError(message), message) from None
            except _LOST as exc:
                pool.lose(slot, exc)
                continue  # it had no record: another worker sends it
            finally:
                slot.busy -= 1
            return self._outcome(answer)

    def _outcome(self, answer: Answer) -> BatchResult:
        for note in answer.notes:
            log.warning("%s", note)
        outcome = answer.outcome
        if isinstance(outcome, Stopped):
            raise JobStopped(outcome.error, outcome.message)
        self.stats.attempts += outcome.attempts
        self.stats.retries += max(outcome.attempts - 1, 0)
        return outcome
