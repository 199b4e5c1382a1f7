"""Hostile input and broken networks (issue 8): typed errors before sending, bounded waits, typed
framing failures with both HTTP parsers, clients that leak nothing when dropped, private CAs."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from solarstream import AsyncClient, Client, Timeout, Upstage
from solarstream._retry import MAX_ADVERTISED_DELAY, RetryPolicy, usable_delay
from solarstream.emulator import Emulator
from solarstream.emulator.answers import answer_text
from solarstream.errors import (
    APIConnectionError,
    APITimeoutError,
    InvalidRequestError,
    ServerError,
    StreamTruncatedError,
)
from solarstream.server import GatewayConfig
from solarstream.server.testing import running_gateway
from tests.conftest import API_KEY, MESSAGES, kw
from tests.helpers import collect
from tests.rawserver import RawServer, Reply, chunk, json_reply, sse, sse_reply, text_stream

FAST = RetryPolicy(max_retries=2, backoff=0.001, backoff_max=0.002)
ROOT = Path(__file__).resolve().parent.parent

# --- 1. what cannot be sent is a typed error before sending ---------------------------------------

LONE = "\ud83d"  # half of an emoji: not encodable as UTF-8

SURROGATE_CASES: list[tuple[str, list[dict[str, Any]], dict[str, Any], str]] = [
    ("content", [{"role": "user", "content": f"hi {LONE}"}], {}, "messages[0].content"),
    ("system", [{"role": "system", "content": LONE}, {"role": "user", "content": "x"}], {}, "messages[0].content"),
    ("text part", [{"role": "user", "content": [{"type": "text", "text": LONE}]}], {},
     "messages[0].content[0].text"),
    ("name", [{"role": "user", "content": "x", "name": LONE}], {}, "messages[0].name"),
    ("stop", MESSAGES, {"stop": ["ok", LONE]}, "stop[1]"),
    ("tool arguments", [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": f'{{"q": "{LONE}"}}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
    ], {}, "messages[1].tool_calls[0].function.arguments"),
    ("tool description", MESSAGES, {"tools": [{"type": "function", "function": {"name": "f",
                                                                                "description": LONE}}]},
     "tools[0].function.description"),
    ("a key", MESSAGES, {"response_format": {"type": "json_schema", "json_schema": {
        "name": "s", "schema": {"properties": {LONE: {"type": "string"}}}}}},
     f"response_format.json_schema.schema.properties.{LONE}"),
]


@pytest.mark.parametrize(("case", "messages", "params", "field"), SURROGATE_CASES, ids=[c[0] for c in SURROGATE_CASES])
async def test_a_lone_surrogate_is_an_invalid_request_naming_the_field(
    server: RawServer, case: str, messages: list[dict[str, Any]], params: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await Upstage.create_async("solar-pro4", messages, **kw(server, **params))
    assert info.value.param == field
    assert str(info.value).startswith(f"{field}: contains a lone surrogate (\\ud83d")
    assert server.requests == []


async def test_a_lone_surrogate_in_the_model_name_is_refused(server: RawServer) -> None:
    provider = Upstage(model_policy="passthrough")
    with pytest.raises(InvalidRequestError) as info:
        provider.stream(f"my-{LONE}-model", MESSAGES, **kw(server))
    assert info.value.param == "model"
    assert server.requests == []


@pytest.mark.parametrize(("headers", "field"), [
    ({"X-Trace": "a\r\nInjected: 1"}, "extra_headers['X-Trace']"),
    ({"X-Trace": "line\nbreak"}, "extra_headers['X-Trace']"),
    ({"X-Trace": "nul\0byte"}, "extra_headers['X-Trace']"),
    ({"X-Bad\r\nName": "v"}, "extra_headers['X-Bad\\r\\nName']"),
    ({"X Space": "v"}, "extra_headers['X Space']"),
    ({"": "v"}, "extra_headers['']"),
    ({"X-Trace": "caf\u00e9 \u2603"}, "extra_headers['X-Trace']"),
])
async def test_unsendable_extra_headers_are_refused_naming_the_header(
    server: RawServer, headers: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await Upstage.create_async("solar-pro4", MESSAGES, **kw(server, extra_headers=headers))
    assert info.value.param == field
    assert server.requests == []


async def test_the_gateway_answers_400_for_a_lone_surrogate_not_500(caplog: pytest.LogCaptureFixture) -> None:
    import aiohttp

    body = b'{"model": "solar-mini", "messages": [{"role": "user", "content": "\\ud83d"}]}'
    async with running_gateway() as gw, aiohttp.ClientSession() as session, session.post(
        f"{gw.base_url}/chat/completions", data=body, headers={"Content-Type": "application/json"}
    ) as resp:
        raw = await resp.read()
        assert resp.status == 400
        error = json.loads(raw)["error"]
        assert error["param"] == "messages[0].content"
        assert "lone surrogate" in error["message"]
        assert gw.emulator.requests == []
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # no traceback in the log


# --- 2. retry delays are finite and bounded ----------------------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, MAX_ADVERTISED_DELAY * 2])
def test_unusable_delays_fall_back(value: float) -> None:
    assert usable_delay(value) is None


def test_every_backoff_is_capped() -> None:
    policy = RetryPolicy(backoff=0.5, backoff_max=8.0)
    for attempt in (0, 5, 50, 5000):
        assert 0 < policy.backoff_delay(attempt, rng=lambda: 1.0) <= 8.0


@pytest.mark.parametrize("value", ["nan", "inf", "-3", "1e309", "garbage", "Wed, 99 Xyz 1900 99:99:99 GMT"])
async def test_garbage_retry_after_on_the_wire_uses_normal_backoff(server: RawServer, value: str) -> None:
    error = json_reply(503, {"error": {"message": "busy"}}, [("Retry-After", value), ("retry-after-ms", value)])
    server.enqueue(error, sse_reply(text_stream(["recovered"])))
    provider = Upstage(retry=FAST)
    started = time.monotonic()
    assert await provider.create_async("solar-pro4", MESSAGES, **kw(server)) == "recovered"
    assert time.monotonic() - started < 5  # the 1 ms backoff, not a NaN or absurd sleep (a generous bound)
    assert len(server.requests) == 2
    await provider.aclose()


# --- 3. Timeout(total=...) bounds the whole call ---------------------------------------------------


async def test_total_timeout_fails_at_once_when_the_advertised_wait_does_not_fit(server: RawServer) -> None:
    server.enqueue(json_reply(503, {"error": {"message": "overloaded"}}, [("Retry-After", "20")]),
                   sse_reply(text_stream(["never"])))
    started = time.monotonic()
    with pytest.raises(ServerError) as info:
        await Upstage.create_async("solar-pro4", MESSAGES, **kw(server, timeout=Timeout(total=3)))
    assert time.monotonic() - started < 2.5  # not 20 s, and not the whole 3 s either
    assert "not retried: waiting 20." in str(info.value)
    assert "total timeout of 3s" in str(info.value)
    assert len(server.requests) == 1


async def test_total_timeout_while_keepalive_comments_arrive_is_named_total(emu: Emulator) -> None:
    """Comments keep the idle read timer happy; the total deadline still ends the call, and says so."""
    prompt = "[emulate:slow delay_ms=40] [emulate:keepalive every=1] " + "word " * 50
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as info:
        await Upstage.create_async("solar-mini", [{"role": "user", "content": prompt}],
                                   base_url=emu.base_url, api_key=emu.api_key, timeout=Timeout(read=30, total=0.5))
    assert time.monotonic() - started < 5
    assert info.value.timer == "total"
    assert "total timeout" in str(info.value)
    assert "idle" not in str(info.value)


async def test_total_timeout_covers_the_wait_for_headers(server: RawServer) -> None:
    server.enqueue(Reply(status=None, end="hang"))
    with pytest.raises(APITimeoutError) as info:
        await Upstage.create_async("solar-pro4", MESSAGES, **kw(server, timeout=Timeout(first_byte=60, total=0.3)))
    assert info.value.timer == "total"


# --- 4. broken HTTP framing is a typed error within the read timeout, with both parsers -----------

GOOD = sse(chunk("Hi"))
BAD_CHUNKED = b"%x\r\n" % len(GOOD) + GOOD + b"\r\nZZZ\r\n"  # a valid chunk, then an invalid chunk-size line
BAD_HEADERS = (("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked"))


async def test_invalid_chunk_size_ends_as_a_typed_error(server: RawServer) -> None:
    server.enqueue(Reply(headers=BAD_HEADERS, pieces=[BAD_CHUNKED], framing="raw", end="hang"))
    pieces, error = await collect(Upstage.create_async_generator("solar-pro4", MESSAGES,
                                                                 **kw(server, timeout=Timeout(read=0.5))))
    assert pieces == ["Hi"]
    assert isinstance(error, StreamTruncatedError)  # the C parser would otherwise hang here for ever
    assert "broke" in str(error)


_PARSER_SCRIPT = """
import asyncio, sys
sys.path.insert(0, {root!r})
from tests.rawserver import RawServer, Reply
from tests.test_hardening import BAD_CHUNKED, BAD_HEADERS
from solarstream import Timeout, Upstage
from solarstream.errors import StreamTruncatedError
import aiohttp.http_parser as hp

