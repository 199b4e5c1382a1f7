"""The gateway on a real socket in front of the emulator, checked byte for byte with a raw aiohttp client."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from solarstream.emulator import answers
from solarstream.providers.upstage import models as _models
from solarstream.server import GatewayConfig
from solarstream.server.testing import RunningGateway, running_gateway
from tests.helpers import ask, error_envelope, expected_usage, post_json, sse_chunks, sse_data, sse_text

GATEWAY_KEY = "gw-KeY-f0r-TeStS-77"
UPSTREAM_KEY = "up_emulator"  # the emulator's key: it must never reach a client or a log


def chat(content: str = "hello", *, stream: Any = False, model: str = "solar-mini", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], "stream": stream, **extra}


@pytest.fixture
async def gw() -> AsyncIterator[RunningGateway]:
    async with running_gateway() as running:
        yield running


async def post(session: aiohttp.ClientSession, gw: RunningGateway, body: Any, **kw: Any) -> tuple[int, Any, Any]:
    """POST to the gateway's chat endpoint: a dict as JSON; bytes, text or an async iterator as they are."""
    raw = body if isinstance(body, (bytes, str, AsyncIterator)) else None
    return await post_json(session, f"{gw.base_url}/chat/completions", body, raw=raw, **kw)


# --- success -----------------------------------------------------------------------------------


async def test_stream_sends_chunks_then_done(gw: RunningGateway, session: aiohttp.ClientSession) -> None:
    status, headers, raw = await post(session, gw, chat("hi there", stream=True))
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    payloads = sse_data(raw, complete=True)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == answers.answer_text("hi there")
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert UPSTREAM_KEY.encode() not in raw


async def test_non_stream_completion_and_access_log(
    gw: RunningGateway, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="solarstream.server")
    status, _, raw = await post(session, gw, chat("what is 2+2?"))
    assert status == 200
    body = json.loads(raw)
    assert body["object"] == "chat.completion"
    assert body["model"] == "solar-mini-250422"
    assert body["choices"][0]["message"]["content"] == answers.answer_text("what is 2+2?")
    usage = body["usage"]
    assert usage == expected_usage(ask("what is 2+2?"), answers.answer_text("what is 2+2?"))
    line = next(r.getMessage() for r in caplog.records if r.name == "solarstream.server")
    assert line.startswith("POST /v1/chat/completions 200 model=solar-mini-250422 stream=false duration_ms=")
    assert f"tokens={usage['prompt_tokens']}+{usage['completion_tokens']}={usage['total_tokens']}" in line


async def test_stream_with_usage_is_logged(
    gw: RunningGateway, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="solarstream.server")
    status, _, raw = await post(session, gw, chat(stream=True, stream_options={"include_usage": True}))
    assert status == 200
    [usage] = [c["usage"] for c in sse_chunks(raw) if c.get("usage")]
    assert usage == expected_usage(ask("hello"), answers.answer_text("hello"))
    line = next(r.getMessage() for r in caplog.records if r.name == "solarstream.server")
    assert "stream=true" in line
    assert "outcome=done" in line
    assert f"tokens={usage['prompt_tokens']}+{usage['completion_tokens']}={usage['total_tokens']}" in line


async def test_retired_and_dated_model_names_resolve(gw: RunningGateway, session: aiohttp.ClientSession) -> None:
    for name, dated in (("solar-1-mini-chat", "solar-mini-250422"), ("solar-pro4-260806", "solar-pro4-260806")):
        status, _, raw = await post(session, gw, chat(model=name))
        assert status == 200
        assert json.loads(raw)["model"] == dated


async def test_reasoning_streams_through(gw: RunningGateway, session: aiohttp.ClientSession) -> None:
    status, _, raw = await post(session, gw, chat("[emulate:reasoning] think", stream=True, model="solar-pro3"))
    assert status == 200
    assert sse_data(raw, complete=True)[-1] == "[DONE]"
    assert sse_text(raw, "reasoning") == answers.reasoning_text("solar-pro3", None, "think")
    assert sse_text(raw) == answers.answer_text("think")


