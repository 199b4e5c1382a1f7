"""A keyless gateway on loopback against web pages: Content-Type, Host, Origin and CORS, on real
sockets in front of the emulator (browsers themselves: test_gateway_security_browser.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from solarstream.server import GatewayConfig
from solarstream.server.hosts import HostPolicy, normalize_allowed_host, normalize_origin
from solarstream.server.testing import RunningGateway, running_gateway
from solarstream.server.webguard import ALLOWED_HEADERS, EXPOSED_HEADERS
from tests.rawclient import RawClients

CHAT = json.dumps({"model": "solar-mini", "messages": [{"role": "user", "content": "hi"}]})
JSON = {"Content-Type": "application/json"}
SITE = "https://app.example"


def port_of(gw: RunningGateway) -> int:
    return int(gw.url.rsplit(":", 1)[1])


def envelope(raw: bytes) -> dict[str, Any]:
    body = json.loads(raw)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


@pytest.fixture
async def gw() -> AsyncIterator[RunningGateway]:
    async with running_gateway() as running:
        yield running


@pytest.fixture
async def cors_gw() -> AsyncIterator[RunningGateway]:
    async with running_gateway(cors_origins=(SITE, "http://localhost:5173")) as running:
        yield running


async def post(session: aiohttp.ClientSession, url: str, headers: dict[str, str], data: str = CHAT,
               ) -> tuple[int, Any, bytes]:
    # skip_auto_headers: aiohttp would otherwise add a Content-Type of its own
    async with session.post(url, data=data.encode(), headers=headers,
                            skip_auto_headers=["Content-Type"]) as resp:
        return resp.status, resp.headers, await resp.read()


# --- Content-Type: JSON endpoints take JSON only ----------------------------------------------------


@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    None, "application/jsonx", "application/json; charset=latin-1",
])
async def test_a_chat_body_that_is_not_json_gets_415(
    gw: RunningGateway, session: aiohttp.ClientSession, content_type: str | None
) -> None:
    """text/plain, form and multipart bodies are what a page can POST cross-site without a preflight."""
    headers = {} if content_type is None else {"Content-Type": content_type}
    status, _, raw = await post(session, f"{gw.base_url}/chat/completions", headers)
    assert status == 415
    error = envelope(raw)
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "unsupported_media_type", None)
    assert "application/json" in error["message"]
    assert gw.emulator.requests == []  # nothing reached the upstream


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=utf-8", "Application/JSON;Charset=\"UTF-8\"",
    "application/vnd.api+json",
])
async def test_json_with_a_utf8_charset_is_served(
    gw: RunningGateway, session: aiohttp.ClientSession, content_type: str
) -> None:
    status, _, raw = await post(session, f"{gw.base_url}/chat/completions", {"Content-Type": content_type})
    assert status == 200, raw
    assert json.loads(raw)["object"] == "chat.completion"


async def test_the_json_rule_holds_for_every_post_not_just_chat(
    gw: RunningGateway, session: aiohttp.ClientSession
) -> None:
    """The rule sits before routing: it covers /v1/embeddings and paths no route serves alike."""
    for path in ("/embeddings", "/no-such-endpoint"):
        status, _, raw = await post(session, f"{gw.base_url}{path}", {"Content-Type": "text/plain"})
        assert status == 415, path
        assert envelope(raw)["code"] == "unsupported_media_type"
    status, _, raw = await post(session, f"{gw.base_url}/embeddings", JSON, data="{}")
    assert status == 400  # JSON passes the guard and reaches the endpoint, which wants a model
    assert envelope(raw)["param"] == "model"
    status, _, raw = await post(session, f"{gw.base_url}/no-such-endpoint", JSON, data="{}")
    assert status == 404


async def test_a_post_without_a_body_needs_no_content_type(gw: RunningGateway, session: aiohttp.ClientSession) -> None:
    status, _, raw = await post(session, f"{gw.base_url}/chat/completions", {}, data="")
    assert status == 400  # the chat handler's own answer to an empty body
    assert envelope(raw)["code"] == "invalid_json"


# --- Host: the names the gateway was started for ------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "LocalHost:{port}"])
async def test_loopback_names_with_the_gateways_port_are_answered(
    gw: RunningGateway, session: aiohttp.ClientSession, host: str
) -> None:
    async with session.get(f"{gw.base_url}/models", headers={"Host": host.format(port=port_of(gw))}) as resp:
        assert resp.status == 200


@pytest.mark.parametrize("host", [
    "rebind.attacker.example:{port}", "rebind.attacker.example", "127.0.0.1.attacker.example:{port}",
    "127.0.0.1:1", "localhost", "127.0.0.2:{port}", "localhost:{port}@evil", "",
])
async def test_other_names_get_421(gw: RunningGateway, session: aiohttp.ClientSession, host: str) -> None:
    """DNS rebinding: the page's own name resolves to 127.0.0.1, and its requests carry that name."""
    port = port_of(gw)
    for method, path in (("GET", "/v1/models"), ("GET", "/"), ("POST", "/v1/chat/completions")):
        async with session.request(method, gw.url + path, headers={"Host": host.format(port=port), **JSON},
                                   data=CHAT if method == "POST" else None) as resp:
            assert resp.status == 421
            error = envelope(await resp.read())
        assert error["code"] == "host_not_allowed"
        assert f"127.0.0.1:{port}, localhost:{port}, [::1]:{port}" in error["message"]
        assert "--allowed-host" in error["message"]
    assert gw.emulator.requests == []


