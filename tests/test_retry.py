"""The retry and rate-limit layer as pure functions: injected headers, clocks and random numbers.

``advertised_delay`` and ``UpstageQuirks.retry_after`` read the headers with a fixed ``now``;
``RetryPolicy`` is given its random numbers; the ``Limiter`` runs on a clock the test moves;
``call_with_retries`` runs scripted attempts. The wire tests (a real 429 from a real socket) are in
test_http.py.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from solarstream._http import Deadline
from solarstream._retry import (
    MAX_ADVERTISED_DELAY,
    Grant,
    Limiter,
    RateLimitFacts,
    RetryPolicy,
    advertised_delay,
    call_with_retries,
    usable_delay,
)
from solarstream.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    InvalidRequestError,
    RateLimitError,
    ServerError,
)
from solarstream.providers.upstage import UpstageQuirks

NOW = 1_800_000_000.0  # a fixed "now" (2027-01-15 08:00:00 UTC) for the delay arithmetic


class Clock:
    """A clock that moves only when the test says so."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rng(value: float) -> Callable[[], float]:
    return lambda: value


def limited(seconds: float | None = None, **facts: Any) -> RateLimitError:
    return RateLimitError("HTTP 429 too_many_requests: slow down", status_code=429, code="too_many_requests",
                          retry_after=seconds, rate_limits=RateLimitFacts(**facts) if facts else None)


# --- the headers: advertised_delay (generic) and Upstage's own ------------------------------------


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after-ms": "30"}, 0.03),
    ({"retry-after": "7"}, 7.0),
    ({"retry-after": " 2.5 "}, 2.5),
    ({"retry-after": "Fri, 15 Jan 2027 08:00:05 GMT"}, 5.0),  # an HTTP date, 5 s after NOW
    ({"retry-after": "Fri, 15 Jan 2027 08:00:05 -0000"}, 5.0),  # a date without a zone is GMT too
    ({"retry-after": "Fri, 15 Jan 2027 07:59:00 GMT"}, 0.0),  # a date in the past: no wait, not negative
    ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the ms header first
    ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),  # an unusable ms header falls through
    ({"retry-after-ms": "-1", "retry-after": "9"}, 9.0),
    ({"retry-after": "0"}, 0.0),
    ({}, None),
])
def test_advertised_delay_reads_the_standard_headers(headers: dict[str, str], expected: float | None) -> None:
    assert advertised_delay(headers, now=NOW) == expected


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-5", "1e300", "soon", "", "Thu, 99 Foo"])
def test_unusable_retry_after_values_are_ignored(value: str) -> None:
    assert advertised_delay({"retry-after": value, "retry-after-ms": value}, now=NOW) is None
    assert UpstageQuirks().retry_after({"retry-after": value, "retry-after-ms": value}, now=NOW) is None


def test_a_delay_longer_than_a_day_is_not_taken_as_meant() -> None:
    assert advertised_delay({"retry-after": "86400"}, now=NOW) == 86400.0
    assert advertised_delay({"retry-after": "86401"}, now=NOW) is None
    assert advertised_delay({"retry-after-ms": "86401000"}, now=NOW) is None


def test_an_http_date_is_measured_from_the_real_clock_by_default() -> None:
    when = datetime.now(timezone.utc) + timedelta(hours=1)
    delay = advertised_delay({"retry-after": format_datetime(when, usegmt=True)})
    assert delay is not None
    assert 3590 <= delay <= 3600  # whole seconds in the header; a generous bound for a slow machine


def test_usable_delay_bounds() -> None:
    assert usable_delay(0.0) == 0.0
    assert usable_delay(MAX_ADVERTISED_DELAY) == MAX_ADVERTISED_DELAY
    for value in (None, -0.001, MAX_ADVERTISED_DELAY + 1, math.nan, math.inf, -math.inf):
        assert usable_delay(value) is None, value