async def test_models_health_page_and_openapi(gw: RunningGateway, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{gw.base_url}/models") as resp:
        models = await resp.json()
    ids = [m["id"] for m in models["data"]]
    assert ids == [entry.id for entry in _models.listed()]
    assert ids[:2] == ["solar-pro4", "solar-pro4-260806"]
    assert {"solar-pro", "solar-pro2", "solar-embedding-2-query"} <= set(ids)  # aliases and embeddings too
    assert all(m["object"] == "model" and m["owned_by"] == "upstage" for m in models["data"])
    assert {m["id"]: m["created"] for m in models["data"]}["solar-pro4-260806"] == 1785974400  # 2026-08-06
    for name in ("solar-pro4-260806", "solar-pro", "solar-pro4-270101", "solar-embedding-2-passage"):
        async with session.get(f"{gw.base_url}/models/{name}") as resp:
            assert resp.status == 200, name  # every name chat (or embeddings) accepts
            assert (await resp.json())["id"] == name
    async with session.get(f"{gw.base_url}/models/gpt-4o") as resp:
        assert resp.status == 404
        assert error_envelope(await resp.read())["code"] == "model_not_found"
    async with session.get(f"{gw.url}/health") as resp:
        health = await resp.json()
    assert health["status"] == "ok"
    assert health["upstream"] == "emulator"
    assert health["in_flight"] == 0
    async with session.get(f"{gw.url}/") as resp:
        page = await resp.text()
        assert resp.headers["Content-Type"].startswith("text/html")
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert '<script src="/static/app.js"' in page
    async with session.get(f"{gw.url}/static/app.js") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/javascript")
    async with session.get(f"{gw.url}/openapi.json") as resp:
        document = await resp.json()
    assert "/v1/chat/completions" in document["paths"]
    async with session.get(f"{gw.url}/nowhere") as resp:
        assert resp.status == 404
        assert error_envelope(await resp.read())["code"] == "not_found"
    async with session.delete(f"{gw.base_url}/models") as resp:
        assert resp.status == 405
        assert error_envelope(await resp.read())["code"] == "method_not_allowed"


# --- bad input: 400 with the field named, never 422 or 500 ----------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"", None, "empty"),
        (b"[1, 2]", None, "JSON object"),
        (b'{"model": "solar-mini", "messages": [], "temperature": NaN}', None, "NaN"),
        (b"\xff\xfe{}", None, "not valid JSON"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model", "model is required"),
        ({"model": 5, "messages": [{"role": "user", "content": "x"}]}, "model", "non-empty string"),
        ({"model": "solar-mini"}, "messages", "messages is required"),
        ({"model": "solar-mini", "messages": "hi"}, "messages", "non-empty list"),
        ({"model": "solar-mini", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "robot"),
        ({"model": "solar-mini", "messages": [{"role": "user", "content": 5}]}, "messages[0].content", "string"),
        (chat(stream="yes"), "stream", "true or false"),
        (chat(temperature="hot"), "temperature", "number"),
        (chat(temperature=5), "temperature", "between"),
        (chat(max_tokens=0), "max_tokens", "positive integer"),
        (chat(frobnicate=1), "frobnicate", "unknown parameter"),
        (chat(store=True), "store", "rejected by Upstage"),
        (chat(n=2), "n", "one answer per request"),
        (chat(logprobs=True), "logprobs", "no log probabilities"),
        (chat(tools=[{"type": "function", "function": {"name": "f", "strict": True}}]), "tools[0].function.strict",
         "strict tools"),
        (chat(reasoning_effort="high"), "reasoning_effort", "does not reason"),
        (chat(stream_options={"include_usage": True}), "stream_options", "only allowed"),
        ({"model": "solar-mini", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
         "messages[0].content[0]", "image input"),
        (chat("bad \ud800 surrogate"), "messages[0].content", "lone surrogate"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(
    gw: RunningGateway, session: aiohttp.ClientSession, body: Any, param: str | None, words: str
) -> None:
    status, _, raw = await post(session, gw, body)
    assert status == 400, raw
    error = error_envelope(raw)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert words in error["message"]
    assert gw.emulator.requests == []  # nothing was sent upstream


@pytest.mark.parametrize("field", ["base_url", "api_key", "extra_headers", "extra_body", "proxy", "timeout"])
async def test_clients_cannot_redirect_the_upstream_or_its_key(
    gw: RunningGateway, session: aiohttp.ClientSession, field: str
) -> None:
    status, _, raw = await post(session, gw, chat(**{field: "http://127.0.0.1:9/v1"}))
    assert status == 400
    assert error_envelope(raw)["param"] == field
    assert gw.emulator.requests == []


async def test_n_equal_to_one_is_accepted(gw: RunningGateway, session: aiohttp.ClientSession) -> None:
    status, _, _ = await post(session, gw, chat(n=1))
    assert status == 200
    assert "n" not in gw.emulator.requests[0].json


async def test_oversized_bodies_get_413() -> None:
    async with running_gateway(max_body_bytes=2048) as gw, aiohttp.ClientSession() as session:
        big = chat("x" * 4096)
        status, _, raw = await post(session, gw, big)
        assert status == 413
        assert error_envelope(raw)["code"] == "request_too_large"

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while reading
            data = json.dumps(big).encode()
            for i in range(0, len(data), 512):
                yield data[i : i + 512]

        status, _, raw = await post(session, gw, chunked())
        assert status == 413
        assert "--max-body-bytes" in error_envelope(raw)["message"]
        assert gw.emulator.requests == []


async def test_unknown_model_is_404(gw: RunningGateway, session: aiohttp.ClientSession) -> None:
    for stream in (False, True):
        status, _, raw = await post(session, gw, chat(model="gpt-4o", stream=stream))
        assert status == 404
        error = error_envelope(raw)
        assert (error["code"], error["param"]) == ("model_not_found", "model")


# --- auth -----------------------------------------------------------------------------------------


async def test_gateway_key_is_required_when_set(session: aiohttp.ClientSession) -> None:
    async with running_gateway(api_key=GATEWAY_KEY) as gw:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": GATEWAY_KEY}):
            status, _, raw = await post(session, gw, chat(), headers=headers)
            assert status == 401
            error = error_envelope(raw)
            assert error["code"] == "invalid_api_key"
            assert "Authorization: Bearer" in error["message"]
            assert GATEWAY_KEY not in error["message"]
        async with session.get(f"{gw.base_url}/models") as resp:
            assert resp.status == 401
        status, _, _ = await post(session, gw, chat(), headers={"Authorization": f"Bearer {GATEWAY_KEY}"})
        assert status == 200
        async with session.get(f"{gw.url}/health") as resp:
            assert resp.status == 200  # health and the page stay open
        async with session.get(f"{gw.url}/") as resp:
            assert resp.status == 200
        # the gateway key is not forwarded upstream; the upstream key is the server's own
        record = gw.emulator.requests[0]
        assert GATEWAY_KEY.encode() not in record.body
        assert GATEWAY_KEY not in json.dumps(dict(record.headers))


# --- upstream errors before the first chunk: real status codes ----------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("directive", "status", "code"),
    [
        ("[emulate:error status=500]", 502, "upstream_error"),
        ("[emulate:html-error status=503]", 502, "upstream_error"),
        ("[emulate:error status=401 code=invalid_api_key]", 401, "invalid_api_key"),
        ("[emulate:rate-limit header=retry-after]", 429, "rate_limit_exceeded"),
        ("[emulate:rate-limit code=usage_limit_exceeded header=none]", 429, "insufficient_quota"),
        ("[emulate:error status=400 code=context_length_exceeded]", 400, "context_length_exceeded"),
    ],
)
async def test_upstream_errors_before_the_first_chunk_get_their_status(
    gw: RunningGateway, session: aiohttp.ClientSession, stream: bool, directive: str, status: int, code: str
) -> None:
    got, headers, raw = await post(session, gw, chat(f"{directive} hi", stream=stream))
    assert got == status, raw
    assert headers["Content-Type"] == "application/json"
    error = error_envelope(raw)
    assert error["code"] == code
    assert UPSTREAM_KEY not in error["message"]
    if code == "rate_limit_exceeded":
        assert (headers["Retry-After"], headers["retry-after-ms"]) == ("1", "0")  # the emulator said 0 s
    if code == "insufficient_quota":
        assert error["type"] == "insufficient_quota"
        assert headers["x-should-retry"] == "false"
    if status == 401:
        assert "gateway operator" in error["message"]


async def test_upstream_timeout_is_504(session: aiohttp.ClientSession) -> None:
    async with running_gateway(upstream_timeout=0.3) as gw:
        status, _, raw = await post(session, gw, chat("[emulate:stall after=0] hi", stream=True))
        assert status == 504
        assert error_envelope(raw)["code"] == "upstream_timeout"


async def test_unreachable_upstream_is_502(session: aiohttp.ClientSession) -> None:
    config = GatewayConfig(upstream_api_key="up_x", upstream_base_url="http://127.0.0.1:9/v1")
    async with running_gateway(config, emulator=False) as gw:
        status, _, raw = await post(session, gw, chat(stream=True))
        assert status == 502
        error = error_envelope(raw)
        assert error["code"] == "upstream_unreachable"
        assert "up_x" not in error["message"]


# --- errors after the first chunk: in-band, then [DONE] ----------------------------------------------


@pytest.mark.parametrize(
    ("directive", "code"),
    [("[emulate:midstream-error after=2]", "internal_server_error"), ("[emulate:reset after=2]", "upstream_error"),
     ("[emulate:truncate after=2]", "upstream_error")],
)
async def test_errors_after_the_first_chunk_are_in_band(
    gw: RunningGateway, session: aiohttp.ClientSession, directive: str, code: str
) -> None:
    status, _, raw = await post(session, gw, chat(f"{directive} hi", stream=True))
    assert status == 200
    payloads = sse_data(raw, complete=True)
    assert payloads[-1] == "[DONE]"
    error = json.loads(payloads[-2])["error"]
    assert error["code"] == code
    assert error["type"] == "server_error"
    assert any(json.loads(p).get("choices") for p in payloads[:-2])


# --- cancellation, concurrency, shutdown ------------------------------------------------------------


async def _first_frame(resp: aiohttp.ClientResponse) -> bytes:
    data = b""
    while b"\n\n" not in data:
        data += await resp.content.readany()
    return data


async def test_client_disconnect_cancels_the_upstream(gw: RunningGateway) -> None:
    emu = gw.emulator
    async with aiohttp.ClientSession() as session:
        resp = await session.post(f"{gw.base_url}/chat/completions",
                               json=chat("[emulate:slow delay_ms=400] hi", stream=True))
        assert resp.status == 200
        await _first_frame(resp)
        assert gw.server.gateway.in_flight == 1
        closed_at = time.perf_counter()
        resp.close()  # drop the connection mid-stream
        await asyncio.wait_for(emu.wait_for_disconnects(1), 5)  # hang guard only
        latency_ms = (time.perf_counter() - closed_at) * 1000
    assert emu.disconnects == 1
    assert gw.server.gateway.in_flight == 0
    print(f"\nupstream saw the disconnect {latency_ms:.2f} ms after the client closed")


async def test_client_disconnect_before_the_first_chunk_cancels_the_upstream(gw: RunningGateway) -> None:
    async with aiohttp.ClientSession() as session:
        request = asyncio.ensure_future(session.post(f"{gw.base_url}/chat/completions",
                                                  json=chat("[emulate:stall after=0] hi", stream=True)))
        await asyncio.wait_for(gw.emulator.wait_for_requests(1), 5)
        request.cancel()  # the client gives up while the gateway waits for the first chunk
        with pytest.raises(asyncio.CancelledError):
            await request
        await asyncio.wait_for(gw.emulator.wait_for_disconnects(1), 5)
        await asyncio.wait_for(gw.server.gateway.wait_idle(), 5)


async def test_concurrency_cap_answers_429_at_once() -> None:
    async with running_gateway(max_concurrency=1) as gw, aiohttp.ClientSession() as session:
        first = await session.post(f"{gw.base_url}/chat/completions",
                                json=chat("[emulate:slow delay_ms=400] hi", stream=True))
        await _first_frame(first)
        status, headers, raw = await post(session, gw, chat())
        assert status == 429
        assert headers["Retry-After"] == "1"
        assert error_envelope(raw)["code"] == "gateway_busy"
        first.close()
        await asyncio.wait_for(gw.server.gateway.wait_idle(), 5)
        status, _, _ = await post(session, gw, chat())
        assert status == 200


async def test_shutdown_ends_streams_in_band() -> None:
    async with running_gateway() as gw, aiohttp.ClientSession() as session:
        resp = await session.post(f"{gw.base_url}/chat/completions",
                               json=chat("[emulate:slow delay_ms=400] hi", stream=True))
        head = await _first_frame(resp)
        gw.server.should_exit = True  # what SIGTERM does
        rest = await resp.read()  # a cut socket would raise ClientPayloadError here
        payloads = sse_data(head + rest, complete=True)
        assert payloads[-1] == "[DONE]"
        assert json.loads(payloads[-2])["error"]["code"] == "server_shutting_down"
        await asyncio.wait_for(gw.emulator.wait_for_disconnects(1), 5)


async def test_upstream_key_never_logged(
    gw: RunningGateway, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for body in (chat(), chat(stream=True), chat("[emulate:error status=401]"), chat("[emulate:reset after=1]",
                                                                                     stream=True)):
        await post(session, gw, body, headers={"Authorization": f"Bearer {GATEWAY_KEY}"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "POST /v1/chat/completions" in text
    assert UPSTREAM_KEY not in text
    assert GATEWAY_KEY not in text
