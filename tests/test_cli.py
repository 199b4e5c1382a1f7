"""The command line end to end, in-process with Click's runner, against the emulator.

The CLI runs its own event loop, so the emulator here serves from a background thread's loop;
its request records show what the CLI sent. The pty tests (interactive mode, Ctrl-C) are in
test_cli_pty.py, the log in test_cli_logs.py, the default model in test_cli_models.py.

Every test here and in the other test_cli modules runs with its own data and config directories
(``user_dirs``): no test reads or writes the real home.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import solarstream.cli as cli_module
from solarstream import __version__
from solarstream.cli import COMMANDS, cli
from solarstream.emulator import Emulator, answers
from tests.conftest import UserDirs

# re-exported: other test modules import these from here
from tests.conftest import isolate_user_dirs as isolate_user_dirs
from tests.helpers import ThreadedEmulator as ThreadedEmulator
from tests.helpers import ask, expected_usage, last_body

#: every test here gets its own data and config directories
pytestmark = pytest.mark.usefixtures("user_dirs")


def run(args: list[str], emu: Emulator | None = None, input: str | None = None, **env: str) -> Result:
    """``solarstream ARGS`` pointed at the emulator (unless ``emu`` is None)."""
    if emu is not None:
        args = [args[0], "--base-url", emu.base_url, "--api-key", emu.api_key, "--max-retries", "0", *args[1:]]
    return CliRunner().invoke(cli, args, input=input, env=env or None, catch_exceptions=False, prog_name="solarstream")




# --- chat ------------------------------------------------------------------------------------------


def test_prompt_argument_streams_the_answer(threaded_emu: Emulator) -> None:
    result = run(["chat", "Привет! Как дела?"], threaded_emu)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "[solarstream emulator] This is an offline test answer, not a model's. " \
                            "You wrote: «Привет! Как дела?».\n"
    body = last_body(threaded_emu)
    assert body["stream"] is True
    assert body["model"] == "solar-pro4"
    assert body["messages"] == [{"role": "user", "content": "Привет! Как дела?"}]


@pytest.mark.parametrize("args", [["chat", "-s", "Summarise"], ["chat", "-s", "Summarise", "-"]])
def test_stdin_becomes_the_user_message(threaded_emu: Emulator, args: list[str]) -> None:
    notes = "line one\nline two\n"
    result = run(args, threaded_emu, input=notes)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == answer_for(notes)
    assert last_body(threaded_emu)["messages"] == [{"role": "system", "content": "Summarise"},
                                          {"role": "user", "content": notes}]


def test_empty_stdin_is_bad_usage(threaded_emu: Emulator) -> None:
    result = run(["chat"], threaded_emu, input="  \n")
    assert result.exit_code == 2
    assert "stdin is empty" in result.stderr


def test_options_go_into_the_request(threaded_emu: Emulator) -> None:
    result = run(["chat", "-m", "solar-pro3", "--temperature", "0.3", "--max-tokens", "400",
                  "--reasoning-effort", "medium", "Hi"], threaded_emu)
    assert result.exit_code == 0, result.stderr
    body = last_body(threaded_emu)
    assert (body["model"], body["temperature"], body["max_tokens"], body["reasoning_effort"]) == \
        ("solar-pro3", 0.3, 400, "medium")


def test_retired_model_warns_once_and_uses_the_successor(threaded_emu: Emulator) -> None:
    result = run(["chat", "-m", "solar-pro2", "Hi"], threaded_emu)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "solarstream: warning: model 'solar-pro2' is retired; using its successor 'solar-pro3'\n"
    assert last_body(threaded_emu)["model"] == "solar-pro3"


def test_json_lines_parse_back(threaded_emu: Emulator) -> None:
    result = run(["chat", "--json", "-m", "solar-pro3", "--reasoning-effort", "high", "Hello"], threaded_emu)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    chunks = [json.loads(line) for line in lines]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    content = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning") or "" for c in chunks if c["choices"])
    assert [p for p in content if p] == answers.pieces(answers.answer_text("Hello"))  # one line per chunk
    assert reasoning == answers.reasoning_text("solar-pro3", "high", "Hello")  # --json keeps the reasoning
    usage = chunks[-1]["usage"]  # usage is asked for
    assert usage["completion_tokens_details"]["reasoning_tokens"] == sum(
        answers.count_tokens(p) for p in answers.pieces(reasoning))
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert last_body(threaded_emu)["stream_options"] == {"include_usage": True}


def test_no_stream(threaded_emu: Emulator) -> None:
    result = run(["chat", "--no-stream", "Hello"], threaded_emu)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("You wrote: «Hello».\n")
    assert last_body(threaded_emu)["stream"] is False
    result = run(["chat", "--no-stream", "--json", "Hello"], threaded_emu)
    completion = json.loads(result.stdout)
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"] == answers.answer_text("Hello")
    assert completion["usage"] == expected_usage(ask("Hello"), answers.answer_text("Hello"))


def test_piped_stdout_gets_only_the_answer(threaded_emu: Emulator) -> None:
    result = run(["chat", "-m", "solar-pro3", "--reasoning-effort", "high", "Why?"], threaded_emu)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == answer_for("Why?")  # no reasoning, no colour
    assert "\x1b[" not in result.stderr


def test_offline_needs_no_key_and_says_so() -> None:
    result = run(["chat", "--offline", "Привет! Как дела?"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "offline: answers come from solarstream's built-in emulator, not from a real model\n"
    assert result.stdout == answer_for("Привет! Как дела?")


def test_offline_refuses_a_base_url() -> None:
    result = run(["chat", "--offline", "--base-url", "http://127.0.0.1:1/v1", "Hi"])
    assert result.exit_code == 2
    assert "--offline" in result.stderr


def answer_for(text: str) -> str:
    """The emulator's answer to a last user message ``text``, as printed (one line)."""
    return answers.answer_text(text) + "\n"