@pytest.mark.parametrize(("header", "value", "expected"), [
    ("x-upstage-ratelimit-retry-after-requests", str(int((NOW + 0.05) * 1000)), 0.05),  # a ms timestamp
    ("x-upstage-ratelimit-retry-after-tokens", str(int(NOW + 7)), 7.0),  # a s timestamp
    ("x-upstage-ratelimit-retry-after-requests", "12", 12.0),  # small: a delay, not a timestamp
    ("x-upstage-ratelimit-retry-after-requests", "999999999", None),  # a delay (under 1e9), far too long
    ("x-upstage-ratelimit-retry-after-tokens", str(int(NOW - 30)), 0.0),  # a timestamp in the past
    ("x-upstage-ratelimit-retry-after-tokens", "soon", None),
])
def test_upstage_retry_headers_are_timestamps_or_small_delays(header: str, value: str,
                                                               expected: float | None) -> None:
    delay = UpstageQuirks().retry_after({header: value}, now=NOW)
    assert delay == (None if expected is None else pytest.approx(expected, abs=1e-3))


def test_both_upstage_retry_headers_at_once_the_later_wins() -> None:
    requests_at, tokens_at = str(int(NOW + 3)), str(int(NOW + 9))
    quirks = UpstageQuirks()
    assert quirks.retry_after({"x-upstage-ratelimit-retry-after-requests": requests_at,
                               "x-upstage-ratelimit-retry-after-tokens": tokens_at}, now=NOW) == 9.0
    assert quirks.retry_after({"x-upstage-ratelimit-retry-after-requests": tokens_at,
                               "x-upstage-ratelimit-retry-after-tokens": requests_at}, now=NOW) == 9.0
    # one unusable header does not hide the other
    assert quirks.retry_after({"x-upstage-ratelimit-retry-after-requests": "nan",
                               "x-upstage-ratelimit-retry-after-tokens": requests_at}, now=NOW) == 3.0


def test_the_standard_headers_win_over_upstages() -> None:
    headers = {"retry-after": "2", "x-upstage-ratelimit-retry-after-tokens": str(int(NOW + 9))}
    assert UpstageQuirks().retry_after(headers, now=NOW) == 2.0


def test_upstage_rate_limit_headers_become_facts() -> None:
    headers = {
        "x-upstage-ratelimit-limit-requests": "100", "x-upstage-ratelimit-remaining-requests": "0",
        "x-upstage-ratelimit-reset-requests": str(int(NOW + 20)), "x-upstage-ratelimit-interval-requests": "60",
        "x-upstage-ratelimit-limit-tokens": "50000", "x-upstage-ratelimit-remaining-tokens": "-1",
        "x-upstage-ratelimit-reset-tokens": "4", "x-upstage-ratelimit-interval-tokens": "0",
    }
    assert UpstageQuirks().rate_limits(headers, now=NOW) == RateLimitFacts(
        limit_requests=100, remaining_requests=0, reset_requests=20.0, limit_tokens=50000,
        remaining_tokens=None,  # -1 is seen in the wild: a hint that is no hint
        reset_tokens=4.0, interval_requests=60.0, interval_tokens=None)
    assert UpstageQuirks().rate_limits({"x-upstage-ratelimit-remaining-requests": "3"}, now=NOW) is None


# --- RetryPolicy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, True, 1.5, "2", None])
def test_max_retries_must_be_a_whole_number(value: Any) -> None:
    with pytest.raises(InvalidRequestError) as info:
        RetryPolicy(max_retries=value)
    assert info.value.param == "max_retries"
    assert str(info.value) == f"max_retries must be an integer, 0 or more, not {value!r}"


@pytest.mark.parametrize("name", ["backoff", "backoff_max", "max_retry_after"])
@pytest.mark.parametrize("value", [-0.5, math.inf, math.nan, "1"])
def test_backoff_settings_must_be_finite_and_not_negative(name: str, value: Any) -> None:
    with pytest.raises(InvalidRequestError) as info:
        RetryPolicy(**{name: value})
    assert str(info.value) == f"RetryPolicy({name}=...) must be a finite number >= 0, not {value!r}"


def test_zero_is_a_valid_setting() -> None:
    policy = RetryPolicy(max_retries=0, backoff=0, backoff_max=0, max_retry_after=0)
    assert policy.backoff_delay(3, rng(1.0)) == 0.0


