"""solarstream's own client against the emulator: each failure arrives as the right typed error,
retries can be counted, and every wire variant gives the same answer."""

from __future__ import annotations

from typing import Any

import pytest

from solarstream.emulator import Emulator, answers
from solarstream.emulator.answers import answer_text
from solarstream.errors import (
    APIStatusError,
    ModelNotSupportedError,
    StreamError,
    StreamTruncatedError,
)
from solarstream.providers import Upstage
from solarstream.providers.upstage import models as _models
from solarstream.types import TextDelta, ToolCalls, UsageReport
from tests.helpers import ask


async def stream_text(emu_provider: Upstage, text: str, model: str = "solar-mini", **extra: Any) -> str:
    """The whole text of one streamed answer to ``text``."""
    async with emu_provider.stream(model, ask(text), **extra) as stream:
        return "".join([piece async for piece in stream.text()])


@pytest.mark.parametrize("variant", ["", "[emulate:crlf]", "[emulate:keepalive]", "[emulate:usage-separate]",
                                     "[emulate:slow delay_ms=1]", "[emulate:crlf] [emulate:keepalive every=3]"])
async def test_every_wire_variant_gives_the_same_text(emu: Emulator, emu_provider: Upstage, variant: str) -> None:
    assert await stream_text(emu_provider, f"Привет {variant}".strip()) == answer_text("Привет")


async def test_legacy_base_url_works(emu: Emulator, emu_provider: Upstage) -> None:
    async with emu_provider.stream("solar-mini", ask("hi"), base_url=emu.legacy_base_url) as stream:
        assert "".join([p async for p in stream.text()]) == answer_text("hi")


async def test_retries_are_counted_by_the_emulator(emu: Emulator, emu_provider: Upstage) -> None:
    text = await stream_text(emu_provider, "[emulate:error status=503 times=2] again")
    assert text == answer_text("again")
    assert list(emu.attempts.values()) == [3]
    assert len(emu.requests) == 3


async def test_a_rate_limit_pauses_the_limiter_and_is_retried(emu: Emulator, emu_provider: Upstage) -> None:
    text = await stream_text(emu_provider, "[emulate:rate-limit header=retry-after-ms delay_ms=5 times=1] go")
    assert text == answer_text("go")
    assert len(emu.requests) == 2
    stats = emu_provider.limiter.stats
    assert (stats.rate_limited, stats.pauses) == (1, 1)  # one 429, one pause shared by everyone


@pytest.mark.parametrize(
    ("directive", "status", "code"),
    [("error status=401", 401, "invalid_api_key"),
     ("error status=401 code=api_key_is_blocked", 401, "api_key_is_blocked"),
     ("error status=429 body=legacy", 429, None),
     ("rate-limit code=usage_limit_exceeded", 429, "usage_limit_exceeded"),
     ("error status=400 code=context_length_exceeded", 400, "context_length_exceeded"),
     ("error status=502 body=empty", 502, None),
     ("html-error", 502, None),
     ("error status=499", 499, "client_closed_request")],
)
async def test_emulated_errors_arrive_with_their_status_and_code(
    emu: Emulator, emu_provider: Upstage, directive: str, status: int, code: str | None
) -> None:
    """The emulator's error bodies (envelope, legacy, empty, HTML) as the client reads them; which class
    each status and code gets is test_errors.py's."""
    with pytest.raises(APIStatusError) as info:
        await stream_text(emu_provider, f"[emulate:{directive}]", max_retries=0)
    assert (info.value.status_code, info.value.code) == (status, code)
    assert emu.api_key not in str(info.value)


async def test_stream_faults_map_to_typed_errors(emu: Emulator, emu_provider: Upstage) -> None:
    with pytest.raises(StreamTruncatedError):
        await stream_text(emu_provider, "[emulate:truncate after=2]")
    with pytest.raises(StreamTruncatedError):
        await stream_text(emu_provider, "[emulate:reset after=2]")
    with pytest.raises(StreamError, match="overloaded") as info:
        await stream_text(emu_provider, "[emulate:midstream-error code=overloaded event=1]")
    assert info.value.code == "overloaded"


async def test_retired_and_invalid_models_are_model_not_supported(emu: Emulator, emu_provider: Upstage) -> None:
    for name in ("solar-pro2", "made-up-model"):
        # extra_body goes out as written: the API, not our validation, answers
        with pytest.raises(ModelNotSupportedError, match=name):
            await emu_provider.complete("solar-mini", [{"role": "user", "content": "hi"}], extra_body={"model": name})


async def test_events_for_tools_reasoning_and_usage(emu: Emulator, emu_provider: Upstage) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}}}}]
    stream = emu_provider.stream("solar-pro4", [{"role": "user", "content": "find it"}], tools=tools,
                         reasoning_effort="high", stream_options={"include_usage": True})
    events = [e async for e in stream.events()]
    [calls] = [e for e in events if isinstance(e, ToolCalls)]
    assert calls.calls[0].function.name == "lookup"
    assert calls.calls[0].function.arguments == '{"q": "emulated q"}'
    assert not [e for e in events if isinstance(e, TextDelta)]
    reasoning = answers.reasoning_text("solar-pro4", "high", "find it")
    assert stream.reasoning == reasoning
    [usage] = [e for e in events if isinstance(e, UsageReport)]
    assert usage.usage.reasoning_tokens == sum(answers.count_tokens(p) for p in answers.pieces(reasoning))
    assert stream.finish_reason == "tool_calls"


async def test_forced_tool_call_finishing_with_stop_is_still_tool_calls(emu: Emulator, emu_provider: Upstage) -> None:
    async with emu_provider.stream("solar-mini", ask("[emulate:tools finish=stop]")) as stream:
        async for _ in stream:
            pass
    assert stream.finish_reason == "tool_calls"
    assert stream.tool_calls.calls()[0].function.name == "get_weather"


async def test_list_models(emu: Emulator, emu_provider: Upstage) -> None:
    models = await emu_provider.list_models()
    # the live list: every current model under its name and dated id, then the embedding models in service
    chat = [model_id for info in _models.MODELS.values() for model_id in (info.name, info.dated_id)]
    assert [m.id for m in models][: len(chat)] == chat
    assert set(m.id for m in models[len(chat):]) <= set(_models.EMBEDDING_MODELS)
    assert {m.owned_by for m in models} == {"upstage"}


async def test_fragmented_stream_with_split_utf8_and_crlf(emu: Emulator, emu_provider: Upstage) -> None:
    text = "Привет, 세계, こんにちは"
    got = await stream_text(emu_provider, f"{text} [emulate:fragment size=1 delay_ms=0] [emulate:crlf]")
    assert got == answer_text(text)
