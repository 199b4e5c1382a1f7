"""Conversations in the chat page: kept in localStorage across reloads, listed (switch, new, delete),
regenerate and edit-and-resend, in headless Chromium against the gateway and its emulator."""

# ruff: noqa: F811  (the fixtures imported from tests.browser are test arguments)
from __future__ import annotations

import json

from playwright.sync_api import Page, expect

from solarstream.emulator import answers
from solarstream.server.testing import RunningGateway
from tests.browser import MODELS, answered, ask, browser, gw, last_answer, page, sent_contents, sent_roles  # noqa: F401  (fixtures, used as arguments)


def stored(page: Page) -> dict[str, object]:
    """What the page keeps: the index and every conversation, parsed."""
    raw = page.evaluate("Object.fromEntries(Object.entries(localStorage))")
    return {k: json.loads(v) for k, v in raw.items() if k.startswith("solarstream.conversation")}


def reload(page: Page) -> None:
    page.reload()
    expect(page.locator("#model option")).to_have_count(MODELS)


def test_the_conversation_survives_a_reload_and_continues(page: Page, gw: RunningGateway) -> None:
    page.select_option("#model", "solar-pro3")
    ask(page, "remember me")
    answered(page, 1)
    ask(page, "[emulate:error status=500] this one fails")
    expect(page.locator(".msg.assistant.failed")).to_have_count(1)
    reload(page)
    questions = page.locator(".msg.user .content")
    expect(questions).to_have_text(["remember me", "[emulate:error status=500] this one fails"])
    expect(page.locator(".msg.assistant.done .content")).to_have_text(answers.answer_text("remember me"))
    expect(page.locator(".msg.assistant.done .who")).to_have_text("solar-pro3")
    expect(page.locator(".msg.assistant.done .usage")).to_have_count(1)
    expect(page.locator(".msg.assistant.done details.reasoning")).to_be_visible()  # reasoning is kept too
    failed = page.locator(".msg.assistant.failed")
    expect(failed.locator(".turn-error")).to_contain_text("Error 502")  # shown once, still with its retry
    expect(failed.locator("button.retry")).to_have_count(1)
    ask(page, "and now?")
    answered(page, 2)
    assert sent_contents(gw) == ["remember me", answers.answer_text("remember me"), "and now?"]
    index = stored(page)["solarstream.conversations"]
    assert isinstance(index, list)
    assert [entry["title"] for entry in index] == ["remember me"]


def test_the_list_of_conversations_switch_new_delete(page: Page, gw: RunningGateway) -> None:
    listed = page.locator("#sidebar .conversation-open")
    expect(listed).to_have_count(0)
    expect(page.locator("#no-conversations")).to_be_visible()
    ask(page, "about apples")
    answered(page, 1)
    page.click("#new")
    ask(page, "about pears")
    answered(page, 1)
    expect(listed).to_have_text(["about pears", "about apples"])  # newest first
    expect(page.locator("#sidebar [aria-current=true]")).to_have_text("about pears")
    listed.filter(has_text="about apples").click()
    expect(page.locator(".msg.user .content")).to_have_text(["about apples"])
    expect(page.locator("#sidebar [aria-current=true]")).to_have_text("about apples")
    ask(page, "more apples")  # continues that conversation, which moves to the top
    answered(page, 2)
    assert sent_contents(gw) == ["about apples", answers.answer_text("about apples"), "more apples"]
    expect(listed).to_have_text(["about apples", "about pears"])
    reload(page)  # the open conversation is the one shown after a reload
    expect(page.locator(".msg.user .content")).to_have_text(["about apples", "more apples"])
    # delete another conversation: the open one stays
    page.get_by_role("button", name="Delete “about pears”").click()
    expect(listed).to_have_text(["about apples"])
    expect(page.locator(".msg.user")).to_have_count(2)
    # delete the open one: the page starts a new conversation
    page.get_by_role("button", name="Delete “about apples”").click()
    expect(listed).to_have_count(0)
    expect(page.locator(".msg")).to_have_count(0)
    assert stored(page) == {"solarstream.conversations": []}
    reload(page)
    expect(page.locator(".msg")).to_have_count(0)


