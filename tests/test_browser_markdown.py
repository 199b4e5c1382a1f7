"""How the chat page renders answers: markdown (marked), highlighting (highlight.js), sanitising (DOMPurify),
copy buttons and token usage, in headless Chromium against the gateway and its emulator.

``[emulate:echo]`` makes the emulator answer with the question verbatim, so a test can ask for exact markdown.
"""

# ruff: noqa: F811  (the fixtures imported from tests.browser are test arguments)
from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from solarstream.emulator import answers
from solarstream.server.testing import RunningGateway
from tests.browser import answered, ask, browser, gw, open_page, page  # noqa: F401  (fixtures, used as arguments)

MARKDOWN = """[emulate:echo]
## Models

| model | context | reasons |
|:------|--------:|:-------:|
| solar-pro4 | 128k | **yes** |
| solar-mini | 32k | no |

1. first
   - nested under first
     - deeper still
2. second

```python
def double(x: int) -> int:
    return 2 * x  # twice
```

A line with `inline code` and a [link](https://example.com/docs)."""


def test_tables_nested_lists_and_highlighted_code(page: Page) -> None:
    ask(page, MARKDOWN)
    answered(page, 1)
    content = page.locator(".msg.assistant .content")
    expect(content.locator("h2")).to_have_text("Models")
    table = content.locator(".table-wrap > table")
    expect(table.locator("thead th")).to_have_text(["model", "context", "reasons"])
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("tbody tr").first.locator("td")).to_have_text(["solar-pro4", "128k", "yes"])
    assert table.locator("th").evaluate_all("cells => cells.map(c => c.getAttribute('align'))") == [
        "left", "right", "center"]
    expect(table.locator("td strong")).to_have_text("yes")
    # nested lists stay nested
    expect(content.locator("ol > li")).to_have_count(2)
    expect(content.locator("ol > li").first.locator(":scope > ul > li > ul > li")).to_have_text("deeper still")
    # the code block is highlighted by highlight.js, with its language shown
    code = content.locator(".code-block pre code.hljs.language-python")
    expect(code).to_have_text('def double(x: int) -> int:\n    return 2 * x  # twice')
    expect(code.locator(".hljs-keyword").first).to_have_text("def")
    expect(code.locator(".hljs-comment")).to_have_text("# twice")
    expect(content.locator(".code-lang")).to_have_text("python")
    # the highlight.js theme (a vendored CSS file) colours it
    assert code.locator(".hljs-keyword").first.evaluate("e => getComputedStyle(e).color") != \
        code.evaluate("e => getComputedStyle(e).color")
    expect(content.locator("p code")).to_have_text("inline code")
    link = content.locator("a")
    expect(link).to_have_attribute("href", "https://example.com/docs")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")


def test_an_answer_renders_while_it_streams(page: Page) -> None:
    ask(page, "[emulate:echo] [emulate:slow delay_ms=60] | a | b |\n|---|---|\n| 1 | 2 |\n\n- x\n- y\n- z")
    page.wait_for_selector(".msg.assistant.streaming .content table")  # a table before the end of the stream
    answered(page, 1)
    expect(page.locator(".msg.assistant .content li")).to_have_count(3)


@pytest.fixture
def clipboard_page(browser: Browser, gw: RunningGateway) -> Iterator[Page]:
    with open_page(browser, gw.url, permissions=["clipboard-read", "clipboard-write"]) as page:
        yield page


