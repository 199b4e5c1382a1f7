"""Sliding-window rate limits per API key and model, counted the way Upstage counts them.

Each key+model pair has one deque of ``(admitted_at, tokens)`` entries, oldest first, and a running
token sum, so admitting a request and reading the headers cost O(1) in the common case. A limit
that is not configured is *advisory*: it is reported in the headers at Upstage's tier-0 value and
counted honestly, but never refused; only the entries that the headers still need are kept, so a
bucket never grows past about ``max(limit, tokens limit / smallest request)`` entries.

Rules (docs/emulator.md): a request is refused when the window already holds ``rpm`` requests, or
when the tokens in the window plus this request's tokens exceed ``tpm``; a request that alone
needs more than ``tpm`` tokens can never pass and is refused for good (``RequestTooLarge``).
Refused requests consume nothing.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "NOMINAL_REQUESTS",
    "NOMINAL_TOKENS",
    "RateLimiter",
    "RateStats",
    "Refusal",
    "RequestTooLarge",
    "key_id",
]

#: what the headers report for a limit that is not enforced (Solar Pro 4, tier 0)
NOMINAL_REQUESTS = 100
NOMINAL_TOKENS = 50_000
#: key+model pairs remembered at once; the least recently used is forgotten beyond it
MAX_BUCKETS = 10_000

_PREFIX = "X-Upstage-RateLimit-"


def key_id(api_key: str) -> bytes:
    """A fixed-size stand-in for a key: buckets never hold the key itself, nor grow with its length."""
    return hashlib.blake2b(api_key.encode(), digest_size=16).digest()


@dataclass(frozen=True)
class RateStats:
    """One key+model's counters: totals since start, and what its window holds now."""

    accepted: int
    limited: int
    requests_in_window: int
    tokens_in_window: int


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: Unix times at which each kind of capacity suffices again."""

    requests_at: float
    tokens_at: float
    now: float

    @property
    def retry_at(self) -> float:
        return max(self.requests_at, self.tokens_at)

    @property
    def limit(self) -> str:
        """``requests``, ``tokens`` or ``requests and tokens``: what ran out."""
        kinds = [k for k, at in (("requests", self.requests_at), ("tokens", self.tokens_at)) if at > self.now]
        return " and ".join(kinds)


class RequestTooLarge(Exception):
    """A request that needs more tokens than the whole ``tpm`` budget: waiting cannot help."""

    def __init__(self, tokens: int, tpm: int) -> None:
        super().__init__(f"{tokens} > {tpm}")
        self.tokens = tokens
        self.tpm = tpm


class _Bucket:
    __slots__ = ("accepted", "entries", "limited", "tokens")

    def __init__(self) -> None:
        self.entries: deque[tuple[float, int]] = deque()
        self.tokens = 0
        self.accepted = 0
        self.limited = 0


def _stamp(t: float) -> str:
    """A Unix timestamp header value: whole seconds, rounded up (never earlier than the truth)."""
    return str(math.ceil(t))


class RateLimiter:
    """Admits or refuses requests per key+model; ``rpm``/``tpm`` ``None`` means advisory only."""

    def __init__(self, *, rpm: int | None = None, tpm: int | None = None, window: float = 60.0,
                 clock: Callable[[], float], max_buckets: int = MAX_BUCKETS) -> None:
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive whole number or None, not {value!r}")
        if not (isinstance(window, (int, float)) and math.isfinite(window) and window > 0):
            raise ValueError(f"rate_window must be a positive number of seconds, not {window!r}")
        self.rpm = rpm
        self.tpm = tpm
        self.window = float(window)
        self.clock = clock
        self._request_limit = rpm or NOMINAL_REQUESTS
        self._token_limit = tpm or NOMINAL_TOKENS
        self._max_buckets = max_buckets
        self._buckets: OrderedDict[tuple[bytes, str], _Bucket] = OrderedDict()
        #: totals over every key and model
        self.accepted = 0
        self.limited = 0

    def _prune(self, bucket: _Bucket, now: float) -> None:
        entries = bucket.entries
        horizon = now - self.window
        while entries and entries[0][0] <= horizon:
            bucket.tokens -= entries.popleft()[1]
        # advisory limits: drop what neither Remaining nor Reset can depend on any more
        while len(entries) > self._request_limit and bucket.tokens - entries[0][1] >= self._token_limit:
            bucket.tokens -= entries.popleft()[1]

    def _bucket(self, key: bytes, model: str) -> _Bucket:
        buckets = self._buckets
        bucket = buckets.get((key, model))
        if bucket is None:
            bucket = buckets[(key, model)] = _Bucket()
            if len(buckets) > self._max_buckets:
                buckets.popitem(last=False)
        else:
            buckets.move_to_end((key, model))
        return bucket

    def _tokens_free_at(self, bucket: _Bucket, needed: int) -> float:
        """When enough old entries have left the window to free ``needed`` tokens."""
        freed = 0
        for admitted_at, tokens in bucket.entries:
            freed += tokens
            if freed >= needed:
                return admitted_at + self.window
        return self.clock()  # not reached: the caller only asks for what the window holds

    def admit(self, key: bytes, model: str, tokens: int) -> Refusal | None:
        """Charge one request of ``tokens`` to key+model, or say when it could pass.

        Raises ``RequestTooLarge`` when ``tokens`` alone exceeds ``tpm``."""
        if self.tpm is not None and tokens > self.tpm:
            raise RequestTooLarge(tokens, self.tpm)
        now = self.clock()
        bucket = self._bucket(key, model)
        self._prune(bucket, now)
        entries = bucket.entries
        requests_at = tokens_at = now
        if self.rpm is not None and len(entries) >= self.rpm:
            requests_at = entries[len(entries) - self.rpm][0] + self.window
        if self.tpm is not None and bucket.tokens + tokens > self.tpm:
            tokens_at = self._tokens_free_at(bucket, bucket.tokens + tokens - self.tpm)
        if requests_at > now or tokens_at > now:
            bucket.limited += 1
            self.limited += 1
            return Refusal(requests_at, tokens_at, now)
        entries.append((now, tokens))
        bucket.tokens += tokens
        bucket.accepted += 1
        self.accepted += 1
        return None

    def headers(self, key: bytes | None, model: str) -> dict[str, str]:
        """``X-Upstage-RateLimit-{Limit,Remaining,Reset,Interval}-{Requests,Tokens}`` for key+model now.

        ``Reset`` is when ``Remaining`` next goes up (now, when the window is empty)."""
        now = self.clock()
        bucket = self._buckets.get((key, model)) if key is not None else None
        if bucket is None:
            count, used, reset_requests, reset_tokens = 0, 0, now, now
        else:
            self._prune(bucket, now)
            entries = bucket.entries
            count, used = len(entries), bucket.tokens
            if not count:
                reset_requests = reset_tokens = now
            else:
                oldest = entries[0][0] + self.window
                reset_requests = (oldest if count < self._request_limit
                                  else entries[count - self._request_limit][0] + self.window)
                reset_tokens = (oldest if used < self._token_limit
                                else self._tokens_free_at(bucket, used - self._token_limit + 1))
        interval = f"{self.window:g}"
        return {
            f"{_PREFIX}Limit-Requests": str(self._request_limit),
            f"{_PREFIX}Remaining-Requests": str(max(0, self._request_limit - count)),
            f"{_PREFIX}Reset-Requests": _stamp(reset_requests),
            f"{_PREFIX}Interval-Requests": interval,
            f"{_PREFIX}Limit-Tokens": str(self._token_limit),
            f"{_PREFIX}Remaining-Tokens": str(max(0, self._token_limit - used)),
            f"{_PREFIX}Reset-Tokens": _stamp(reset_tokens),
            f"{_PREFIX}Interval-Tokens": interval,
        }

    def retry_headers(self, refusal: Refusal) -> dict[str, str]:
        """The 429's extra headers: Upstage's two Unix timestamps and a standard ``Retry-After``."""
        return {
            f"{_PREFIX}Retry-After-Requests": _stamp(refusal.requests_at),
            f"{_PREFIX}Retry-After-Tokens": _stamp(refusal.tokens_at),
            "Retry-After": str(max(1, math.ceil(refusal.retry_at - refusal.now))),
        }

    def stats(self, key: bytes, model: str) -> RateStats:
        bucket = self._buckets.get((key, model))
        if bucket is None:
            return RateStats(0, 0, 0, 0)
        self._prune(bucket, self.clock())
        return RateStats(bucket.accepted, bucket.limited, len(bucket.entries), bucket.tokens)

    def __len__(self) -> int:
        """Key+model pairs remembered now (at most ``max_buckets``)."""
        return len(self._buckets)
