"""The conversation log end to end: what ``chat`` stores, ``solarstream logs``, ``chat -c/--cid``,
the off switch, secrets, and several processes writing at once."""

from __future__ import annotations

import datetime
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from solarstream import AsyncClient
from solarstream._cli.connection import Connection, endpoint_label
from solarstream.emulator import Emulator, answers
from tests.conftest import API_KEY, PROXY_PASSWORD, UserDirs
from tests.helpers import expected_usage, last_body
from tests.test_cli import run

pytestmark = pytest.mark.usefixtures("user_dirs")


def logged() -> list[dict[str, Any]]:
    result = run(["logs", "-n", "0", "--json"])
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)
    assert isinstance(records, list)
    return records


def ask(threaded_emu: Emulator, *args: str, input: str | None = None) -> str:
    result = run(["chat", *args], threaded_emu, input=input)
    assert result.exit_code == 0, result.stderr
    return result.stdout


# --- what is stored --------------------------------------------------------------------------------


def test_a_prompt_and_its_answer_are_logged_with_everything(threaded_emu: Emulator, user_dirs: UserDirs) -> None:
    before = datetime.datetime.now(datetime.timezone.utc)
    out = ask(threaded_emu, "-m", "solar-pro3", "-s", "Be brief", "--temperature", "0.3", "--reasoning-effort", "high",
              "-o", "seed", "7", "Why is the sky blue?")
    [record] = logged()
    wire = threaded_emu.requests[-1].json
    assert out == answers.answer_text("Why is the sky blue?") + "\n"
    assert record["prompt"] == "Why is the sky blue?"
    assert record["system"] == "Be brief"
    assert record["response"] == answers.answer_text("Why is the sky blue?")
    assert record["reasoning"] == answers.reasoning_text("solar-pro3", "high", "Why is the sky blue?")
    assert (record["model_asked"], record["model"]) == ("solar-pro3", "solar-pro3-260323")
    assert record["options"] == {"temperature": 0.3, "reasoning_effort": "high", "seed": 7,
                                 "stream_options": {"include_usage": True}}
    assert (record["status"], record["finish_reason"], record["error"]) == ("complete", "stop", None)
    reasoning_tokens = record["usage"]["completion_tokens_details"]["reasoning_tokens"]
    assert reasoning_tokens == sum(answers.count_tokens(p) for p in answers.pieces(record["reasoning"]))
    assert record["prompt_tokens"] == answers.prompt_tokens(wire["messages"])
    assert record["total_tokens"] == record["prompt_tokens"] + record["completion_tokens"]
    assert record["endpoint"] == threaded_emu.base_url
    assert record["id"] != record["conversation_id"]
    assert len(record["id"]) == 26
    started = datetime.datetime.fromisoformat(record["datetime_utc"].replace("Z", "+00:00"))
    assert before - datetime.timedelta(seconds=1) <= started <= datetime.datetime.now(datetime.timezone.utc)
    assert record["duration_ms"] >= 0
    assert user_dirs.log.exists()


def test_a_retired_name_is_logged_as_asked_and_as_answered(threaded_emu: Emulator) -> None:
    ask(threaded_emu, "-m", "solar-pro2", "Hi")
    [record] = logged()
    assert (record["model_asked"], record["model"]) == ("solar-pro2", "solar-pro3-260323")


def test_no_stream_and_stdin_prompts_are_logged(threaded_emu: Emulator) -> None:
    ask(threaded_emu, "--no-stream", "Summarise", input="the notes\n")
    [record] = logged()
    assert record["prompt"] == "the notes\n Summarise"
    assert record["options"] == {}  # nothing was asked for: no stream_options without a stream
    sent = last_body(threaded_emu)["messages"]
    assert record["usage"] == expected_usage(sent, answers.answer_text(sent[-1]["content"]))


def test_a_broken_stream_is_logged_as_failed_with_the_part_that_arrived(threaded_emu: Emulator) -> None:
    result = run(["chat", "Hi [emulate:truncate after=3]"], threaded_emu)
    assert result.exit_code == 1
    [record] = logged()
    assert record["status"] == "failed"
    assert record["response"] == result.stdout.rstrip("\n")
    assert record["response"].startswith("[solarstream emulator]")
    assert record["response"] != answers.answer_text("Hi [emulate:truncate after=3]")
    assert "incomplete" in record["error"]
    assert record["finish_reason"] is None


