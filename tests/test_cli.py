"""The command line end to end, in-process with Click's runner, against the emulator.

The CLI runs its own event loop, so the emulator here serves from a background thread's loop;
its request records show what the CLI sent. The pty tests (interactive mode, Ctrl-C) are in
test_cli_pty.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from solarstream.cli import COMMANDS, cli
from solarstream.emulator import Emulator


class ThreadedEmulator:
    """An ``Emulator`` on its own event loop in a daemon thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.emulator: Emulator | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with Emulator() as emulator:
            self.emulator = emulator
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> Emulator:
        self._thread.start()
        assert self._ready.wait(10)
        assert self.emulator is not None
        return self.emulator

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with ThreadedEmulator() as emulator:
        yield emulator


def run(args: list[str], emu: Emulator | None = None, input: str | None = None, **env: str) -> Result:
    """``solarstream ARGS`` pointed at the emulator (unless ``emu`` is None)."""
    if emu is not None:
        args = [args[0], "--base-url", emu.base_url, "--api-key", emu.api_key, "--max-retries", "0", *args[1:]]
    return CliRunner().invoke(cli, args, input=input, env=env or None, catch_exceptions=False)


def last_body(emu: Emulator) -> dict[str, Any]:
    body = emu.requests[-1].json
    assert isinstance(body, dict)
    return body


# --- chat ------------------------------------------------------------------------------------------


def test_prompt_argument_streams_the_answer(emu: Emulator) -> None:
    result = run(["chat", "Привет! Как дела?"], emu)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "[solarstream emulator] This is an offline test answer, not a model's. " \
                            "You wrote: «Привет! Как дела?».\n"
    body = last_body(emu)
    assert body["stream"] is True
    assert body["model"] == "solar-pro4"
    assert body["messages"] == [{"role": "user", "content": "Привет! Как дела?"}]


@pytest.mark.parametrize("args", [["chat", "-s", "Summarise"], ["chat", "-s", "Summarise", "-"]])
def test_stdin_becomes_the_user_message(emu: Emulator, args: list[str]) -> None:
    notes = "line one\nline two\n"
    result = run(args, emu, input=notes)
    assert result.exit_code == 0, result.stderr
    assert "You wrote: «line one line two»" in result.stdout
    assert last_body(emu)["messages"] == [{"role": "system", "content": "Summarise"},
                                          {"role": "user", "content": notes}]


def test_empty_stdin_is_bad_usage(emu: Emulator) -> None:
    result = run(["chat"], emu, input="  \n")
    assert result.exit_code == 2
    assert "stdin is empty" in result.stderr


def test_options_go_into_the_request(emu: Emulator) -> None:
    result = run(["chat", "-m", "solar-pro3", "--temperature", "0.3", "--max-tokens", "400",
                  "--reasoning-effort", "medium", "Hi"], emu)
    assert result.exit_code == 0, result.stderr
    body = last_body(emu)
    assert (body["model"], body["temperature"], body["max_tokens"], body["reasoning_effort"]) == \
        ("solar-pro3", 0.3, 400, "medium")


def test_retired_model_warns_once_and_uses_the_successor(emu: Emulator) -> None:
    result = run(["chat", "-m", "solar-pro2", "Hi"], emu)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "solarstream: warning: model 'solar-pro2' is retired; using its successor 'solar-pro3'\n"
    assert last_body(emu)["model"] == "solar-pro3"


def test_json_lines_parse_back(emu: Emulator) -> None:
    result = run(["chat", "--json", "-m", "solar-pro3", "--reasoning-effort", "high", "Hello"], emu)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    chunks = [json.loads(line) for line in lines]
    assert len(chunks) > 3
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning") or "" for c in chunks if c["choices"])
    assert "You wrote: «Hello»" in content
    assert "Emulated reasoning" in reasoning  # --json keeps the reasoning in the chunks
    assert chunks[-1]["usage"]["total_tokens"] > 0  # usage is asked for
    assert last_body(emu)["stream_options"] == {"include_usage": True}