@pytest.mark.parametrize(("attempt", "random", "expected"), [
    (0, 0.0, 0.25), (0, 1.0, 0.5), (0, 0.5, 0.375),  # half to all of the ceiling
    (1, 1.0, 1.0), (2, 1.0, 2.0), (3, 0.5, 3.0),  # the ceiling doubles...
    (4, 1.0, 8.0), (10, 1.0, 8.0), (10, 0.0, 4.0),  # ...up to backoff_max
])
def test_backoff_is_exponential_with_jitter_and_capped(attempt: int, random: float, expected: float) -> None:
    assert RetryPolicy(backoff=0.5, backoff_max=8.0).backoff_delay(attempt, rng(random)) == expected


def test_backoff_exponent_stops_at_60() -> None:
    policy = RetryPolicy(backoff=2.0**-60, backoff_max=1e30)
    assert policy.backoff_delay(60, rng(1.0)) == 1.0
    assert policy.backoff_delay(61, rng(1.0)) == 1.0
    assert policy.backoff_delay(10**6, rng(1.0)) == 1.0  # no overflow for a silly attempt number


def test_what_is_retried() -> None:
    policy = RetryPolicy(backoff=0.5)
    assert policy.delay(AuthenticationError("no", status_code=401), 0, rng(1.0)) is None
    assert policy.delay(InvalidRequestError("bad", status_code=400), 0, rng(1.0)) is None
    assert policy.delay(APIConnectionError("reset after the request was read"), 0, rng(1.0)) is None
    assert policy.delay(APITimeoutError("first byte", timer="first_byte"), 0, rng(1.0)) is None
    # retryable: backoff (0.5 s ceiling on the first retry, 1 s on the second)
    assert policy.delay(InvalidRequestError("timeout", status_code=408), 0, rng(1.0)) == 0.5
    assert policy.delay(ServerError("busy", status_code=503), 1, rng(1.0)) == 1.0
    assert policy.delay(APIConnectionError("refused", retryable=True), 0, rng(0.0)) == 0.25
    assert policy.delay(APITimeoutError("connect", timer="connect", retryable=True), 0, rng(1.0)) == 0.5
    assert policy.delay(limited(None), 0, rng(1.0)) == 0.5


def test_an_advertised_delay_replaces_the_backoff() -> None:
    policy = RetryPolicy(backoff=0.5, max_retry_after=60)
    assert policy.delay(limited(2.0), 5, rng(0.0)) == 2.0
    assert policy.delay(limited(2.0), 5, rng(1.0)) == pytest.approx(2.1)  # plus at most 0.1 s of jitter
    assert RetryPolicy(backoff=0.02).delay(limited(2.0), 0, rng(1.0)) == pytest.approx(2.02)  # or the backoff
    assert policy.delay(ServerError("busy", status_code=503, retry_after=3.0), 0, rng(0.0)) == 3.0
    assert policy.delay(limited(60.0), 0, rng(0.0)) == 60.0  # exactly the limit is still waited for
    assert policy.delay(limited(60.5), 0, rng(0.0)) is None  # longer: the caller's decision
    assert policy.delay(limited(math.nan), 0, rng(1.0)) == 0.5  # a nonsense value: backoff


# --- Limiter ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rpm", "tpm"])
@pytest.mark.parametrize("value", [0, -1, True, math.nan, math.inf, "60"])
def test_limiter_rejects_bad_limits(name: str, value: Any) -> None:
    with pytest.raises(InvalidRequestError) as info:
        Limiter(**{name: value})
    assert info.value.param == name
    assert str(info.value) == f"{name} must be a positive number, not {value!r}"


@pytest.mark.parametrize("headroom", [0, -0.1, 1.01])
def test_limiter_rejects_bad_headroom(headroom: float) -> None:
    with pytest.raises(InvalidRequestError, match=r"headroom must be in \(0, 1\]"):
        Limiter(rpm=60, headroom=headroom)


