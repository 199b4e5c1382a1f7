"""``solarstream batch``: the pre-pass. Every kind of bad line is named with its line number and the
job sends nothing; ``--skip-invalid`` records bad lines and sends the rest, but a duplicate
custom_id is refused even then; an empty INPUT is a clear message. In process (Click's runner),
against an emulator on its own thread: its request counter proves what was sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from solarstream.cli import cli
from solarstream.emulator import Emulator
from tests.batchkit import (
    EmulatorThread,
    batch_line,
    by_id,
    content,
    expected_answer,
    sent_prompts,
    short_line,
    write_jsonl,
)


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    monkeypatch.delenv("SOLARSTREAM_MODEL", raising=False)
    with EmulatorThread(history=1000) as emulator:
        yield emulator


def batch(emu: Emulator, *args: str | Path) -> Result:
    argv = ["batch", *map(str, args), "--base-url", emu.base_url, "--api-key", emu.api_key]
    return CliRunner().invoke(cli, argv, catch_exceptions=False, prog_name="solarstream")


def problem_lines(result: Result, label: str) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith(f"{label}:")]


BAD: list[tuple[Any, str]] = [
    ("{broken", "not valid JSON"),
    ([1, 2], "not a JSON object but an array"),
    ({"custom_id": "u", "method": "POST", "url": "/v1/embeddings", "body": {"model": "x", "input": "a"}},
     'url must be /v1/chat/completions (batch sends chat completions), not "/v1/embeddings"'),
    ({"custom_id": "n", "messages": [{"role": "user", "content": "hi"}]},
     'no model: give the request a "model" or pass -m MODEL'),
    (short_line("r", "hi", reasoning_effort="high"),
     "reasoning_effort: solar-mini does not reason and Upstage rejects the parameter for it"),
    (short_line("s", "hi", store=True), "store: store=true is rejected by Upstage (HTTP 400)"),
    (short_line("b", "hi", bogus=1), "bogus: unknown parameter for Upstage"),
    (short_line("t", "hi", temperature=5), "temperature: must be between 0 and 2, not 5"),
    ({"custom_id": "d", "model": "solar-mini", "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]},
     "messages[0].content[0]: image input is not supported by Upstage chat models"),
    ({"custom_id": "e", "model": "solar-mini", "messages": []}, "messages: must be a non-empty list"),
    (short_line("k", "hi", base_url="http://elsewhere.example"), "base_url: not a request parameter"),
    ({"custom_id": "j", "model": "solar-mini", "response_format": {"type": "json_object"},
      "messages": [{"role": "user", "content": "no keyword here"}]}, 'response_format: {"type": "json_object"} needs'),
]


@pytest.mark.parametrize(("bad", "message"), BAD)
def test_each_bad_line_is_named_with_its_line_and_nothing_is_sent(
        tmp_path: Path, emu: Emulator, bad: Any, message: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [short_line("ok-1", "fine"), "", bad if isinstance(bad, str)
                                                 else json.dumps(bad), short_line("ok-2", "fine too")])
    result = batch(emu, source)
    assert result.exit_code == 2, result.stderr
    label = str(source)
    [line] = problem_lines(result, label)
    assert line.startswith(f"{label}:3: {message}"), line  # the blank line 2 is counted
    assert "nothing was sent" in result.stderr.splitlines()[-1]
    assert emu.request_count == 0
    assert not (tmp_path / "in.results.jsonl").exists()


def test_the_first_twenty_problems_are_shown_then_a_count(tmp_path: Path, emu: Emulator) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", ["{bad"] * 25 + [json.dumps(short_line("good", "hi"))])
    result = batch(emu, source)
    assert result.exit_code == 2
    shown = problem_lines(result, str(source))
    assert [line.split(":")[1] for line in shown[:20]] == [str(n) for n in range(1, 21)]
    assert shown[20] == f"{source}: ... and 5 more"
    assert result.stderr.splitlines()[-1] == (
        f"solarstream: error: {source}: 25 invalid lines; nothing was sent: fix them, or pass --skip-invalid "
        "to record them as errors and send the rest")
    assert emu.request_count == 0


def test_duplicate_ids_are_refused_even_with_skip_invalid(tmp_path: Path, emu: Emulator) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [short_line("a", "one"), short_line("b", "two"), "{bad",
                                                 short_line("a", "three"), batch_line("b", "four")])
    for extra in ([], ["--skip-invalid"]):
        result = batch(emu, source, *extra)
        assert result.exit_code == 2
        lines = problem_lines(result, str(source))
        dup_a = f"{source}:4: duplicate custom_id 'a' (first on line 1); each request needs its own id"
        dup_b = f"{source}:5: duplicate custom_id 'b' (first on line 2); each request needs its own id"
        assert lines[-2:] == [dup_a, dup_b]
        if extra:  # the bad line would be recorded: only the duplicates stop the job
            assert len(lines) == 2
        else:
            assert lines[0].startswith(f"{source}:3: not valid JSON")
            assert len(lines) == 3
        assert "--skip-invalid does not help" in result.stderr
    assert emu.request_count == 0


def test_an_id_that_an_unnamed_line_would_get_is_a_duplicate_too(tmp_path: Path, emu: Emulator) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [short_line("line-2", "named"), short_line(None, "unnamed")])
    result = batch(emu, source)
    assert result.exit_code == 2
    assert problem_lines(result, str(source)) == [
        f"{source}:2: duplicate custom_id 'line-2' (first on line 1); each request needs its own id"]


def test_skip_invalid_records_bad_lines_and_sends_the_rest(tmp_path: Path, emu: Emulator) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [short_line("a", "first"), "{bad",
                                                 short_line("c", "third", temperature=9), short_line(None, "fourth")])
    result = batch(emu, source, "--skip-invalid")
    assert result.exit_code == 1  # some failed
    records = by_id(tmp_path / "in.results.jsonl")
    assert set(records) == {"a", "line-2", "c", "line-4"}
    assert records["line-2"]["response"] is None
    assert records["line-2"]["error"]["code"] == "invalid_request"
    assert records["line-2"]["error"]["message"].startswith("not valid JSON")
    assert records["c"]["error"] == {"code": "invalid_request",
                                     "message": "temperature: must be between 0 and 2, not 9"}
    assert content(records["a"]) == expected_answer("first")
    assert content(records["line-4"]) == expected_answer("fourth")
    assert sorted(sent_prompts(emu)) == ["first", "fourth"]
    assert "2 succeeded, 2 failed (2 invalid)" in result.stderr


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_an_empty_input_is_a_clear_message(tmp_path: Path, emu: Emulator, text: str) -> None:
    source = tmp_path / "empty.jsonl"
    source.write_text(text)
    result = batch(emu, source)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"solarstream: error: {source} holds no requests (it is empty or every line is blank); nothing to do")
    assert emu.request_count == 0


def test_a_missing_input_is_bad_usage(tmp_path: Path, emu: Emulator) -> None:
    result = batch(emu, tmp_path / "nope.jsonl")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_model_option_fills_lines_without_one_and_a_lines_own_wins(tmp_path: Path, emu: Emulator) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [
        {"custom_id": "no-model", "messages": [{"role": "user", "content": "one"}]},
        short_line("own-model", "two", model="solar-pro3"),
        {"custom_id": "batch", "method": "POST", "url": "/v1/chat/completions",
         "body": {"messages": [{"role": "user", "content": "three"}]}},
    ])
    result = batch(emu, source, "-m", "solar-mini", "--concurrency", "1")
    assert result.exit_code == 0, result.stderr
    models = {str(r.json["messages"][-1]["content"]): r.json["model"] for r in emu.requests}
    assert models == {"one": "solar-mini", "two": "solar-pro3", "three": "solar-mini"}
    assert all(r.json["stream"] is False for r in emu.requests)


def test_prompts_and_a_system_prompt(tmp_path: Path, emu: Emulator) -> None:
    source = tmp_path / "prompts.txt"
    source.write_text("Первый вопрос\n\nSecond question\r\n", encoding="utf-8")
    result = batch(emu, source, "--prompts", "-m", "solar-mini", "-s", "Be brief.", "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 0, result.stderr
    records = by_id(tmp_path / "out.jsonl")
    assert set(records) == {"line-1", "line-3"}
    assert content(records["line-1"]) == expected_answer("Первый вопрос")
    assert content(records["line-3"]) == expected_answer("Second question")
    assert {json.dumps(r.json["messages"], ensure_ascii=False) for r in emu.requests} == {
        json.dumps([{"role": "system", "content": "Be brief."}, {"role": "user", "content": q}],
                   ensure_ascii=False) for q in ("Первый вопрос", "Second question")}


def test_prompts_without_a_model_is_bad_usage(tmp_path: Path, emu: Emulator) -> None:
    source = tmp_path / "prompts.txt"
    source.write_text("hi\n")
    result = batch(emu, source, "--prompts")
    assert result.exit_code == 2
    assert "--prompts needs -m MODEL" in result.stderr
    assert emu.request_count == 0


def test_a_refused_input_leaves_an_existing_output_untouched(tmp_path: Path, emu: Emulator) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [short_line("a", "one"), short_line("b", "two")])
    assert batch(emu, source).exit_code == 0
    output = tmp_path / "in.results.jsonl"
    before = output.read_bytes()
    write_jsonl(source, [short_line("a", "one"), short_line("b", "two"), "{bad"])
    assert batch(emu, source).exit_code == 2
    assert output.read_bytes() == before


def test_no_key_is_one_clear_error_before_the_pre_pass(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [short_line("a", "one")])
    result = CliRunner().invoke(cli, ["batch", str(source)], prog_name="solarstream")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("solarstream: error: no API key: set UPSTAGE_API_KEY or pass --api-key (get one "
                                     "at https://console.upstage.ai/api-keys), or try --offline")


@pytest.mark.parametrize("key", ["up_key\n", "up key", "up_\tkey", "up_ключ", "up_\x00key"])
def test_a_key_that_cannot_be_sent_is_refused_before_the_pre_pass(tmp_path: Path, emu: Emulator, key: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [short_line("a", "one")])
    result = CliRunner().invoke(cli, ["batch", str(source), "--base-url", emu.base_url, "--api-key", key],
                                prog_name="solarstream")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("solarstream: error: the API key contains spaces or control characters; check "
                                     "how it was set")
    assert emu.request_count == 0


@pytest.mark.parametrize("url", ["http://127.0.0.1:1/v1 x", "http://127.0.0.1:1/v1\t", "http://пример.рф/v1"])
def test_a_base_url_that_cannot_be_sent_is_refused(tmp_path: Path, url: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [short_line("a", "one")])
    result = CliRunner().invoke(cli, ["batch", str(source), "--base-url", url, "--api-key", "up_key"],
                                prog_name="solarstream")
    assert result.exit_code == 2
    assert "holds spaces, control or non-ASCII characters" in result.stderr


def test_after_skip_invalid_a_plain_rerun_sends_nothing_and_exits_1(tmp_path: Path, emu: Emulator) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [short_line("a", "first"), "{bad", short_line("c", "x", top_k=0)])
    assert batch(emu, source, "--skip-invalid").exit_code == 1
    output = tmp_path / "in.results.jsonl"
    first = output.read_bytes()
    sent = emu.request_count
    rerun = batch(emu, source)  # the bad lines have their error records: they are not checked again
    assert rerun.exit_code == 1, rerun.stderr
    assert "2 failed before this run (not sent again)" in rerun.stderr
    assert output.read_bytes() == first
    assert emu.request_count == sent
    # --retry-failed would send them again: then they are checked, and refused without --skip-invalid
    again = batch(emu, source, "--retry-failed")
    assert again.exit_code == 2
    assert [line.split(":")[1] for line in problem_lines(again, str(source))] == ["2", "3"]
    assert output.read_bytes() == first
    retried = batch(emu, source, "--retry-failed", "--skip-invalid")
    assert retried.exit_code == 1
    records = by_id(output)
    assert set(records) == {"a", "line-2", "c"}
    assert records["a"] == json.loads(first.splitlines()[0])
    assert records["c"]["error"]["code"] == "invalid_request"
    assert emu.request_count == sent
