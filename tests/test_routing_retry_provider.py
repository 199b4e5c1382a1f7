"""gpt4free's ``RetryProvider``: its constructor and behaviour, minus switching after output, plus cooldowns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from solarstream import RetryPolicy
from solarstream.emulator import Emulator
from solarstream.emulator.answers import answer_text, pieces
from solarstream.errors import ServerError, StreamTruncatedError
from solarstream.providers import AsyncGeneratorProvider, OpenAICompatibleProvider, RetryProvider, Upstage
from solarstream.routing import RetryNoProviderError, RetryProviderError
from solarstream.types import AsyncResult, Messages
from tests.test_routing import collect

MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "Hello"}]
ANSWER = answer_text("Hello")


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as s:
        yield s


async def two(stack: AsyncExitStack, first: str | None, second: str | None = None) -> tuple[Emulator, Emulator]:
    a = await stack.enter_async_context(Emulator(scenario=first))
    b = await stack.enter_async_context(Emulator(scenario=second))
    return a, b


async def text(provider: RetryProvider, **kwargs: Any) -> str:
    return "".join([p async for p in provider.create_async_generator("solar-mini", MESSAGES, **kwargs)])


def test_the_constructor_and_attributes_of_gpt4free() -> None:
    generic = OpenAICompatibleProvider(base_url="http://127.0.0.1:9/v1")
    provider = RetryProvider([Upstage, generic], shuffle=False)
    assert provider.providers == [Upstage, generic]
    assert (provider.shuffle, provider.single_provider_retry, provider.max_retries) == (False, False, 3)
    assert provider.working is True
    assert provider.supports_stream is True
    assert provider.last_provider is None
    assert provider.get_providers() == [Upstage, generic]
    assert provider.get_providers(ignored=["Upstage"]) == [generic]
    assert RetryProvider([Upstage], True, True, 5).max_retries == 5
    with pytest.raises(RetryNoProviderError):
        RetryProvider([])


async def test_tries_the_providers_in_turn_until_one_answers(stack: AsyncExitStack) -> None:
    a, b = await two(stack, "error status=503")
    first, second = Upstage(api_key="up_a", base_url=a.base_url), Upstage(api_key="up_b", base_url=b.base_url)
    provider = RetryProvider([first, second], shuffle=False)
    assert await text(provider) == ANSWER
    assert provider.last_provider is second
    assert (a.request_count, b.request_count) == (1, 1)
    assert await provider.create_async("solar-mini", MESSAGES) == ANSWER
    assert (a.request_count, b.request_count) == (1, 2)  # the failed one cools down: not asked again


async def test_never_switches_after_text_was_handed_out(stack: AsyncExitStack) -> None:
    """gpt4free moved on after partial text, and the caller got it twice; here the failure is raised."""
    a, b = await two(stack, "reset after=2")
    provider = RetryProvider([Upstage(api_key="up_a", base_url=a.base_url),
                              Upstage(api_key="up_b", base_url=b.base_url)], shuffle=False)
    got: list[str] = []
    with pytest.raises(StreamTruncatedError):
        await collect(provider.create_async_generator("solar-mini", MESSAGES), got)
    assert got == pieces(ANSWER)[:2]
    assert (a.request_count, b.request_count) == (1, 0)


async def test_several_failures_are_reported_together(stack: AsyncExitStack) -> None:
    a, b = await two(stack, "error status=500", "error status=502")
    provider = RetryProvider([Upstage(api_key="up_a", base_url=a.base_url),
                              OpenAICompatibleProvider(api_key="up_b", base_url=b.base_url)], shuffle=False)
    with pytest.raises(RetryProviderError) as caught:
        await text(provider)
    lines = caught.value.message.splitlines()
    assert lines[0] == "RetryProvider failed:"
    assert lines[1].startswith("Upstage: ServerError: HTTP 500")
    assert lines[2].startswith("OpenAICompatibleProvider: ServerError: HTTP 502")
    assert isinstance(caught.value.__cause__, ServerError)
    single = RetryProvider([Upstage(api_key="up_c", base_url=a.base_url)])
    with pytest.raises(ServerError):  # one provider: its error as it is
        await text(single)


async def test_ignored_providers_are_skipped(stack: AsyncExitStack) -> None:
    a, b = await two(stack, None)
    provider = RetryProvider([Upstage(api_key="up_a", base_url=a.base_url),
                              OpenAICompatibleProvider(api_key="up_b", base_url=b.base_url)], shuffle=False)
    assert await text(provider, ignored=["Upstage"]) == ANSWER
    assert (a.request_count, b.request_count) == (0, 1)


async def test_shuffle_spreads_the_calls(stack: AsyncExitStack) -> None:
    a, b = await two(stack, None)
    provider = RetryProvider([Upstage(api_key="up_a", base_url=a.base_url),
                              Upstage(api_key="up_b", base_url=b.base_url)])
    for _ in range(40):
        assert await text(provider) == ANSWER
    assert a.request_count + b.request_count == 40
    assert a.request_count > 0
    assert b.request_count > 0


async def test_single_provider_retry_retries_only_before_output(stack: AsyncExitStack) -> None:
    a, b = await two(stack, "error status=503 times=2")
    fast = Upstage(api_key="up_a", base_url=a.base_url, retry=RetryPolicy(max_retries=0, backoff=0.01))
    provider = RetryProvider([fast, Upstage(api_key="up_b", base_url=b.base_url)], shuffle=False,
                             single_provider_retry=True, max_retries=3)
    assert await text(provider) == ANSWER
    assert (a.request_count, b.request_count) == (3, 0)
    c, _ = await two(stack, "reset after=1")
    broken = RetryProvider([Upstage(api_key="up_c", base_url=c.base_url)], single_provider_retry=True)
    with pytest.raises(StreamTruncatedError):
        await text(broken)
    assert c.request_count == 1


class Flaky(AsyncGeneratorProvider):
    """A seed-style provider of the user's own: text only, and it fails before any."""

    calls = 0

    @classmethod
    async def create_async_generator(cls, model: str, messages: Messages, proxy: str | None = None,
                                     **kwargs: Any) -> AsyncResult:
        cls.calls += 1
        raise ServerError("HTTP 503: down for maintenance", status_code=503)
        yield ""  # an async generator


class Steady(AsyncGeneratorProvider):
    @classmethod
    async def create_async_generator(cls, model: str, messages: Messages, proxy: str | None = None,
                                     **kwargs: Any) -> AsyncResult:
        for piece in ("", "Hi", " there"):
            yield piece


async def test_text_only_providers_of_the_seed_style() -> None:
    provider = RetryProvider([Flaky, Steady], shuffle=False)
    assert await text(provider) == "Hi there"
    assert provider.last_provider is Steady
    assert await text(provider) == "Hi there"
    assert Flaky.calls == 1  # cooling down after its failure
