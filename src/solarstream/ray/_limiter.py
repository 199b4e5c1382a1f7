"""One limiter for a whole Ray cluster: a Ray actor holding the core ``Limiter``, and its stand-in on workers.

The pacing is the core's (``solarstream.Limiter``: GCRA on requests and estimated tokens, one
pause for everyone on a 429, limits learned from the headers); nothing here paces. The actor
runs ``Limiter.acquire`` on its own event loop, so every worker of every node draws its request
and token capacity from one budget and one clock, and a worker's call returns when its request
may start. ``SharedLimiter`` is what a worker hands to the core's retry loop in place of a local
``Limiter``: each ``acquire`` is one call to the actor; a 429, the limits a response advertised
and the tokens an answer used go to the actor with the next call (429s first, so the pause
covers the next request of the worker that hit it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
from dataclasses import dataclass
from typing import Any

import ray

from .._http import NO_DEADLINE, Deadline
from .._retry import Grant, Limiter, RateLimitFacts, usable_delay
from ..errors import APITimeoutError, RateLimitError

__all__ = ["LimiterActor", "LimiterConfig", "SharedLimiter", "limiter_actor", "limiter_name"]

#: Ray namespace of the named limiter actors (so stages of different drivers of one job find them)
NAMESPACE = "solarstream"
#: calls the actor serves at once: every request waiting for its slot is one
_MAX_CONCURRENCY = 100_000
#: grants kept for settling; the oldest are dropped past this (grants of killed workers)
_MAX_GRANTS = 200_000


@dataclass(frozen=True)
class LimiterConfig:
    """What the cluster's ``Limiter`` is built from (a ``Limiter`` itself does not travel)."""

    rpm: float | None = None
    tpm: float | None = None
    headroom: float = 0.97
    learn: bool = False

    @classmethod
    def of(cls, limiter: Limiter) -> LimiterConfig:
        return cls(limiter.rpm, limiter.tpm, limiter.headroom, limiter.learn)

    @property
    def settles(self) -> bool:
        """Whether answers' usage changes anything (a tokens limit, given or to be learned)."""
        return self.tpm is not None or self.learn


#: a 429 as it travels to the actor: (advertised delay, fallback delay, the response's limits)
RateLimitReport = tuple[float | None, float, RateLimitFacts | None]


class LimiterActor:
    """The Ray actor (an async one) holding the cluster's ``Limiter``; see the module docstring.

    ``idle_exit``: end the actor after that many seconds with no call under way (for the
    detached actor that Ray Data stages share, which no driver kills)."""

    def __init__(self, config: LimiterConfig, idle_exit: float | None = None) -> None:
        self.config = config
        self.limiter = Limiter(config.rpm, config.tpm, headroom=config.headroom, learn=config.learn)
        self._grants: dict[int, Grant] = {}
        self._next_id = 0
        self._busy = 0
        self._idle_exit = idle_exit
        self._watch: asyncio.Task[None] | None = None
        self._last_call = -math.inf

    def _enter(self) -> None:
        self._busy += 1
        loop = asyncio.get_running_loop()
        self._last_call = loop.time()
        if self._idle_exit is not None and self._watch is None:
            self._watch = loop.create_task(self._exit_when_idle(self._idle_exit))

    def _leave(self) -> None:
        self._busy -= 1
        self._last_call = asyncio.get_running_loop().time()

    async def _exit_when_idle(self, idle: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(idle - (loop.time() - self._last_call), 1.0))
            if not self._busy and loop.time() - self._last_call >= idle:
                ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
                return

    def _report(self, report: RateLimitReport | None, facts: RateLimitFacts | None) -> None:
        if report is not None:
            retry_after, fallback, limits = report
            self.limiter.rate_limited(
                RateLimitError("429 too_many_requests", status_code=429, retry_after=retry_after,
                               rate_limits=limits), fallback)
        if facts is not None:
            self.limiter.observe(facts)

    async def acquire(self, tokens: int, remaining: float | None, total: float | None,
                      report: RateLimitReport | None = None, facts: RateLimitFacts | None = None) -> int | str:
        """Wait until a request of ``tokens`` estimated tokens may start; its grant's id (0: nothing
        to settle), or the message of the timeout when the wait would outlast ``remaining`` seconds."""
        self._enter()
        try:
            self._report(report, facts)
            deadline = NO_DEADLINE
            if remaining is not None:
                deadline = Deadline(asyncio.get_running_loop().time() + remaining, total)
            try:
                grant = await self.limiter.acquire(tokens, deadline)
            except APITimeoutError as exc:
                return exc.message
            if not self.config.settles:
                return 0
            self._next_id += 1
            self._grants[self._next_id] = grant
            if len(self._grants) > _MAX_GRANTS:
                del self._grants[next(iter(self._grants))]
            return self._next_id
        finally:
            self._leave()

    async def settle(self, grant_id: int, used_tokens: int | None, facts: RateLimitFacts | None = None,
                     report: RateLimitReport | None = None) -> None:
        """The tokens an answer used (``Limiter.settle``), and what its headers said."""
        self._enter()
        try:
            self._report(report, facts)
            grant = self._grants.pop(grant_id, None)
            if grant is not None:
                self.limiter.settle(grant, used_tokens)
        finally:
            self._leave()

    async def stats(self) -> dict[str, Any]:
        """The limiter's counters and the rates it paces at (for the driver's progress and summary)."""
        stats = self.limiter.stats
        return {"waits": stats.waits, "waited_seconds": stats.waited_seconds, "rate_limited": stats.rate_limited,
                "pauses": stats.pauses, "learned": self.limiter.learned()}

    async def get_config(self) -> LimiterConfig:
        return self.config


