"""solarstream's own client against the emulator: each failure arrives as the right typed error,
retries can be counted, and every wire variant gives the same answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from solarstream._retry import RetryPolicy
from solarstream.emulator import Emulator
from solarstream.emulator.answers import answer_text
from solarstream.errors import (
    AuthenticationError,
    InvalidRequestError,
    ModelNotSupportedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamError,
    StreamTruncatedError,
)
from solarstream.providers import Upstage
from solarstream.providers.upstage import models as _models
from solarstream.types import TextDelta, ToolCalls, UsageReport


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[Upstage]:
    """An Upstage provider pointed at the emulator, with fast retries."""
    provider = Upstage(emu.api_key, emu.base_url, retry=RetryPolicy(max_retries=2, backoff=0.001, backoff_max=0.002))
    yield provider
    await provider.aclose()


async def collect(http: Upstage, emu: Emulator, text: str, model: str = "solar-mini", **extra: Any) -> str:
    async with http.stream(model, [{"role": "user", "content": text}], **extra) as stream:
        return "".join([piece async for piece in stream.text()])


@pytest.mark.parametrize("variant", ["", "[emulate:crlf]", "[emulate:keepalive]", "[emulate:usage-separate]",
                                     "[emulate:slow delay_ms=1]", "[emulate:crlf] [emulate:keepalive every=3]"])
async def test_every_wire_variant_gives_the_same_text(emu: Emulator, http: Upstage, variant: str) -> None:
    assert await collect(http, emu, f"Привет {variant}".strip()) == answer_text("Привет")


async def test_legacy_base_url_works(emu: Emulator, http: Upstage) -> None:
    async with http.stream("solar-mini", [{"role": "user", "content": "hi"}], base_url=emu.legacy_base_url) as stream:
        assert "".join([p async for p in stream.text()]) == answer_text("hi")


async def test_retries_are_counted_by_the_emulator(emu: Emulator, http: Upstage) -> None:
    text = await collect(http, emu, "[emulate:error status=503 times=2] again")
    assert text == answer_text("again")
    assert list(emu.attempts.values()) == [3]
    assert len(emu.requests) == 3


async def test_rate_limit_retried_after_advertised_delay(emu: Emulator, http: Upstage) -> None:
    text = await collect(http, emu, "[emulate:rate-limit header=retry-after-ms delay_ms=5 times=1] go")
    assert text == answer_text("go")
    assert len(emu.requests) == 2


@pytest.mark.parametrize(
    ("directive", "error", "code"),
    [("error status=401", AuthenticationError, "invalid_api_key"),
     ("error status=401 code=api_key_is_blocked", QuotaExceededError, "api_key_is_blocked"),
     ("error status=429 body=legacy", RateLimitError, None),
     ("rate-limit code=usage_limit_exceeded", QuotaExceededError, "usage_limit_exceeded"),
     ("error status=400 code=context_length_exceeded", InvalidRequestError, "context_length_exceeded"),
     ("error status=502 body=empty", ServerError, None),
     ("html-error", ServerError, None),
     ("error status=499", InvalidRequestError, "client_closed_request")],
)
async def test_http_errors_map_to_typed_errors(
    emu: Emulator, http: Upstage, directive: str, error: type[Exception], code: str | None
) -> None:
    with pytest.raises(error) as info:
        await collect(http, emu, f"[emulate:{directive}]", max_retries=0)
    assert getattr(info.value, "code", None) == code
    assert emu.api_key not in str(info.value)


async def test_stream_faults_map_to_typed_errors(emu: Emulator, http: Upstage) -> None:
    with pytest.raises(StreamTruncatedError):
        await collect(http, emu, "[emulate:truncate after=2]")
    with pytest.raises(StreamTruncatedError):
        await collect(http, emu, "[emulate:reset after=2]")
    with pytest.raises(StreamError, match="overloaded") as info:
        await collect(http, emu, "[emulate:midstream-error code=overloaded event=1]")
    assert info.value.code == "overloaded"


async def test_retired_and_invalid_models_are_model_not_supported(emu: Emulator, http: Upstage) -> None:
    for name in ("solar-pro2", "made-up-model"):
        # extra_body goes out as written: the API, not our validation, answers
        with pytest.raises(ModelNotSupportedError, match=name):
            await http.complete("solar-mini", [{"role": "user", "content": "hi"}], extra_body={"model": name})


async def test_events_for_tools_reasoning_and_usage(emu: Emulator, http: Upstage) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}}}}]
    stream = http.stream("solar-pro4", [{"role": "user", "content": "find it"}], tools=tools,
                         reasoning_effort="high", stream_options={"include_usage": True})
    events = [e async for e in stream.events()]
    [calls] = [e for e in events if isinstance(e, ToolCalls)]
    assert calls.calls[0].function.name == "lookup"
    assert calls.calls[0].function.arguments == '{"q": "emulated q"}'
    assert not [e for e in events if isinstance(e, TextDelta)]
    [usage] = [e for e in events if isinstance(e, UsageReport)]
    assert usage.usage.reasoning_tokens > 0
    assert stream.finish_reason == "tool_calls"
    assert stream.reasoning


async def test_forced_tool_call_finishing_with_stop_is_still_tool_calls(emu: Emulator, http: Upstage) -> None:
    async with http.stream("solar-mini", [{"role": "user", "content": "[emulate:tools finish=stop]"}]) as stream:
        async for _ in stream:
            pass
    assert stream.finish_reason == "tool_calls"
    assert stream.tool_calls.calls()[0].function.name == "get_weather"


async def test_list_models(emu: Emulator, http: Upstage) -> None:
    models = await http.list_models()
    assert {m.id for m in models} >= set(_models.CURRENT_MODELS)


async def test_fragmented_stream_with_split_utf8_and_crlf(emu: Emulator, http: Upstage) -> None:
    text = "Привет, 세계, こんにちは"
    got = await collect(http, emu, f"{text} [emulate:fragment size=1 delay_ms=0] [emulate:crlf]")
    assert got == answer_text(text)