def test_stdin_comes_first_then_a_space_then_prompt(threaded_emu: Emulator) -> None:
    # llm's read_prompt: " ".join([stdin_prompt, prompt])
    result = run(["chat", "Summarise"], threaded_emu, input="line one\nline two\n")
    assert result.exit_code == 0, result.stderr
    assert last_body(threaded_emu)["messages"] == [{"role": "user", "content": "line one\nline two\n Summarise"}]
    assert result.stdout == answer_for("line one\nline two\n Summarise")


def test_blank_stdin_beside_a_prompt_is_ignored(threaded_emu: Emulator) -> None:
    result = run(["chat", "Hello"], threaded_emu, input=" \n")
    assert result.exit_code == 0, result.stderr
    assert last_body(threaded_emu)["messages"] == [{"role": "user", "content": "Hello"}]


@pytest.mark.parametrize("args", [["chat", ""], ["chat", "  \n "], ["chat", "-i", ""], [""]])
def test_blank_prompt_is_bad_usage(threaded_emu: Emulator, args: list[str]) -> None:
    before = len(threaded_emu.requests)
    result = CliRunner().invoke(cli, [*args, "--base-url", threaded_emu.base_url, "--api-key", threaded_emu.api_key],
                                input="from stdin\n")
    assert result.exit_code == 2
    assert "PROMPT is empty" in result.stderr
    assert len(threaded_emu.requests) == before


