"""The chat page in a real browser: Playwright driving Debian's Chromium, headless, against the gateway.

Set SOLARSTREAM_SCREENSHOT=docs/screenshot-chat.png to refresh the README's screenshot.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright

from solarstream.server.testing import GatewayThread, RunningGateway

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
KEY = "gw-browser-key-88"
TIMEOUT_MS = 10_000  # a hang guard for each wait, not a timing assertion


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def gw() -> Iterator[RunningGateway]:
    with GatewayThread() as running:
        yield running


@pytest.fixture(scope="module")
def gw_thread() -> Iterator[GatewayThread]:
    """A gateway that needs a key, with its thread (to await emulator events on its loop)."""
    thread = GatewayThread(api_key=KEY)
    with thread:
        yield thread


@pytest.fixture
def page(browser: Browser, gw: RunningGateway) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(gw.url + "/")
    expect(page.locator("#model option")).to_have_count(4)
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def ask(page: Page, text: str) -> None:
    page.fill("#prompt", text)
    page.click("#send")


def last_answer(page: Page) -> str:
    return page.locator(".msg.assistant .content").last.inner_text()


def test_an_answer_streams_in_piece_by_piece(page: Page) -> None:
    ask(page, "[emulate:slow delay_ms=120] hello page")
    streaming = page.locator(".msg.assistant.streaming .content")
    # partial text is visible while the answer is still streaming
    page.wait_for_function(
        "() => { const el = document.querySelector('.msg.assistant.streaming .content');"
        " return el && el.textContent.length > 0; }"
    )
    partial = streaming.inner_text()
    expect(page.locator("#stop")).to_be_visible()
    expect(page.locator(".msg.assistant.done")).to_have_count(1)
    final = last_answer(page)
    assert "solarstream emulator" in final
    assert len(partial) < len(final)
    expect(page.locator("#send")).to_be_visible()
    expect(page.locator(".msg.user .content")).to_have_text("[emulate:slow delay_ms=120] hello page")


def test_stop_aborts_mid_stream_and_the_server_cancels_upstream(browser: Browser, gw_thread: GatewayThread) -> None:
    gw = gw_thread.gateway
    assert gw is not None
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.add_init_script(f"localStorage.setItem('solarstream.gatewayKey', '{KEY}')")
    page.goto(gw.url + "/")
    expect(page.locator("#model option")).to_have_count(4)
    before = gw.emulator.disconnects
    ask(page, "[emulate:slow delay_ms=400] a long answer please")
    page.wait_for_function(
        "() => { const el = document.querySelector('.msg.assistant.streaming .content');"
        " return el && el.textContent.length > 0; }"
    )
    page.click("#stop")
    expect(page.locator(".msg.assistant.stopped")).to_have_count(1)
    expect(page.locator(".msg.assistant .note")).to_have_text("Stopped.")
    expect(page.locator("#error")).to_be_hidden()
    # the browser's abort closed the connection; the gateway cancelled the upstream stream
    gw_thread.run(gw.emulator.wait_for_disconnects(before + 1), timeout=10)
    gw_thread.run(gw.server.gateway.wait_idle(), timeout=10)
    context.close()


def test_switching_the_model_and_the_system_prompt(page: Page, gw: RunningGateway) -> None:
    page.select_option("#model", "solar-pro3")
    page.click("#settings-toggle")
    page.fill("#system", "Answer briefly.")
    ask(page, "which model?")
    expect(page.locator(".msg.assistant.done")).to_have_count(1)
    body = gw.emulator.requests[-1].json
    assert body["model"] == "solar-pro3"
    assert body["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert body["stream"] is True
    expect(page.locator(".msg.assistant .who")).to_have_text("solar-pro3")


def test_reasoning_is_in_a_collapsed_block(page: Page) -> None:
    page.select_option("#model", "solar-pro3")
    ask(page, "[emulate:reasoning] think first")
    expect(page.locator(".msg.assistant.done")).to_have_count(1)
    details = page.locator(".msg.assistant details.reasoning")
    expect(details).to_be_visible()
    assert details.get_attribute("open") is None
    details.locator("summary").click()
    expect(details.locator(".reasoning-text")).to_contain_text("Emulated reasoning")


def test_model_output_cannot_inject_html_or_script(page: Page) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    ask(page, "[emulate:script] render this")
    expect(page.locator(".msg.assistant.done")).to_have_count(1)
    content = page.locator(".msg.assistant .content")
    text = content.inner_text()
    assert '<script>alert("x")</script>' in text  # shown as text
    assert '<img src="x" onerror="alert(1)">' in text
    assert content.locator("script, img, iframe").count() == 0
    assert content.locator("a").count() == 0  # the javascript: link stays text
    # the markdown around it is rendered, from DOM nodes
    expect(content.locator("strong")).to_have_text("Bold")
    expect(content.locator("pre code")).to_have_text("<b>escaped?</b>")
    expect(content.locator("ul li")).to_have_count(2)
    assert dialogs == []


def test_an_upstream_error_is_shown_with_what_to_do(page: Page) -> None:
    ask(page, "[emulate:error status=500] fail please")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Error 502")
    expect(error.locator(".error-advice")).to_contain_text("Send again in a moment")
    expect(page.locator(".msg.assistant.failed")).to_have_count(1)
    # a mid-stream error is shown too
    ask(page, "[emulate:midstream-error after=2] then fail")
    expect(page.locator(".msg.assistant.failed")).to_have_count(2)
    expect(error).to_be_visible()


def test_new_conversation_clears_the_history(page: Page, gw: RunningGateway) -> None:
    ask(page, "first question")
    expect(page.locator(".msg.assistant.done")).to_have_count(1)
    ask(page, "second question")
    expect(page.locator(".msg.assistant.done")).to_have_count(2)
    assert [m["role"] for m in gw.emulator.requests[-1].json["messages"]] == ["user", "assistant", "user"]
    page.click("#new")
    expect(page.locator(".msg")).to_have_count(0)
    ask(page, "fresh start")
    expect(page.locator(".msg.assistant.done")).to_have_count(1)
    assert [m["role"] for m in gw.emulator.requests[-1].json["messages"]] == ["user"]


def test_the_gateway_key_is_asked_for_and_kept(browser: Browser, gw_thread: GatewayThread) -> None:
    gw = gw_thread.gateway
    assert gw is not None
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(gw.url + "/")
    error = page.locator("#error")
    expect(error).to_contain_text("Error 401")
    expect(error.locator(".error-advice")).to_contain_text("gateway key")
    expect(page.locator("#settings")).to_be_visible()
    page.fill("#key", KEY)
    page.click("#key-save")
    expect(page.locator("#model option")).to_have_count(4)
    expect(error).to_be_hidden()
    assert page.evaluate("localStorage.getItem('solarstream.gatewayKey')") == KEY
    page.reload()  # the key survives a reload
    expect(page.locator("#model option")).to_have_count(4)
    ask(page, "with a key")
    expect(page.locator(".msg.assistant.done")).to_have_count(1)
    context.close()


def test_usable_on_a_phone_sized_screen(browser: Browser, gw: RunningGateway, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 720}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(gw.url + "/")
    expect(page.locator("#model option")).to_have_count(4)
    ask(page, "[emulate:script] small screen")
    expect(page.locator(".msg.assistant.done")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for selector in ("#send", "#prompt", "#model", "#new"):
        box = page.locator(selector).bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 375
    page.screenshot(path=os.environ.get("SOLARSTREAM_PHONE_SCREENSHOT") or str(tmp_path / "phone.png"))
    context.close()


def test_screenshot(browser: Browser, gw: RunningGateway, tmp_path: Path) -> None:
    """A conversation for the README (written to SOLARSTREAM_SCREENSHOT when set)."""
    target = Path(os.environ.get("SOLARSTREAM_SCREENSHOT") or tmp_path / "screenshot-chat.png")
    context = browser.new_context(viewport={"width": 1000, "height": 960}, color_scheme="light")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(gw.url + "/")
    expect(page.locator("#model option")).to_have_count(4)
    page.select_option("#model", "solar-pro3")
    ask(page, "[emulate:reasoning] What can this page do?")
    expect(page.locator(".msg.assistant.done")).to_have_count(1)
    page.locator(".msg.assistant details.reasoning summary").click()
    ask(page, "[emulate:script] Show me some markdown")
    expect(page.locator(".msg.assistant.done")).to_have_count(2)
    page.screenshot(path=str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    context.close()
