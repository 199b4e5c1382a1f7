"""The emulator's enforced rate limits: sliding windows per API key and model, the headers, the 429s.

Driven over HTTP with plain aiohttp; the window arithmetic runs on an injected clock (no sleeping),
and two tests use the real clock with a half-second window, as the batch runner will.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

import aiohttp
import pytest

from solarstream import AsyncClient
from solarstream.emulator import Emulator, RateStats
from solarstream.emulator.ratelimit import RateLimiter, key_id

T0 = 1_790_000_000.0  # 2026-09-21, a Unix time with room before the embedding models' removal
USER = [{"role": "user", "content": "Hello there"}]
CHAT: dict[str, Any] = {"model": "solar-mini", "messages": USER}
H = "X-Upstage-RateLimit-"


class FakeClock:
    """Unix seconds that move only when told to."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Api:
    """Requests as a client sends them: ``await api(emu, body)`` -> (status, headers, parsed body)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def __call__(self, emu: Emulator, body: Any = None, *, key: str | None = None,
                       path: str = "/chat/completions", emulate: str | None = None) -> tuple[int, Any, Any]:
        headers = {"Authorization": f"Bearer {key or emu.api_key}"}
        if emulate:
            headers["X-Emulate"] = emulate
        if body is None:
            async with self.session.get(emu.base_url + path, headers=headers) as r:
                return r.status, r.headers, await r.json()
        async with self.session.post(emu.base_url + path, json=body, headers=headers) as r:
            raw = await r.read()
            return r.status, r.headers, json.loads(raw) if r.content_type == "application/json" else raw


@pytest.fixture
def call(session: aiohttp.ClientSession) -> Api:
    return Api(session)


def remaining(headers: Any) -> tuple[int, int]:
    return int(headers[f"{H}Remaining-Requests"]), int(headers[f"{H}Remaining-Tokens"])


def tokens_of(body: dict[str, Any]) -> int:
    return int(body["usage"]["total_tokens"])


# --- requests per window ------------------------------------------------------------------------


async def test_rpm_refuses_the_request_over_the_limit_until_the_oldest_leaves(
        clock: FakeClock, call: Api) -> None:
    async with Emulator(rpm=3, clock=clock) as emu:
        results = [await call(emu, CHAT) for _ in range(3)]
        assert [s for s, _, _ in results] == [200, 200, 200]
        assert [remaining(h)[0] for _, h, _ in results] == [2, 1, 0]
        assert results[0][1][f"{H}Limit-Requests"] == "3"
        assert results[0][1][f"{H}Interval-Requests"] == "60"
        assert results[-1][1][f"{H}Reset-Requests"] == str(math.ceil(T0 + 60))

        status, headers, body = await call(emu, CHAT)
        assert status == 429
        assert body == {"error": {
            "message": "Rate limit reached: too many requests for 'solar-mini' on this API key (the limit is 3 "
                       f"requests per 60 s; this request needs {tokens_of(results[0][2])} tokens). "
                       "Retry in 60.0 s.",
            "type": "invalid_request_error", "param": "", "code": "too_many_requests"}}
        assert headers[f"{H}Retry-After-Requests"] == str(math.ceil(T0 + 60))
        assert headers[f"{H}Retry-After-Tokens"] == str(math.ceil(T0))  # tokens are not what ran out
        assert headers["Retry-After"] == "60"
        assert remaining(headers)[0] == 0

        clock.advance(59.5)
        status, headers, _ = await call(emu, CHAT)
        assert status == 429
        assert headers["Retry-After"] == "1"  # 0.5 s, in whole seconds rounded up
        clock.advance(0.5)  # exactly one window after the first three: they leave it
        statuses = [(await call(emu, CHAT))[0] for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
    assert emu.accepted == 6
    assert emu.rate_limited == 3
    assert emu.rate_stats("solar-mini") == RateStats(accepted=6, limited=3, requests_in_window=3,
                                                     tokens_in_window=3 * tokens_of(results[0][2]))


async def test_the_window_slides(clock: FakeClock, call: Api) -> None:
    async with Emulator(rpm=3, clock=clock) as emu:
        for step in (0, 30, 15):  # admitted at T0, T0+30, T0+45
            clock.advance(step)
            assert (await call(emu, CHAT))[0] == 200
        clock.advance(5)  # T0+50
        status, headers, _ = await call(emu, CHAT)
        assert status == 429
        assert headers[f"{H}Retry-After-Requests"] == str(math.ceil(T0 + 60))
        assert headers["Retry-After"] == "10"
        clock.advance(10)  # T0+60: the first has left; T0+30 and T0+45 remain
        status, headers, _ = await call(emu, CHAT)
        assert status == 200
        assert remaining(headers)[0] == 0
        assert headers[f"{H}Reset-Requests"] == str(math.ceil(T0 + 90))  # when T0+30 leaves
        clock.advance(1)
        status, headers, _ = await call(emu, CHAT)
        assert status == 429
        assert headers["Retry-After"] == "29"


async def test_rate_window_sets_the_interval(clock: FakeClock, call: Api) -> None:
    async with Emulator(rpm=1, rate_window=2.5, clock=clock) as emu:
        status, headers, _ = await call(emu, CHAT)
        assert status == 200
        assert headers[f"{H}Interval-Requests"] == headers[f"{H}Interval-Tokens"] == "2.5"
        assert (await call(emu, CHAT))[0] == 429
        clock.advance(2.5)
        assert (await call(emu, CHAT))[0] == 200


# --- tokens per window --------------------------------------------------------------------------


async def test_tpm_counts_total_tokens_and_refuses_what_would_go_over(
        clock: FakeClock, call: Api) -> None:
    async with Emulator(clock=clock) as probe:
        tokens = tokens_of((await call(probe, CHAT))[2])
    async with Emulator(tpm=2 * tokens + 1, clock=clock) as emu:
        first = await call(emu, CHAT)
        assert remaining(first[1])[1] == tokens + 1
        assert first[1][f"{H}Limit-Tokens"] == str(2 * tokens + 1)
        assert first[1][f"{H}Limit-Requests"] == "100"  # not enforced: Upstage's tier-0 value, advisory
        clock.advance(10)
        second = await call(emu, CHAT)
        assert remaining(second[1]) == (98, 1)
        clock.advance(10)
        status, headers, body = await call(emu, CHAT)
        assert status == 429
        assert body["error"]["code"] == "too_many_requests"
        assert "too many tokens for 'solar-mini'" in body["error"]["message"]
        # one request's tokens must leave: the first, admitted at T0
        assert headers[f"{H}Retry-After-Tokens"] == str(math.ceil(T0 + 60))
        assert headers[f"{H}Retry-After-Requests"] == str(math.ceil(T0 + 20))
        assert headers["Retry-After"] == "40"
        assert remaining(headers) == (98, 1)  # the refusal consumed nothing
        clock.advance(40)
        assert (await call(emu, CHAT))[0] == 200
    assert emu.rate_stats("solar-mini") == RateStats(3, 1, 2, 2 * tokens)


async def test_a_request_bigger_than_the_whole_tpm_is_a_400_not_an_endless_429(
        clock: FakeClock, call: Api) -> None:
    big = {"model": "solar-mini", "messages": [{"role": "user", "content": "x" * 400}]}
    async with Emulator(tpm=50, clock=clock) as emu:
        status, headers, body = await call(emu, big)
        assert status == 400
        error = body["error"]
        assert error["code"] == "request_too_large"
        assert error["message"].startswith("This request needs ")
        assert "more than the whole budget of 50 tokens per 60 s for 'solar-mini'" in error["message"]
        assert "Retry-After" not in headers
        assert remaining(headers)[1] == 50
        assert (await call(emu, CHAT))[0] == 200
    assert emu.rate_limited == 0
    assert emu.accepted == 1


async def test_both_limits_refuse_with_both_timestamps(clock: FakeClock, call: Api) -> None:
    async with Emulator(clock=clock) as probe:
        tokens = tokens_of((await call(probe, CHAT))[2])
    async with Emulator(rpm=1, tpm=tokens, clock=clock) as emu:
        assert (await call(emu, CHAT))[0] == 200
        clock.advance(1)
        status, headers, body = await call(emu, CHAT)
        assert status == 429
        assert "too many requests and tokens" in body["error"]["message"]
        assert headers[f"{H}Retry-After-Requests"] == headers[f"{H}Retry-After-Tokens"] == str(math.ceil(T0 + 60))
        assert headers["Retry-After"] == "59"


# --- per key and per model ----------------------------------------------------------------------


async def test_budgets_are_per_key_and_per_model(clock: FakeClock, call: Api) -> None:
    async with Emulator(rpm=1, clock=clock) as emu:
        assert (await call(emu, CHAT))[0] == 200
        assert (await call(emu, CHAT))[0] == 429
        assert (await call(emu, CHAT, key="up_another_key"))[0] == 200  # another key: its own budget
        assert (await call(emu, {**CHAT, "model": "solar-pro3"}))[0] == 200  # another model: its own budget
        # a dated id counts against its model's budget
        assert (await call(emu, {**CHAT, "model": "solar-mini-250422"}))[0] == 429
        assert (await call(emu, {**CHAT, "model": "solar-pro4"}))[0] == 200
        assert (await call(emu, {**CHAT, "model": "solar-pro4-260806"}))[0] == 429
        assert (await call(emu, {"model": "solar-embedding-2-query", "input": "hi"}, path="/embeddings"))[0] == 200
    assert emu.rate_stats("solar-mini") == RateStats(1, 2, 1, emu.rate_stats("solar-mini").tokens_in_window)
    assert emu.rate_stats("solar-mini", api_key="up_another_key").accepted == 1
    assert emu.rate_stats("solar-pro4").limited == 1
    assert emu.rate_stats("solar-embedding-2-query").accepted == 1
    assert emu.rate_stats("nothing-here") == RateStats(0, 0, 0, 0)
    assert emu.accepted == 5
    assert emu.rate_limited == 3


async def test_refused_and_invalid_requests_consume_nothing(clock: FakeClock, call: Api) -> None:
    async with Emulator(rpm=2, clock=clock) as emu:
        assert (await call(emu, {**CHAT, "store": True}))[0] == 400
        assert (await call(emu, CHAT, emulate="error status=503"))[0] == 503  # an injected fault
        assert (await call(emu, CHAT, key="not-a-key"))[0] == 401
        assert [(await call(emu, CHAT))[0] for _ in range(5)] == [200, 200, 429, 429, 429]
        clock.advance(60)
        assert [(await call(emu, CHAT))[0] for _ in range(3)] == [200, 200, 429]


async def test_streams_are_charged_and_carry_the_headers(clock: FakeClock, call: Api) -> None:
    async with Emulator(rpm=2, clock=clock) as emu:
        status, headers, raw = await call(emu, {**CHAT, "stream": True})
        assert status == 200
        assert raw.endswith(b"data: [DONE]\n\n")
        assert remaining(headers)[0] == 1
        status, headers, raw = await call(emu, {**CHAT, "stream": True}, emulate="truncate after=1")
        assert status == 200  # admitted (and charged), then the stream breaks as asked
        assert remaining(headers)[0] == 0
        status, headers, body = await call(emu, {**CHAT, "stream": True})
        assert status == 429  # before the stream starts: an HTTP error, not an SSE one
        assert body["error"]["code"] == "too_many_requests"


async def test_every_response_carries_true_headers(clock: FakeClock, call: Api) -> None:
    async with Emulator(rpm=5, tpm=1000, clock=clock) as emu:
        status, headers, body = await call(emu, CHAT)
        used = tokens_of(body)
        assert remaining(headers) == (4, 1000 - used)
        assert headers[f"{H}Reset-Requests"] == headers[f"{H}Reset-Tokens"] == str(math.ceil(T0 + 60))
        # an error for the same key and model shows the same budget, untouched
        status, headers, _ = await call(emu, {**CHAT, "temperature": 9})
        assert status == 400
        assert remaining(headers) == (4, 1000 - used)
        # the model list costs nothing and counts against no model: a fresh budget
        status, headers, _ = await call(emu, path="/models")
        assert status == 200
        assert remaining(headers) == (5, 1000)
        assert headers[f"{H}Reset-Requests"] == str(math.ceil(T0))  # nothing used: now
        for name in ("Limit", "Remaining", "Reset", "Interval"):
            for unit in ("Requests", "Tokens"):
                assert headers[f"{H}{name}-{unit}"].isdigit()


async def test_without_limits_headers_count_honestly_and_nothing_is_refused(
        clock: FakeClock, call: Api) -> None:
    async with Emulator(clock=clock) as emu:
        for i in range(105):
            clock.advance(0.1)
            status, headers, _ = await call(emu, CHAT)
            assert status == 200
            assert remaining(headers)[0] == max(0, 99 - i)
        assert headers[f"{H}Limit-Requests"] == "100"
        # 105 requests in the window, at T0+0.1 ... T0+10.5: Remaining rises again once the sixth leaves
        assert headers[f"{H}Reset-Requests"] == str(math.ceil(T0 + 0.6 + 60))
    assert emu.rate_limited == 0
    assert emu.accepted == 105


async def test_rate_limit_scenario_still_works_beside_real_limits(clock: FakeClock, call: Api) -> None:
    async with Emulator(rpm=10, clock=clock) as emu:
        status, headers, _ = await call(emu, CHAT, emulate="rate-limit header=all delay_ms=2000")
        assert status == 429
        assert headers["retry-after-ms"] == "2000"
        assert remaining(headers)[0] == 10  # an injected 429 is not a real one: nothing charged
    assert emu.rate_limited == 0


# --- the limiter itself -------------------------------------------------------------------------


def test_limiter_rejects_bad_settings() -> None:
    for kwargs, match in (({"rpm": 0}, "rpm must be a positive"), ({"tpm": -1}, "tpm must be a positive"),
                          ({"window": 0}, "rate_window must be a positive")):
        with pytest.raises(ValueError, match=match):
            RateLimiter(clock=time.time, **kwargs)
    with pytest.raises(ValueError, match="rpm"):
        Emulator(rpm=0)


def test_limiter_forgets_the_least_recently_used_pairs_beyond_its_cap() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=1, clock=clock, max_buckets=3)
    for name in ("a", "b", "c", "d"):
        assert limiter.admit(key_id(f"up_{name}"), "solar-mini", 5) is None
    assert len(limiter) == 3
    assert limiter.stats(key_id("up_a"), "solar-mini") == RateStats(0, 0, 0, 0)  # forgotten
    assert limiter.admit(key_id("up_d"), "solar-mini", 5) is not None  # remembered: still limited


def test_limiter_admits_quickly() -> None:
    """The benchmark pushes thousands of requests a second through one budget."""
    clock = FakeClock()
    limiter = RateLimiter(rpm=1000, tpm=10_000_000, clock=clock)
    key = key_id("up_bench")
    start = time.perf_counter()
    admitted = 0
    for _ in range(100_000):
        clock.advance(0.001)  # 1,000 requests a second: the window holds 60,000
        if limiter.admit(key, "solar-mini", 30) is None:
            admitted += 1
        limiter.headers(key, "solar-mini")
    elapsed = time.perf_counter() - start
    assert admitted == 2000  # 1,000 per 60 s window, over 100 s
    assert elapsed < 10  # generous: about 0.5 s on a laptop


# --- real time ---------------------------------------------------------------------------------


async def test_real_clock_one_second_window(call: Api) -> None:
    # one second: three requests fit in it even on a loaded machine
    async with Emulator(rpm=2, rate_window=1.0) as emu:
        assert [(await call(emu, CHAT))[0] for _ in range(3)] == [200, 200, 429]
        status, headers, _ = await call(emu, CHAT)
        assert status == 429
        assert headers["Retry-After"] == "1"
        # a whole-second Unix time: within the window (1 s) plus the rounding up (under 1 s) from now
        assert 0 < float(headers[f"{H}Retry-After-Requests"]) - time.time() < 2.0
        deadline = time.monotonic() + 10
        while (await call(emu, CHAT))[0] != 200:  # real time is the behaviour: the window must pass
            assert time.monotonic() < deadline, "the window never freed"
            await asyncio.sleep(0.05)
    assert emu.accepted == 3


async def test_client_retries_after_the_advertised_delay() -> None:
    """The solarstream client against an enforced limit: it waits for Retry-After and succeeds."""
    async with Emulator(rpm=1, rate_window=1.0) as emu:  # long enough that the second request is refused
        client = AsyncClient(api_key=emu.api_key, base_url=emu.base_url, max_retries=2)
        start = time.monotonic()
        first = await client.chat.completions.create(model="solar-mini", messages=USER)
        second = await client.chat.completions.create(model="solar-mini", messages=USER)
        elapsed = time.monotonic() - start
        await client.close()
    assert first.choices[0].message.content == second.choices[0].message.content
    assert emu.rate_limited == 1
    assert emu.accepted == 2
    assert 0.9 < elapsed < 10  # Retry-After: 1 s (whole seconds), honoured