async def test_allowed_hosts_add_names(session: aiohttp.ClientSession) -> None:
    async with running_gateway(allowed_hosts=("gw.example", "pinned.example:8443")) as gw:
        for host, status in (("gw.example", 200), (f"gw.example:{port_of(gw)}", 200), ("gw.example:1", 200),
                             ("pinned.example:8443", 200), ("pinned.example", 421), ("other.example", 421)):
            async with session.get(f"{gw.base_url}/models", headers={"Host": host}) as resp:
                assert resp.status == status, host


async def test_allowed_host_star_turns_the_check_off(session: aiohttp.ClientSession) -> None:
    async with running_gateway(allowed_hosts=("*",)) as gw, session.get(
            f"{gw.base_url}/models", headers={"Host": "anything.example"}) as resp:
        assert resp.status == 200


async def test_two_host_headers_get_400(gw: RunningGateway) -> None:
    clients = RawClients()
    try:
        client = await clients.connect(port_of(gw))
        await client.send(f"GET /v1/models HTTP/1.1\r\nHost: {client.host}\r\nHost: evil.example\r\n\r\n".encode())
        response = await client.response()
        assert response.status == 400
        assert response.json()["error"]["code"] == "invalid_host"
    finally:
        await clients.aclose()


def test_a_wildcard_bind_answers_the_address_a_client_used() -> None:
    """Bound to 0.0.0.0 (or ::), Host may be the local address the connection arrived on (as the
    socket reports it in scope["server"]), never a name that merely resolves there."""
    policy = HostPolicy()
    lan = ("192.0.2.10", 8000)
    assert policy.allows_host_header("192.0.2.10:8000", "http", lan)
    assert policy.allows_host_header("localhost:8000", "http", lan)
    assert not policy.allows_host_header("192.0.2.11:8000", "http", lan)
    assert not policy.allows_host_header("mybox.lan:8000", "http", lan)
    assert not policy.allows_host_header("192.0.2.10:8001", "http", lan)
    dual_stack = ("::ffff:192.0.2.10", 8000)  # an IPv4 client on a "::" socket
    assert policy.allows_host_header("192.0.2.10:8000", "http", dual_stack)
    v6 = ("2001:db8::1", 8000)
    assert policy.allows_host_header("[2001:db8:0::1]:8000", "http", v6)
    assert policy.allows_host_header("gw.lan", "http", ("192.0.2.10", 80)) is False
    assert HostPolicy(("mybox.lan",)).allows_host_header("mybox.lan:8000", "http", lan)
    assert policy.allows_host_header("192.0.2.10", "http", ("192.0.2.10", 80))  # no port: the scheme's


@pytest.mark.parametrize(("entry", "canonical"), [
    ("GW.Example", "gw.example"), ("gw.example:8443", "gw.example:8443"), ("::1", "[::1]"), ("*", "*"),
    ("[2001:DB8::1]:9", "[2001:db8::1]:9"),
])
def test_allowed_host_values_are_normalised(entry: str, canonical: str) -> None:
    assert normalize_allowed_host(entry) == canonical


@pytest.mark.parametrize("entry", ["http://gw.example/", "gw.example:0", "gw.example:http", "bad name", "a@b"])
def test_bad_allowed_host_values_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="--allowed-host"):
        GatewayConfig(upstream_api_key="", allowed_hosts=(entry,))


# --- Origin: state-changing requests from other sites are refused -----------------------------------


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1:1", "null", "http://localhost",
                                    "file://", "chrome-extension://abc"])
async def test_a_post_from_another_origin_gets_403(
    gw: RunningGateway, session: aiohttp.ClientSession, origin: str
) -> None:
    status, headers, raw = await post(session, f"{gw.base_url}/chat/completions", {**JSON, "Origin": origin})
    assert status == 403
    error = envelope(raw)
    assert error["code"] == "origin_not_allowed"
    assert "--cors-origin" in error["message"] or "opaque origin" in error["message"]
    assert "Access-Control-Allow-Origin" not in headers
    assert gw.emulator.requests == []


@pytest.mark.parametrize("origin", ["http://127.0.0.1:{port}", "http://localhost:{port}", "http://[::1]:{port}"])
async def test_the_gateways_own_pages_may_post(
    gw: RunningGateway, session: aiohttp.ClientSession, origin: str
) -> None:
    status, headers, _ = await post(session, f"{gw.base_url}/chat/completions",
                                    {**JSON, "Origin": origin.format(port=port_of(gw))})
    assert status == 200
    assert "Access-Control-Allow-Origin" not in headers  # same-origin needs no CORS