def test_o_sends_any_parameter_typed_as_json(threaded_emu: Emulator) -> None:
    result = run(["chat", "-m", "solar-pro3", "-o", "top_p", "0.5", "-o", "stop", '["END", "\\n\\n"]',
                  "-o", "seed", "7", "-o", "reasoning_effort", "high", "-o", "prompt_cache_key", '"123"',
                  "-o", "response_format", '{"type": "json_object"}', "Answer in JSON"], threaded_emu)
    assert result.exit_code == 0, result.stderr
    body = last_body(threaded_emu)
    assert (body["top_p"], body["stop"], body["seed"], body["reasoning_effort"], body["prompt_cache_key"]) == \
        (0.5, ["END", "\n\n"], 7, "high", "123")
    assert body["response_format"] == {"type": "json_object"}
    assert json.loads(result.stdout)  # the emulator answers json_object requests with JSON


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["-o", "top_k", "abc"], "solarstream: error: -o top_k: must be a positive integer, not 'abc'"),
        (["-o", "temperature", "true"], "solarstream: error: -o temperature: must be a number, not a boolean"),
        (["-o", "prompt_cache_key", "123"], "solarstream: error: -o prompt_cache_key: must be a string, not a number"),
        (["-m", "solar-mini", "-o", "reasoning_effort", "high"],
         "solarstream: error: -o reasoning_effort: solar-mini does not reason and Upstage rejects the parameter "
         "for it; remove it or use solar-pro4 or solar-pro3"),
    ],
)
def test_o_values_are_checked_before_sending_and_the_error_names_o(
        threaded_emu: Emulator, options: list[str], message: str) -> None:
    before = len(threaded_emu.requests)
    result = run(["chat", *options, "Hi"], threaded_emu)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [message]
    assert len(threaded_emu.requests) == before


def test_o_unknown_parameter_names_o_and_extra_body(threaded_emu: Emulator) -> None:
    result = run(["chat", "-o", "bogus", "1", "Hi"], threaded_emu)
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert line.startswith("solarstream: error: -o bogus: unknown parameter for Upstage; known: frequency_penalty, ")
    assert line.endswith("(-o extra_body '{...}' sends anything as is)")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["-o", "model", "solar-mini"], "-o: model: use -m/--model"),
        (["-o", "stream", "false"], "-o: stream: use --no-stream"),
        (["-o", "api_key", "up_x"], "-o: api_key: use --api-key or $UPSTAGE_API_KEY"),
        (["-o", "extra_headers", "{}"], "-o: extra_headers: headers cannot be set from the command line"),
        (["-o", "seed", "1", "-o", "seed", "2"], "-o: seed is given twice"),
        (["--temperature", "0.3", "-o", "temperature", "0.5"],
         "temperature is given twice: --temperature and -o temperature; keep one"),
    ],
)
def test_o_refuses_what_has_its_own_option(options: list[str], message: str) -> None:
    result = run(["chat", "--offline", *options, "Hi"])
    assert result.exit_code == 2
    assert message in result.stderr


def test_usage_goes_to_stderr_after_the_answer(threaded_emu: Emulator) -> None:
    result = run(["chat", "-u", "Hello"], threaded_emu)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == answer_for("Hello")
    assert last_body(threaded_emu)["stream_options"] == {"include_usage": True}
    wire = json.loads(run(["chat", "--no-stream", "--json", "Hello"], threaded_emu).stdout)["usage"]
    assert wire["prompt_tokens"] == answers.prompt_tokens([{"role": "user", "content": "Hello"}])
    assert result.stderr == (f"Token usage: {wire['prompt_tokens']} input, {wire['completion_tokens']} output, "
                             f"{wire['total_tokens']} total\n")


