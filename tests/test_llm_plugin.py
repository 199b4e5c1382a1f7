"""The llm plugin through llm's own command line (Click's runner), against the emulator.

llm finds the plugin through the installed ``llm`` entry point, as it would for a user; it keeps its
keys, logs and aliases under ``LLM_USER_PATH`` (a temporary directory here). The emulator serves
from a background thread, because llm runs its own event loops; its request records show what the
plugin sent. The Python API (sync and async) is tested in test_llm_plugin_api.py.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import llm
import llm.cli
import pytest
from click.testing import CliRunner, Result

from solarstream.emulator import Emulator, answers
from solarstream.providers.upstage.models import ALIASES, MODELS
from tests.conftest import API_KEY
from tests.conftest import emu_thread as emu_thread
from tests.helpers import ThreadedEmulator, completion_tokens, last_body

# --- the fixtures of this module; other test modules import them from here ----------------------


@pytest.fixture(autouse=True)
def llm_home(llm_home: Path) -> Path:
    """conftest's ``llm_home``, for every test here and in the modules that import it."""
    return llm_home


@pytest.fixture(scope="module")
def emu(threaded_emu: Emulator) -> Emulator:
    """Here (and where it is imported) ``emu`` is the module's emulator on its background loop."""
    return threaded_emu


def wait_for_disconnects(emu_thread: ThreadedEmulator, count: int) -> int:
    return emu_thread.wait_for_disconnects(count)


def run(*args: str, input: str | None = None) -> Result:
    """``llm ARGS`` in-process."""
    return CliRunner().invoke(llm.cli.cli, list(args), input=input, catch_exceptions=False)


def ok(*args: str, input: str | None = None) -> Result:
    result = run(*args, input=input)
    assert result.exit_code == 0, result.output
    return result




def logs(*args: str) -> list[dict[str, Any]]:
    rows = json.loads(ok("logs", "--json", *args).stdout)
    assert isinstance(rows, list)
    return rows


# --- registration ------------------------------------------------------------------------------


def test_llm_finds_the_plugin_through_its_entry_point() -> None:
    plugins = json.loads(ok("plugins").stdout)
    assert {"name": "solarstream", "hooks": ["register_embedding_models", "register_models"],
            "version": "0.1.0"} in plugins


def test_every_current_model_is_listed_with_its_retired_names_and_dated_id() -> None:
    listed = [line for line in ok("models").stdout.splitlines() if line.startswith("Upstage Solar")]
    assert listed == [
        "Upstage Solar: solar-pro4 (aliases: solar-pro, solar-pro-preview-240910)",
        "Upstage Solar: solar-pro3 (aliases: solar-pro2)",
        "Upstage Solar: solar-mini (aliases: solar-1-mini-chat, upstage/solar-1-mini-chat)",
        "Upstage Solar: syn-pro (aliases: solar-1-mini-chat-ja, solar-mini-ja, upstage/solar-1-mini-chat-ja)",
        "Upstage Solar: solar-pro4-260806",
        "Upstage Solar: solar-pro3-260323",
        "Upstage Solar: solar-mini-250422",
        "Upstage Solar: syn-pro-251021",
    ]
    assert len(listed) == 2 * len(MODELS)


def test_retired_names_are_llm_aliases_of_their_successors() -> None:
    shown = {line.split(":")[0].strip(): line.split(":")[1].strip()
             for line in ok("aliases").stdout.splitlines() if ":" in line}
    assert {name: shown[name] for name in ALIASES} == ALIASES
    for name, successor in ALIASES.items():
        assert llm.get_model(name).model_id == successor
        assert llm.get_async_model(name).model_id == successor


@pytest.mark.parametrize(("name", "sent"), [("solar-pro", "solar-pro4"), ("solar-1-mini-chat", "solar-mini"),
                                            ("solar-pro4-260806", "solar-pro4-260806")])
def test_the_model_sent_is_the_successor_or_the_pinned_dated_id(threaded_emu: Emulator, name: str, sent: str) -> None:
    ok("-m", name, "Hi")
    assert last_body(threaded_emu)["model"] == sent
    assert logs("-n", "1")[0]["model"] == sent