#: the actor class as Ray runs it, and its options: no CPU reserved (it only does arithmetic), many calls at once
RemoteLimiter: Any = ray.remote(LimiterActor)
_OPTIONS: dict[str, Any] = {"num_cpus": 0, "max_concurrency": _MAX_CONCURRENCY, "max_restarts": 0}


def limiter_name(*parts: object) -> str:
    """A named actor's name for a budget (a key and a model): a digest, never the key itself."""
    digest = hashlib.blake2b("\0".join(map(str, parts)).encode(), digest_size=8,
                             person=b"ss-limiter").hexdigest()
    return f"solarstream-limiter-{digest}"


def limiter_actor(config: LimiterConfig, name: str | None = None, *, detached: bool = False,
                  idle_exit: float | None = None) -> Any:
    """A new limiter actor, or with ``name`` the one of that name (created by whoever comes first)."""
    if name is None:
        return RemoteLimiter.options(**_OPTIONS).remote(config)
    options: dict[str, Any] = {**_OPTIONS, "name": name, "namespace": NAMESPACE, "get_if_exists": True}
    if detached:
        options["lifetime"] = "detached"
    return RemoteLimiter.options(**options).remote(config, idle_exit)


@dataclass
class _SharedGrant(Grant):
    id: int = 0


class SharedLimiter(Limiter):
    """A worker's stand-in for the cluster's limiter: the core's retry loop calls it as it calls a
    local ``Limiter``, and every decision is the actor's."""

    def __init__(self, actor: Any, config: LimiterConfig) -> None:
        super().__init__(config.rpm, config.tpm, headroom=config.headroom, learn=config.learn)
        self.actor = actor
        self.config = config
        self._report: RateLimitReport | None = None
        self._facts: RateLimitFacts | None = None

    def __repr__(self) -> str:
        return f"SharedLimiter(rpm={self.rpm!r}, tpm={self.tpm!r}, learn={self.learn!r})"

    async def acquire(self, tokens: int = 0, deadline: Deadline = NO_DEADLINE) -> Grant:
        report, facts = self._report, self._facts
        self._report = self._facts = None
        ref = self.actor.acquire.remote(tokens, deadline.remaining(), deadline.total, report, facts)
        try:
            answer = await ref
        except asyncio.CancelledError:  # the reservation goes back (the actor's acquire is cancelled)
            with contextlib.suppress(Exception):
                ray.cancel(ref)
            raise
        if isinstance(answer, str):
            raise APITimeoutError(answer, timer="total")
        self._sent += 1
        return _SharedGrant(tokens, id=answer)

    def settle(self, grant: Grant, used_tokens: int | None) -> None:
        if grant.settled or used_tokens is None:
            return
        grant.settled = True
        grant_id = grant.id if isinstance(grant, _SharedGrant) else 0
        if grant_id or self._facts is not None or self._report is not None:
            report, facts = self._report, self._facts
            self._report = self._facts = None
            self.actor.settle.remote(grant_id, used_tokens, facts, report)

    def observe(self, facts: RateLimitFacts | None) -> None:
        if facts is not None and self.learn:
            self._facts = facts  # sent with the next call (the settle that follows a success)

    def pause(self, seconds: float) -> None:
        """Only the actor pauses; here, what the retry loop reads until then."""
        self.paused_until = max(self.paused_until, self._now() + seconds)

    def rate_limited(self, error: RateLimitError, fallback: float) -> float:
        self.stats.rate_limited += 1
        delay = usable_delay(error.retry_after)
        seconds = delay if delay is not None else fallback
        self._report = (error.retry_after, fallback, error.rate_limits)
        self.pause(seconds)
        return seconds