def test_requests_are_paced_evenly_at_the_headroom() -> None:
    clock = Clock(100.0)
    limiter = Limiter(rpm=60, headroom=1.0, clock=clock)
    assert [limiter.reserve()[0] for _ in range(4)] == [100.0, 101.0, 102.0, 103.0]
    clock.now = 110.0  # idle time is not saved up for a burst
    assert [limiter.reserve()[0] for _ in range(2)] == [110.0, 111.0]
    half = Limiter(rpm=60, headroom=0.5, clock=Clock(0.0))
    assert [half.reserve()[0] for _ in range(3)] == [0.0, 2.0, 4.0]
    assert half.learned() == {"rpm": 60.0, "tpm": None}
    assert repr(half) == "Limiter(rpm=60, tpm=None, learned={'rpm': 60.0, 'tpm': None})"


def test_tokens_are_paced_at_the_token_rate() -> None:
    clock = Clock(0.0)
    limiter = Limiter(tpm=600, headroom=1.0, clock=clock)  # 10 tokens a second
    # a request may start once what was charged before it is paid off, less its own share
    starts = [limiter.reserve(100)[0] for _ in range(4)]
    assert starts == [0.0, 0.0, 10.0, 20.0]
    assert limiter.reserve(0)[0] == 0.0  # a request without an estimate waits for nobody
    assert limiter.learned() == {"rpm": None, "tpm": 600.0}


def test_requests_and_tokens_together_take_the_later_start() -> None:
    limiter = Limiter(rpm=60, tpm=600, headroom=1.0, clock=Clock(0.0))
    assert [limiter.reserve(5)[0] for _ in range(3)] == [0.0, 1.0, 2.0]  # small requests: rpm decides
    assert [limiter.reserve(300)[0] for _ in range(3)] == [3.0, 4.0, 33.0]  # large ones: tpm decides


def test_settling_corrects_the_token_estimate_once() -> None:
    clock = Clock(0.0)
    limiter = Limiter(tpm=600, headroom=1.0, clock=clock)
    limiter.reserve(100)  # charged 10 s of tokens
    limiter.reserve(100)
    assert limiter.reserve(100)[0] == 10.0
    fresh = Limiter(tpm=600, headroom=1.0, clock=clock)
    _, grant = fresh.reserve(100)
    fresh.settle(grant, 20)  # the answer used 20 tokens, not 100: 8 s are given back
    assert grant.settled
    fresh.settle(grant, 0)  # a second settlement changes nothing
    fresh.reserve(100)
    assert fresh.reserve(100)[0] == 2.0
    unsettled = Grant(100)
    fresh.settle(unsettled, None)  # no usage reported: the estimate stands
    assert not unsettled.settled


def test_unreserve_gives_the_slot_back() -> None:
    limiter = Limiter(rpm=60, headroom=1.0, clock=Clock(0.0))
    limiter.reserve()
    assert limiter.reserve()[0] == 1.0
    limiter.unreserve()
    assert limiter.reserve()[0] == 1.0


def test_a_pause_holds_everyone_and_the_later_deadline_wins(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "solarstream")
    clock = Clock(10.0)
    limiter = Limiter(clock=clock)
    limiter.pause(5.0)
    assert limiter.paused_until == 15.0
    limiter.pause(2.0)  # an earlier end does not shorten the pause
    assert limiter.paused_until == 15.0
    clock.now = 12.0
    limiter.pause(4.0)  # during the pause: it moves the end, it is not a second pause
    assert limiter.paused_until == 16.0
    assert limiter.stats.pauses == 1
    assert limiter.reserve()[0] == 16.0
    clock.now = 20.0
    limiter.pause(1.0)  # after it: a new one
    assert limiter.paused_until == 21.0
    assert limiter.stats.pauses == 2
    assert [r.getMessage() for r in caplog.records] == [
        "rate limited: every request of this limiter waits 5.00s",
        "rate limited: every request of this limiter waits 1.00s",
    ]


def test_rate_limited_pauses_for_what_the_server_said_else_the_fallback() -> None:
    clock = Clock(0.0)
    limiter = Limiter(clock=clock)
    assert limiter.rate_limited(limited(3.0), fallback=1.0) == 3.0
    assert limiter.paused_until == 3.0
    assert limiter.rate_limited(limited(None), fallback=7.5) == 7.5
    assert limiter.rate_limited(limited(math.inf), fallback=8.0) == 8.0
    assert limiter.paused_until == 8.0
    assert limiter.stats.rate_limited == 3


