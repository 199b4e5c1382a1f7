"""The command line on a real terminal (a pty, driven by pexpect): the interactive mode, Ctrl-C,
and how reasoning is shown. ``expect`` on the output is the only synchronisation; pexpect's
timeout only guards against a hang."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator

import pexpect
import pytest

from solarstream._cli.interactive import PROMPT
from solarstream.emulator import Emulator
from tests.test_cli import ThreadedEmulator

ANSWER_START = "[solarstream emulator] This is an offline test answer"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with ThreadedEmulator() as emulator:
        yield emulator


def spawn(*args: str, **env: str) -> pexpect.spawn:
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm", "HOME": os.environ["HOME"],
                   **env}
    child = pexpect.spawn(sys.executable, ["-m", "solarstream.cli", *args], env=environment,
                          encoding="utf-8", timeout=30, dimensions=(40, 200))
    child.logfile_read = io.StringIO()  # everything the terminal showed
    return child


def shown(child: pexpect.spawn) -> str:
    log = child.logfile_read
    assert isinstance(log, io.StringIO)
    return log.getvalue()


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus is not None
    return int(child.exitstatus)


def test_interactive_conversation_with_ctrl_c_in_an_answer(emu: Emulator) -> None:
    child = spawn("chat", "-i", "--base-url", emu.base_url, "--api-key", emu.api_key, "-m", "solar-mini")
    child.expect_exact(PROMPT)
    child.sendline("hello there")
    child.expect_exact("You wrote: «hello there».")
    child.expect_exact(PROMPT)

    slow = "a slow one [emulate:slow delay_ms=200]"
    child.sendline(slow)
    child.expect_exact("This is an offline")  # the middle of the answer
    child.sendintr()
    child.expect_exact("(answer stopped)")
    child.expect_exact(PROMPT)

    child.sendline("and now?")
    child.expect_exact("You wrote: «and now?».")
    child.expect_exact(PROMPT)
    messages = emu.requests[-1].json["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    partial = messages[3]["content"]
    assert partial.startswith(ANSWER_START[:20])  # the partial answer is kept...
    assert "You wrote" not in partial  # ...and it is only the part that arrived
    assert messages[2]["content"] == slow

    child.sendline("/reset")
    child.expect_exact("(conversation cleared)")
    child.expect_exact(PROMPT)
    child.sendline("fresh")
    child.expect_exact("You wrote: «fresh».")
    child.expect_exact(PROMPT)
    assert emu.requests[-1].json["messages"] == [{"role": "user", "content": "fresh"}]

    child.sendline("/exit")
    assert finish(child) == 0


def test_ctrl_c_twice_at_the_prompt_leaves() -> None:
    child = spawn("chat", "-i", "--offline")
    child.expect_exact(PROMPT)
    child.sendintr()
    child.expect_exact("Ctrl-C again")
    child.expect_exact(PROMPT)
    child.sendintr()
    assert finish(child) == 0


def test_ctrl_d_leaves() -> None:
    child = spawn("chat", "-i", "--offline", "first question")
    child.expect_exact("You wrote: «first question».")
    child.expect_exact(PROMPT)
    child.sendeof()
    assert finish(child) == 0


def test_ctrl_c_stops_a_one_shot_answer_with_130() -> None:
    child = spawn("chat", "--offline", "slow [emulate:slow delay_ms=200]")
    child.expect_exact("This is an offline")
    child.sendintr()
    child.expect_exact("interrupted")
    assert finish(child) == 130


def test_reasoning_is_dimmed_before_the_answer_on_a_terminal() -> None:
    child = spawn("chat", "--offline", "-m", "solar-pro3", "--reasoning-effort", "high", "Why?")
    child.expect_exact("offline: answers come from")
    child.expect_exact("\x1b[2m[solarstream emulator] Emulated reasoning")
    child.expect_exact("\x1b[0m")
    child.expect_exact(ANSWER_START)
    assert finish(child) == 0
    output = shown(child)
    assert output.index("Emulated reasoning") < output.index(ANSWER_START)


def test_no_color_gives_plain_output() -> None:
    child = spawn("chat", "--offline", "-m", "solar-pro3", "--reasoning-effort", "high", "Why?", NO_COLOR="1")
    child.expect_exact("[solarstream emulator] Emulated reasoning")
    child.expect_exact(ANSWER_START)
    assert finish(child) == 0
    assert "\x1b[" not in shown(child)
