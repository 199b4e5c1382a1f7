"""The attacks on a keyless loopback gateway, made by a real browser (Debian's Chromium, headless).

A "foreign site" is a page on another port of 127.0.0.1 (another origin); DNS rebinding is played by
mapping a name to 127.0.0.1 in Chromium's resolver (``--host-resolver-rules``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from solarstream.emulator import answers
from solarstream.server.testing import GatewayThread, RunningGateway
from tests.browser import TIMEOUT_MS, chromium
from tests.helpers import LogWatch

REBIND = "rebind.test"  # the attacker's name, resolving to 127.0.0.1
KEY = "gw-cors-key-41"
CHAT = {"model": "solar-mini", "messages": [{"role": "user", "content": "spend my credits"}]}


class _ForeignPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>another site</title><p>another site"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def foreign() -> Iterator[str]:
    """The origin of another site, served from 127.0.0.1 on a port of its own."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ForeignPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium(f"--host-resolver-rules=MAP {REBIND} 127.0.0.1") as launched:
        yield launched


@pytest.fixture(scope="module")
def gw() -> Iterator[RunningGateway]:
    """A keyless gateway with no --cors-origin: what `solarstream serve` runs by default."""
    with GatewayThread() as running:
        yield running


@pytest.fixture(scope="module")
def cors_gw(foreign: str) -> Iterator[RunningGateway]:
    with GatewayThread(api_key=KEY, cors_origins=(foreign,)) as running:
        yield running


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


def test_another_site_cannot_spend_credits_with_a_simple_request(page: Page, foreign: str, gw: RunningGateway) -> None:
    """The hole: a no-cors text/plain POST needs no preflight. The browser sends it; the gateway refuses."""
    before = len(gw.emulator.requests)
    page.goto(foreign + "/")
    with LogWatch("solarstream.server") as watch:
        kind = page.evaluate("""async ([url, body]) => {
            const r = await fetch(url, {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                                        body});
            return r.type;
        }""", [gw.base_url + "/chat/completions", json.dumps(CHAT)])
        assert kind == "opaque"  # sent, and its answer hidden from the page
        # the gateway (on its own thread) logs the refusal once the answer has gone out
        line = watch.wait_for(lambda m: m.startswith("POST /v1/chat/completions 403 "))
    assert "error=origin_not_allowed" in line
    assert len(gw.emulator.requests) == before  # no credits spent


def test_another_site_cannot_send_json_or_read_answers(page: Page, foreign: str, gw: RunningGateway) -> None:
    before = len(gw.emulator.requests)
    page.goto(foreign + "/")
    outcomes = page.evaluate("""async ([base, body]) => {
        const attempt = async (url, init) => {
            try { const r = await fetch(url, init); return `read ${r.status}`; }
            catch (e) { return "blocked"; }
        };
        return [
            await attempt(base + "/chat/completions",
                          {method: "POST", headers: {"Content-Type": "application/json"}, body}),
            await attempt(base + "/models", {}),
        ];
    }""", [gw.base_url, json.dumps(CHAT)])
    assert outcomes == ["blocked", "blocked"]  # the preflight is refused; the GET's answer is unreadable
    assert len(gw.emulator.requests) == before


def test_dns_rebinding_gets_421(page: Page, gw: RunningGateway) -> None:
    port = gw.url.rsplit(":", 1)[1]
    response = page.goto(f"http://{REBIND}:{port}/")
    assert response is not None
    assert response.status == 421
    models = page.evaluate("async () => { const r = await fetch('/v1/models'); return [r.status, await r.json()]; }")
    assert models[0] == 421
    assert models[1]["error"]["code"] == "host_not_allowed"


def test_a_cors_origin_can_use_the_api_like_the_openai_sdk_does(
    page: Page, foreign: str, cors_gw: RunningGateway
) -> None:
    page.goto(foreign + "/")
    result = page.evaluate("""async ([base, key, body]) => {
        const r = await fetch(base + "/chat/completions", {method: "POST", body, headers: {
            "Content-Type": "application/json", "Authorization": `Bearer ${key}`,
            "X-Stainless-OS": "Linux", "X-Stainless-Lang": "js", "X-Stainless-Retry-Count": "0"}});
        return [r.status, (await r.json()).choices[0].message.content];
    }""", [cors_gw.base_url, KEY, json.dumps(CHAT)])
    assert result[0] == 200
    assert result[1] == answers.answer_text("spend my credits")


def test_the_gateways_own_page_still_works(page: Page, gw: RunningGateway) -> None:
    """Same-origin: the chat page's fetches carry Origin and pass (tests/test_browser_chat.py goes further)."""
    page.goto(gw.url + "/")
    result = page.evaluate("""async (body) => {
        const r = await fetch("/v1/chat/completions",
                              {method: "POST", body, headers: {"Content-Type": "application/json"}});
        return r.status;
    }""", json.dumps(CHAT))
    assert result == 200
