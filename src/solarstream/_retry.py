"""Retries and rate limits: the layer between a request and its single attempts (``_http``).

``call_with_retries`` runs attempts until one succeeds or the ``RetryPolicy`` says stop. Before each
attempt it asks the ``Limiter`` for room; after it, the limiter learns from what the server said.
A limiter is shared by every request of a client, a batch job or a router, so one 429 pauses all
of them at once (no herd of requests each sleeping and retrying on its own), and ``rpm``/``tpm``
hold for all of them together. Every wait is finite, capped, and bounded by the call's ``Deadline``.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from ._http import NO_DEADLINE, Deadline
from .errors import APIStatusError, InvalidRequestError, RateLimitError, SolarstreamError

__all__ = [
    "Limiter",
    "RateLimitFacts",
    "RetryPolicy",
    "advertised_delay",
    "call_with_retries",
    "usable_delay",
]

log = logging.getLogger("solarstream")

T = TypeVar("T")

#: The longest server-advertised delay taken as meant: anything longer (or NaN, infinite, negative,
#: unparseable) is ignored and normal backoff applies.
MAX_ADVERTISED_DELAY = 24 * 3600.0


def usable_delay(value: float | None) -> float | None:
    """``value`` if it is a sane number of seconds to wait, else ``None`` (use normal backoff)."""
    if value is None or not math.isfinite(value) or value < 0 or value > MAX_ADVERTISED_DELAY:
        return None
    return value


def _seconds(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def _http_date_delay(text: str, now: float) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # an HTTP date is GMT
        from datetime import timezone

        when = when.replace(tzinfo=timezone.utc)
    return max(when.timestamp() - now, 0.0)


def advertised_delay(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from the standard headers: ``retry-after-ms`` (the
    OpenAI SDKs' own), then ``Retry-After`` (seconds or an HTTP date). Unusable values give None."""
    now = time.time() if now is None else now
    value = headers.get("retry-after-ms")
    if value:
        ms = _seconds(value)
        delay = usable_delay(ms / 1000 if ms is not None else None)
        if delay is not None:
            return delay
    value = headers.get("retry-after")
    if value:
        seconds = _seconds(value)
        delay = usable_delay(seconds if seconds is not None else _http_date_delay(value, now))
        if delay is not None:
            return delay
    return None


@dataclass(frozen=True)
class RateLimitFacts:
    """What a response said about the account's limits (all optional; headers are hints).

    ``reset_*`` are seconds from when the response arrived until that budget refills.
    """

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens: float | None = None
    #: the window the limits count over, in seconds (60 for "per minute")
    interval_requests: float | None = None
    interval_tokens: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed attempt is tried again, and after how long.

    Retried: errors whose ``retryable`` is true (connection refused or reset before a response,
    connect timeouts, 408, 429 ``too_many_requests``, 5xx), never after the first body byte. The
    wait is the server's advertised delay when it gave a usable one (at most ``max_retry_after``;
    longer, the error is raised at once with ``retry_after`` set), else exponential backoff with
    jitter capped at ``backoff_max``. ``rate_limit_retries`` is how many 429 retries a call gets
    beyond ``max_retries`` (a batch job waits as long as the API says without counting a failure).
    """

    max_retries: int = 2
    #: First backoff delay in seconds; doubles each attempt, with jitter, up to ``backoff_max``.
    backoff: float = 0.5
    backoff_max: float = 8.0
    #: The longest server-advertised delay we wait for; beyond it the error is raised at once.
    max_retry_after: float = 60.0
    rate_limit_retries: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise InvalidRequestError(f"max_retries must be an integer, 0 or more, not {self.max_retries!r}",
                                      param="max_retries")
        for name in ("backoff", "backoff_max", "max_retry_after"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InvalidRequestError(f"RetryPolicy({name}=...) must be a finite number >= 0, not {value!r}")

    def backoff_delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Exponential backoff with jitter for retry number ``attempt`` (0-based), capped."""
        ceiling: float = min(self.backoff_max, self.backoff * 2.0 ** min(attempt, 60))
        return ceiling * (0.5 + rng() / 2)

    def delay(self, error: SolarstreamError, attempt: int, rng: Callable[[], float] = random.random) -> float | None:
        """Seconds to wait before sending again after ``error`` on retry number ``attempt``, or None."""
        if not error.retryable:
            return None
        advertised = usable_delay(error.retry_after) if isinstance(error, APIStatusError) else None
        if advertised is None:
            return self.backoff_delay(attempt, rng)
        if advertised > self.max_retry_after:
            return None  # waiting that long is the caller's decision: raise with .retry_after set
        return advertised + rng() * min(0.1, self.backoff)