async def test_clients_without_origin_pass_and_reads_are_not_blocked_only_unreadable(
    gw: RunningGateway, session: aiohttp.ClientSession
) -> None:
    status, _, _ = await post(session, f"{gw.base_url}/chat/completions", JSON)
    assert status == 200
    async with session.get(f"{gw.base_url}/models", headers={"Origin": "https://evil.example"}) as resp:
        assert resp.status == 200  # a GET changes nothing; without CORS headers the page cannot read it
        assert not [h for h in resp.headers if h.lower().startswith("access-control-")]


# --- CORS -----------------------------------------------------------------------------------------------


async def preflight(session: aiohttp.ClientSession, gw: RunningGateway, origin: str,
                    headers: str = "authorization, content-type") -> aiohttp.ClientResponse:
    async with session.options(f"{gw.base_url}/chat/completions", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": headers}) as resp:
        await resp.read()
        return resp


async def test_without_cors_origins_no_preflight_is_answered(
    gw: RunningGateway, session: aiohttp.ClientSession
) -> None:
    resp = await preflight(session, gw, SITE)
    assert resp.status == 403
    assert not [h for h in resp.headers if h.lower().startswith("access-control-")]


async def test_a_preflight_from_a_cors_origin_is_answered(
    cors_gw: RunningGateway, session: aiohttp.ClientSession
) -> None:
    asked = "authorization, content-type, x-stainless-os, x-stainless-helper-method, x-evil"
    resp = await preflight(session, cors_gw, SITE, asked)
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == SITE
    assert resp.headers["Access-Control-Allow-Methods"] == "GET, POST"
    allowed = resp.headers["Access-Control-Allow-Headers"].split(", ")
    assert allowed == [*ALLOWED_HEADERS, "x-stainless-helper-method"]  # and not x-evil
    assert resp.headers["Access-Control-Max-Age"] == "600"
    assert resp.headers["Vary"] == "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    assert "Access-Control-Allow-Credentials" not in resp.headers
    assert "Access-Control-Allow-Private-Network" not in resp.headers


async def test_a_private_network_preflight_is_answered_for_a_cors_origin(
    cors_gw: RunningGateway, session: aiohttp.ClientSession
) -> None:
    async with session.options(f"{cors_gw.base_url}/models", headers={
            "Origin": SITE, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Private-Network": "true"}) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Private-Network"] == "true"


async def test_a_preflight_from_another_origin_is_refused(
    cors_gw: RunningGateway, session: aiohttp.ClientSession
) -> None:
    resp = await preflight(session, cors_gw, "https://evil.example")
    assert resp.status == 403
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert resp.headers["Vary"] == "Origin"


async def test_responses_to_a_cors_origin_carry_its_headers(
    cors_gw: RunningGateway, session: aiohttp.ClientSession
) -> None:
    status, headers, raw = await post(session, f"{cors_gw.base_url}/chat/completions", {**JSON, "Origin": SITE})
    assert status == 200, raw
    assert headers["Access-Control-Allow-Origin"] == SITE
    assert headers["Access-Control-Expose-Headers"] == ", ".join(EXPOSED_HEADERS)
    assert "x-request-id" in EXPOSED_HEADERS
    assert "x-ratelimit-remaining-requests" in EXPOSED_HEADERS
    assert headers["Vary"] == "Origin"
    # an error is readable by that page too, so it can show it
    status, headers, raw = await post(session, f"{cors_gw.base_url}/chat/completions",
                                      {"Content-Type": "text/plain", "Origin": "http://localhost:5173"})
    assert status == 415
    assert headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    # and anyone else gets no CORS header, only the Vary that keeps caches apart
    async with session.get(f"{cors_gw.base_url}/models", headers={"Origin": "https://evil.example"}) as resp:
        assert "Access-Control-Allow-Origin" not in resp.headers
        assert resp.headers["Vary"] == "Origin"
    status, _, _ = await post(session, f"{cors_gw.base_url}/chat/completions", {**JSON, "Origin": "https://evil.example"})
    assert status == 403


@pytest.mark.parametrize(("entry", "canonical"), [
    ("HTTPS://App.Example:443/", "https://app.example"), ("http://localhost:5173", "http://localhost:5173"),
    ("http://app.example:80", "http://app.example"), ("https://[::1]:8443", "https://[::1]:8443"),
])
def test_cors_origins_are_normalised_as_browsers_send_them(entry: str, canonical: str) -> None:
    assert normalize_origin(entry) == canonical


@pytest.mark.parametrize("entry", ["*", "null", "https://app.example/path", "app.example", "ftp://app.example",
                                   "https://bücher.example"])
def test_bad_cors_origins_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="--cors-origin"):
        GatewayConfig(upstream_api_key="", cors_origins=(entry,))