def test_limits_are_learned_from_headers_only_when_asked() -> None:
    facts = RateLimitFacts(limit_requests=120, limit_tokens=60_000)
    deaf = Limiter(clock=Clock(0.0))
    deaf.observe(facts)
    assert deaf.learned() == {"rpm": None, "tpm": None}
    assert not deaf.limited
    learner = Limiter(learn=True, headroom=0.5, clock=Clock(0.0))
    learner.observe(None)
    assert not learner.limited
    learner.observe(facts)
    assert learner.limited
    assert learner.learned() == {"rpm": 120.0, "tpm": 60_000.0}
    assert learner.reserve()[0] == 0.0
    assert learner.reserve()[0] == 1.0  # 120 rpm at half headroom: one a second


def test_learned_limits_use_the_interval_the_headers_give() -> None:
    learner = Limiter(learn=True, headroom=1.0, clock=Clock(0.0))
    learner.observe(RateLimitFacts(limit_requests=10, interval_requests=20.0, limit_tokens=100,
                                   interval_tokens=10.0))
    assert learner.learned() == {"rpm": 30.0, "tpm": 600.0}


def test_set_limits_are_not_overridden_by_headers() -> None:
    limiter = Limiter(rpm=30, tpm=1000, learn=True, headroom=1.0, clock=Clock(0.0))
    limiter.observe(RateLimitFacts(limit_requests=600, limit_tokens=10**6))
    assert limiter.learned() == {"rpm": 30.0, "tpm": pytest.approx(1000.0)}
    for bad in (RateLimitFacts(limit_requests=0, limit_tokens=-5),):
        fresh = Limiter(learn=True, clock=Clock(0.0))
        fresh.observe(bad)
        assert fresh.learned() == {"rpm": None, "tpm": None}


async def test_requests_sent_before_the_limit_was_known_count_against_it() -> None:
    clock = Clock(50.0)
    limiter = Limiter(learn=True, headroom=1.0, clock=clock)
    for _ in range(3):
        await limiter.acquire()  # unlimited: no wait, but counted
    limiter.observe(RateLimitFacts(limit_requests=60))  # one a second: the three used 3 s of the window
    assert limiter.reserve()[0] == 53.0
    paced = Limiter(learn=True, headroom=1.0, clock=clock)
    paced.pause(0.0)  # paced from the start: reservations remember when the first one went
    clock.now = 60.0
    for _ in range(2):
        await paced.acquire()
    clock.now = 61.0
    paced.observe(RateLimitFacts(limit_requests=60))
    assert paced.reserve()[0] == 62.0


def test_an_exhausted_budget_pauses_until_it_resets() -> None:
    clock = Clock(0.0)
    limiter = Limiter(learn=True, clock=clock)
    limiter.observe(RateLimitFacts(limit_requests=100, remaining_requests=1, reset_requests=9.0))
    assert limiter.paused_until == -math.inf
    limiter.observe(RateLimitFacts(limit_requests=100, remaining_requests=0, reset_requests=math.nan))
    assert limiter.paused_until == -math.inf
    limiter.observe(RateLimitFacts(limit_requests=100, remaining_requests=0, reset_requests=None))
    assert limiter.paused_until == -math.inf
    limiter.observe(RateLimitFacts(limit_requests=100, remaining_requests=0, reset_requests=9.0))
    assert limiter.paused_until == 9.0


async def test_acquire_waits_for_its_slot() -> None:
    limiter = Limiter(rpm=300, headroom=1.0)  # a slot every 0.2 s, on the loop's clock
    started = time.monotonic()
    grants = [await limiter.acquire(7) for _ in range(2)]
    assert [g.tokens for g in grants] == [7, 7]
    assert limiter.stats.waits == 1  # the first went at once, the second waited for its slot
    assert 0.1 < limiter.stats.waited_seconds <= 0.2
    assert time.monotonic() - started >= limiter.stats.waited_seconds