@dataclass
class Grant:
    """Room the limiter gave one attempt: the tokens it was charged (settled from usage later)."""

    tokens: int
    settled: bool = False


@dataclass
class LimiterStats:
    waits: int = 0
    waited_seconds: float = 0.0
    rate_limited: int = 0
    pauses: int = 0


class Limiter:
    """Shared pacing for every request of a client, job or router.

    * ``rpm`` / ``tpm`` (per minute) pace requests and estimated tokens as a steady rate at
      ``headroom`` of the limit (never a minute's budget in one burst), so timing jitter does not
      cause 429s. Token estimates are corrected from the usage each answer reports (``settle``).
    * With ``learn=True`` (batch jobs, routers), limits that were not set are learned from the
      rate-limit headers of responses (``observe``), and an exhausted budget waits for its reset.
    * A 429 pauses everything that shares the limiter until the advertised time (``pause``); a
      later deadline always wins over an earlier one.
    """

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        headroom: float = 0.97,
        learn: bool = False,
        clock: Callable[[], float] | None = None,
    ) -> None:
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value <= 0):
                raise InvalidRequestError(f"{name} must be a positive number, not {value!r}", param=name)
        if not 0 < headroom <= 1:
            raise InvalidRequestError(f"headroom must be in (0, 1], not {headroom!r}")
        self.rpm = rpm
        self.tpm = tpm
        self.headroom = headroom
        self.learn = learn
        self._clock = clock
        #: requests and tokens per second actually paced at (None: unlimited)
        self._request_rate = rpm * headroom / 60 if rpm else None
        self._token_rate = tpm * headroom / 60 if tpm else None
        self._next_request = -math.inf  # earliest start of the next request (GCRA)
        self._next_tokens = -math.inf  # when the tokens charged so far are paid off
        self.paused_until = -math.inf
        self._sent = 0
        self._first_sent: float | None = None
        self.stats = LimiterStats()

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    @property
    def limited(self) -> bool:
        return self._request_rate is not None or self._token_rate is not None

    def __repr__(self) -> str:
        return f"Limiter(rpm={self.rpm!r}, tpm={self.tpm!r}, learned={self.learned()!r})"

    def learned(self) -> dict[str, float | None]:
        """The rates paced at, per minute (what was set or learned)."""
        return {"rpm": self._request_rate * 60 / self.headroom if self._request_rate else None,
                "tpm": self._token_rate * 60 / self.headroom if self._token_rate else None}

    def reserve(self, tokens: int = 0) -> tuple[float, Grant]:
        """Reserve room for one request of ``tokens`` estimated tokens; returns (start time, grant).

        The caller waits until the start time (``acquire`` does). Reserving moves the pacing on,
        so concurrent callers get successive slots.
        """
        now = self._now()
        start = max(now, self.paused_until)
        if self._request_rate is not None:
            start = max(start, self._next_request)
            self._next_request = start + 1 / self._request_rate
        if self._token_rate is not None and tokens > 0:
            start = max(start, self._next_tokens - tokens / self._token_rate)
            self._next_tokens = max(self._next_tokens, start) + tokens / self._token_rate
        self._sent += 1
        if self._first_sent is None:
            self._first_sent = start
        return start, Grant(tokens)

    def wait_time(self, tokens: int = 0) -> float:
        """Seconds until a request of ``tokens`` estimated tokens could start (0: now), reserving
        nothing: how a router compares deployments before choosing one."""
        if not self.limited and self.paused_until == -math.inf:
            return 0.0
        now = self._now()
        start = max(now, self.paused_until)
        if self._request_rate is not None:
            start = max(start, self._next_request)
        if self._token_rate is not None and tokens > 0:
            start = max(start, self._next_tokens - tokens / self._token_rate)
        return start - now

    async def acquire(self, tokens: int = 0, deadline: Deadline = NO_DEADLINE) -> Grant:
        """Wait for room for one request; raises ``APITimeoutError`` if the wait outlasts ``deadline``."""
        if not self.limited and self.paused_until == -math.inf:
            self._sent += 1
            return Grant(tokens)
        while True:
            start, grant = self.reserve(tokens)
            wait = start - self._now()
            if wait > 0:
                remaining = deadline.remaining()
                if remaining is not None and wait > remaining:
                    self.settle(grant, 0)
                    self.unreserve()
                    raise deadline.expired_error(f"the rate limit allows the next request in {wait:.1f}s")
                self.stats.waits += 1
                self.stats.waited_seconds += wait
                try:
                    await asyncio.sleep(wait)
                except asyncio.CancelledError:  # the slot goes back to those still waiting
                    self.settle(grant, 0)
                    self.unreserve()
                    raise
            if self.paused_until <= self._now():
                return grant
            # a 429 paused everyone while this request waited for its slot: queue again behind the
            # pause (its old slot, before the pause's end, is of no use to anyone; its tokens are
            # given back), so the waiters do not all go out the moment the pause ends
            self.settle(grant, 0)
            self._sent -= 1

    def unreserve(self) -> None:
        """Give back the request slot of a reservation that will not be used."""
        if self._request_rate is not None:
            self._next_request -= 1 / self._request_rate

    def settle(self, grant: Grant, used_tokens: int | None) -> None:
        """Correct the grant's estimate with the tokens the answer really used (once per grant)."""
        if grant.settled or used_tokens is None:
            return
        grant.settled = True
        if self._token_rate is not None:
            self._next_tokens += (used_tokens - grant.tokens) / self._token_rate

    def pause(self, seconds: float) -> None:
        """A 429 said wait: nothing that shares this limiter starts before then (the later deadline wins).

        ``stats.pauses`` counts pauses, not 429s: the 429s of requests that were in flight when the
        first one came extend the pause under way instead of starting new ones."""
        now = self._now()
        until = now + seconds
        if until > self.paused_until:
            if now >= self.paused_until:  # a new pause; a 429 during one only moves its end
                self.stats.pauses += 1
                log.info("rate limited: every request of this limiter waits %.2fs", seconds)
            self.paused_until = until

    def observe(self, facts: RateLimitFacts | None) -> None:
        """Learn the account's limits from a response's rate-limit headers (when none were set)."""
        if facts is None or not self.learn:
            return
        if self.rpm is None and facts.limit_requests and facts.limit_requests > 0:
            interval = facts.interval_requests or 60.0
            rate = facts.limit_requests * self.headroom / interval
            if self._request_rate is None:
                # requests already sent unpaced count against the window they were sent in
                first = self._first_sent if self._first_sent is not None else self._now()
                self._next_request = max(self._next_request, first + self._sent / rate)
            self._request_rate = rate
        if self.tpm is None and facts.limit_tokens and facts.limit_tokens > 0:
            interval = facts.interval_tokens or 60.0
            self._token_rate = facts.limit_tokens * self.headroom / interval
        if facts.remaining_requests is not None and facts.remaining_requests <= 0 and facts.reset_requests:
            delay = usable_delay(facts.reset_requests)
            if delay is not None:
                self.pause(delay)

    def rate_limited(self, error: RateLimitError, fallback: float) -> float:
        """Record a 429: pause everyone for what the server said (else ``fallback``); returns the pause."""
        self.stats.rate_limited += 1
        delay = usable_delay(error.retry_after)
        seconds = delay if delay is not None else fallback
        self.pause(seconds)
        self.observe(error.rate_limits)
        return seconds


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    limiter: Limiter | None = None,
    deadline: Deadline = NO_DEADLINE,
    tokens: int = 0,
    facts: Callable[[T], RateLimitFacts | None] | None = None,
    on_grant: Callable[[Grant], None] | None = None,
) -> T:
    """Run ``attempt`` until it succeeds or the policy says stop; raise the last error then.

    The limiter is asked for room before every attempt. A 429 pauses the whole limiter (the wait
    then happens in the next ``acquire``, shared by everyone); other errors wait on their own. A
    wait that would pass the deadline is not started: the last error is raised at once, saying so.
    """
    retries = 0
    free_rate_limit_retries = policy.rate_limit_retries
    while True:
        grant = await limiter.acquire(tokens, deadline) if limiter is not None else Grant(tokens)
        try:
            result = await attempt()
        except SolarstreamError as error:
            rate_limited = isinstance(error, RateLimitError)
            if limiter is not None:
                limiter.settle(grant, 0)
            free = rate_limited and free_rate_limit_retries > 0
            delay = policy.delay(error, retries) if free or retries < policy.max_retries else None
            if delay is None:
                raise
            if limiter is not None and isinstance(error, RateLimitError):
                # one pause for everyone sharing the limiter (not a herd each sleeping on its own)
                limiter.rate_limited(error, delay)
                delay = max(delay, limiter.paused_until - limiter._now())
            remaining = deadline.remaining()
            if remaining is not None and delay >= remaining:
                error.message += (f" (not retried: waiting {delay:.1f}s would pass the total timeout of "
                                  f"{deadline.total:g}s, {remaining:.1f}s left)")
                error.args = (error.message,)
                raise
            if free:
                free_rate_limit_retries -= 1
            else:
                retries += 1
            log.warning("retrying in %.2fs after %s (attempt %d of %d)", delay, error.message,
                        retries + 1, policy.max_retries + 1)
            if not (rate_limited and limiter is not None):
                await asyncio.sleep(delay)
            continue
        if limiter is not None and facts is not None and limiter.learn:
            limiter.observe(facts(result))
        if on_grant is not None:
            on_grant(grant)
        return result
