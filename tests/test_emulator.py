"""The emulator's API surface: auth, validation as the real API does it, answers, headers, models.

Driven with plain aiohttp requests; bodies are asserted as bytes or parsed JSON.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import aiohttp
import pytest

from solarstream.emulator import Emulator, create_app
from solarstream.emulator.answers import BANNER, answer_text
from solarstream.emulator.answers import pieces as pieces_of
from solarstream.providers.upstage import models as _models
from tests.helpers import emu_post as post
from tests.helpers import error_envelope, expected_usage, sse_chunks, sse_text

USER = [{"role": "user", "content": "Hello there"}]


# --- auth -------------------------------------------------------------------------------------


async def test_missing_key_is_401_invalid_api_key(emu: Emulator, session: aiohttp.ClientSession) -> None:
    async with session.post(emu.base_url + "/chat/completions", json={"model": "solar-mini", "messages": USER}) as r:
        assert r.status == 401
        assert error_envelope(await r.read())["code"] == "invalid_api_key"


@pytest.mark.parametrize("key", ["sk-abc", "up_", "up_bad-key", "up_has space"])
async def test_malformed_key_is_401(emu: Emulator, session: aiohttp.ClientSession, key: str) -> None:
    status, _, raw = await post(session, emu, {"model": "solar-mini", "messages": USER}, key=key)
    assert status == 401
    error = error_envelope(raw)
    assert error["code"] == "invalid_api_key"
    assert key not in error["message"] or key == "up_"


async def test_any_up_key_is_accepted(emu: Emulator, session: aiohttp.ClientSession) -> None:
    assert emu.api_key == "up_emulator"
    status, _, _ = await post(session, emu, {"model": "solar-mini", "messages": USER}, key="up_Other_Key123")
    assert status == 200


async def test_requests_are_recorded_without_the_key(emu: Emulator, session: aiohttp.ClientSession) -> None:
    body = {"model": "solar-mini", "messages": USER}
    await post(session, emu, body, headers={"X-Test": "1"})
    [record] = emu.requests
    assert record.method == "POST"
    assert record.path == "/v1/chat/completions"
    assert record.json == body
    assert json.loads(record.body) == body
    assert record.headers["X-Test"] == "1"
    assert not any(k.lower() == "authorization" for k in record.headers)
    assert emu.api_key not in repr(record)


# --- validation -------------------------------------------------------------------------------

INVALID_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown key", {"model": "solar-mini", "messages": USER, "foo": 1}, "foo"),
    ("store", {"model": "solar-mini", "messages": USER, "store": True}, "store"),
    ("n", {"model": "solar-mini", "messages": USER, "n": 2}, "n"),
    ("temperature type", {"model": "solar-mini", "messages": USER, "temperature": "hot"}, "temperature"),
    ("temperature range", {"model": "solar-mini", "messages": USER, "temperature": 3}, "temperature"),
    ("stream type", {"model": "solar-mini", "messages": USER, "stream": "yes"}, "stream"),
    ("max_tokens", {"model": "solar-mini", "messages": USER, "max_tokens": 0}, "max_tokens"),
    ("model type", {"model": 5, "messages": USER}, "model"),
    ("model missing", {"messages": USER}, "model"),
    ("messages empty", {"model": "solar-mini", "messages": []}, "messages"),
    ("developer role", {"model": "solar-mini", "messages": [{"role": "developer", "content": "x"}]},
     "messages[0].role"),
    ("bad role", {"model": "solar-mini", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ("image part", {"model": "solar-pro4", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is it"}, {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]},
     "messages[0].content"),
    ("tool without id", {"model": "solar-mini", "messages": [*USER, {"role": "tool", "content": "1"}]},
     "messages[1].tool_call_id"),
    ("strict tool", {"model": "solar-pro4", "messages": USER, "tools": [
        {"type": "function", "function": {"name": "f", "strict": True, "parameters": {"type": "object"}}}]},
     "tools[0].function.strict"),
    ("reasoning on solar-mini", {"model": "solar-mini", "messages": USER, "reasoning_effort": "high"},
     "reasoning_effort"),
    ("reasoning on syn-pro", {"model": "syn-pro", "messages": USER, "reasoning_effort": "low"}, "reasoning_effort"),
    ("bad effort", {"model": "solar-pro3", "messages": USER, "reasoning_effort": "max"}, "reasoning_effort"),
    ("tools on syn-pro", {"model": "syn-pro", "messages": USER, "tools": [
        {"type": "function", "function": {"name": "f"}}]}, "tools"),
    ("json_object without JSON", {"model": "solar-mini", "messages": USER,
                                  "response_format": {"type": "json_object"}}, "response_format"),
    ("stream_options key", {"model": "solar-mini", "messages": USER, "stream_options": {"x": 1}}, "stream_options"),
    ("named tool missing", {"model": "solar-mini", "messages": USER,
                            "tools": [{"type": "function", "function": {"name": "f"}}],
                            "tool_choice": {"type": "function", "function": {"name": "g"}}}, "tool_choice"),
]


@pytest.mark.parametrize(("case", "body", "param"), INVALID_BODIES, ids=[c[0] for c in INVALID_BODIES])
async def test_invalid_bodies_are_400_invalid_request_body(
    emu: Emulator, session: aiohttp.ClientSession, case: str, body: dict[str, Any], param: str
) -> None:
    status, _, raw = await post(session, emu, body)
    assert status == 400, case
    error = error_envelope(raw)
    assert error["code"] == "invalid_request_body"
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


async def test_malformed_json_is_400(emu: Emulator, session: aiohttp.ClientSession) -> None:
    status, _, raw = await post(session, emu, None, raw=b'{"model": "solar-mini", ')
    assert status == 400
    error = error_envelope(raw)
    assert error["code"] == "invalid_request_body"
    assert "JSON" in error["message"]


async def test_json_body_that_is_not_an_object_is_400(emu: Emulator, session: aiohttp.ClientSession) -> None:
    status, _, raw = await post(session, emu, None, raw=b"[1, 2]")
    assert status == 400
    assert error_envelope(raw)["code"] == "invalid_request_body"


@pytest.mark.parametrize("name", sorted(_models.RETIRED))
async def test_retired_models_are_400_and_say_retired(
    emu: Emulator, session: aiohttp.ClientSession, name: str
) -> None:
    status, _, raw = await post(session, emu, {"model": name, "messages": USER})
    assert status == 400
    error = error_envelope(raw)
    assert error["code"] == "invalid_request_body"
    assert f"The model '{name}' is retired" in error["message"]
    assert _models.RETIRED[name].successor in error["message"]


async def test_unknown_model_is_400_invalid(emu: Emulator, session: aiohttp.ClientSession) -> None:
    status, _, raw = await post(session, emu, {"model": "gpt-4o", "messages": USER})
    assert status == 400
    error = error_envelope(raw)
    assert error["code"] == "invalid_request_body"
    assert error["message"].startswith("Invalid model 'gpt-4o'")


async def test_context_length_exceeded(emu: Emulator, session: aiohttp.ClientSession) -> None:
    status, _, raw = await post(session, emu, {"model": "solar-mini", "messages": USER, "max_tokens": 31_999})
    assert status == 400
    assert error_envelope(raw)["code"] == "context_length_exceeded"
    long_prompt = [{"role": "user", "content": "word " * 30_000}]
    status, _, raw = await post(session, emu, {"model": "solar-mini", "messages": long_prompt})
    assert status == 400
    assert error_envelope(raw)["code"] == "context_length_exceeded"
    # the same prompt fits the flagship's window
    status, _, _ = await post(session, emu, {"model": "solar-pro4", "messages": long_prompt})
    assert status == 200


async def test_json_object_with_json_in_prompt_answers_json(emu: Emulator, session: aiohttp.ClientSession) -> None:
    messages = [{"role": "user", "content": "Reply in JSON please"}]
    status, _, raw = await post(session, emu, {"model": "solar-mini", "messages": messages,
                                               "response_format": {"type": "json_object"}})
    assert status == 200
    content = json.loads(json.loads(raw)["choices"][0]["message"]["content"])
    assert content["emulator"] == "solarstream"
    assert content["you_wrote"] == "Reply in JSON please"


async def test_json_schema_answer_fits_the_schema(emu: Emulator, session: aiohttp.ClientSession) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 3},
                                               "tags": {"type": "array", "items": {"enum": ["a", "b"]}}}}
    status, _, raw = await post(session, emu, {"model": "solar-pro4", "messages": USER, "response_format": {
        "type": "json_schema", "json_schema": {"name": "person", "schema": schema}}})
    assert status == 200
    content = json.loads(json.loads(raw)["choices"][0]["message"]["content"])
    assert content == {"name": "emulated name", "age": 3, "tags": ["a"]}


# --- answers ----------------------------------------------------------------------------------


async def test_non_stream_answer_shape(emu: Emulator, session: aiohttp.ClientSession) -> None:
    status, headers, raw = await post(session, emu, {"model": "solar-mini", "messages": USER})
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    body = json.loads(raw)
    uuid.UUID(body["id"])
    assert body["object"] == "chat.completion"
    assert body["model"] == "solar-mini-250422"
    assert isinstance(body["created"], int)
    assert body["created"] > 1_700_000_000
    assert body["system_fingerprint"] is None
    [choice] = body["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["message"] == {
        "role": "assistant",
        "content": f"{BANNER} This is an offline test answer, not a model's. You wrote: «Hello there».",
    }
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


async def test_answers_are_deterministic(emu: Emulator, session: aiohttp.ClientSession) -> None:
    body = {"model": "solar-pro4", "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    first = (await post(session, emu, body))[2]
    second = (await post(session, emu, body))[2]
    assert first != second  # fresh ids
    strip = re.compile(rb'"id":"[^"]+","object":"chat.completion.chunk","created":\d+')
    assert strip.sub(b"", first) == strip.sub(b"", second)


async def test_stream_shape_and_usage_on_finish_chunk(emu: Emulator, session: aiohttp.ClientSession) -> None:
    body = {"model": "solar-pro3-260323", "messages": USER, "stream": True, "reasoning_effort": "low",
            "stream_options": {"include_usage": True}}
    status, headers, raw = await post(session, emu, body)
    assert status == 200
    assert headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert raw.endswith(b"\n\ndata: [DONE]\n\n")
    assert b"\r" not in raw
    parsed = sse_chunks(raw)
    assert len({c["id"] for c in parsed}) == 1
    assert {c["model"] for c in parsed} == {"solar-pro3-260323"}
    assert parsed[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" for c in parsed)
    assert all("usage" not in c for c in parsed[:-1])
    assert parsed[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert parsed[-1]["usage"] == expected_usage(USER, answer_text("Hello there"))
    assert sse_text(raw) == answer_text("Hello there")
    assert sse_text(raw, "reasoning") == ""  # effort low: reasoning off for solar-pro3


async def test_no_usage_without_include_usage(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, raw = await post(session, emu, {"model": "solar-mini", "messages": USER, "stream": True})
    assert b'"usage"' not in raw
    assert sse_chunks(raw)[-1]["choices"][0]["finish_reason"] == "stop"


async def test_small_word_sized_chunks_keep_multibyte_text_whole(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    text = "Привет, мир! 안녕하세요 세계 こんにちは"
    _, _, raw = await post(session, emu, {"model": "solar-mini", "stream": True,
                                          "messages": [{"role": "user", "content": text}]})
    pieces = [c["choices"][0]["delta"].get("content") for c in sse_chunks(raw)[1:-1]]
    assert pieces == pieces_of(answer_text(text))
    assert all(p and len(p.split()) == 1 for p in pieces)  # a word each, multi-byte words whole
    assert "Привет,".encode() in raw  # raw UTF-8, not \\u escapes


async def test_quote_is_truncated(emu: Emulator, session: aiohttp.ClientSession) -> None:
    long = "x" * 1000
    _, _, raw = await post(session, emu, {"model": "solar-mini", "messages": [{"role": "user", "content": long}]})
    content = json.loads(raw)["choices"][0]["message"]["content"]
    assert len(content) < 400
    assert content.endswith("…».")


@pytest.mark.parametrize(
    ("model", "effort", "reasons"),
    [("solar-pro4", None, False), ("solar-pro4", "none", False), ("solar-pro4", "minimal", False),
     ("solar-pro4", "high", True), ("solar-pro4", "max", True), ("solar-pro3", None, True),
     ("solar-pro3", "low", False), ("solar-pro3", "medium", True), ("solar-mini", None, False)],
)
async def test_reasoning_follows_the_model_table(
    emu: Emulator, session: aiohttp.ClientSession, model: str, effort: str | None, reasons: bool
) -> None:
    body: dict[str, Any] = {"model": model, "messages": USER}
    if effort is not None:
        body["reasoning_effort"] = effort
    _, _, raw = await post(session, emu, body)
    completion = json.loads(raw)
    message = completion["choices"][0]["message"]
    assert ("reasoning" in message) is reasons
    assert ("completion_tokens_details" in completion["usage"]) is reasons
    _, _, raw = await post(session, emu, {**body, "stream": True, "stream_options": {"include_usage": True}})
    reasoning = sse_text(raw, "reasoning")
    assert bool(reasoning) is reasons
    if reasons:
        assert reasoning == message["reasoning"]
        assert reasoning.startswith(f"{BANNER} Emulated reasoning for {model}")
        details = sse_chunks(raw)[-1]["usage"]["completion_tokens_details"]
        assert 0 < details["reasoning_tokens"] == completion["usage"]["completion_tokens_details"]["reasoning_tokens"]


async def test_reasoning_content_field_option() -> None:
    async with Emulator(reasoning_field="reasoning_content") as emu, aiohttp.ClientSession() as session:
        _, _, raw = await post(session, emu, {"model": "solar-pro4", "messages": USER, "reasoning_effort": "high",
                                              "stream": True})
        assert sse_text(raw, "reasoning_content").startswith(BANNER)
        assert b'"reasoning":' not in raw


async def test_max_tokens_cuts_with_finish_length(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, raw = await post(session, emu, {"model": "solar-mini", "messages": USER, "max_tokens": 10})
    completion = json.loads(raw)
    assert completion["choices"][0]["finish_reason"] == "length"
    assert 0 < completion["usage"]["completion_tokens"] <= 10
    content = completion["choices"][0]["message"]["content"]
    assert content.startswith(BANNER)
    assert len(content) < 40


async def test_reasoning_can_use_up_max_tokens(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, raw = await post(session, emu, {"model": "solar-pro4", "messages": USER, "reasoning_effort": "high",
                                          "max_tokens": 8})
    choice = json.loads(raw)["choices"][0]
    assert choice["message"]["content"] is None
    assert choice["message"]["reasoning"]
    assert choice["finish_reason"] == "length"


async def test_stop_sequence_cuts_the_answer(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, raw = await post(session, emu, {"model": "solar-mini", "messages": USER, "stop": ["offline"]})
    content = json.loads(raw)["choices"][0]["message"]["content"]
    assert content == f"{BANNER} This is an "


async def test_prompt_cache_key_reports_cached_tokens_the_second_time(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    body = {"model": "solar-mini", "messages": USER, "prompt_cache_key": "k1"}
    first = json.loads((await post(session, emu, body))[2])["usage"]
    second = json.loads((await post(session, emu, body))[2])["usage"]
    assert first["prompt_tokens_details"] == {"cached_tokens": 0}
    assert second["prompt_tokens_details"] == {"cached_tokens": second["prompt_tokens"]}


# --- tools ------------------------------------------------------------------------------------

WEATHER = {"type": "function", "function": {"name": "weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                                     "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}}
CLOCK = {"type": "function", "function": {"name": "clock", "parameters": {"type": "object", "properties": {}}}}


async def test_tool_call_non_stream(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, raw = await post(session, emu, {"model": "solar-mini", "messages": USER, "tools": [WEATHER, CLOCK]})
    choice = json.loads(raw)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["id"].startswith("call_")
    assert call["function"]["name"] == "weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "emulated city", "days": 1, "unit": "c"}


async def test_tool_call_streams_in_several_delta_chunks(emu: Emulator, session: aiohttp.ClientSession) -> None:
    body = {"model": "solar-pro4", "messages": USER, "tools": [WEATHER, CLOCK], "stream": True,
            "tool_choice": {"type": "function", "function": {"name": "clock"}}}
    _, _, raw = await post(session, emu, body)
    parsed = sse_chunks(raw)
    deltas = [c["choices"][0]["delta"]["tool_calls"][0] for c in parsed if "tool_calls" in c["choices"][0]["delta"]]
    assert len(deltas) >= 2
    assert deltas[0]["function"]["name"] == "clock"
    assert deltas[0]["function"]["arguments"] == ""
    assert all("id" not in d and "name" not in d["function"] for d in deltas[1:])
    assert "".join(d["function"]["arguments"] for d in deltas) == "{}"
    assert parsed[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_long_tool_arguments_split_across_chunks(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, raw = await post(session, emu, {"model": "solar-mini", "messages": USER, "tools": [WEATHER],
                                          "stream": True})
    pieces = [c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
              for c in sse_chunks(raw) if "tool_calls" in c["choices"][0]["delta"]]
    assert len([p for p in pieces if p]) >= 3
    assert json.loads("".join(pieces))["city"] == "emulated city"


async def test_tool_choice_none_answers_text(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, raw = await post(session, emu, {"model": "solar-mini", "messages": USER, "tools": [WEATHER],
                                          "tool_choice": "none"})
    choice = json.loads(raw)["choices"][0]
    assert "tool_calls" not in choice["message"]
    assert choice["message"]["content"].startswith(BANNER)


async def test_answer_after_tool_result_mentions_it(emu: Emulator, session: aiohttp.ClientSession) -> None:
    messages = [*USER, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 °C"}]
    _, _, raw = await post(session, emu, {"model": "solar-mini", "messages": messages, "tools": [WEATHER]})
    choice = json.loads(raw)["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"] == (
        f"{BANNER} This is an offline test answer, not a model's. The tool weather returned: «Sunny, 21 °C»."
    )


# --- headers, models, legacy base -------------------------------------------------------------

RATE_HEADERS = [f"X-Upstage-RateLimit-{kind}-{unit}" for kind in ("Limit", "Remaining", "Reset", "Interval")
                for unit in ("Requests", "Tokens")]


async def test_rate_limit_headers_on_every_response(emu: Emulator, session: aiohttp.ClientSession) -> None:
    results = [
        await post(session, emu, {"model": "solar-mini", "messages": USER}),
        await post(session, emu, {"model": "solar-mini", "messages": USER, "stream": True}),
        await post(session, emu, {"model": "solar-mini", "messages": USER, "store": True}),
        await post(session, emu, {"model": "solar-mini", "messages": USER}, key="bad"),
        await post(session, emu, {"model": "solar-mini", "messages": USER}, key="up_other"),
        await post(session, emu, {"model": "solar-mini-250422", "messages": USER}),
    ]
    for _, headers, _ in results:
        for name in RATE_HEADERS:
            assert headers[name].isdigit(), name
        assert headers["X-Request-Id"]
    # counted per key and model; a refused request (400, 401) consumes nothing; a dated id is its model
    remaining = [int(h["X-Upstage-RateLimit-Remaining-Requests"]) for _, h, _ in results]
    assert [status for status, _, _ in results] == [200, 200, 400, 401, 200, 200]
    assert remaining == [99, 98, 98, 100, 99, 97]
    assert results[0][1]["X-Upstage-RateLimit-Limit-Requests"] == "100"


async def test_models_list(emu: Emulator, session: aiohttp.ClientSession) -> None:
    async with session.get(emu.base_url + "/models", headers={"Authorization": f"Bearer {emu.api_key}"}) as r:
        assert r.status == 200
        assert "X-Upstage-RateLimit-Limit-Tokens" in r.headers
        body = await r.json()
    assert body["object"] == "list"
    ids = {m["id"] for m in body["data"]}
    assert {"solar-pro4", "solar-pro4-260806", "solar-mini", "solar-mini-250422", "syn-pro"} <= ids
    assert not ids & set(_models.RETIRED)
    async with session.get(emu.base_url + "/models") as r:
        assert r.status == 401


async def test_legacy_solar_base(emu: Emulator, session: aiohttp.ClientSession) -> None:
    assert emu.legacy_base_url == emu.base_url + "/solar"
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    async with session.post(emu.legacy_base_url + "/chat/completions", headers=headers,
                            json={"model": "solar-mini", "messages": USER}) as r:
        assert r.status == 200
        assert (await r.json())["choices"][0]["message"]["content"].startswith(BANNER)
    async with session.get(emu.legacy_base_url + "/models", headers=headers) as r:
        assert r.status == 200
    assert [rec.path for rec in emu.requests] == ["/v1/solar/chat/completions", "/v1/solar/models"]


async def test_create_app_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="unknown emulator scenario 'nope'"):
        create_app(scenario="nope")
    with pytest.raises(ValueError, match="reasoning_field"):
        create_app(reasoning_field="thoughts")