async def test_acquire_without_limits_or_pause_returns_at_once() -> None:
    limiter = Limiter()
    grant = await limiter.acquire(42)
    assert (grant.tokens, grant.settled) == (42, False)
    assert limiter.stats.waits == 0


async def test_a_wait_past_the_deadline_is_not_started() -> None:
    loop = asyncio.get_running_loop()
    limiter = Limiter(rpm=1, headroom=1.0)  # one a minute
    await limiter.acquire(0)
    deadline = Deadline(loop.time() + 5.0, 5.0)
    with pytest.raises(APITimeoutError) as info:
        await limiter.acquire(0, deadline)
    assert info.value.timer == "total"
    assert str(info.value).startswith("the call took longer than its total timeout of 5s "
                                      "(the rate limit allows the next request in 60.0s")
    assert limiter.stats.waits == 0
    # the slot it did not use is free again
    assert limiter.reserve()[0] == pytest.approx(limiter._now() + 60.0, abs=1.0)


# --- call_with_retries --------------------------------------------------------------------------


def script(*outcomes: Any) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    """An attempt that raises or returns each outcome in turn, and the list of attempts made."""
    made: list[int] = []

    async def attempt() -> str:
        made.append(len(made) + 1)
        outcome = outcomes[len(made) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return str(outcome)

    return attempt, made


QUICK = RetryPolicy(max_retries=2, backoff=0.0, backoff_max=0.0)


async def test_retries_until_success(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "solarstream")
    attempt, made = script(ServerError("HTTP 503 busy", status_code=503),
                           APIConnectionError("refused", retryable=True), "answer")
    assert await call_with_retries(attempt, policy=QUICK) == "answer"
    assert made == [1, 2, 3]
    assert [r.getMessage() for r in caplog.records] == [
        "retrying in 0.00s after HTTP 503 busy (attempt 2 of 3)",
        "retrying in 0.00s after refused (attempt 3 of 3)",
    ]


async def test_the_last_error_is_raised_when_retries_run_out() -> None:
    errors = [ServerError(f"HTTP 500 number {i}", status_code=500) for i in range(3)]
    attempt, made = script(*errors, "never")
    with pytest.raises(ServerError) as info:
        await call_with_retries(attempt, policy=QUICK)
    assert info.value is errors[2]
    assert made == [1, 2, 3]


async def test_errors_that_are_not_retryable_raise_at_once() -> None:
    attempt, made = script(AuthenticationError("HTTP 401", status_code=401), "never")
    with pytest.raises(AuthenticationError):
        await call_with_retries(attempt, policy=QUICK)
    assert made == [1]
    attempt, made = script(ServerError("HTTP 500", status_code=500), "never")
    with pytest.raises(ServerError):
        await call_with_retries(attempt, policy=RetryPolicy(max_retries=0))
    assert made == [1]


async def test_rate_limit_retries_do_not_count_against_max_retries() -> None:
    policy = RetryPolicy(max_retries=1, backoff=0.0, backoff_max=0.0, rate_limit_retries=2)
    attempt, made = script(limited(0.0), limited(0.0), ServerError("HTTP 500", status_code=500), "answer")
    assert await call_with_retries(attempt, policy=policy) == "answer"
    assert made == [1, 2, 3, 4]
    attempt, made = script(limited(0.0), limited(0.0), limited(0.0), limited(0.0), "never")
    with pytest.raises(RateLimitError):
        await call_with_retries(attempt, policy=policy)
    assert made == [1, 2, 3, 4]  # two free, then the one counted retry, then raised


async def test_a_429_pauses_the_shared_limiter_instead_of_sleeping_alone() -> None:
    limiter = Limiter()
    attempt, made = script(limited(0.05), "answer")
    started = time.monotonic()
    assert await call_with_retries(attempt, policy=QUICK, limiter=limiter) == "answer"
    assert made == [1, 2]
    assert time.monotonic() - started >= 0.05  # the wait happened (in acquire, shared)
    assert (limiter.stats.rate_limited, limiter.stats.pauses, limiter.stats.waits) == (1, 1, 1)


async def test_the_limiter_is_asked_before_every_attempt_and_told_what_happened() -> None:
    clock = Clock(0.0)
    limiter = Limiter(tpm=600, learn=True, headroom=1.0, clock=clock)
    seen: list[Grant] = []
    attempt, made = script(APIConnectionError("refused", retryable=True), "answer")
    result = await call_with_retries(attempt, policy=QUICK, limiter=limiter, tokens=100,
                                     facts=lambda r: RateLimitFacts(limit_requests=60), on_grant=seen.append)
    assert result == "answer"
    assert made == [1, 2]
    assert [g.tokens for g in seen] == [100]  # the grant of the attempt that succeeded
    assert limiter.learned()["rpm"] == 60.0  # facts of the answer were observed
    # the failed attempt's tokens were given back, the successful one's still count: 10 s of tokens
    limiter.reserve(100)
    assert limiter.reserve(100)[0] == 10.0


async def test_a_retry_that_would_pass_the_deadline_raises_at_once_saying_so() -> None:
    loop = asyncio.get_running_loop()
    error = limited(30.0)
    attempt, made = script(error, "never")
    deadline = Deadline(loop.time() + 2.0, 2.0)
    with pytest.raises(RateLimitError) as info:
        await call_with_retries(attempt, policy=RetryPolicy(backoff=0.0), deadline=deadline)
    assert made == [1]
    message = str(info.value)
    assert message.startswith("HTTP 429 too_many_requests: slow down (not retried: waiting 30.0s would pass "
                              "the total timeout of 2s, ")
    assert message.endswith("s left)")
    assert info.value.message == message


async def test_a_retry_inside_the_deadline_goes_ahead() -> None:
    loop = asyncio.get_running_loop()
    attempt, made = script(limited(0.0), "answer")
    deadline = Deadline(loop.time() + 30.0, 30.0)
    assert await call_with_retries(attempt, policy=QUICK, deadline=deadline) == "answer"
    assert made == [1, 2]


async def test_other_exceptions_are_not_retried() -> None:
    attempt, made = script(ValueError("a bug, not a network failure"), "never")
    with pytest.raises(ValueError, match="a bug"):
        await call_with_retries(attempt, policy=QUICK)
    assert made == [1]


# --- the edges mutation testing found ---------------------------------------------------------------


def test_an_http_date_without_a_zone_is_gmt_whatever_the_machines_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "KST-9")  # a machine in Seoul (POSIX form: needs no zone files)
    time.tzset()
    try:
        assert advertised_delay({"retry-after": "Fri, 15 Jan 2027 08:00:05 -0000"}, now=NOW) == 5.0
        assert advertised_delay({"retry-after": "Fri, 15 Jan 2027 08:00:05 GMT"}, now=NOW) == 5.0
    finally:
        monkeypatch.undo()
        time.tzset()