def test_models_options_show_what_each_model_takes() -> None:
    shown = ok("models", "--options", "-m", "solar-pro3").stdout
    assert "reasoning_effort: str" in shown
    assert "How hard solar-pro3 thinks before answering: low, medium, high; low turns reasoning off." in \
        " ".join(shown.split())
    assert "key: upstage" in shown
    assert "env_var: UPSTAGE_API_KEY" in shown
    assert "reasoning_effort" not in ok("models", "--options", "-m", "solar-mini").stdout


# --- prompting -------------------------------------------------------------------------------------


def test_a_prompt_streams_the_answer_to_stdout(threaded_emu: Emulator) -> None:
    result = ok("-m", "solar-pro4", "Привет! Как дела?")
    assert result.stdout == answers.answer_text("Привет! Как дела?") + "\n"
    assert result.stderr == ""
    body = last_body(threaded_emu)
    assert body == {"model": "solar-pro4", "messages": [{"role": "user", "content": "Привет! Как дела?"}],
                    "stream_options": {"include_usage": True}, "stream": True}
    assert threaded_emu.requests[-1].path == "/v1/chat/completions"


def test_no_stream_asks_for_one_completion(threaded_emu: Emulator) -> None:
    result = ok("-m", "solar-mini", "--no-stream", "Hello")
    assert result.stdout == answers.answer_text("Hello") + "\n"
    body = last_body(threaded_emu)
    assert body["stream"] is False
    assert "stream_options" not in body


def test_async_cli_streams_the_same_answer(threaded_emu: Emulator) -> None:
    result = ok("--async", "-m", "solar-mini", "Hello async")
    assert result.stdout == answers.answer_text("Hello async") + "\n"
    assert last_body(threaded_emu)["stream"] is True


@pytest.mark.parametrize("mode", [[], ["--no-stream"], ["--async"]])
def test_reasoning_is_shown_on_stderr_and_logged(threaded_emu: Emulator, mode: list[str]) -> None:
    result = ok(*mode, "-m", "solar-pro3", "Think first")
    reasoning = answers.reasoning_text("solar-pro3", None, "Think first")
    if mode != ["--no-stream"]:  # without streaming llm prints only the text
        assert result.stderr == reasoning + "\n"
    assert result.stdout == answers.answer_text("Think first") + "\n"
    row = logs("-n", "1")[0]
    assert (row["response"], row["reasoning"]) == (answers.answer_text("Think first"), reasoning)
    assert row["token_details"] == json.dumps(
        {"completion_tokens_details": {"reasoning_tokens": completion_tokens("", reasoning)}})


def test_hide_reasoning_keeps_it_off_the_screen_but_in_the_log() -> None:
    result = ok("-m", "solar-pro3", "-R", "Think quietly")
    assert result.stderr == ""
    assert result.stdout == answers.answer_text("Think quietly") + "\n"
    assert logs("-n", "1")[0]["reasoning"] == answers.reasoning_text("solar-pro3", None, "Think quietly")


@pytest.mark.parametrize(("model", "effort", "reasons"),
                         [("solar-pro4", "high", True), ("solar-pro4", "none", False), ("solar-pro3", "low", False),
                          ("solar-pro3", "medium", True)])
def test_reasoning_effort_is_sent_and_decides_the_reasoning(
    threaded_emu: Emulator, model: str, effort: str, reasons: bool
) -> None:
    result = ok("-m", model, "-o", "reasoning_effort", effort, "Hi")
    assert last_body(threaded_emu)["reasoning_effort"] == effort
    assert result.stderr == (answers.reasoning_text(model, effort, "Hi") + "\n" if reasons else "")


