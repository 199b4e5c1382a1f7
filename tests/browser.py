"""Fixtures and helpers for the chat page's browser tests.

A test module imports the fixtures it uses (``from tests.browser import browser, gw, page``): one headless
Debian Chromium and one offline gateway then serve the whole module, and each test gets a fresh browser
context (its own localStorage). Every page is watched: a JavaScript error, a Content-Security-Policy violation
or a request to anywhere but the gateway fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, expect, sync_playwright

from solarstream.server.testing import GatewayThread, RunningGateway

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
KEY = "gw-browser-key-88"
TIMEOUT_MS = 10_000  # a hang guard for each wait, not a timing assertion
MODELS = 4  # options in the model picker (the gateway's model table)

_WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample}`));
"""


@contextmanager
def chromium(*extra_args: str) -> Iterator[Browser]:
    """Debian's Chromium, headless (Playwright's own browser download cannot work here)."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*ARGS, *extra_args])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def gw() -> Iterator[RunningGateway]:
    """The gateway without a key, in front of an in-process emulator."""
    with GatewayThread() as running:
        yield running


@pytest.fixture(scope="module")
def gw_thread() -> Iterator[GatewayThread]:
    """A gateway that needs a key, with its thread (to await emulator events on its loop)."""
    thread = GatewayThread(api_key=KEY)
    with thread:
        yield thread


class Watch:
    """What a page did that it must not: script errors, CSP violations, requests to other origins."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.errors: list[str] = []
        self.refused: list[str] = []
        self.foreign: list[str] = []
        self.pages: list[Page] = []

    def attach(self, context: BrowserContext) -> None:
        context.add_init_script(_WATCH_CSP)
        context.on("request", self._request)
        context.on("page", self._page)

    def _page(self, page: Page) -> None:
        self.pages.append(page)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.refused.append(message.text)

    def _request(self, request: Request) -> None:
        if not request.url.startswith((self.origin + "/", "data:")):
            self.foreign.append(request.url)

    def violations(self) -> list[str]:
        found = list(self.refused)
        for page in self.pages:
            if not page.is_closed():
                found += page.evaluate("window.__cspViolations || []")
        return found

    def check(self) -> None:
        assert self.errors == [], f"JavaScript errors on the page: {self.errors}"
        assert self.violations() == [], "Content-Security-Policy violations"
        assert self.foreign == [], "requests that left the gateway"


@contextmanager
def open_page(browser: Browser, url: str, *, key: str | None = None, wait_models: bool = True,
              **context_options: Any) -> Iterator[Page]:
    """A fresh context and page on ``url`` (the gateway's origin), checked for misbehaviour at the end."""
    origin = url.rstrip("/")
    context = browser.new_context(**{"viewport": {"width": 1100, "height": 800}, **context_options})
    watch = Watch(origin)
    watch.attach(context)
    if key is not None:
        context.add_init_script(  # not on the first about:blank, where localStorage is refused
            f"if (location.protocol === 'http:') localStorage.setItem('solarstream.gatewayKey', {key!r})")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(origin + "/")
    if wait_models:
        expect(page.locator("#model option")).to_have_count(MODELS)
    try:
        yield page
        watch.check()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, gw: RunningGateway) -> Iterator[Page]:
    with open_page(browser, gw.url) as page:
        yield page


def ask(page: Page, text: str) -> None:
    page.fill("#prompt", text)
    page.click("#send")


def answered(page: Page, count: int) -> None:
    """Wait until ``count`` answers are complete."""
    expect(page.locator(".msg.assistant.done")).to_have_count(count)


def last_answer(page: Page) -> str:
    return page.locator(".msg.assistant .content").last.inner_text()


def sent_roles(gw: RunningGateway) -> list[str]:
    """The roles of the messages in the last request the upstream received."""
    return [m["role"] for m in gw.emulator.requests[-1].json["messages"]]


def sent_contents(gw: RunningGateway) -> list[str]:
    return [m["content"] for m in gw.emulator.requests[-1].json["messages"]]