def test_token_pacing_keeps_the_headroom() -> None:
    limiter = Limiter(tpm=600, headroom=0.5, clock=Clock(0.0))  # 5 tokens a second
    assert [limiter.reserve(50)[0] for _ in range(3)] == [0.0, 0.0, 10.0]
    assert limiter.learned() == {"rpm": None, "tpm": pytest.approx(600.0)}


def test_a_single_token_is_paced_too() -> None:
    limiter = Limiter(tpm=60, headroom=1.0, clock=Clock(0.0))  # one token a second
    assert [limiter.reserve(1)[0] for _ in range(3)] == [0.0, 0.0, 1.0]


async def test_waits_are_counted_and_added_up() -> None:
    clock = Clock(0.0)  # still: each wait is its slot's distance from now (a few real milliseconds)
    limiter = Limiter(rpm=60_000, headroom=1.0, clock=clock)  # a slot every millisecond
    for _ in range(3):
        await limiter.acquire()
    assert limiter.stats.waits == 2  # the first slot was free: no wait, not even of zero
    assert limiter.stats.waited_seconds == pytest.approx(0.003)


async def test_a_wait_refused_for_the_deadline_gives_its_tokens_back() -> None:
    loop = asyncio.get_running_loop()
    limiter = Limiter(tpm=600, headroom=1.0, clock=Clock(0.0))  # 10 tokens a second
    limiter.reserve(100)
    limiter.reserve(100)
    with pytest.raises(APITimeoutError):
        await limiter.acquire(100, Deadline(loop.time() + 5.0, 5.0))  # its slot is 10 s away
    assert limiter.reserve(100)[0] == 10.0  # the same slot: the refused one was not charged