def test_options_are_validated_and_sent_with_their_types(threaded_emu: Emulator) -> None:
    ok("-m", "solar-mini", "-o", "temperature", "0.5", "-o", "top_p", "0.9", "-o", "top_k", "40",
       "-o", "max_tokens", "300", "-o", "stop", "zzz", "-o", "seed", "7", "-o", "frequency_penalty", "0.25",
       "-o", "presence_penalty", "-0.5", "-o", "prompt_cache_key", "notes-v1", "Hi")
    body = last_body(threaded_emu)
    sent = {k: v for k, v in body.items() if k not in ("model", "messages", "stream", "stream_options")}
    assert sent == {"temperature": 0.5, "top_p": 0.9, "top_k": 40, "max_tokens": 300, "stop": "zzz", "seed": 7,
                    "frequency_penalty": 0.25, "presence_penalty": -0.5, "prompt_cache_key": "notes-v1"}


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["-m", "solar-mini", "-o", "temperature", "2.5"], "Error: temperature\n  Input should be less than or "
                                                           "equal to 2\n"),
        (["-m", "solar-mini", "-o", "top_p", "-0.1"], "Error: top_p\n  Input should be greater than or equal to 0\n"),
        (["-m", "solar-mini", "-o", "top_k", "0"], "Error: top_k\n  Input should be greater than or equal to 1\n"),
        (["-m", "solar-pro4", "-o", "max_tokens", "128001"],
         "Error: max_tokens\n  Input should be less than or equal to 128000\n"),
        (["-m", "solar-mini", "-o", "seed", "x"],
         "Error: seed\n  Input should be a valid integer, unable to parse string as an integer\n"),
        (["-m", "solar-pro3", "-o", "reasoning_effort", "max"],
         "Error: reasoning_effort\n  Input should be 'low', 'medium' or 'high'\n"),
        (["-m", "solar-mini", "-o", "reasoning_effort", "high"],
         "Error: reasoning_effort\n  solar-mini does not reason, so it takes no reasoning_effort; the models that "
         "do: solar-pro4 (none, minimal, low, medium, high, xhigh, max); solar-pro3 (low, medium, high)\n"),
        (["-m", "syn-pro", "-o", "reasoning_effort", "low"],
         "Error: reasoning_effort\n  syn-pro does not reason, so it takes no reasoning_effort; the models that "
         "do: solar-pro4 (none, minimal, low, medium, high, xhigh, max); solar-pro3 (low, medium, high)\n"),
        (["-m", "solar-mini", "-o", "temprature", "1"], "Error: temprature\n  Extra inputs are not permitted\n"),
    ],
)
def test_bad_options_are_refused_before_anything_is_sent(threaded_emu: Emulator, args: list[str], error: str) -> None:
    before = len(threaded_emu.requests)
    result = run(*args, "Hi")
    assert result.exit_code == 1
    assert result.stderr == error
    assert len(threaded_emu.requests) == before


def test_usage_is_shown_and_logged(threaded_emu: Emulator) -> None:
    result = ok("-m", "solar-mini", "-u", "hi")
    text = answers.answer_text("hi")
    prompt_tokens = answers.prompt_tokens([{"role": "user", "content": "hi"}])
    assert prompt_tokens == 5
    assert result.stderr == f"Token usage: {prompt_tokens} input, {completion_tokens(text)} output\n"
    row = logs("-n", "1")[0]
    assert (row["input_tokens"], row["output_tokens"], row["token_details"]) == \
        (prompt_tokens, completion_tokens(text), None)
    assert row["resolved_model"] == "solar-mini-250422"
    assert row["response_json"]["usage"]["total_tokens"] == prompt_tokens + completion_tokens(text)


def test_cached_prompt_tokens_are_recorded_as_details() -> None:
    ok("-m", "solar-mini", "-o", "prompt_cache_key", "k1", "cache me")
    ok("-m", "solar-mini", "-o", "prompt_cache_key", "k1", "cache me")
    tokens = answers.prompt_tokens([{"role": "user", "content": "cache me"}])
    assert [json.loads(r["token_details"] or "null") for r in logs("-n", "2")] == \
        [None, {"prompt_tokens_details": {"cached_tokens": tokens}}]


# --- conversations ---------------------------------------------------------------------------------


def test_continue_sends_the_whole_history(threaded_emu: Emulator) -> None:
    ok("-m", "solar-mini", "-s", "Be brief.", "first question")
    ok("-c", "second question")
    assert last_body(threaded_emu)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": answers.answer_text("first question")},
        {"role": "user", "content": "second question"},
    ]
    assert last_body(threaded_emu)["model"] == "solar-mini"
    rows = logs("-n", "2")
    assert rows[0]["conversation_id"] == rows[1]["conversation_id"]