def test_regenerate_asks_the_last_question_again(page: Page, gw: RunningGateway) -> None:
    ask(page, "first")
    answered(page, 1)
    ask(page, "second")
    answered(page, 2)
    expect(page.locator(".regenerate")).to_have_count(1)  # on the last answer only
    requests = len(gw.emulator.requests)
    page.select_option("#model", "solar-mini")
    page.click(".regenerate")
    answered(page, 2)
    assert len(gw.emulator.requests) == requests + 1
    assert sent_contents(gw) == ["first", answers.answer_text("first"), "second"]
    assert gw.emulator.requests[-1].json["model"] == "solar-mini"
    expect(page.locator(".msg")).to_have_count(4)  # the old answer was replaced, not added to
    expect(page.locator(".msg.assistant .who").last).to_have_text("solar-mini")
    assert last_answer(page) == answers.answer_text("second")


def test_edit_a_past_message_and_continue_from_there(page: Page, gw: RunningGateway) -> None:
    for question in ("one", "two", "three"):
        ask(page, question)
        answered(page, ["one", "two", "three"].index(question) + 1)
    second = page.locator(".msg.user").nth(1)
    second.locator("button.edit").click()
    box = second.locator("textarea.edit-box")
    expect(box).to_have_value("two")
    second.locator("button.edit-cancel").click()  # cancel changes nothing
    expect(page.locator(".msg")).to_have_count(6)
    second.locator("button.edit").click()
    box.fill("two, edited")
    second.locator("button.edit-send").click()
    answered(page, 2)
    expect(page.locator(".msg.user .content")).to_have_text(["one", "two, edited"])  # "three" is gone
    assert sent_contents(gw) == ["one", answers.answer_text("one"), "two, edited"]
    assert sent_roles(gw) == ["user", "assistant", "user"]
    assert last_answer(page) == answers.answer_text("two, edited")
    reload(page)
    expect(page.locator(".msg.user .content")).to_have_text(["one", "two, edited"])


def test_a_question_left_unanswered_by_a_reload_can_be_sent_again(page: Page, gw: RunningGateway) -> None:
    ask(page, "[emulate:slow delay_ms=300] interrupted")
    page.wait_for_selector(".msg.assistant.streaming")
    reload(page)  # mid-answer: the question was saved, the answer never finished
    expect(page.locator(".msg")).to_have_count(1)
    page.click(".msg.user button.retry")
    page.wait_for_selector(".msg.assistant.streaming")
    page.click("#stop")
    expect(page.locator(".msg.assistant.stopped")).to_have_count(1)
    assert sent_contents(gw) == ["[emulate:slow delay_ms=300] interrupted"]


def test_leaving_a_conversation_mid_answer_stops_and_keeps_it(page: Page, gw: RunningGateway) -> None:
    ask(page, "[emulate:slow delay_ms=300] a slow one")
    page.wait_for_function(
        "() => { const el = document.querySelector('.msg.assistant.streaming .content');"
        " return el && el.textContent.length > 0; }")
    page.click("#new")
    expect(page.locator(".msg")).to_have_count(0)
    expect(page.locator("#send")).to_be_visible()
    ask(page, "meanwhile")
    answered(page, 1)
    assert sent_contents(gw) == ["meanwhile"]
    page.locator("#sidebar .conversation-open", has_text="a slow one").click()
    stopped = page.locator(".msg.assistant.stopped")
    expect(stopped).to_have_count(1)  # what had arrived is kept, marked as stopped
    assert stopped.locator(".content").inner_text().startswith("[solarstream")
    expect(page.locator(".msg.assistant .regenerate")).to_have_count(1)