def test_the_same_pause_twice_is_one_pause() -> None:
    limiter = Limiter(clock=Clock(10.0))
    limiter.pause(5.0)
    limiter.pause(5.0)
    assert limiter.stats.pauses == 1


async def test_unpaced_requests_count_from_when_the_limit_became_known() -> None:
    clock = Clock(50.0)
    limiter = Limiter(learn=True, headroom=1.0, clock=clock)
    for _ in range(3):
        await limiter.acquire()
    clock.now = 55.0
    limiter.observe(RateLimitFacts(limit_requests=120))  # two a second: the three used 1.5 s
    assert limiter.reserve()[0] == 56.5


def test_limits_of_one_are_learned() -> None:
    limiter = Limiter(learn=True, headroom=1.0, clock=Clock(0.0))
    limiter.observe(RateLimitFacts(limit_requests=1, limit_tokens=1))
    assert limiter.learned() == {"rpm": 1.0, "tpm": 1.0}


def test_a_429_teaches_the_limiter_what_its_headers_said() -> None:
    limiter = Limiter(learn=True, headroom=1.0, clock=Clock(0.0))
    limiter.rate_limited(limited(1.0, limit_requests=60, limit_tokens=6000), fallback=1.0)
    assert limiter.learned() == {"rpm": 60.0, "tpm": 6000.0}


async def test_a_call_without_an_estimate_charges_no_tokens() -> None:
    seen: list[Grant] = []
    attempt, _ = script("answer")
    limiter = Limiter(tpm=600, headroom=1.0, clock=Clock(0.0))
    assert await call_with_retries(attempt, policy=QUICK, limiter=limiter, on_grant=seen.append) == "answer"
    assert [g.tokens for g in seen] == [0]
    attempt, _ = script("answer")
    assert await call_with_retries(attempt, policy=QUICK, tokens=7, on_grant=seen.append) == "answer"
    assert [g.tokens for g in seen] == [0, 7]  # without a limiter the grant still says what was asked


async def test_the_limiter_wait_is_bounded_by_the_calls_deadline() -> None:
    loop = asyncio.get_running_loop()
    limiter = Limiter(rpm=1, headroom=1.0)
    attempt, made = script("first", "never")
    assert await call_with_retries(attempt, policy=QUICK, limiter=limiter) == "first"
    with pytest.raises(APITimeoutError, match="the rate limit allows the next request in"):
        await asyncio.wait_for(call_with_retries(attempt, policy=QUICK, limiter=limiter,
                                                 deadline=Deadline(loop.time() + 1.0, 1.0)), 10)
    assert made == [1]


@pytest.mark.parametrize("shared", [False, True])
async def test_errors_other_than_429_wait_out_their_backoff_alone(shared: bool) -> None:
    policy = RetryPolicy(max_retries=1, backoff=0.2, backoff_max=0.2)
    attempt, made = script(ServerError("HTTP 503", status_code=503), "answer")
    started = time.monotonic()
    assert await call_with_retries(attempt, policy=policy, limiter=Limiter() if shared else None) == "answer"
    assert time.monotonic() - started >= 0.1  # half the backoff at least (its jitter): it slept
    assert made == [1, 2]


async def test_a_429_without_a_shared_limiter_waits_alone() -> None:
    attempt, made = script(limited(0.2), "answer")
    started = time.monotonic()
    assert await call_with_retries(attempt, policy=QUICK) == "answer"
    assert time.monotonic() - started >= 0.2
    assert made == [1, 2]


async def test_a_request_without_an_estimate_is_charged_no_tokens() -> None:
    limiter = Limiter(tpm=60, headroom=1.0, clock=Clock(0.0))  # one token a second
    assert [limiter.reserve()[0] for _ in range(3)] == [0.0, 0.0, 0.0]
    assert (await limiter.acquire()).tokens == 0