async def main():
    async with RawServer() as srv:
        srv.enqueue(Reply(headers=BAD_HEADERS, pieces=[BAD_CHUNKED], framing="raw", end="hang"))
        try:
            async for _ in Upstage.create_async_generator("solar-pro4", [{{"role": "user", "content": "x"}}],
                                                          base_url=srv.base_url, api_key="up_x",
                                                          timeout=Timeout(read=0.5)):
                pass
        except StreamTruncatedError as exc:
            print("typed", hp.HttpResponseParser.__module__, exc)
asyncio.run(asyncio.wait_for(main(), 20))
"""


@pytest.mark.parametrize("pure_python", [False, True], ids=["c-parser", "python-parser"])
def test_both_http_parsers_give_the_typed_error(pure_python: bool) -> None:
    env = {**os.environ, "AIOHTTP_NO_EXTENSIONS": "1"} if pure_python else {
        k: v for k, v in os.environ.items() if k != "AIOHTTP_NO_EXTENSIONS"}
    result = subprocess.run([sys.executable, "-c", _PARSER_SCRIPT.format(root=str(ROOT))], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("typed "), result.stdout + result.stderr
    module = result.stdout.split()[1]
    assert module == ("aiohttp.http_parser" if pure_python else "aiohttp._http_parser")  # which parser ran
    assert result.stderr == ""


async def test_the_gateway_ends_the_stream_in_band_and_frees_its_slot() -> None:
    import aiohttp

    async with RawServer() as upstream:
        role = sse({"id": "x", "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
        first = role + GOOD
        body = b"%x\r\n" % len(first) + first + b"\r\nZZZ\r\n"
        upstream.enqueue(Reply(headers=BAD_HEADERS, pieces=[body], framing="raw", end="hang"))
        config = GatewayConfig(upstream_api_key=API_KEY, upstream_base_url=upstream.base_url, upstream_timeout=0.5)
        async with running_gateway(config, emulator=False) as gw, aiohttp.ClientSession() as session:
            async with session.post(f"{gw.base_url}/chat/completions", json={
                "model": "solar-pro4", "messages": MESSAGES, "stream": True}) as resp:
                assert resp.status == 200
                raw = await asyncio.wait_for(resp.read(), 20)
            frames = [f for f in raw.decode().split("\n\n") if f]
            assert frames[-1] == "data: [DONE]"
            error = json.loads(frames[-2].removeprefix("data: "))["error"]
            assert error["type"] == "server_error"
            assert "framing" in error["message"] or "broke" in error["message"]
            gateway = gw.server.gateway
            await asyncio.wait_for(gateway.wait_idle(), 10)
            assert gateway.in_flight == 0


# --- 5. clients dropped without close() are silent and leak nothing ------------------------------


async def test_hundreds_of_dropped_async_clients_are_silent(emu: Emulator) -> None:
    seen: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    fds_before = len(os.listdir("/proc/self/fd"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(200):
            client = AsyncClient(api_key=emu.api_key, base_url=emu.base_url)
            completion = await client.chat.completions.create(model="solar-mini",
                                                              messages=[{"role": "user", "content": f"hi {i}"}])
            assert completion.choices[0].message.content == answer_text(f"hi {i}")
            del client, completion
            if i % 50 == 49:
                gc.collect()
                await asyncio.sleep(0)  # the closing tasks the collector scheduled run here
        gc.collect()
        for _ in range(5):
            await asyncio.sleep(0)
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert seen == []
    assert emu.connections == 200  # each client had its own pool, and closed it when collected:
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 5  # not 200 sockets more (the server's side closes
    # as the clients close theirs; a little slack for what the loop itself holds)


_DROP_SCRIPT = """
import gc, sys
from solarstream import AsyncClient, Client
import asyncio
base, key = sys.argv[1], sys.argv[2]
for i in range(150):
    c = Client(api_key=key, base_url=base)
    assert c.chat.completions.create(model="solar-mini", messages=[{"role": "user", "content": "hi"}]).choices
    del c
    if i % 30 == 0:
        gc.collect()