def test_continue_leaves_reasoning_out_of_the_history(threaded_emu: Emulator) -> None:
    ok("-m", "solar-pro3", "why?")
    ok("-c", "and then?")
    assert last_body(threaded_emu)["messages"] == [
        {"role": "user", "content": "why?"},
        {"role": "assistant", "content": answers.answer_text("why?")},
        {"role": "user", "content": "and then?"},
    ]


# --- tools and schemas -----------------------------------------------------------------------------

WEATHER = '''
def weather(city: str) -> str:
    "The weather in a city."
    return f"Sunny in {city}"
'''


@pytest.mark.parametrize("mode", [[], ["--no-stream"], ["--async"]])
def test_functions_are_called_and_their_results_sent_back(threaded_emu: Emulator, mode: list[str]) -> None:
    before = len(threaded_emu.requests)
    result = ok(*mode, "-m", "solar-mini", "--functions", WEATHER, "Weather in Seoul?")
    assert result.stdout == answers.tool_result_text("weather", "Sunny in emulated city") + "\n"
    first, second = (r.json for r in threaded_emu.requests[before:])
    assert first["tools"] == [{"type": "function", "function": {
        "name": "weather", "description": "The weather in a city.",
        "parameters": {"properties": {"city": {"type": "string"}}, "required": ["city"], "type": "object"}}}]
    call, answer = second["messages"][1:]
    assert call["role"] == "assistant"
    assert call["content"] is None
    assert [c["function"] for c in call["tool_calls"]] == [
        {"name": "weather", "arguments": '{"city": "emulated city"}'}]
    assert call["tool_calls"][0]["id"].startswith("call_")
    assert answer == {"role": "tool", "tool_call_id": call["tool_calls"][0]["id"], "name": "weather",
                      "content": "Sunny in emulated city"}
    row = logs("-n", "1")[0]
    assert row["tool_results"][0]["output"] == "Sunny in emulated city"


def test_a_registered_tool_works_with_t(threaded_emu: Emulator) -> None:
    result = ok("-m", "solar-pro4", "-T", "llm_version", "Which version?", "--td")
    assert result.stdout == answers.tool_result_text("llm_version", version("llm")) + "\n"
    assert "Tool call: llm_version({})" in result.stderr


def test_tools_for_a_model_without_tool_calling_are_refused(threaded_emu: Emulator) -> None:
    before = len(threaded_emu.requests)
    result = run("-m", "syn-pro", "-T", "llm_version", "Hi")
    assert result.exit_code == 1
    assert result.stderr == "Error: Upstage Solar: syn-pro does not support tools\n"
    assert len(threaded_emu.requests) == before


@pytest.mark.parametrize("mode", [[], ["--async"]])
def test_schema_asks_for_json_schema_output(threaded_emu: Emulator, mode: list[str]) -> None:
    result = ok(*mode, "-m", "solar-pro4", "--schema", "name, age int", "Invent a person")
    assert json.loads(result.stdout) == {"name": "emulated name", "age": 1}
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    assert last_body(threaded_emu)["response_format"] == {"type": "json_schema",
                                                 "json_schema": {"name": "output", "schema": schema}}


def test_json_object_option(threaded_emu: Emulator) -> None:
    result = ok("-m", "solar-mini", "-o", "json_object", "1", "Answer in JSON")
    assert json.loads(result.stdout) == json.loads(answers.json_answer("Answer in JSON"))
    assert last_body(threaded_emu)["response_format"] == {"type": "json_object"}


# --- keys, base URLs and errors ------------------------------------------------------------------


def test_a_key_stored_with_llm_keys_set_is_used(monkeypatch: pytest.MonkeyPatch, llm_home: Path) -> None:
    monkeypatch.delenv("UPSTAGE_API_KEY")
    ok("keys", "set", "upstage", "--value", "not-a-valid-key")
    result = run("-m", "solar-mini", "Hi")  # the emulator refuses keys that do not look like up_...
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: HTTP 401 invalid_api_key: ")
    ok("keys", "set", "upstage", "--value", API_KEY)
    assert ok("-m", "solar-mini", "Hi").stdout == answers.answer_text("Hi") + "\n"
    assert json.loads((llm_home / "keys.json").read_text())["upstage"] == API_KEY


