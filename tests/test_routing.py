"""The router's failover, cooldowns and strategies, against several emulators on loopback.

Each upstream is its own ``Emulator`` with its own key, limits and injected faults; every test
asserts how many requests each upstream received and the exact text the caller got.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from solarstream import AsyncClient, Client, RetryPolicy, Router, Timeout
from solarstream.emulator import Emulator
from solarstream.emulator.answers import answer_text, pieces, reasoning_text
from solarstream.errors import (
    AuthenticationError,
    InvalidRequestError,
    ModelNotSupportedError,
    RateLimitError,
    StreamTruncatedError,
)
from solarstream.providers import OpenAICompatibleProvider, Upstage
from solarstream.routing import Deployment, NoDeploymentAvailableError, Weighted
from solarstream.types import ChatCompletionChunk
from tests.conftest import API_KEY
from tests.rawserver import RawServer, Reply

PROMPT = "Hello"
MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": PROMPT}]
ANSWER = answer_text(PROMPT)


def on(emu: Emulator, key: str, model: str = "solar-mini", **fields: Any) -> Deployment:
    """A deployment of ``model`` on ``emu`` with its own key."""
    return Deployment(model, api_key=f"up_{key}", base_url=emu.base_url, name=key, **fields)


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as s:
        yield s


async def emulators(stack: AsyncExitStack, *configs: dict[str, Any]) -> list[Emulator]:
    return [await stack.enter_async_context(Emulator(**c)) for c in configs]


async def streamed(router: Router, messages: list[dict[str, Any]] = MESSAGES,
                   **params: Any) -> list[ChatCompletionChunk]:
    async with AsyncClient(provider=router) as client:
        stream = await client.chat.completions.create(model="solar-mini", messages=messages, stream=True,
                                                      **params)
        return [chunk async for chunk in stream]


async def collect(source: AsyncIterator[str], into: list[str]) -> None:
    """Read ``source`` into ``into`` (what arrived stays there when it raises)."""
    async for piece in source:
        into.append(piece)


def text_of(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def by_name(router: Router) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in router.status()["deployments"]}


# --- the scenarios of the issue ------------------------------------------------------------------


async def test_429_on_the_first_moves_to_the_second_and_cools_the_first(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {"rpm": 1}, {})
    router = Router([on(a, "a"), on(b, "b")])
    assert text_of(await streamed(router)) == ANSWER  # a's one request of the minute
    assert text_of(await streamed(router)) == ANSWER  # a: 429, then b
    assert (a.request_count, a.rate_limited, b.request_count) == (2, 1, 1)
    state = by_name(router)["a"]
    assert state["cooling"] is True
    assert 50 < state["cooling_seconds"] <= 61  # the emulator said: about a minute
    assert state["last_error"]["status_code"] == 429
    assert state["last_error"]["code"] == "too_many_requests"
    assert text_of(await streamed(router)) == ANSWER  # a is cooling: straight to b, a sees nothing
    assert (a.request_count, b.request_count) == (2, 2)
    assert by_name(router)["b"]["successes"] == 2


async def test_5xx_storm_costs_the_failing_deployment_one_request(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {"scenario": "error status=503"}, {})
    router = Router([on(a, "a"), on(b, "b")])
    async with AsyncClient(provider=router) as client:
        for _ in range(10):
            completion = await client.chat.completions.create(model="solar-mini", messages=MESSAGES)
            assert completion.choices[0].message.content == ANSWER
    assert (a.request_count, b.request_count) == (1, 10)  # not retried in place: the router is the retry loop
    status = by_name(router)
    assert (status["a"]["failures"], status["a"]["successes"], status["b"]["successes"]) == (1, 0, 10)
    assert 0 < status["a"]["cooling_seconds"] <= 5


async def test_reset_before_the_first_byte_fails_over(server: RawServer, stack: AsyncExitStack) -> None:
    (b,) = await emulators(stack, {})
    server.enqueue(Reply(status=None, end="reset"))
    router = Router([Deployment("solar-mini", api_key=API_KEY, base_url=server.base_url, name="raw"), on(b, "b")])
    assert text_of(await streamed(router)) == ANSWER
    assert (len(server.requests), b.request_count) == (1, 1)


async def test_reset_after_the_role_chunk_fails_over_without_a_duplicate(stack: AsyncExitStack) -> None:
    """Only the role chunk had come from a: nothing was handed out, so b answers, whole and once."""
    a, b = await emulators(stack, {"scenario": "reset after=0"}, {})
    router = Router([on(a, "a"), on(b, "b")])
    chunks = await streamed(router)
    assert text_of(chunks) == ANSWER
    roles = [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role]
    assert roles == ["assistant"]  # one announcement, first
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1  # every chunk from the one answer of b
    assert [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content] == \
        pieces(ANSWER)  # in order, none twice
    assert (a.request_count, b.request_count) == (1, 1)


async def test_reset_after_output_is_raised_and_never_resent(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {"scenario": "reset after=3"}, {})
    router = Router([on(a, "a"), on(b, "b")])
    got: list[str] = []
    stream = router.stream("solar-mini", MESSAGES)
    with pytest.raises(StreamTruncatedError):
        await collect(stream.text(), got)
    assert got == pieces(ANSWER)[:3]  # what a sent, nothing more, nothing from b
    assert stream.started is True
    assert (a.request_count, b.request_count) == (1, 0)
    assert by_name(router)["a"]["failures"] == 1


async def test_context_too_long_goes_to_the_longer_context_fallback(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {}, {})
    router = Router([on(a, "mini"), on(b, "pro4", model="solar-pro4")],
                    context_window_fallbacks={"solar-mini": ["solar-pro4"]})
    chunks = await streamed(router, max_tokens=40_000)  # over solar-mini's 32K window, well within solar-pro4's
    assert text_of(chunks) == ANSWER
    assert chunks[0].model == "solar-pro4-260806"
    assert (a.request_count, b.request_count) == (1, 1)
    assert by_name(router)["mini"]["cooling"] is False  # the deployment is fine; the prompt was too long for it


async def test_context_too_long_without_a_fallback_is_raised(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {}, {})
    router = Router([on(a, "mini"), on(b, "pro4", model="solar-pro4")], fallbacks={"solar-mini": ["solar-pro4"]})
    with pytest.raises(InvalidRequestError) as caught:
        await streamed(router, max_tokens=40_000)
    assert caught.value.code == "context_length_exceeded"
    assert (a.request_count, b.request_count) == (1, 0)


async def test_retired_model_goes_to_its_successor(server: RawServer) -> None:
    """Upstage retires a model our table still calls current: its error names the successor."""
    retired = (b'{"error":{"message":"The model \'solar-pro3\' is retired (since 2027-01-01); use \'solar-pro4\' '
               b'instead.","type":"invalid_request_error","param":"model","code":"invalid_request_body"}}')
    body = (b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"solar-pro4-260806","choices":'
            b'[{"index":0,"delta":{"role":"assistant","content":"fine"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
    server.enqueue(Reply(status=400, headers=(("Content-Type", "application/json"),), pieces=(retired,),
                         framing="length"),
                   Reply(pieces=(body,)))
    router = Router([Deployment("pro", model="solar-pro3", api_key=API_KEY, base_url=server.base_url, name="raw")])
    assert await router.stream("pro", MESSAGES).get_final_text() == "fine"
    assert [r.json()["model"] for r in server.requests] == ["solar-pro3", "solar-pro4"]
    status = by_name(router)
    assert status["raw"]["cooling"] is True  # solar-pro3 there is out (removal cooldown)
    assert status["raw:->solar-pro4"]["successes"] == 1


async def test_a_retired_model_without_a_model_table_goes_to_the_configured_fallback(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {}, {})
    generic = OpenAICompatibleProvider(api_key="up_generic", base_url=a.base_url)  # no model table: sent as written
    router = Router([Deployment("old", model="solar-pro2", provider=generic, name="a"), on(b, "b")],
                    fallbacks={"old": ["solar-mini"]})
    async with AsyncClient(provider=router) as client:
        completion = await client.chat.completions.create(model="old", messages=MESSAGES)
    assert completion.choices[0].message.content == ANSWER
    assert (a.request_count, b.request_count) == (1, 1)
    assert by_name(router)["a"]["last_error"]["status_code"] == 400


async def test_all_cooling_then_one_recovering_waits_instead_of_failing(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {"scenario": "rate-limit header=retry-after-ms delay_ms=300 times=1"},
                           {"scenario": "rate-limit header=retry-after-ms delay_ms=2000 times=1"})
    router = Router([on(a, "a"), on(b, "b")])
    began = time.monotonic()
    assert text_of(await streamed(router)) == ANSWER
    waited = time.monotonic() - began
    assert 0.3 <= waited < 1.9  # the earliest (a, 0.3 s), not b's 2 s
    assert (a.request_count, b.request_count) == (2, 1)


async def test_waiting_for_a_cooldown_is_bounded_by_the_calls_timeout(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {"scenario": "rate-limit header=retry-after-ms delay_ms=20000"},
                           {"scenario": "rate-limit header=retry-after-ms delay_ms=30000"})
    router = Router([on(a, "a"), on(b, "b")], timeout=Timeout(total=2.0))
    began = time.monotonic()
    with pytest.raises(RateLimitError) as caught:
        await streamed(router)
    assert time.monotonic() - began < 2.0
    assert caught.value.retry_after is not None
    assert 29 <= caught.value.retry_after <= 30  # the last deployment's answer, as it said
    assert (a.request_count, b.request_count) == (1, 1)
    # a later call does not knock on cooling doors: it says when to come back
    with pytest.raises(NoDeploymentAvailableError) as later:
        await streamed(router)
    assert later.value.retry_after is not None
    assert 15 < later.value.retry_after <= 20
    assert "a (RateLimitError 429" in later.value.message
    assert (a.request_count, b.request_count) == (1, 1)


async def test_recooling_keeps_the_later_deadline(stack: AsyncExitStack) -> None:
    (a,) = await emulators(stack, {})
    router = Router([on(a, "a")])
    state = router.deployments[0]
    first = state.cool(30.0, "long")
    assert state.cool(1.0, "short") == first  # LiteLLM #40130: the shorter one must not win
    assert state.cooling_reason == "long"
    assert state.cool(60.0, "longer") > first


async def test_a_blocked_key_removes_its_deployment(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {"scenario": "error status=401 code=api_key_is_blocked"}, {})
    router = Router([on(a, "a"), on(b, "b")], removal_cooldown=120)
    for _ in range(3):
        assert text_of(await streamed(router)) == ANSWER
    assert (a.request_count, b.request_count) == (1, 3)
    assert 100 < by_name(router)["a"]["cooling_seconds"] <= 120


async def test_a_validation_error_is_never_failed_over(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {}, {})
    router = Router([on(a, "a"), on(b, "b")])
    with pytest.raises(InvalidRequestError):  # refused before sending: solar-mini does not reason
        router.stream("solar-mini", MESSAGES, reasoning_effort="high")
    with pytest.raises(InvalidRequestError) as caught:  # the API's own 400
        await streamed(router, messages=[{"role": "user", "content": "[emulate:error status=400] hi"}])
    assert caught.value.status_code == 400
    assert (a.request_count, b.request_count) == (1, 0)
    assert by_name(router)["a"]["cooling"] is False


async def test_listed_error_classes_fail_over(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {"scenario": "error status=404 code=not_found"}, {})
    plain = Router([on(a, "a"), on(b, "b")])
    assert text_of(await streamed(plain)) == ANSWER  # a wrong base URL (404) removes that deployment
    a2, b2 = await emulators(stack, {"scenario": "error status=409 code=conflict"}, {})
    with pytest.raises(InvalidRequestError):
        await streamed(Router([on(a2, "a"), on(b2, "b")]))
    listed = Router([on(a2, "a"), on(b2, "b")], retry_on=[InvalidRequestError])
    assert text_of(await streamed(listed)) == ANSWER
    assert (a2.request_count, b2.request_count) == (2, 1)


async def test_a_single_deployment_keeps_the_normal_retry_policy(stack: AsyncExitStack) -> None:
    (a,) = await emulators(stack, {"scenario": "error status=503 times=2"})
    fast = RetryPolicy(max_retries=2, backoff=0.01)
    router = Router([Deployment("solar-mini", provider=Upstage(api_key="up_a", base_url=a.base_url, retry=fast))])
    assert text_of(await streamed(router)) == ANSWER
    assert a.request_count == 3  # two retries in place, as without a router


async def test_several_deployments_send_with_max_retries_0(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {"scenario": "error status=503 times=2"}, {})
    given = Upstage(api_key="up_a", base_url=a.base_url, max_retries=5)  # the router overrides it per call
    router = Router([Deployment("solar-mini", provider=given, name="a"), on(b, "b")])
    assert text_of(await streamed(router)) == ANSWER
    assert (a.request_count, b.request_count) == (1, 1)


async def test_one_log_line_per_failover_names_both_and_no_secret(stack: AsyncExitStack,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    a, b = await emulators(stack, {"scenario": "error status=502"}, {})
    router = Router([Deployment("solar-mini", api_key=API_KEY, base_url=a.base_url, name="first"),
                     Deployment("solar-mini", api_key=API_KEY, base_url=b.base_url, name="second")])
    with caplog.at_level(logging.INFO, logger="solarstream"):
        assert text_of(await streamed(router)) == ANSWER
    lines = [r.getMessage() for r in caplog.records if "failed over" in r.getMessage()]
    assert len(lines) == 1
    assert "from first to second" in lines[0]
    assert "502" in lines[0]
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(router) + str(router.status()) + repr(router.deployments)


# --- strategies, by what each upstream received --------------------------------------------------


async def test_ordered_uses_the_first_while_it_works(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {}, {})
    router = Router([on(a, "a"), on(b, "b")], strategy="ordered")
    for _ in range(5):
        assert text_of(await streamed(router)) == ANSWER
    assert (a.request_count, b.request_count) == (5, 0)


async def test_weighted_shuffle_follows_the_weights(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {}, {})
    router = Router([on(a, "a", weight=3), on(b, "b", weight=1)], strategy=Weighted(random.Random(12)))
    async with AsyncClient(provider=router) as client:
        for _ in range(120):
            completion = await client.chat.completions.create(model="solar-mini", messages=MESSAGES)
            assert completion.choices[0].message.content == ANSWER
    assert a.request_count + b.request_count == 120
    assert 70 <= a.request_count <= 110  # 90 expected


async def test_least_in_flight_goes_where_fewest_calls_are_open(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {}, {})
    router = Router([on(a, "a"), on(b, "b")], strategy="least-in-flight")
    first = router.stream("solar-mini", MESSAGES)
    await first.start()  # open: in flight on a until it is read or closed
    second = router.stream("solar-mini", MESSAGES)
    await second.start()
    assert (first.deployment, second.deployment) == ("a", "b")
    assert (a.request_count, b.request_count) == (1, 1)
    assert await first.get_final_text() == ANSWER
    third = router.stream("solar-mini", MESSAGES)
    await third.start()
    assert third.deployment == "a"  # a has none open now, b still has one
    assert by_name(router)["b"]["in_flight"] == 1
    assert [await s.get_final_text() for s in (second, third)] == [ANSWER, ANSWER]
    assert (a.request_count, b.request_count) == (2, 1)
    assert [d["in_flight"] for d in router.status()["deployments"]] == [0, 0]


async def test_usage_based_follows_the_remaining_budget_in_the_headers(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {"rpm": 3}, {"rpm": 10})
    router = Router([on(a, "a"), on(b, "b")], strategy="usage-based")
    order = []
    for _ in range(10):
        stream = router.stream("solar-mini", MESSAGES)
        assert await stream.get_final_text() == ANSWER
        order.append(stream.deployment)
    # a: 3 a minute, b: 10; each call goes where the larger share is left (a 2/3 beats b 6/10)
    assert order == ["a", "b", "b", "b", "b", "a", "b", "b", "b", "a"]
    assert (a.request_count, b.request_count, a.rate_limited, b.rate_limited) == (3, 7, 0, 0)
    assert by_name(router)["a"]["rate_limits"]["remaining_requests"] == 0


async def test_configured_rpm_paces_a_deployment(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {}, {})
    router = Router([on(a, "a", rpm=60), on(b, "b")])  # a: one a second
    for _ in range(4):
        assert text_of(await streamed(router)) == ANSWER
    assert (a.request_count, b.request_count) == (1, 3)  # a waits its turn: b serves meanwhile


# --- a router is a provider ----------------------------------------------------------------------


async def test_seed_style_calls_fail_over(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {"scenario": "error status=500"}, {})
    router = Router([on(a, "a"), on(b, "b")])
    assert [p async for p in router.create_async_generator("solar-mini", MESSAGES)] == pieces(ANSWER)
    assert await router.create_async("solar-mini", MESSAGES) == ANSWER
    assert (a.request_count, b.request_count) == (1, 2)


def test_the_sync_client_and_create_completion() -> None:
    async def start() -> tuple[Emulator, Emulator]:
        return await Emulator(scenario="error status=503").__aenter__(), await Emulator().__aenter__()

    from solarstream import _sync

    a, b = _sync.run(start())
    try:
        router = Router([on(a, "a"), on(b, "b")])
        with Client(provider=router) as client:
            stream = client.chat.completions.create(model="solar-mini", messages=MESSAGES, stream=True)
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == ANSWER
        assert "".join(router.create_completion("solar-mini", MESSAGES)) == ANSWER
        assert (a.request_count, b.request_count) == (1, 2)
    finally:
        _sync.run(a.__aexit__(None, None, None))
        _sync.run(b.__aexit__(None, None, None))


async def test_models_and_unknown_names(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {}, {})
    router = Router([on(a, "a"), on(b, "pro", model="solar-pro4"),
                     Deployment("query", model="solar-embedding-2-query", api_key="up_e", base_url=a.base_url)])
    assert [(e.id, e.kind) for e in router.known_models() or []] == \
        [("solar-mini", "chat"), ("solar-pro4", "chat"), ("query", "embedding")]
    assert [m.id for m in await router.list_models()] == ["solar-mini", "solar-pro4", "query"]
    with pytest.raises(ModelNotSupportedError) as caught:
        router.stream("solar-pro3", MESSAGES)
    assert "serves: solar-mini, solar-pro4, query" in caught.value.message
    result = await router.embed("query", ["one", "two"])
    assert len(result.data) == 2
    assert len(result.data[0].embedding) == 1024


async def test_a_wildcard_deployment_has_a_budget_per_model(stack: AsyncExitStack) -> None:
    (a,) = await emulators(stack, {"rpm": 1})
    router = Router([Deployment("*", api_key="up_w", base_url=a.base_url, name="any")],
                    default_fallbacks=["solar-pro3"])
    assert await router.stream("solar-mini", MESSAGES).get_final_text() == ANSWER
    chunks = await streamed(router)  # solar-mini's minute is used up: solar-pro3 on the same key answers
    assert text_of(chunks) == ANSWER
    assert chunks[0].model == "solar-pro3-260323"
    status = by_name(router)
    assert status["any:solar-mini"]["cooling"] is True
    assert status["any:solar-pro3"]["cooling"] is False


async def test_closing_early_is_neither_success_nor_failure(stack: AsyncExitStack) -> None:
    (a,) = await emulators(stack, {})
    router = Router([on(a, "a")])
    stream = router.stream("solar-mini", MESSAGES)
    await stream.start()
    assert by_name(router)["a"]["in_flight"] == 1
    await stream.aclose()
    state = by_name(router)["a"]
    assert (state["in_flight"], state["successes"], state["failures"]) == (0, 0, 0)


async def test_an_auth_error_everywhere_is_raised(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {"scenario": "error status=401 code=invalid_api_key"},
                           {"scenario": "error status=401 code=invalid_api_key"})
    router = Router([on(a, "a"), on(b, "b")])
    with pytest.raises(AuthenticationError):
        await streamed(router)
    assert (a.request_count, b.request_count) == (1, 1)


def test_public_names_and_other_spellings() -> None:
    import solarstream
    import solarstream.providers

    assert solarstream.Router is Router
    assert "Router" in solarstream.__all__
    assert "RetryProvider" in solarstream.providers.__all__
    assert issubclass(solarstream.providers.RetryProvider, Router)
    router = Router([{"model_name": "solar-pro4", "litellm_params": {"model": "solar-pro4", "api_key": "up_x",
                                                                      "api_base": "http://127.0.0.1:9/v1",
                                                                      "rpm": 10}},
                     {"model_name": "solar-pro3", "api_key": "up_x"}],
                    fallbacks=[{"solar-pro4": ["solar-pro3"]}], strategy="simple-shuffle")
    assert router.deployments[0].config.base_url == "http://127.0.0.1:9/v1"
    assert router.deployments[0].config.rpm == 10
    assert router.fallbacks == {"solar-pro4": ["solar-pro3"]}
    assert router.strategy.name == "weighted"
    assert Router([on_nothing("solar-pro4"), on_nothing("solar-pro3")], fallbacks=["solar-pro3"]).default_fallbacks \
        == ["solar-pro3"]
    with pytest.raises(InvalidRequestError, match="no deployment serves 'solar-mini'"):
        Router([on_nothing("solar-pro4")], fallbacks={"solar-pro4": ["solar-mini"]})
    with pytest.raises(InvalidRequestError, match="unknown routing strategy 'fastest'"):
        Router([on_nothing("solar-pro4")], strategy="fastest")
    with pytest.raises(InvalidRequestError, match="weight must be a positive number"):
        on_nothing("solar-pro4", weight=0)


def on_nothing(model: str, **fields: Any) -> Deployment:
    return Deployment(model, api_key="up_x", base_url="http://127.0.0.1:9/v1", **fields)


async def test_a_deployment_without_a_key_is_removed(stack: AsyncExitStack) -> None:
    a, b = await emulators(stack, {}, {})
    router = Router([Deployment("solar-mini", base_url=a.base_url, name="nokey"), on(b, "b")])  # no UPSTAGE_API_KEY
    assert text_of(await streamed(router)) == ANSWER
    assert (a.request_count, b.request_count) == (0, 1)
    status = by_name(router)["nokey"]
    assert status["cooling"] is True
    assert status["last_error"]["type"] == "MissingAuthError"


async def test_concurrent_failovers_with_reasoning_keep_every_piece_once(stack: AsyncExitStack) -> None:
    """Ten streams at once; a breaks each right after its role chunk, b answers with reasoning and text."""
    a, b = await emulators(stack, {"scenario": "reset after=0"}, {})
    router = Router([on(a, "a", model="solar-pro3"), on(b, "b", model="solar-pro3")], strategy="least-in-flight")

    async def one() -> tuple[str, str]:
        stream = router.stream("solar-pro3", MESSAGES, reasoning_effort="high")
        await stream.get_final_completion()
        return stream.reasoning or "", stream.content

    results = await asyncio.gather(*(one() for _ in range(10)))
    assert results == [(reasoning_text("solar-pro3", "high", PROMPT), ANSWER)] * 10
    assert b.request_count == 10
    assert 1 <= a.request_count <= 10  # a cools down after its first reset; calls already under way see it too