async def main():
    for i in range(150):
        c = AsyncClient(api_key=key, base_url=base)
        s = await c.chat.completions.create(model="solar-mini", messages=[{"role": "user", "content": "hi"}],
                                            stream=True)
        async for _ in s:
            pass
        del c, s
asyncio.run(main())
gc.collect()
print("ok")
"""


def test_dropped_clients_in_a_script_print_nothing(tmp_path: Path) -> None:
    """As a notebook or script does it: no close, no with; with warnings as errors nothing is printed.

    (Not ``-X dev``: its asyncio debug mode also reports callbacks slower than 100 ms, which a loaded
    machine produces without any leak.)"""
    from tests.test_cli import ThreadedEmulator

    with ThreadedEmulator() as emu:
        result = subprocess.run([sys.executable, "-W", "error", "-c", _DROP_SCRIPT, emu.base_url,
                                 emu.api_key], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"
    assert result.stderr == ""


# --- 6. private CAs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_emu(ca: trustme.CA) -> AsyncIterator[Emulator]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    async with Emulator(ssl=context) as emulator:
        yield emulator


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "company-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


async def _ask(emu: Emulator, **options: Any) -> str:
    async with AsyncClient(api_key=emu.api_key, base_url=emu.base_url, **options) as client:
        completion = await client.chat.completions.create(model="solar-mini",
                                                          messages=[{"role": "user", "content": "tls"}])
    return completion.choices[0].message.content or ""


async def test_an_unknown_ca_is_a_connection_error_saying_which_check_failed(tls_emu: Emulator) -> None:
    assert tls_emu.base_url.startswith("https://127.0.0.1:")
    with pytest.raises(APIConnectionError) as info:
        await _ask(tls_emu, max_retries=0)
    message = str(info.value)
    assert "certificate" in message
    assert "unable to get local issuer certificate" in message or "self-signed" in message, message
    assert "verify=" in message  # what to do about it
    assert "SSL_CERT_FILE" in message


async def test_a_ca_bundle_path_is_trusted(tls_emu: Emulator, ca_file: str) -> None:
    assert await _ask(tls_emu, verify=ca_file) == answer_text("tls")


async def test_an_ssl_context_is_used_as_given(tls_emu: Emulator, ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    assert await _ask(tls_emu, verify=context) == answer_text("tls")


async def test_verify_false_skips_the_check(tls_emu: Emulator) -> None:
    assert await _ask(tls_emu, verify=False) == answer_text("tls")


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
async def test_the_ca_variables_are_honoured(
    tls_emu: Emulator, ca_file: str, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, ca_file)
    assert await _ask(tls_emu) == answer_text("tls")


async def test_a_hostname_mismatch_is_named(ca: trustme.CA, ca_file: str) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("other.example").configure_cert(context)
    async with Emulator(ssl=context) as emu:
        with pytest.raises(APIConnectionError) as info:
            await _ask(emu, verify=ca_file, max_retries=0)
    assert "mismatch" in str(info.value) or "match" in str(info.value), str(info.value)


def test_a_missing_ca_bundle_is_a_clear_error() -> None:
    with pytest.raises(InvalidRequestError, match="does not exist"):
        AsyncClient(api_key=API_KEY, verify="/no/such/ca.pem")


def test_the_sync_client_and_the_cli_take_a_ca_bundle(ca: trustme.CA, ca_file: str) -> None:
    from tests.test_cli import ThreadedEmulator

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with ThreadedEmulator(ssl=context) as emu:
        with Client(api_key=emu.api_key, base_url=emu.base_url, verify=ca_file) as client:
            completion = client.chat.completions.create(model="solar-mini", messages=[{"role": "user", "content": "x"}])
        assert completion.choices[0].message.content == answer_text("x")
        cli = [sys.executable, "-m", "solarstream", "chat", "--no-log", "--base-url", emu.base_url, "--api-key",
               emu.api_key, "-m", "solar-mini"]
        ok = subprocess.run([*cli, "--ca-bundle", ca_file, "x"], capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == answer_text("x")
        refused = subprocess.run([*cli, "--max-retries", "0", "x"], capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1
        assert refused.stderr.count("\n") == 1
        assert "certificate" in refused.stderr
        assert "Traceback" not in refused.stderr
