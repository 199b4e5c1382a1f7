"""The command line on a real terminal (a pty, driven by pexpect): the interactive mode, Ctrl-C,
and how reasoning is shown. ``expect`` on the output is the only synchronisation; pexpect's
timeout only guards against a hang."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest

from solarstream._cli.interactive import CONTINUATION, PROMPT
from solarstream.emulator import Emulator, answers
from tests.conftest import UserDirs

pytestmark = pytest.mark.usefixtures("user_dirs")

ANSWER_START = "[solarstream emulator] This is an offline test answer"


#: what the child sees of the test's environment: the isolated user directories
_PASSED_ON = ("SOLARSTREAM_DATA_DIR", "SOLARSTREAM_CONFIG_DIR", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "NETRC")


def spawn(*args: str, **env: str) -> pexpect.spawn:
    """``python -m solarstream ARGS`` on a pty, with a home of its own and readline's defaults."""
    home = Path(os.environ["SOLARSTREAM_DATA_DIR"]).parent
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm", "HOME": str(home),
                   "INPUTRC": os.devnull, **{k: os.environ[k] for k in _PASSED_ON if k in os.environ}, **env}
    child = pexpect.spawn(sys.executable, ["-m", "solarstream", *args], env=environment,
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


def test_interactive_conversation_with_ctrl_c_in_an_answer(threaded_emu: Emulator) -> None:
    child = spawn("chat", "-i", "--base-url", threaded_emu.base_url, "--api-key", threaded_emu.api_key,
                  "-m", "solar-mini")
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
    messages = threaded_emu.requests[-1].json["messages"]
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
    assert threaded_emu.requests[-1].json["messages"] == [{"role": "user", "content": "fresh"}]

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


def logged(user_dirs: UserDirs) -> list[dict[str, Any]]:
    with sqlite3.connect(user_dirs.log) as db:
        db.row_factory = sqlite3.Row
        rows = [dict(row) for row in db.execute("SELECT * FROM responses ORDER BY rowid")]
    db.close()
    return rows


def test_ctrl_c_in_a_one_shot_answer_is_logged_as_interrupted(user_dirs: UserDirs) -> None:
    prompt = "slow [emulate:slow delay_ms=200]"
    child = spawn("chat", "--offline", prompt)
    child.expect_exact("This is an offline")
    child.sendintr()
    child.expect_exact("interrupted")
    assert finish(child) == 130
    [record] = logged(user_dirs)
    assert record["status"] == "interrupted"
    assert record["response"].startswith(ANSWER_START[:20])
    assert record["response"] != answers.answer_text(prompt)
    assert record["finish_reason"] is None


def test_ctrl_c_in_a_conversation_logs_the_partial_answer_and_goes_on(
    threaded_emu: Emulator, user_dirs: UserDirs
) -> None:
    child = spawn("chat", "-i", "--base-url", threaded_emu.base_url, "--api-key", threaded_emu.api_key)
    child.expect_exact(PROMPT)
    child.sendline("slow one [emulate:slow delay_ms=200]")
    child.expect_exact("This is an offline")
    child.sendintr()
    child.expect_exact("(answer stopped)")
    child.expect_exact(PROMPT)
    child.sendline("quick one")
    child.expect_exact("You wrote: «quick one».")
    child.expect_exact(PROMPT)
    child.sendline("exit")  # as in llm
    assert finish(child) == 0
    first, second = logged(user_dirs)
    assert (first["status"], second["status"]) == ("interrupted", "complete")
    assert first["conversation_id"] == second["conversation_id"]
    assert threaded_emu.requests[-1].json["messages"][1] == {"role": "assistant", "content": first["response"]}


def test_a_pasted_block_is_one_message(threaded_emu: Emulator) -> None:
    child = spawn("chat", "-i", "--base-url", threaded_emu.base_url, "--api-key", threaded_emu.api_key)
    child.expect_exact(PROMPT)
    # a terminal wraps a paste in ESC[200~ ... ESC[201~ and sends its newlines as CR
    child.send("\x1b[200~first pasted line\rsecond pasted line\x1b[201~\r")
    child.expect_exact("You wrote: «first pasted line second pasted line».")
    child.expect_exact(PROMPT)
    pasted = "first pasted line\nsecond pasted line"
    assert threaded_emu.requests[-1].json["messages"] == [{"role": "user", "content": pasted}]
    child.sendline("/exit")
    assert finish(child) == 0


def test_multi_and_end_make_one_message(threaded_emu: Emulator) -> None:
    child = spawn("chat", "-i", "--base-url", threaded_emu.base_url, "--api-key", threaded_emu.api_key)
    child.expect_exact(PROMPT)
    child.sendline("!multi")
    child.expect_exact(CONTINUATION)
    child.sendline("/not a command here")
    child.expect_exact(CONTINUATION)
    child.sendline("  indented")
    child.expect_exact(CONTINUATION)
    child.sendline("!end")
    child.expect_exact("You wrote: «/not a command here indented».")
    child.expect_exact(PROMPT)
    assert threaded_emu.requests[-1].json["messages"][-1]["content"] == "/not a command here\n  indented"

    child.sendline("!multi EOF")  # a custom end, for text that contains !end
    child.expect_exact(CONTINUATION)
    child.sendline("!end")
    child.expect_exact(CONTINUATION)
    child.sendline("!end EOF")
    child.expect_exact("You wrote: «!end».")
    child.expect_exact(PROMPT)

    child.sendline("!multi")  # Ctrl-C drops a block being typed, and stays in the conversation
    child.expect_exact(CONTINUATION)
    child.sendline("never sent")
    child.expect_exact(CONTINUATION)
    child.sendintr()
    child.expect_exact("(multi-line message dropped)")
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    assert finish(child) == 0
    assert all("never sent" not in json.dumps(r.json) for r in threaded_emu.requests)


def test_no_arguments_on_a_terminal_shows_the_help() -> None:
    child = spawn()
    child.expect_exact("Usage: solarstream [OPTIONS] COMMAND [ARGS]... | PROMPT")
    child.expect(pexpect.EOF)
    child.close()
    assert "Commands:" in shown(child)