def test_an_api_error_is_logged_as_failed_without_an_answer(threaded_emu: Emulator) -> None:
    result = run(["chat", "Hi [emulate:rate-limit]"], threaded_emu)
    assert result.exit_code == 1
    [record] = logged()
    assert (record["status"], record["response"], record["model"]) == ("failed", "", None)
    assert record["error"] == result.stderr.strip().removeprefix("solarstream: error: ")
    assert "HTTP 429 too_many_requests" in record["error"]


def test_a_request_refused_before_sending_is_not_logged(threaded_emu: Emulator, user_dirs: UserDirs) -> None:
    result = run(["chat", "-m", "solar-mini", "--reasoning-effort", "high", "Hi"], threaded_emu)
    assert result.exit_code == 2
    assert run(["chat", "--api-key", "", "Hi"]).exit_code == 2  # no key
    assert logged() == []


def test_nothing_secret_is_stored(threaded_emu: Emulator, user_dirs: UserDirs) -> None:
    result = run(["chat", "--base-url", threaded_emu.base_url, "--api-key", API_KEY, "Hi"])
    assert result.exit_code == 0, result.stderr
    proxy = f"http://user:{PROXY_PASSWORD}@127.0.0.1:9"
    result = run(["chat", "--base-url", threaded_emu.base_url, "--api-key", API_KEY, "--proxy", proxy,
                  "--max-retries", "0", "Hi through a proxy"])
    assert result.exit_code == 1
    records = logged()
    assert [r["status"] for r in records] == ["complete", "failed"]
    assert records[1]["endpoint"] == threaded_emu.base_url
    files = [p for p in user_dirs.data.iterdir() if p.name.startswith("logs.db")]
    assert files
    for path in files:
        raw = path.read_bytes()
        assert API_KEY.encode() not in raw
        assert PROXY_PASSWORD.encode() not in raw
        assert b"Bearer" not in raw
        assert b"Authorization" not in raw


@pytest.mark.parametrize(("base_url", "label"), [
    ("https://api.example.com:8443/v1?token=abc#frag", "https://api.example.com:8443/v1"),
    ("http://[::1]:8787/v1", "http://[::1]:8787/v1"),
    ("https://api.upstage.ai/v1", "https://api.upstage.ai/v1"),
])
def test_the_endpoint_is_stored_without_credentials_query_or_fragment(base_url: str, label: str) -> None:
    client = AsyncClient(api_key=API_KEY, base_url=base_url)
    assert endpoint_label(Connection(), client) == label
    assert endpoint_label(Connection(offline=True), client) == "offline"