def test_key_option_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTAGE_API_KEY", "bad key")
    assert run("-m", "solar-mini", "Hi").exit_code == 1
    assert ok("-m", "solar-mini", "--key", API_KEY, "Hi").stdout == answers.answer_text("Hi") + "\n"


def test_no_key_anywhere_says_how_to_set_one(threaded_emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UPSTAGE_API_KEY")
    before = len(threaded_emu.requests)
    result = run("-m", "solar-mini", "Hi")
    assert result.exit_code == 1
    assert result.stderr == ("Error: No key found - add one using 'llm keys set upstage' or set the "
                             "UPSTAGE_API_KEY environment variable\n")
    assert len(threaded_emu.requests) == before


def test_upstage_api_base_and_the_legacy_base_work(threaded_emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UPSTAGE_BASE_URL")
    monkeypatch.setenv("UPSTAGE_API_BASE", threaded_emu.legacy_base_url)
    assert ok("-m", "solar-mini", "Hi").stdout == answers.answer_text("Hi") + "\n"
    assert threaded_emu.requests[-1].path == "/v1/solar/chat/completions"


def test_a_bad_base_url_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTAGE_BASE_URL", "127.0.0.1:9/v1")
    result = run("-m", "solar-mini", "Hi")
    assert result.exit_code == 1
    assert result.stderr == "Error: base URL must start with http:// or https://, not '127.0.0.1:9/v1'\n"


@pytest.mark.parametrize(
    ("directive", "error"),
    [
        ("[emulate:error status=401 code=invalid_api_key]",
         "Error: HTTP 401 invalid_api_key: Emulated error 401 invalid_api_key, requested by [emulate:error]. "
         "(check UPSTAGE_API_KEY (keys start with 'up_') or run 'llm keys set upstage') [request id "),
        ("[emulate:rate-limit code=usage_limit_exceeded]",
         "Error: HTTP 429 usage_limit_exceeded: "),
        ("[emulate:error status=400 code=context_length_exceeded]",
         "Error: HTTP 400 context_length_exceeded: "),
    ],
)
@pytest.mark.parametrize("mode", [[], ["--no-stream"], ["--async"]])
def test_api_errors_are_one_error_line(directive: str, error: str, mode: list[str]) -> None:
    result = run(*mode, "-m", "solar-mini", f"Hi {directive}")
    assert result.exit_code == 1
    assert result.stderr.startswith(error)
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert API_KEY not in result.output


@pytest.mark.parametrize(
    ("directive", "error"),
    [
        ("[emulate:midstream-error after=2]",
         "Error: the stream reported an error (internal_server_error): Emulated error inside the stream "
         "(internal_server_error), requested by [emulate:midstream-error].\n"),
        ("[emulate:truncate after=2]", "Error: the stream ended after "),
    ],
)
def test_a_broken_stream_is_an_error_after_the_text_so_far(directive: str, error: str) -> None:
    result = run("-m", "solar-mini", f"Hi {directive}")
    assert result.exit_code == 1
    assert result.stdout == "".join(answers.pieces(answers.answer_text("Hi"))[:2])
    assert result.stderr.startswith(error)
    assert "Traceback" not in result.output


def test_the_cli_raises_model_error_for_solarstream_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """With LLM_RAISE_ERRORS llm re-raises what the model raised: an ``llm.ModelError``, chained."""
    from solarstream.errors import AuthenticationError

    monkeypatch.setenv("LLM_RAISE_ERRORS", "1")
    result = CliRunner().invoke(llm.cli.cli, ["-m", "solar-mini", "Hi [emulate:error status=401]"])
    assert isinstance(result.exception, llm.ModelError)
    assert isinstance(result.exception.__cause__, AuthenticationError)


def test_the_key_never_reaches_the_logs(llm_home: Path) -> None:
    ok("-m", "solar-mini", "Hi")
    run("-m", "solar-mini", "Hi [emulate:error status=401]")
    for path in llm_home.rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path