def test_usage_counts_reasoning(threaded_emu: Emulator) -> None:
    result = run(["chat", "--usage", "--no-stream", "-m", "solar-pro3", "Why?"], threaded_emu)
    assert result.exit_code == 0, result.stderr
    completion = json.loads(run(["chat", "--no-stream", "--json", "-m", "solar-pro3", "Why?"], threaded_emu).stdout)
    usage = completion["usage"]
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    assert reasoning == sum(answers.count_tokens(p) for p in answers.pieces(
        answers.reasoning_text("solar-pro3", None, "Why?")))
    assert result.stderr == (f"Token usage: {usage['prompt_tokens']} input, {usage['completion_tokens']} output "
                             f"({reasoning} reasoning), {usage['total_tokens']} total\n")


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
def test_api_errors_exit_1_with_one_line(
    threaded_emu: Emulator, directive: str, expected: str, mode: list[str]
) -> None:
    result = run(["chat", *mode, f"Hi {directive}"], threaded_emu)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("solarstream: error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.output


def test_error_inside_the_stream_exits_1(threaded_emu: Emulator) -> None:
    result = run(["chat", "Hi [emulate:midstream-error after=2]"], threaded_emu)
    assert result.exit_code == 1
    assert result.stdout == "".join(answers.pieces(answers.answer_text("Hi"))[:2]) + "\n"  # what came, then a line end
    assert result.stderr == ("solarstream: error: the stream reported an error (internal_server_error): "
                             "Emulated error inside the stream (internal_server_error), requested by "
                             "[emulate:midstream-error].\n")


def test_truncated_stream_keeps_the_partial_answer(threaded_emu: Emulator) -> None:
    result = run(["chat", "Hi [emulate:truncate after=3]"], threaded_emu)
    assert result.exit_code == 1
    assert result.stdout == "".join(answers.pieces(answers.answer_text("Hi"))[:3]) + "\n"  # the partial answer, kept
    assert result.stderr.startswith("solarstream: error: the stream ended after ")
    assert result.stderr.endswith(" bytes without [DONE] or a finish reason; the answer is incomplete\n")


def test_no_key_is_bad_usage_and_says_what_to_do() -> None:
    result = run(["chat", "Hi"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "solarstream: error: no API key: set UPSTAGE_API_KEY or pass --api-key "
        "(get one at https://console.upstage.ai/api-keys), or try --offline")


def test_wrong_key_names_the_fix_but_not_the_key(threaded_emu: Emulator) -> None:
    result = CliRunner().invoke(cli, ["chat", "--base-url", threaded_emu.base_url, "--api-key", "sk-Wr0ngKindOfKey",
                                      "Hi"])
    assert result.exit_code == 1
    assert "--api-key" in result.stderr
    assert "sk-Wr0ngKindOfKey" not in result.output


def test_request_known_to_be_invalid_is_bad_usage(threaded_emu: Emulator) -> None:
    before = len(threaded_emu.requests)
    result = run(["chat", "-m", "solar-mini", "--reasoning-effort", "high", "Hi"], threaded_emu)
    assert result.exit_code == 2
    assert "reasoning_effort" in result.stderr
    assert len(threaded_emu.requests) == before  # nothing was sent


def test_click_usage_errors_exit_2() -> None:
    result = run(["chat", "--temperature", "5", "Hi"])
    assert result.exit_code == 2
    assert "--temperature" in result.stderr


def test_unreachable_api_is_exit_1() -> None:
    result = run(["chat", "--base-url", "http://127.0.0.1:9/v1", "--api-key", "up_x", "--max-retries", "0", "Hi"])
    assert result.exit_code == 1
    assert "could not connect to 127.0.0.1:9" in result.stderr


# --- interactive (driven through stdin here; the pty test covers the terminal) ------------------


def test_interactive_keeps_the_conversation(threaded_emu: Emulator) -> None:
    script = "first question\n/system Be brief\n/model solar-mini\nsecond question\n/reset\nthird\n/exit\n"
    result = run(["chat", "-i"], threaded_emu, input=script)
    assert result.exit_code == 0, result.stderr
    bodies = [r.json for r in threaded_emu.requests[-3:]]
    assert bodies[0]["messages"] == [{"role": "user", "content": "first question"}]
    assert bodies[1]["model"] == "solar-mini"
    messages = bodies[1]["messages"]
    assert messages[0] == {"role": "system", "content": "Be brief"}
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == answers.answer_text("first question")
    assert bodies[2]["messages"] == [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "third"}]


def test_interactive_error_keeps_going(threaded_emu: Emulator) -> None:
    script = "boom [emulate:error status=400 code=invalid_request_body]\nfine\n"
    result = run(["chat", "-i"], threaded_emu, input=script)  # ends with EOF, like Ctrl-D
    assert result.exit_code == 0
    assert "HTTP 400" in result.stderr
    assert last_body(threaded_emu)["messages"] == [{"role": "user", "content": "fine"}]  # the failed turn is dropped


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


def test_models_live_asks_the_api(threaded_emu: Emulator) -> None:
    result = run(["models", "--live"], threaded_emu)
    assert result.exit_code == 0, result.stderr
    assert threaded_emu.requests[-1].path.endswith("/models")
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert lines["solar-pro4"].endswith("current")
    rows = json.loads(run(["models", "--live", "--json"], threaded_emu).stdout)
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


# --- the group: a prompt without 'chat', typos, python -m, completion, start-up ----------------------


def test_a_prompt_without_the_chat_word_is_chat(threaded_emu: Emulator) -> None:
    result = CliRunner().invoke(cli, ["--base-url", threaded_emu.base_url, "--api-key", threaded_emu.api_key,
                                      "-m", "solar-mini",
                                      "What is the time?"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == answer_for("What is the time?")
    assert last_body(threaded_emu)["model"] == "solar-mini"


@pytest.mark.parametrize("args", [["--offline", "Hello"], ["Hello", "--offline"], ["hello", "--offline"]])
def test_offline_prompt_without_the_chat_word(args: list[str]) -> None:
    result = run(args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == answer_for(args[0] if args[0] != "--offline" else args[1])


def test_piped_stdin_without_any_argument_is_chat(threaded_emu: Emulator) -> None:
    result = run([], input="piped question\n", UPSTAGE_BASE_URL=threaded_emu.base_url,
                 UPSTAGE_API_KEY=threaded_emu.api_key)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == answer_for("piped question")


@pytest.mark.parametrize(("word", "guess"), [("modles", "models"), ("chta", "chat"), ("log", "logs"),
                                             ("server", "serve"), ("emulator", "emulate")])
def test_a_misspelled_command_gets_did_you_mean(word: str, guess: str) -> None:
    result = run([word, "--offline"])
    assert result.exit_code == 2
    assert f"Error: no command {word!r}; did you mean {guess!r}? (to ask it as a question: solarstream chat " \
           f"{word})" in result.stderr
    assert result.stdout == ""


def test_command_names_still_win() -> None:
    assert "Usage: solarstream chat [OPTIONS] [PROMPT]" in run(["chat", "--help"]).stdout
    assert run(["models"]).stdout.startswith("NAME ")
    assert "Usage: solarstream [OPTIONS] COMMAND [ARGS]... | PROMPT" in run(["--help"]).stdout


def test_subgroups_suggest_their_commands() -> None:
    result = run(["logs", "pth"])
    assert result.exit_code == 2
    assert "no command 'pth' in 'solarstream logs'; did you mean 'path'?" in result.stderr
    result = run(["models", "xyz"])
    assert result.exit_code == 2
    assert "no command 'xyz' in 'solarstream models'; the commands are default, list" in result.stderr


def python_m(*args: str, env: dict[str, str] | None = None, input: str = "") -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "solarstream", *args], input=input, capture_output=True,
                          text=True, timeout=60, check=False, env=environment)


def test_python_m_solarstream_runs_the_cli_with_the_same_exit_codes() -> None:
    ok = python_m("--offline", "Hi from python -m")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == answer_for("Hi from python -m")
    assert python_m("chat", "--offline", "").returncode == 2
    down = python_m("chat", "--base-url", "http://127.0.0.1:9/v1", "--api-key", "up_x", "--max-retries", "0", "Hi")
    assert down.returncode == 1
    assert down.stderr.startswith("solarstream: error: could not connect to 127.0.0.1:9")
    assert "Traceback" not in down.stderr
    assert python_m("--version").stdout == f"solarstream, version {__version__}\n"


@pytest.mark.parametrize(("shell", "marker"), [
    ("bash_source", "complete -o nosort -F _solarstream_completion solarstream"),
    ("zsh_source", "#compdef solarstream"),
    ("fish_source", "complete --no-files --command solarstream"),
])
def test_shell_completion_scripts_are_produced(shell: str, marker: str) -> None:
    proc = python_m(env={"_SOLARSTREAM_COMPLETE": shell})
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout
    assert "_SOLARSTREAM_COMPLETE" in proc.stdout


def complete(words: str) -> list[str]:
    """What bash completion offers for the last word of ``words``."""
    parts = words.split(" ")
    proc = python_m(env={"_SOLARSTREAM_COMPLETE": "bash_complete", "COMP_WORDS": words,
                         "COMP_CWORD": str(len(parts) - 1)})
    assert proc.returncode == 0, proc.stderr
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines()]


def test_completion_offers_commands_models_and_logged_conversations(user_dirs: UserDirs) -> None:
    assert complete("solarstream ") == ["batch", "chat", "emulate", "logs", "models", "serve"]
    assert complete("solarstream lo") == ["logs"]
    assert complete("solarstream chat -m solar-p") == ["solar-pro4", "solar-pro3"]
    assert complete("solarstream logs ") == ["list", "off", "on", "path", "status"]
    assert run(["chat", "--offline", "remember me"]).exit_code == 0
    cid = json.loads(run(["logs", "--json"]).stdout)[0]["conversation_id"]
    assert complete(f"solarstream chat --cid {cid[:4]}") == [cid]


def test_start_up_imports_only_click() -> None:
    """`solarstream --help` must stay fast: aiohttp, sqlite3 and the subcommands are imported lazily."""
    code = ("import sys\nfrom solarstream.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n"
            "    pass\nheavy = ['aiohttp', 'sqlite3', 'platformdirs', 'solarstream.providers', 'solarstream._cli.chat',"
            " 'solarstream.emulator']\nprint([m for m in heavy if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.stdout.strip().endswith("[]"), proc.stdout + proc.stderr


def _imports(path: Path, package: str) -> set[str]:
    """The modules of ``package`` that the module at ``path`` imports (at any depth in the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return {name for name in found if (path.parent / f"{name}.py").exists()} - {package}


def test_the_cli_package_has_no_import_cycle() -> None:
    package = Path(cli_module.__file__ or "").parent / "_cli"
    graph = {p.stem: _imports(p, "__init__") for p in package.glob("*.py")}
    assert "interactive" in graph["chat"]
    assert "chat" not in graph["interactive"]
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != "open", f"import cycle: {' -> '.join([*path, node, nxt])}"
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


HELP_FILE = Path(__file__).resolve().parent.parent / "docs" / "cli-help.txt"

#: the --help texts docs/cli-help.txt holds: the group and the commands this package owns
HELP_COMMANDS: tuple[list[str], ...] = (
    [], ["chat"], ["logs"], ["logs", "list"], ["models"], ["models", "list"], ["models", "default"])


def help_text() -> str:
    """``--help`` of the group and of the commands this module owns, as docs/cli-help.txt has it."""
    parts = []
    for args in HELP_COMMANDS:
        result = CliRunner().invoke(cli, [*args, "--help"], prog_name="solarstream", terminal_width=100)
        assert result.exit_code == 0
        parts.append(f"$ solarstream {' '.join([*args, '--help'])}\n{result.stdout}")
    return "\n".join(parts)


def test_help_in_the_docs_is_current() -> None:
    """docs/cli-help.txt is --help, verbatim; regenerate with: python -m tests.test_cli"""
    assert HELP_FILE.read_text(encoding="utf-8") == help_text()


if __name__ == "__main__":
    HELP_FILE.write_text(help_text(), encoding="utf-8")