def test_copy_buttons_copy_the_answer_and_each_code_block(clipboard_page: Page) -> None:
    page = clipboard_page
    ask(page, "[emulate:echo] Two blocks:\n\n```sh\necho one\n```\n\n```\nplain two\n```")
    answered(page, 1)
    copies = page.locator(".msg.assistant .code-copy")
    expect(copies).to_have_count(2)
    copies.nth(1).click()
    expect(copies.nth(1)).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "plain two"
    copies.nth(0).click()
    assert page.evaluate("navigator.clipboard.readText()") == "echo one"
    expect(page.locator(".msg.assistant .code-lang")).to_have_text(["sh", "text"])
    # the answer's own button copies its markdown source
    page.locator(".msg.assistant .copy-answer").click()
    expect(page.locator(".msg.assistant .copy-answer")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == (
        "Two blocks:\n\n```sh\necho one\n```\n\n```\nplain two\n```")
    expect(page.locator(".msg.assistant .copy-answer")).to_have_text("Copy")  # and says so only briefly


def test_token_usage_under_each_answer(page: Page, gw: RunningGateway) -> None:
    ask(page, "count my tokens")
    answered(page, 1)
    ask(page, "and these")
    answered(page, 2)
    usage = page.locator(".msg.assistant .usage")
    expected = []
    history: list[dict[str, str]] = []
    for question in ("count my tokens", "and these"):
        history.append({"role": "user", "content": question})
        text = answers.answer_text(question)
        prompt = answers.prompt_tokens(history)
        completion = sum(answers.count_tokens(p) for p in answers.pieces(text))
        expected.append(f"{prompt} prompt + {completion} completion = {prompt + completion} tokens")
        history.append({"role": "assistant", "content": text})
    expect(usage).to_have_text(expected)
    assert gw.emulator.requests[-1].json["messages"] == history[:-1]
    page.select_option("#model", "solar-pro3")  # a reasoning model: its reasoning tokens are shown too
    ask(page, "think")
    answered(page, 3)
    expect(usage.nth(2)).to_contain_text(" reasoning)")


UNSAFE = """[emulate:echo]
<img src=x onerror="window.__xss='img'"> <script>window.__xss='script'</script>
<svg onload="window.__xss='svg'"></svg> <iframe src="javascript:window.__xss='iframe'"></iframe>
<a href="javascript:window.__xss='raw-a'">raw link</a> <details open ontoggle="window.__xss='details'">d</details>
<style>body { display: none }</style> <form action="/v1/models"><button>go</button></form>

[click me](javascript:window.__xss='md-link') [data link](data:text/html,hi) [spaced](  JaVaScRiPt:alert(1))
![pic](x" onerror="window.__xss='md-img) ![remote](https://tracker.invalid/pixel.png)

| <img src=x onerror=alert(1)> | [cell](javascript:alert(1)) |
|---|---|
| <b onmouseover=alert(1)>b</b> | ok |

```html"><img src=x onerror="window.__xss='fence'">
<b>shown as code</b>
```"""


def test_model_output_cannot_run_script_load_anything_or_restyle_the_page(page: Page) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    ask(page, "[emulate:script] render this")
    answered(page, 1)
    ask(page, UNSAFE)
    answered(page, 2)
    content = page.locator(".msg.assistant .content")
    first = content.nth(0)
    # the emulator's safe-rendering answer: the HTML is shown as text, the markdown around it rendered
    text = first.inner_text()
    assert '<script>alert("x")</script>' in text
    assert '<img src="x" onerror="alert(1)">' in text
    expect(first.locator("strong")).to_have_text("Bold")
    expect(first.locator("em")).to_have_text("italic")
    expect(first.locator("pre code")).to_have_text("<b>escaped?</b>")
    expect(first.locator("ul li")).to_have_count(2)
    expect(first.locator("a")).to_have_count(0)  # the javascript: link is plain text
    assert "link" in text
    # nothing executable, loadable or styling survives, in either answer
    for answer in (first, content.nth(1)):
        unsafe = "script, img, svg, iframe, object, embed, style, form, button:not(.code-copy), link, meta"
        assert answer.locator(unsafe).count() == 0
        assert answer.evaluate(
            "root => [...root.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name))"
            ".filter(n => n.startsWith('on') || n === 'style' || n === 'src' || n === 'srcset' || n === 'action')"
        ) == []
        hrefs = answer.evaluate("root => [...root.querySelectorAll('[href]')].map(e => e.getAttribute('href'))")
        assert all(h.startswith("https://") for h in hrefs), hrefs
    second = content.nth(1)
    second_text = second.inner_text()
    assert "<script>window.__xss='script'</script>" in second_text  # raw HTML is shown, not interpreted
    assert "<style>body { display: none }</style>" in second_text
    expect(second.locator("a.image-link")).to_have_text("image: remote")  # images become links: nothing loads
    expect(second.locator("pre code")).to_have_text("<b>shown as code</b>")
    expect(second.locator(".code-lang")).to_have_text("html\"><img")
    # clicking what was meant as script does nothing
    second.get_by_text("click me").click()
    second.get_by_text("raw link").first.click()
    assert page.evaluate("window.__xss") is None
    assert dialogs == []
    expect(page.locator("body")).to_be_visible()
    # (the page fixture also fails the test on any CSP violation, script error or request off the gateway:
    # the sanitiser removed everything before the Content-Security-Policy had to block it)
