"""The chat page in a real browser: Playwright driving Debian's Chromium, headless, against the gateway.

Set SOLARSTREAM_SCREENSHOT=docs/screenshot-chat.png (and SOLARSTREAM_PHONE_SCREENSHOT=docs/screenshot-chat-phone.png)
to refresh the screenshots in the docs.
"""

# ruff: noqa: F811  (the fixtures imported from tests.browser are test arguments)
from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from solarstream.server.testing import GatewayThread, RunningGateway
from tests.browser import (  # noqa: F401  (fixtures, used as arguments)
    KEY,
    MODELS,
    answered,
    ask,
    browser,
    gw,
    gw_thread,
    last_answer,
    open_page,
    page,
    sent_contents,
    sent_roles,
)

STREAMING_TEXT = (
    "() => { const el = document.querySelector('.msg.assistant.streaming .content');"
    " return el && el.textContent.length > 0; }"
)


def test_an_answer_streams_in_piece_by_piece(page: Page) -> None:
    ask(page, "[emulate:slow delay_ms=120] hello page")
    streaming = page.locator(".msg.assistant.streaming .content")
    page.wait_for_function(STREAMING_TEXT)  # partial text is visible while the answer is still streaming
    partial = streaming.inner_text()
    expect(page.locator("#stop")).to_be_visible()
    answered(page, 1)
    final = last_answer(page)
    assert final == ("[solarstream emulator] This is an offline test answer, not a model's. "
                     "You wrote: «hello page».")
    assert 0 < len(partial) < len(final)
    expect(page.locator("#send")).to_be_visible()
    expect(page.locator(".msg.user .content")).to_have_text("[emulate:slow delay_ms=120] hello page")


def test_stop_aborts_mid_stream_and_the_server_cancels_upstream(browser: Browser, gw_thread: GatewayThread) -> None:
    gw = gw_thread.gateway
    assert gw is not None
    with open_page(browser, gw.url, key=KEY) as page:
        before = gw.emulator.disconnects
        ask(page, "[emulate:slow delay_ms=400] a long answer please")
        page.wait_for_function(STREAMING_TEXT)
        page.click("#stop")
        expect(page.locator(".msg.assistant.stopped")).to_have_count(1)
        expect(page.locator(".msg.assistant .note")).to_have_text("Stopped.")
        expect(page.locator("#error")).to_be_hidden()
        # the browser's abort closed the connection; the gateway cancelled the upstream stream
        gw_thread.run(gw.emulator.wait_for_disconnects(before + 1), timeout=10)
        gw_thread.run(gw.server.gateway.wait_idle(), timeout=10)
        # the partial answer stays in the conversation and is sent with the next question
        partial = last_answer(page)
        assert partial
        ask(page, "go on")
        answered(page, 1)
        assert sent_contents(gw)[:2] == ["[emulate:slow delay_ms=400] a long answer please", partial]