def test_no_stream(emu: Emulator) -> None:
    result = run(["chat", "--no-stream", "Hello"], emu)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("You wrote: «Hello».\n")
    assert last_body(emu)["stream"] is False
    result = run(["chat", "--no-stream", "--json", "Hello"], emu)
    completion = json.loads(result.stdout)
    assert completion["object"] == "chat.completion"
    assert completion["usage"]["total_tokens"] > 0


def test_piped_stdout_gets_only_the_answer(emu: Emulator) -> None:
    result = run(["chat", "-m", "solar-pro3", "--reasoning-effort", "high", "Why?"], emu)
    assert result.exit_code == 0, result.stderr
    assert "reasoning" not in result.stdout
    assert result.stdout.startswith("[solarstream emulator] This is an offline test answer")
    assert "\x1b[" not in result.stdout + result.stderr


def test_offline_needs_no_key_and_says_so() -> None:
    result = run(["chat", "--offline", "Привет! Как дела?"])
    assert result.exit_code == 0, result.stderr
    assert "emulator" in result.stderr
    assert "not from a real model" in result.stderr
    assert "You wrote: «Привет! Как дела?»" in result.stdout
    assert "[solarstream emulator]" in result.stdout


def test_offline_refuses_a_base_url() -> None:
    result = run(["chat", "--offline", "--base-url", "http://127.0.0.1:1/v1", "Hi"])
    assert result.exit_code == 2
    assert "--offline" in result.stderr


