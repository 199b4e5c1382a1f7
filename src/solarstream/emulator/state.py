"""What one emulator remembers: received requests, attempt counters, connections and disconnects.

Tests read it to count attempts and connections, and await ``wait_for_disconnects`` to know the
server saw a client go away, without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .scenarios import Scenario

__all__ = ["EmulatorState", "RequestRecord"]

RATE_LIMIT_REQUESTS = 100
RATE_LIMIT_TOKENS = 50_000
RATE_LIMIT_INTERVAL = 60


@dataclass(frozen=True)
class RequestRecord:
    """One received request; ``headers`` never include ``Authorization``."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    #: the parsed JSON body, or ``None`` when there was none or it was not JSON
    json: Any


class EmulatorState:
    def __init__(self, scenarios: list[Scenario], *, reasoning_field: str = "reasoning") -> None:
        self.default_scenarios = scenarios
        self.reasoning_field = reasoning_field
        self.requests: list[RequestRecord] = []
        #: scenario key -> requests seen with it (``times=K`` fails while this is <= K)
        self.attempts: dict[str, int] = {}
        self.connections = 0
        self.disconnects = 0
        self.tokens_used = 0
        self.cache_keys: set[str] = set()
        #: set when the emulator shuts down: stalled and slow streams end at once
        self.closing = asyncio.Event()
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def attempt(self, scenario: Scenario) -> int:
        """Count one more request with this scenario; return the count so far."""
        count = self.attempts.get(scenario.key, 0) + 1
        self.attempts[scenario.key] = count
        return count

    def record(self, record: RequestRecord) -> None:
        self.requests.append(record)
        self._wake()

    def note_disconnect(self) -> None:
        """A client went away before its stream ended."""
        if self.closing.is_set():
            return  # our own shutdown cut it: not the client's doing
        self.disconnects += 1
        self._wake()

    def _wake(self) -> None:
        waiting = []
        for ready, future in self._waiters:
            if ready():
                if not future.done():
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
        """Wait until at least ``count`` requests arrived (bound it with ``asyncio.wait_for``)."""
        await self._wait(lambda: len(self.requests) >= count)
        return self.requests

    def rate_limit_headers(self) -> dict[str, str]:
        """``X-Upstage-RateLimit-*``: a plausible tier-0 budget that counts down per request."""
        used = len(self.requests)
        reset = str((int(time.time()) // RATE_LIMIT_INTERVAL + 1) * RATE_LIMIT_INTERVAL)
        prefix = "X-Upstage-RateLimit-"
        return {
            f"{prefix}Limit-Requests": str(RATE_LIMIT_REQUESTS),
            f"{prefix}Remaining-Requests": str(max(0, RATE_LIMIT_REQUESTS - 1 - (used - 1) % RATE_LIMIT_REQUESTS)),
            f"{prefix}Reset-Requests": reset,
            f"{prefix}Interval-Requests": str(RATE_LIMIT_INTERVAL),
            f"{prefix}Limit-Tokens": str(RATE_LIMIT_TOKENS),
            f"{prefix}Remaining-Tokens": str(max(0, RATE_LIMIT_TOKENS - self.tokens_used % RATE_LIMIT_TOKENS)),
            f"{prefix}Reset-Tokens": reset,
            f"{prefix}Interval-Tokens": str(RATE_LIMIT_INTERVAL),
        }