def test_a_base_url_with_credentials_is_refused_before_sending() -> None:
    result = run(["chat", "--base-url", "https://someone:hunter2@api.example.com/v1", "--api-key", API_KEY, "Hi"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "solarstream: error: base URL 'https://***@api.example.com/v1' carries a user name or password; keep it out "
        "of the URL and pass --api-key instead (or set its variable)"]
    assert "hunter2" not in result.stderr


def test_offline_answers_are_marked_offline() -> None:
    assert run(["chat", "--offline", "Hi"]).exit_code == 0
    [record] = logged()
    assert record["endpoint"] == "offline"
    assert "Offline: the answer came from solarstream's built-in emulator" in run(["logs"]).stdout


def test_a_reader_that_leaves_gets_the_answer_logged_as_interrupted(user_dirs: UserDirs) -> None:
    args = [sys.executable, "-m", "solarstream", "chat", "--offline", "go [emulate:slow delay_ms=20]"]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stderr is not None
    head = proc.stdout.read(10)  # like `| head -c 10`
    proc.stdout.close()
    assert proc.wait(timeout=60) == 1
    assert b"Traceback" not in proc.stderr.read()
    proc.stderr.close()
    [record] = logged()
    assert record["status"] == "interrupted"
    assert record["response"].encode().startswith(head)
    assert record["response"] != answers.answer_text("go [emulate:slow delay_ms=20]")


# --- the off switch ------------------------------------------------------------------------------


def test_no_log_logs_off_and_log(threaded_emu: Emulator, user_dirs: UserDirs) -> None:
    ask(threaded_emu, "--no-log", "one")
    ask(threaded_emu, "-n", "two")
    assert not user_dirs.log.exists()  # nothing logged, and nothing created
    result = run(["logs", "off"])
    assert result.exit_code == 0
    assert json.loads((user_dirs.config / "config.json").read_text()) == {"log": False}
    ask(threaded_emu, "three")
    assert "Logging is off" in run(["logs", "status"]).stdout
    ask(threaded_emu, "--log", "four")
    assert [r["prompt"] for r in logged()] == ["four"]
    assert run(["logs", "on"]).exit_code == 0
    assert json.loads((user_dirs.config / "config.json").read_text()) == {}
    ask(threaded_emu, "five")
    assert [r["prompt"] for r in logged()] == ["four", "five"]
    assert run(["chat", "--log", "--no-log", "--offline", "x"]).exit_code == 2


def test_a_log_that_cannot_be_used_does_not_stop_the_chat(threaded_emu: Emulator, user_dirs: UserDirs) -> None:
    user_dirs.data.mkdir(parents=True)
    user_dirs.log.write_bytes(b"this is not a database" * 100)
    result = run(["chat", "Hi"], threaded_emu)
    assert result.exit_code == 0
    assert result.stdout == answers.answer_text("Hi") + "\n"
    assert result.stderr.startswith(f"solarstream: warning: not logging: cannot use the log {user_dirs.log}: ")
    listing = run(["logs"])
    assert listing.exit_code == 2
    assert f"solarstream: error: cannot use the log {user_dirs.log}: file is not a database" in listing.stderr


# --- solarstream logs ------------------------------------------------------------------------------


def test_logs_lists_the_last_three_oldest_first_and_n_changes_it(threaded_emu: Emulator) -> None:
    for i in range(5):
        ask(threaded_emu, f"question {i}")
    out = run(["logs"]).stdout
    assert [line for line in out.splitlines() if line.startswith("question")] == \
        ["question 2", "question 3", "question 4"]
    assert [r["prompt"] for r in json.loads(run(["logs", "-n", "1", "--json"]).stdout)] == ["question 4"]
    assert len(logged()) == 5
    assert run(["logs", "list", "--count", "2", "--json"]).stdout == run(["logs", "-n", "2", "--json"]).stdout


def test_logs_markdown_shows_one_entry_as_llm_does(threaded_emu: Emulator) -> None:
    ask(threaded_emu, "-s", "Be brief", "-o", "top_p", "0.5", "Hello")
    [record] = logged()
    assert run(["logs", "--usage"]).stdout == (
        f"# {record['datetime_utc']}    conversation: {record['conversation_id']} id: {record['id']}\n"
        "\n"
        "Model: **solar-pro4** (answered by solar-pro4-260806)\n"
        "\n"
        'Options: `{"top_p": 0.5}`\n'
        "\n"
        "## Prompt\n\nHello\n\n"
        "## System\n\nBe brief\n\n"
        f"## Response\n\n{answers.answer_text('Hello')}\n\n"
        f"## Token usage\n\n{record['prompt_tokens']} input, {record['completion_tokens']} output, "
        f"{record['total_tokens']} total\n")


def test_logs_search_ignores_case_also_in_cyrillic(threaded_emu: Emulator) -> None:
    ask(threaded_emu, "Привет! Как дела?")
    ask(threaded_emu, "something else")
    ask(threaded_emu, "-s", "Отвечай кратко", "third")
    found = json.loads(run(["logs", "-q", "ПРИВЕТ", "--json"]).stdout)
    assert [r["prompt"] for r in found] == ["Привет! Как дела?"]
    assert [r["prompt"] for r in json.loads(run(["logs", "-q", "КРАТКО", "--json"]).stdout)] == ["third"]
    # the answer quotes the prompt, so searching the answers finds it too
    assert [r["prompt"] for r in json.loads(run(["logs", "-q", "«something", "--json"]).stdout)] == \
        ["something else"]
    assert json.loads(run(["logs", "-q", "nowhere", "--json"]).stdout) == []


def test_logs_filters_by_model_conversation_and_prints_the_last_answer(threaded_emu: Emulator) -> None:
    ask(threaded_emu, "-m", "solar-mini", "first")
    ask(threaded_emu, "-c", "second")
    ask(threaded_emu, "other")
    records = logged()
    cid = records[0]["conversation_id"]
    assert records[1]["conversation_id"] == cid
    assert records[2]["conversation_id"] != cid
    assert [r["prompt"] for r in json.loads(run(["logs", "--cid", cid, "--json"]).stdout)] == ["first", "second"]
    assert [r["prompt"] for r in json.loads(run(["logs", "-c", "--json"]).stdout)] == ["other"]
    assert [r["prompt"] for r in json.loads(run(["logs", "-m", "solar-mini", "--json"]).stdout)] == \
        ["first", "second"]
    assert run(["logs", "-r"]).stdout == answers.answer_text("other") + "\n"
    missing = run(["logs", "--cid", "nope"])
    assert missing.exit_code == 2
    assert "no conversation 'nope' in the log" in missing.stderr


def test_logs_before_anything_was_logged(user_dirs: UserDirs) -> None:
    result = run(["logs"])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == f"(nothing logged yet; the log will be {user_dirs.log})\n"
    assert run(["logs", "--json"]).stdout == "[]\n"
    assert not user_dirs.log.exists()


def test_logs_path_and_status(threaded_emu: Emulator, user_dirs: UserDirs) -> None:
    assert run(["logs", "path"]).stdout == f"{user_dirs.log}\n"
    ask(threaded_emu, "one")
    ask(threaded_emu, "-c", "two")
    assert run(["logs", "status"]).stdout == (
        f"Logging is on\nLog: {user_dirs.log}\nConversations: 1\nPrompts and answers: 2\n")


def test_the_log_lives_in_the_xdg_data_dir_unless_told(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SOLARSTREAM_DATA_DIR")
    assert run(["logs", "path"]).stdout == f"{tmp_path / 'xdg-data' / 'solarstream' / 'logs.db'}\n"
    monkeypatch.setenv("SOLARSTREAM_LOGS_PATH", str(tmp_path / "elsewhere.db"))
    assert run(["logs", "path"]).stdout == f"{tmp_path / 'elsewhere.db'}\n"
    assert run(["chat", "--offline", "Hi"]).exit_code == 0
    assert (tmp_path / "elsewhere.db").exists()


# --- continuing a conversation ----------------------------------------------------------------------


def test_continue_sends_the_previous_turns(threaded_emu: Emulator) -> None:
    ask(threaded_emu, "first question")
    first_answer = answers.answer_text("first question")
    ask(threaded_emu, "-c", "second question")
    assert last_body(threaded_emu)["messages"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": first_answer},
        {"role": "user", "content": "second question"},
    ]
    ask(threaded_emu, "--continue", "third")
    assert [m["content"] for m in last_body(threaded_emu)["messages"]] == [
        "first question", first_answer, "second question", answers.answer_text("second question"), "third"]
    assert len({r["conversation_id"] for r in logged()}) == 1


def test_cid_continues_a_given_conversation(threaded_emu: Emulator) -> None:
    ask(threaded_emu, "about cats")
    ask(threaded_emu, "about dogs")
    cats = logged()[0]["conversation_id"]
    ask(threaded_emu, "--cid", cats, "more cats")
    assert [m["content"] for m in last_body(threaded_emu)["messages"]] == [
        "about cats", answers.answer_text("about cats"), "more cats"]
    assert logged()[-1]["conversation_id"] == cats


def test_continue_keeps_the_system_prompt_and_model_unless_told(threaded_emu: Emulator) -> None:
    ask(threaded_emu, "-m", "solar-mini", "-s", "Be brief", "one")
    ask(threaded_emu, "-c", "two")
    body = last_body(threaded_emu)
    assert body["model"] == "solar-mini"
    assert body["messages"][0] == {"role": "system", "content": "Be brief"}
    ask(threaded_emu, "-c", "-m", "solar-pro3", "-s", "Be long", "three")
    body = last_body(threaded_emu)
    assert body["model"] == "solar-pro3"
    assert body["messages"][0] == {"role": "system", "content": "Be long"}
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user", "assistant", "user"]


def test_continue_leaves_out_failed_turns(threaded_emu: Emulator) -> None:
    ask(threaded_emu, "good one")
    assert run(["chat", "-c", "bad one [emulate:error status=503]"], threaded_emu).exit_code == 1
    ask(threaded_emu, "-c", "next")
    assert [m["content"] for m in last_body(threaded_emu)["messages"]] == [
        "good one", answers.answer_text("good one"), "next"]
    assert [r["status"] for r in logged()] == ["complete", "failed", "complete"]


def test_continue_with_no_log_reads_but_does_not_write(threaded_emu: Emulator) -> None:
    ask(threaded_emu, "kept")
    ask(threaded_emu, "-c", "--no-log", "not kept")
    assert len(last_body(threaded_emu)["messages"]) == 3
    assert [r["prompt"] for r in logged()] == ["kept"]


@pytest.mark.parametrize(("args", "message"), [
    (["-c"], "there is no conversation to continue: the log"),
    (["--cid", "01nosuchconversation0000000"], "there is no conversation to continue: the log"),
])
def test_continuing_without_a_log_is_bad_usage(threaded_emu: Emulator, args: list[str], message: str) -> None:
    before = len(threaded_emu.requests)
    result = run(["chat", *args, "Hi"], threaded_emu)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(threaded_emu.requests) == before


def test_a_missing_cid_is_bad_usage(threaded_emu: Emulator) -> None:
    ask(threaded_emu, "something")
    before = len(threaded_emu.requests)
    result = run(["chat", "--cid", "nope", "Hi"], threaded_emu)
    assert result.exit_code == 2
    assert "Error: no conversation 'nope' in the log; 'solarstream logs' shows the ids" in result.stderr
    assert len(threaded_emu.requests) == before
    assert run(["chat", "-c", "--cid", "x", "Hi"], threaded_emu).exit_code == 2


def test_interactive_continues_and_logs_each_turn(threaded_emu: Emulator) -> None:
    ask(threaded_emu, "before")
    result = run(["chat", "-i", "-c"], threaded_emu, input="inside one\n/reset\nafter reset\n")
    assert result.exit_code == 0, result.stderr
    assert "continuing conversation" in result.stderr
    records = logged()
    assert [r["prompt"] for r in records] == ["before", "inside one", "after reset"]
    assert records[0]["conversation_id"] == records[1]["conversation_id"] != records[2]["conversation_id"]
    assert last_body(threaded_emu)["messages"] == [{"role": "user", "content": "after reset"}]


def test_interactive_usage_after_each_answer(threaded_emu: Emulator) -> None:
    result = run(["chat", "-i", "-u"], threaded_emu, input="one\ntwo\n")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("Token usage: ") == 2


# --- several processes at once -----------------------------------------------------------------------


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from solarstream._cli.logstore import LogRecord, LogStore, new_id
    path, name, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    for i in range(count):
        with LogStore(path) as store:  # open per write, as each chat process does
            record = LogRecord(id=new_id(), conversation_id=f"{name}-conversation", model_asked="solar-pro4",
                               model=None, system=None, prompt=f"{name} {i}", response="answer " * 50,
                               reasoning=None, options={}, status="complete", finish_reason="stop", error=None,
                               prompt_tokens=1, completion_tokens=2, total_tokens=3, usage=None,
                               endpoint="offline", datetime_utc="2026-01-01T00:00:00.000Z", duration_ms=1)
            store.add(record, conversation_name=name)
""")


def test_concurrent_writers_do_not_corrupt_the_log(user_dirs: UserDirs) -> None:
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(user_dirs.log), f"w{n}", "40"],
                                stderr=subprocess.PIPE, text=True) for n in range(4)]
    for proc in writers:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with sqlite3.connect(user_dirs.log) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        counts = dict(db.execute("SELECT conversation_id, count(*) FROM responses GROUP BY conversation_id"))
    assert counts == {f"w{n}-conversation": 40 for n in range(4)}
    db.close()


def test_concurrent_chats_all_get_logged(user_dirs: UserDirs) -> None:
    chats = [subprocess.Popen([sys.executable, "-m", "solarstream", "chat", "--offline", f"parallel {n}"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in range(3)]
    for n, proc in enumerate(chats):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out == answers.answer_text(f"parallel {n}") + "\n"
    assert sorted(r["prompt"] for r in logged()) == ["parallel 0", "parallel 1", "parallel 2"]