# --- errors and exit codes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("directive", "expected"),
    [
        ("[emulate:error status=401 code=invalid_api_key]", "HTTP 401 invalid_api_key"),
        ("[emulate:error status=401 code=api_key_is_blocked]", "HTTP 401 api_key_is_blocked"),
        ("[emulate:rate-limit]", "HTTP 429 too_many_requests"),
        ("[emulate:rate-limit code=usage_limit_exceeded]", "HTTP 429 usage_limit_exceeded"),
        ("[emulate:error status=400 code=invalid_request_body]", "HTTP 400"),
        ("[emulate:error status=503]", "HTTP 503"),
        ("[emulate:html-error]", "HTTP 502"),
    ],
)
@pytest.mark.parametrize("mode", [[], ["--no-stream"]])
def test_api_errors_exit_1_with_one_line(emu: Emulator, directive: str, expected: str, mode: list[str]) -> None:
    result = run(["chat", *mode, f"Hi {directive}"], emu)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("solarstream: error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.output


def test_error_inside_the_stream_exits_1(emu: Emulator) -> None:
    result = run(["chat", "Hi [emulate:midstream-error after=2]"], emu)
    assert result.exit_code == 1
    assert result.stdout.startswith("[solarstream emulator]")
    assert "the stream reported an error" in result.stderr


def test_truncated_stream_keeps_the_partial_answer(emu: Emulator) -> None:
    result = run(["chat", "Hi [emulate:truncate after=3]"], emu)
    assert result.exit_code == 1
    assert result.stdout.startswith("[solarstream emulator]")
    assert result.stdout.endswith("\n")
    assert "incomplete" in result.stderr


def test_no_key_is_bad_usage_and_says_what_to_do() -> None:
    result = run(["chat", "Hi"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "solarstream: error: no API key: set UPSTAGE_API_KEY or pass --api-key "
        "(get one at https://console.upstage.ai/api-keys), or try --offline")


def test_wrong_key_names_the_fix_but_not_the_key(emu: Emulator) -> None:
    result = CliRunner().invoke(cli, ["chat", "--base-url", emu.base_url, "--api-key", "sk-Wr0ngKindOfKey", "Hi"])
    assert result.exit_code == 1
    assert "--api-key" in result.stderr
    assert "sk-Wr0ngKindOfKey" not in result.output


def test_request_known_to_be_invalid_is_bad_usage(emu: Emulator) -> None:
    before = len(emu.requests)
    result = run(["chat", "-m", "solar-mini", "--reasoning-effort", "high", "Hi"], emu)
    assert result.exit_code == 2
    assert "reasoning_effort" in result.stderr
    assert len(emu.requests) == before  # nothing was sent


def test_click_usage_errors_exit_2() -> None:
    result = run(["chat", "--temperature", "5", "Hi"])
    assert result.exit_code == 2
    assert "--temperature" in result.stderr


def test_unreachable_api_is_exit_1() -> None:
    result = run(["chat", "--base-url", "http://127.0.0.1:9/v1", "--api-key", "up_x", "--max-retries", "0", "Hi"])
    assert result.exit_code == 1
    assert "could not connect to 127.0.0.1:9" in result.stderr


# --- interactive (driven through stdin here; the pty test covers the terminal) ------------------


def test_interactive_keeps_the_conversation(emu: Emulator) -> None:
    script = "first question\n/system Be brief\n/model solar-mini\nsecond question\n/reset\nthird\n/exit\n"
    result = run(["chat", "-i"], emu, input=script)
    assert result.exit_code == 0, result.stderr
    bodies = [r.json for r in emu.requests[-3:]]
    assert bodies[0]["messages"] == [{"role": "user", "content": "first question"}]
    assert bodies[1]["model"] == "solar-mini"
    messages = bodies[1]["messages"]
    assert messages[0] == {"role": "system", "content": "Be brief"}
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "first question" in messages[2]["content"]
    assert bodies[2]["messages"] == [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "third"}]


def test_interactive_error_keeps_going(emu: Emulator) -> None:
    script = "boom [emulate:error status=400 code=invalid_request_body]\nfine\n"
    result = run(["chat", "-i"], emu, input=script)  # ends with EOF, like Ctrl-D
    assert result.exit_code == 0
    assert "HTTP 400" in result.stderr
    assert last_body(emu)["messages"] == [{"role": "user", "content": "fine"}]  # the failed turn is dropped


# --- models and the group ----------------------------------------------------------------------


def test_models_lists_the_table() -> None:
    result = run(["models"])
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "solar-pro4-260806" in lines["solar-pro4"]
    assert "current, default" in lines["solar-pro4"]
    assert "retired 2026-10-30 -> solar-pro3" in lines["solar-pro2"]
    rows = json.loads(run(["models", "--json"]).stdout)
    assert {r["name"] for r in rows} >= {"solar-pro4", "solar-pro3", "solar-mini", "syn-pro", "solar-pro"}


def test_models_live_asks_the_api(emu: Emulator) -> None:
    result = run(["models", "--live"], emu)
    assert result.exit_code == 0, result.stderr
    assert emu.requests[-1].path.endswith("/models")
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert lines["solar-pro4"].endswith("current")
    rows = json.loads(run(["models", "--live", "--json"], emu).stdout)
    assert {"id": "solar-mini", "status": "current"} in rows


def test_help_lists_every_command_without_importing_them() -> None:
    result = run(["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.stdout


def test_emulate_is_wired() -> None:
    result = run(["emulate", "--help"])
    assert result.exit_code == 0
    assert "--port" in result.stdout


def test_serve_without_the_server_extra_says_what_to_install() -> None:
    # a child process where importing fastapi fails, as it does when the extra is not installed
    code = "import sys; sys.modules['fastapi'] = None; from solarstream.cli import main; main(['serve'])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("solarstream: error: 'solarstream serve' needs the 'server' extra: "
                                   "pip install 'solarstream[server]'")


HELP_FILE = Path(__file__).resolve().parent.parent / "docs" / "cli-help.txt"


def help_text() -> str:
    """``--help`` of the group and of the commands this module owns, as docs/cli-help.txt has it."""
    parts = []
    for args in ([], ["chat"], ["models"]):
        result = CliRunner().invoke(cli, [*args, "--help"], prog_name="solarstream", terminal_width=100)
        assert result.exit_code == 0
        parts.append(f"$ solarstream {' '.join([*args, '--help'])}\n{result.stdout}")
    return "\n".join(parts)


def test_help_in_the_docs_is_current() -> None:
    """docs/cli-help.txt is --help, verbatim; regenerate with: python -m tests.test_cli"""
    assert HELP_FILE.read_text(encoding="utf-8") == help_text()


if __name__ == "__main__":
    HELP_FILE.write_text(help_text(), encoding="utf-8")
