"""What one emulator remembers: recent requests, attempt counters, rate-limit buckets, connections.

Everything here is bounded, so a long-running ``solarstream emulate`` keeps flat memory: the last
``history`` requests (a running total counts them all), at most ``MAX_COUNTERS`` scenario counters
and ``MAX_CACHE_KEYS`` prompt-cache keys (least recently used forgotten first), and the rate
limiter's own bounded buckets. Tests read it to count attempts and connections, and await
``wait_for_requests`` / ``wait_for_disconnects`` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .ratelimit import RateLimiter
from .scenarios import Scenario

__all__ = ["DEFAULT_HISTORY", "MAX_CACHE_KEYS", "MAX_COUNTERS", "EmulatorState", "RequestRecord"]

#: requests kept for inspection by default (``Emulator(history=N)``, ``emulate --history N``)
DEFAULT_HISTORY = 100
#: distinct scenario keys whose ``times=`` counters are kept
MAX_COUNTERS = 1_000
#: distinct ``prompt_cache_key`` values remembered (as digests)
MAX_CACHE_KEYS = 10_000


@dataclass(frozen=True)
class RequestRecord:
    """One received request; ``headers`` never include ``Authorization``."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    @cached_property
    def json(self) -> Any:
        """The parsed JSON body, or ``None`` when there was none or it was not JSON.

        Parsed on first use, so a kept record costs its body once, not twice."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class _Counters(OrderedDict[str, int]):
    """Scenario key -> count, forgetting the least recently used key beyond ``MAX_COUNTERS``."""

    def bump(self, key: str) -> int:
        count = self.get(key, 0) + 1
        self[key] = count
        self.move_to_end(key)
        if len(self) > MAX_COUNTERS:
            self.popitem(last=False)
        return count


class EmulatorState:
    def __init__(self, scenarios: list[Scenario], *, reasoning_field: str = "reasoning",
                 limiter: RateLimiter, history: int = DEFAULT_HISTORY) -> None:
        if isinstance(history, bool) or not isinstance(history, int) or history < 0:
            raise ValueError(f"history must be a whole number >= 0, not {history!r}")
        self.default_scenarios = scenarios
        self.reasoning_field = reasoning_field
        self.limiter = limiter
        self.history: deque[RequestRecord] = deque(maxlen=history)
        #: every request received, including those no longer in ``history``
        self.request_count = 0
        #: scenario key -> requests seen with it (``times=K`` fails while this is <= K)
        self.attempts: _Counters = _Counters()
        self.connections = 0
        self.disconnects = 0
        self.tokens_used = 0
        self._cache_keys: OrderedDict[bytes, None] = OrderedDict()
        #: set when the emulator shuts down: stalled and slow streams end at once
        self.closing = asyncio.Event()
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    @property
    def clock(self) -> Callable[[], float]:
        return self.limiter.clock

    @property
    def requests(self) -> list[RequestRecord]:
        """The last ``history`` requests, oldest first (a copy)."""
        return list(self.history)

    def attempt(self, scenario: Scenario) -> int:
        """Count one more request with this scenario; return the count so far."""
        return self.attempts.bump(scenario.key)

    def knows_cache_key(self, cache_key: str) -> bool:
        """Whether an admitted request already sent this ``prompt_cache_key``."""
        return _digest(cache_key) in self._cache_keys

    def remember_cache_key(self, cache_key: str) -> None:
        keys = self._cache_keys
        digest = _digest(cache_key)
        keys[digest] = None
        keys.move_to_end(digest)
        if len(keys) > MAX_CACHE_KEYS:
            keys.popitem(last=False)

    def record(self, record: RequestRecord) -> None:
        self.history.append(record)
        self.request_count += 1
        self._wake()

    def note_disconnect(self) -> None:
        """A client went away before its stream ended."""
        if self.closing.is_set():
            return  # our own shutdown cut it: not the client's doing
        self.disconnects += 1
        self._wake()

    def _wake(self) -> None:
        if not self._waiters:
            return
        waiting = []
        for ready, future in self._waiters:
            if future.done():
                continue  # its waiter gave up (a timeout cancelled it)
            if ready():
                future.set_result(None)
            else:
                waiting.append((ready, future))
        self._waiters = waiting

    async def _wait(self, ready: Callable[[], bool]) -> None:
        if not ready():
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append((ready, future))
            await future

    async def wait_for_disconnects(self, count: int = 1) -> int:
        """Wait until at least ``count`` disconnects were seen (bound it with ``asyncio.wait_for``)."""
        await self._wait(lambda: self.disconnects >= count)
        return self.disconnects

    async def wait_for_requests(self, count: int = 1) -> list[RequestRecord]:
        """Wait until at least ``count`` requests arrived in total (bound it with ``asyncio.wait_for``);
        returns the ones still in the history."""
        await self._wait(lambda: self.request_count >= count)
        return self.requests
