"""Every emulator scenario, asked for by directive, header or default, checked on the raw bytes."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest

from solarstream.emulator import CATALOG, Emulator
from solarstream.emulator.answers import BANNER, SCRIPT_ANSWER, answer_text, filler
from tests.helpers import ask, expected_usage, sse_chunks, sse_data, sse_text
from tests.helpers import emu_post as post

MODEL = "solar-mini"


def body(text: str = "Hi", *, stream: bool = True, usage: bool = False, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": text}], "stream": stream, **extra}
    if usage:
        out["stream_options"] = {"include_usage": True}
    return out


# --- selection --------------------------------------------------------------------------------


async def test_directive_in_last_user_message(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, raw = await post(session, emu, body("Hello [emulate:crlf] world"))
    assert raw.endswith(b"data: [DONE]\r\n\r\n")
    assert "You wrote: «Hello world»." in sse_text(raw)  # the directive is not quoted


async def test_directive_only_counts_in_the_last_user_message(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    payload = body()
    payload["messages"] = [{"role": "user", "content": "[emulate:crlf] old"},
                           {"role": "assistant", "content": "ok"}, {"role": "user", "content": "new"}]
    _, _, raw = await post(session, emu, payload)
    assert b"\r" not in raw


async def test_header_selects_and_several_combine(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, raw = await post(session, emu, body(usage=True), emulate="crlf; usage-separate")
    assert b"\r\n\r\n" in raw
    assert sse_chunks(raw)[-1]["choices"] == []


async def test_default_scenario_and_override() -> None:
    async with Emulator(scenario=["crlf", "slow delay_ms=0"]) as emu, aiohttp.ClientSession() as session:
        _, _, raw = await post(session, emu, body())
        assert raw.endswith(b"\r\n\r\n")
        status, _, raw = await post(session, emu, body("[emulate:error status=418]"))
        assert status == 418


@pytest.mark.parametrize(("where", "spec"), [("header", "teleport"), ("message", "teleport"),
                                              ("message", "slow delay=3"), ("header", "reset after=x"),
                                              ("header", "rate-limit header=carrier-pigeon")])
async def test_bad_scenarios_are_400_and_say_what_is_valid(
    emu: Emulator, session: aiohttp.ClientSession, where: str, spec: str
) -> None:
    if where == "header":
        status, _, raw = await post(session, emu, body(), emulate=spec)
    else:
        status, _, raw = await post(session, emu, body(f"[emulate:{spec}]"))
    assert status == 400
    error = json.loads(raw)["error"]
    assert error["code"] == "invalid_request_body"
    assert error["param"] == ("X-Emulate" if where == "header" else "messages")
    if spec == "teleport":
        assert "unknown emulator scenario 'teleport'" in error["message"]
        for name in CATALOG:
            assert name in error["message"]
    elif spec == "slow delay=3":
        assert "delay_ms=" in error["message"]


# --- wire variants ----------------------------------------------------------------------------


async def test_crlf_everywhere(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, raw = await post(session, emu, body(usage=True), emulate="crlf")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert raw.count(b"\r\n\r\n") == len(sse_data(raw))


async def test_keepalive_pings(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, raw = await post(session, emu, body(), emulate="keepalive every=2")
    assert raw.startswith(b": ping\n\ndata: ")
    assert raw.count(b": ping\n\n") >= 3
    assert raw.endswith(b"data: [DONE]\n\n")
    assert sse_text(raw).startswith(BANNER)


async def test_usage_separate(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, raw = await post(session, emu, body(usage=True), emulate="usage-separate")
    parsed = sse_chunks(raw)
    assert parsed[-2]["choices"][0]["finish_reason"] == "stop"
    assert "usage" not in parsed[-2]
    assert parsed[-1]["choices"] == []
    assert parsed[-1]["usage"] == expected_usage(ask("Hi"), answer_text("Hi"))
    assert sse_data(raw)[-1] == "[DONE]"
    # without include_usage there is no usage at all
    _, _, raw = await post(session, emu, body(), emulate="usage-separate")
    assert b'"usage"' not in raw


# --- HTTP errors ------------------------------------------------------------------------------

ERRORS = [(400, "invalid_request_body"), (400, "context_length_exceeded"), (401, "invalid_api_key"),
          (401, "api_key_is_blocked"), (429, "too_many_requests"), (429, "usage_limit_exceeded"),
          (499, "client_closed_request"), (500, "internal_server_error"), (502, "bad_gateway"),
          (503, "service_unavailable")]


@pytest.mark.parametrize(("status", "code"), ERRORS)
async def test_error_statuses_and_codes(
    emu: Emulator, session: aiohttp.ClientSession, status: int, code: str
) -> None:
    got, headers, raw = await post(session, emu, body(), emulate=f"error status={status} code={code}")
    assert got == status
    assert json.loads(raw) == {"error": {
        "message": f"Emulated error {status} {code}, requested by [emulate:error].",
        "type": "server_error" if status >= 500 else "invalid_request_error", "param": "", "code": code}}
    assert "X-Upstage-RateLimit-Limit-Requests" in headers


async def test_error_default_code_follows_status(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, raw = await post(session, emu, body(stream=False), emulate="error status=401")
    assert json.loads(raw)["error"]["code"] == "invalid_api_key"


async def test_error_bodies_without_envelope(emu: Emulator, session: aiohttp.ClientSession) -> None:
    status, headers, raw = await post(session, emu, body(), emulate="error status=401 body=legacy")
    assert (status, raw) == (401, b'{"message":"Unauthorized"}')
    status, headers, raw = await post(session, emu, body(), emulate="error status=502 body=empty")
    assert (status, raw) == (502, b"")
    status, headers, raw = await post(session, emu, body(), emulate="error status=503 body=html")
    assert status == 503
    assert headers["Content-Type"].startswith("text/html")
    assert b"<title>503 Service Unavailable</title>" in raw


async def test_html_error(emu: Emulator, session: aiohttp.ClientSession) -> None:
    status, headers, raw = await post(session, emu, body("[emulate:html-error]"))
    assert status == 502
    assert headers["Content-Type"].startswith("text/html")
    assert raw.startswith(b"<html>")
    assert b"502 Bad Gateway" in raw


async def test_error_times_fails_first_attempts_then_answers(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    payload = body("[emulate:error status=503 times=2] retry me")
    statuses = [(await post(session, emu, payload))[0] for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert emu.attempts == {"error body=envelope code= status=503 times=2": 3}
    status, _, raw = await post(session, emu, payload)
    assert status == 200
    assert "You wrote: «retry me»." in sse_text(raw)
    # another spelling is another counter
    assert (await post(session, emu, body("[emulate:error status=503 times=1]")))[0] == 503


@pytest.mark.parametrize("header", ["retry-after", "retry-after-ms", "upstage", "all", "none"])
async def test_rate_limit_retry_headers(emu: Emulator, session: aiohttp.ClientSession, header: str) -> None:
    before = int(time.time())
    status, headers, raw = await post(session, emu, body(), emulate=f"rate-limit header={header} delay_ms=2500")
    assert status == 429
    assert json.loads(raw)["error"]["code"] == "too_many_requests"
    expect_seconds = header in ("retry-after", "all")
    expect_ms = header in ("retry-after-ms", "all")
    expect_stamp = header in ("upstage", "all")
    assert (headers.get("Retry-After") == "3") is expect_seconds
    assert (headers.get("retry-after-ms") == "2500") is expect_ms
    for name in ("X-Upstage-RateLimit-Retry-After-Requests", "X-Upstage-RateLimit-Retry-After-Tokens"):
        assert (name in headers) is expect_stamp
        if expect_stamp:
            assert before + 2 <= int(headers[name]) <= int(time.time()) + 3


async def test_rate_limit_usage_cap(emu: Emulator, session: aiohttp.ClientSession) -> None:
    status, _, raw = await post(session, emu, body(), emulate="rate-limit code=usage_limit_exceeded")
    assert status == 429
    assert json.loads(raw)["error"]["code"] == "usage_limit_exceeded"


# --- faults inside the stream -----------------------------------------------------------------


async def test_truncate_ends_cleanly_without_finish_or_done(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    status, _, raw = await post(session, emu, body(), emulate="truncate after=3")
    assert status == 200
    parsed = sse_chunks(raw)
    assert len(parsed) == 4  # the role chunk and three content chunks
    assert all(c["choices"][0]["finish_reason"] is None for c in parsed)
    assert b"[DONE]" not in raw
    assert raw.endswith(b"\n\n")


async def test_truncate_after_more_chunks_than_the_answer_has(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    _, _, raw = await post(session, emu, body(), emulate="truncate after=1000")
    assert sse_text(raw).startswith(BANNER)
    assert all(c["choices"][0]["finish_reason"] is None for c in sse_chunks(raw))
    assert b"[DONE]" not in raw


@pytest.mark.parametrize("event", [False, True])
async def test_midstream_error(emu: Emulator, session: aiohttp.ClientSession, event: bool) -> None:
    _, _, raw = await post(session, emu, body(), emulate=f"midstream-error after=2 code=overloaded event={int(event)}")
    frames = raw.decode().split("\n\n")
    assert frames[-1] == ""
    last = frames[-2]
    assert last.startswith("event: error\ndata: ") is event
    error = json.loads(last.split("data: ", 1)[1])
    assert error["error"]["code"] == "overloaded"
    assert len(sse_chunks(raw)) == 4  # role, two content chunks, then the error object
    assert b"[DONE]" not in raw


async def test_reset_aborts_the_connection(emu: Emulator, session: aiohttp.ClientSession) -> None:
    headers = {"Authorization": f"Bearer {emu.api_key}", "X-Emulate": "reset after=2"}
    pieces: list[bytes] = []

    async def read_all(resp: aiohttp.ClientResponse) -> None:
        while data := await resp.content.readany():
            pieces.append(data)

    async with session.post(emu.base_url + "/chat/completions", json=body(), headers=headers) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await read_all(resp)
    received = b"".join(pieces)
    assert len(sse_data(received)) == 3
    assert emu.disconnects == 0  # we dropped it, not the client
    # the next request needs a new connection
    assert (await post(session, emu, body()))[0] == 200
    assert emu.connections == 2


async def test_reset_non_stream(emu: Emulator, session: aiohttp.ClientSession) -> None:
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post(session, emu, body(stream=False), emulate="reset")


async def test_truncate_non_stream_breaks_the_body(emu: Emulator, session: aiohttp.ClientSession) -> None:
    with pytest.raises(aiohttp.ClientPayloadError):
        await post(session, emu, body(stream=False), emulate="truncate")


# --- answers on request -----------------------------------------------------------------------


async def test_echo(emu: Emulator, session: aiohttp.ClientSession) -> None:
    text = "  Line one\n\tПривет, 세계!  [emulate:echo]"
    _, _, raw = await post(session, emu, body(text))
    assert sse_text(raw) == "  Line one\n\tПривет, 세계!"
    _, _, raw = await post(session, emu, body(text.replace("[emulate:echo]", "")), emulate="echo")
    assert sse_text(raw) == text.replace("[emulate:echo]", "")


async def test_script(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, raw = await post(session, emu, body(stream=False), emulate="script")
    content = json.loads(raw)["choices"][0]["message"]["content"]
    assert content == SCRIPT_ANSWER
    assert '<script>alert("x")</script>' in content
    assert "**Bold**" in content


async def test_speed_sizes_and_counts(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, raw = await post(session, emu, body(usage=True), emulate="speed chunks=500 size=40")
    parsed = sse_chunks(raw)
    pieces = [c["choices"][0]["delta"]["content"] for c in parsed[1:-1]]
    assert len(pieces) == 500
    assert set(pieces) == {filler(40)}
    assert len(filler(40).encode()) == 40
    assert "emulator" in filler(40)
    assert parsed[-1]["choices"][0]["finish_reason"] == "stop"
    assert parsed[-1]["usage"]["completion_tokens"] == 500 * 10


async def test_slow_streams_the_same_bytes(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, fast = await post(session, emu, body("same"))
    _, _, slow = await post(session, emu, body("same"), emulate="slow delay_ms=1")
    assert sse_text(fast) == sse_text(slow)


async def test_reasoning_scenario_on_a_model_without_reasoning(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    _, _, raw = await post(session, emu, body(), emulate="reasoning field=reasoning_content")
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in sse_chunks(raw))
    assert reasoning.startswith(f"{BANNER} Emulated reasoning for {MODEL}")
    assert b'"reasoning":' not in raw


async def test_tools_scenario_uses_a_demo_tool(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, raw = await post(session, emu, body(stream=False), emulate="tools")
    choice = json.loads(raw)["choices"][0]
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "emulated city", "unit": "celsius"}
    assert choice["finish_reason"] == "tool_calls"


async def test_tools_finish_stop_and_several_calls(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, raw = await post(session, emu, body(), emulate="tools finish=stop count=2")
    parsed = sse_chunks(raw)
    indexes = {c["choices"][0]["delta"]["tool_calls"][0]["index"]
               for c in parsed if "tool_calls" in c["choices"][0]["delta"]}
    assert indexes == {0, 1}
    assert parsed[-1]["choices"][0]["finish_reason"] == "stop"


async def test_fragment_gives_the_same_bytes(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, whole = await post(session, emu, body("Привет, 세계 [emulate:crlf]"))
    _, _, pieces = await post(session, emu, body("Привет, 세계 [emulate:crlf] [emulate:fragment size=3]"))
    assert sse_text(pieces) == sse_text(whole)
    assert pieces.endswith(b"data: [DONE]\r\n\r\n")