def test_switching_the_model_and_the_system_prompt(page: Page, gw: RunningGateway) -> None:
    page.select_option("#model", "solar-pro3")
    page.click("#settings-toggle")
    page.fill("#system", "Answer briefly.")
    ask(page, "which model?")
    answered(page, 1)
    body = gw.emulator.requests[-1].json
    assert body["model"] == "solar-pro3"
    assert body["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    expect(page.locator(".msg.assistant .who")).to_have_text("solar-pro3")
    page.reload()  # the choice of model and the system prompt are kept
    expect(page.locator("#model option")).to_have_count(MODELS)
    expect(page.locator("#model")).to_have_value("solar-pro3")
    expect(page.locator("#system")).to_have_value("Answer briefly.")


def test_reasoning_is_in_a_collapsed_block(page: Page) -> None:
    page.select_option("#model", "solar-pro3")
    ask(page, "[emulate:reasoning] think first")
    answered(page, 1)
    details = page.locator(".msg.assistant details.reasoning")
    expect(details).to_be_visible()
    assert details.get_attribute("open") is None
    details.locator("summary").click()
    expect(details.locator(".reasoning-text")).to_contain_text("Emulated reasoning")


def test_a_failed_turn_is_shown_once_with_retry_and_left_out_of_the_next_request(
        page: Page, gw: RunningGateway) -> None:
    ask(page, "first question")
    answered(page, 1)
    ask(page, "[emulate:error status=503 times=1] flaky question")
    failed = page.locator(".msg.assistant.failed")
    expect(failed).to_have_count(1)
    turn_error = failed.locator(".turn-error")
    expect(turn_error).to_contain_text("Error 502")
    expect(turn_error.locator(".error-advice")).to_contain_text("Retry in a moment")
    expect(page.locator("#error")).to_be_hidden()  # shown once: in the turn, not again in a banner
    expect(failed.locator(".content")).to_be_hidden()  # no empty bubble beside the error
    expect(failed.locator(".copy-answer, .regenerate")).to_have_count(0)
    # retry asks the same question again; the emulator answers the second attempt
    failed.locator("button.retry").click()
    answered(page, 2)
    expect(page.locator(".msg.assistant.failed")).to_have_count(0)
    expect(page.locator(".msg")).to_have_count(4)
    assert sent_roles(gw) == ["user", "assistant", "user"]
    assert "flaky question" in last_answer(page)
    # a failure mid-stream: the partial text is shown with the error, and the turn is not sent again
    ask(page, "[emulate:midstream-error after=2] then fail")
    expect(failed).to_have_count(1)
    expect(failed.locator(".content")).to_have_text("[solarstream emulator]")  # the two chunks before the error
    expect(failed.locator(".turn-error")).to_contain_text("internal_server_error")
    ask(page, "after the failure")
    answered(page, 3)
    assert sent_contents(gw)[-1] == "after the failure"
    assert sent_roles(gw) == ["user", "assistant", "user", "assistant", "user"]
    assert "then fail" not in " ".join(sent_contents(gw))
    expect(failed.locator("button.retry")).to_have_count(0)  # retry is offered on the last turn only
    expect(failed.locator(".note")).to_have_text("Not sent with later messages.")


def test_new_conversation_clears_the_history(page: Page, gw: RunningGateway) -> None:
    ask(page, "first question")
    answered(page, 1)
    ask(page, "second question")
    answered(page, 2)
    assert sent_roles(gw) == ["user", "assistant", "user"]
    page.click("#new")
    expect(page.locator(".msg")).to_have_count(0)
    expect(page.locator("#empty")).to_be_visible()
    ask(page, "fresh start")
    answered(page, 1)
    assert sent_roles(gw) == ["user"]


def test_the_gateway_key_is_asked_for_and_kept(browser: Browser, gw_thread: GatewayThread) -> None:
    gw = gw_thread.gateway
    assert gw is not None
    with open_page(browser, gw.url, wait_models=False) as page:
        error = page.locator("#error")
        expect(error).to_contain_text("Error 401")
        expect(error.locator(".error-advice")).to_contain_text("gateway key")
        expect(page.locator("#settings")).to_be_visible()
        page.fill("#key", KEY)
        page.click("#key-save")
        expect(page.locator("#model option")).to_have_count(MODELS)
        expect(error).to_be_hidden()
        assert page.evaluate("localStorage.getItem('solarstream.gatewayKey')") == KEY
        page.reload()  # the key survives a reload
        expect(page.locator("#model option")).to_have_count(MODELS)
        ask(page, "with a key")
        answered(page, 1)


def test_usable_on_a_phone_sized_screen(browser: Browser, gw: RunningGateway, tmp_path: Path) -> None:
    with open_page(browser, gw.url, viewport={"width": 375, "height": 720}, device_scale_factor=2,
                   is_mobile=True, has_touch=True, color_scheme="light") as page:
        question = ("[emulate:echo] A table on a phone:\n\n| model | context | notes |\n|---|---|---|\n"
                    "| solar-pro4 | 128k | a long cell that would push the page sideways if it could |\n\n"
                    "```python\nprint('a code line long enough to need scrolling on a phone screen')\n```")
        ask(page, question)
        answered(page, 1)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        sidebar = page.locator("#sidebar")
        expect(sidebar).to_be_hidden()  # the conversation list is a drawer on a phone
        for selector in ("#send", "#prompt", "#model", "#new", "#chats-toggle", "#settings-toggle",
                         ".msg.assistant .copy-answer", ".code-copy"):
            box = page.locator(selector).bounding_box()
            assert box is not None, selector
            assert box["x"] >= 0, selector
            assert box["x"] + box["width"] <= 375, selector
        page.screenshot(path=os.environ.get("SOLARSTREAM_PHONE_SCREENSHOT") or str(tmp_path / "phone.png"))
        page.click("#chats-toggle")
        expect(sidebar).to_be_visible()
        title = " ".join(question.split())[:59] + "…"  # the first message on one line, cut at 60 characters
        expect(sidebar.locator(".conversation-open")).to_have_text([title])
        sidebar.locator(".conversation-open").click()
        expect(sidebar).to_be_hidden()


def test_screenshot(browser: Browser, gw: RunningGateway, tmp_path: Path) -> None:
    """A conversation for the README (written to SOLARSTREAM_SCREENSHOT when set)."""
    target = Path(os.environ.get("SOLARSTREAM_SCREENSHOT") or tmp_path / "screenshot-chat.png")
    with open_page(browser, gw.url, viewport={"width": 1200, "height": 1000}, color_scheme="light") as page:
        ask(page, "What is the capital of France?")
        answered(page, 1)
        page.click("#new")
        page.select_option("#model", "solar-pro3")  # a reasoning model
        ask(page, "Which models can I use here?")
        answered(page, 1)
        ask(page, "[emulate:echo] Rendered **markdown**:\n\n"
                  "| model | context |\n|---|--:|\n| solar-pro4 | 128k |\n| solar-mini | 32k |\n\n"
                  "- lists\n  - nested\n\n```python\nprint(\"highlighted\")\n```")
        answered(page, 2)
        page.locator(".msg.assistant details.reasoning summary").last.click()
        expect(page.locator("#sidebar .conversation-open")).to_have_text(
            ["Which models can I use here?", "What is the capital of France?"])
        page.locator(".msg.assistant").last.scroll_into_view_if_needed()
        page.screenshot(path=str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
