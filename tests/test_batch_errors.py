"""What each kind of failure becomes in a job: a record (4xx at once; 5xx, 408, resets and broken
answers after ``max_attempts``), a free retry (429 ``too_many_requests``), or the job stopped with
one clear line and no record for the request that hit it (401, 403, 429 ``usage_limit_exceeded``).
Through the Python API against the emulator's fault scenarios and the raw server's exact bytes;
the command's exit statuses at the end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from solarstream import batch
from solarstream.cli import cli
from solarstream.emulator import Emulator
from solarstream.errors import AuthenticationError, InvalidRequestError, QuotaExceededError
from tests.batchkit import (
    UNBOUND,
    EmulatorThread,
    by_id,
    completion_reply,
    content,
    error_reply,
    expected_answer,
    sent_prompts,
    short_line,
    write_jsonl,
)
from tests.rawserver import RawServer, Reply


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(history=1000, **UNBOUND) as emulator:
        yield emulator


async def run_lines(tmp_path: Path, emu: Emulator, lines: list[dict[str, Any]], **options: Any) -> batch.BatchSummary:
    source = write_jsonl(tmp_path / "in.jsonl", lines)
    return await batch.arun(source, tmp_path / "out.jsonl", base_url=emu.base_url, api_key=emu.api_key, **options)


def attempts(emu: Emulator, scenario: str) -> int:
    return emu.attempts.get(scenario, 0)


async def test_a_400_is_recorded_at_once_with_the_apis_status_and_body(tmp_path: Path, emu: Emulator) -> None:
    summary = await run_lines(tmp_path, emu, [
        short_line("bad", "hi [emulate:error status=400 code=invalid_request_body]"), short_line("ok", "fine")])
    assert (summary.succeeded, summary.failed, summary.ok, summary.exit_status) == (1, 1, False, 1)
    record = by_id(tmp_path / "out.jsonl")["bad"]
    assert record["response"]["status_code"] == 400
    assert record["response"]["request_id"]
    assert record["response"]["body"]["error"]["code"] == "invalid_request_body"
    assert record["error"]["code"] == "invalid_request_body"
    assert record["error"]["message"].startswith("HTTP 400 invalid_request_body:")
    assert attempts(emu, "error body=envelope code=invalid_request_body status=400 times=0") == 1


@pytest.mark.parametrize(("status", "code"), [(500, "internal_server_error"), (503, "service_unavailable"),
                                              (408, "request_timeout")])
async def test_server_errors_and_408_are_retried_up_to_max_attempts_then_recorded(
        tmp_path: Path, emu: Emulator, status: int, code: str) -> None:
    summary = await run_lines(tmp_path, emu, [short_line("x", f"hi [emulate:error status={status}]")],
                              max_attempts=3)
    assert emu.attempts == {f"error body=envelope code= status={status} times=0": 3}
    record = by_id(tmp_path / "out.jsonl")["x"]
    assert record["response"]["status_code"] == status
    assert record["error"]["code"] == code
    assert summary.retries == 2


async def test_a_server_error_that_clears_within_max_attempts_succeeds(tmp_path: Path, emu: Emulator) -> None:
    summary = await run_lines(tmp_path, emu, [short_line("x", "hi [emulate:error status=502 times=2]")],
                              max_attempts=3)
    assert summary.ok
    assert content(by_id(tmp_path / "out.jsonl")["x"]) == expected_answer("hi")


@pytest.mark.parametrize(("scenario", "code"), [("reset", "connection_error"), ("truncate", "incomplete_response")])
async def test_resets_and_broken_answers_are_retried_then_recorded(
        tmp_path: Path, emu: Emulator, scenario: str, code: str) -> None:
    await run_lines(tmp_path, emu, [short_line("x", f"hi [emulate:{scenario}]")], max_attempts=2)
    assert sent_prompts(emu) == [f"hi [emulate:{scenario}]"] * 2
    record = by_id(tmp_path / "out.jsonl")["x"]
    assert record["response"] is None
    assert record["error"]["code"] == code


async def test_a_429_is_retried_without_counting_an_attempt(tmp_path: Path, emu: Emulator) -> None:
    line = short_line("x", "hi [emulate:rate-limit header=retry-after-ms delay_ms=20 times=3]")
    summary = await run_lines(tmp_path, emu, [line], max_attempts=1)
    assert summary.ok
    assert len(sent_prompts(emu)) == 4
    assert summary.rate_limited == 3
    assert content(by_id(tmp_path / "out.jsonl")["x"]) == expected_answer("hi")


@pytest.mark.parametrize(("directive", "error"), [
    ("[emulate:error status=401]", AuthenticationError),
    ("[emulate:error status=403]", InvalidRequestError),
    ("[emulate:rate-limit code=usage_limit_exceeded]", QuotaExceededError),
])
async def test_a_bad_key_or_exhausted_quota_stops_the_job_and_its_request_gets_no_record(
        tmp_path: Path, emu: Emulator, directive: str, error: type[Exception]) -> None:
    lines = [short_line("a", "first"), short_line("b", "second"), short_line("stop", f"third {directive}"),
             short_line("d", "fourth"), short_line("e", "fifth")]
    summary = await run_lines(tmp_path, emu, lines, concurrency=1)
    assert isinstance(summary.stopped_by, error)
    assert summary.stop_message == summary.stopped_by.message
    assert summary.exit_status == 1
    assert set(by_id(tmp_path / "out.jsonl")) == {"a", "b"}
    assert sent_prompts(emu) == ["first", "second", f"third {directive}"]  # nothing after it
    assert summary.remaining == 3


async def test_a_stopped_job_resumes_with_the_request_that_stopped_it(tmp_path: Path, emu: Emulator) -> None:
    async with RawServer() as server:
        server.enqueue(completion_reply("one"), error_reply(401, "invalid_api_key", "Invalid API key"))
        source = write_jsonl(tmp_path / "in.jsonl", [short_line("a", "first"), short_line("b", "second"),
                                                     short_line("c", "third")])
        stopped = await batch.arun(source, tmp_path / "out.jsonl", base_url=server.base_url, api_key="up_x",
                                   concurrency=1)
        assert isinstance(stopped.stopped_by, AuthenticationError)
        assert len(server.requests) == 2
    resumed = await batch.arun(source, tmp_path / "out.jsonl", base_url=emu.base_url, api_key=emu.api_key)
    assert resumed.ok
    assert resumed.already_done == 1
    assert sorted(sent_prompts(emu)) == ["second", "third"]


async def test_a_wait_longer_than_a_job_takes_stops_the_job(tmp_path: Path) -> None:
    async with RawServer() as server:
        server.enqueue(error_reply(429, "too_many_requests", "slow down", headers=[("Retry-After", "7200")]))
        source = write_jsonl(tmp_path / "in.jsonl", [short_line("a", "first")])
        summary = await batch.arun(source, tmp_path / "out.jsonl", base_url=server.base_url, api_key="up_x")
    assert summary.stop_message is not None
    assert "the API asks to wait for 7200s, longer than a job waits (900s): rerun the same command later" \
        in summary.stop_message
    assert (tmp_path / "out.jsonl").read_bytes() == b""


async def test_an_answer_that_is_not_json_is_retried_then_recorded(tmp_path: Path) -> None:
    html = Reply(200, (("Content-Type", "text/html"),), [b"<html>proxy says hi</html>"], framing="length")
    async with RawServer() as server:
        server.enqueue(html, html)
        source = write_jsonl(tmp_path / "in.jsonl", [short_line("a", "first")])
        await batch.arun(source, tmp_path / "out.jsonl", base_url=server.base_url, api_key="up_x", max_attempts=2)
        assert len(server.requests) == 2
    record = by_id(tmp_path / "out.jsonl")["a"]
    assert record["error"]["code"] == "invalid_response"
    assert "not JSON" in record["error"]["message"]


async def test_the_raw_servers_request_id_goes_into_the_record(tmp_path: Path) -> None:
    async with RawServer() as server:
        server.enqueue(completion_reply("exact"))
        source = write_jsonl(tmp_path / "in.jsonl", [short_line("a", "first")])
        summary = await batch.arun(source, tmp_path / "out.jsonl", base_url=server.base_url, api_key="up_x")
        sent = server.requests[0]
    assert summary.ok
    assert (summary.tokens_in, summary.tokens_out) == (5, 2)
    record = by_id(tmp_path / "out.jsonl")["a"]
    assert record["response"]["request_id"] == "req-raw-1"
    assert content(record) == "exact"
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer up_x"
    assert sent.json() == {"model": "solar-mini", "messages": [{"role": "user", "content": "first"}],
                           "stream": False}


async def test_streamed_requests_are_recorded_as_whole_completions(tmp_path: Path, emu: Emulator) -> None:
    summary = await run_lines(tmp_path, emu, [short_line("a", "streamed please")], stream=True)
    assert summary.ok
    assert summary.tokens_out > 0
    sent = emu.requests[-1].json
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    record = by_id(tmp_path / "out.jsonl")["a"]
    assert record["response"]["body"]["object"] == "chat.completion"
    assert content(record) == expected_answer("streamed please")
    assert record["response"]["body"]["usage"]["completion_tokens"] == summary.tokens_out


async def test_a_stream_that_breaks_is_sent_again(tmp_path: Path, emu: Emulator) -> None:
    summary = await run_lines(tmp_path, emu, [short_line("a", "hi [emulate:midstream-error after=2]")], stream=True,
                              max_attempts=2)
    assert len(sent_prompts(emu)) == 2
    assert summary.failed == 1
    assert by_id(tmp_path / "out.jsonl")["a"]["error"]["code"] == "internal_server_error"


@pytest.mark.parametrize(("directive", "status", "line"), [
    ("", 0, None),
    ("[emulate:error status=400]", 1, None),
    ("[emulate:error status=401]", 1, "solarstream: error: HTTP 401"),
])
def test_the_commands_exit_status_for_each_outcome(tmp_path: Path, directive: str, status: int,
                                                   line: str | None) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [short_line("a", f"hi {directive}")])
    with EmulatorThread() as emu:
        result = CliRunner().invoke(cli, ["batch", str(source), "--base-url", emu.base_url, "--api-key",
                                          emu.api_key], prog_name="solarstream")
    assert result.exit_code == status, result.stderr
    if line is not None:
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(line)
        assert "check UPSTAGE_API_KEY" in last
        assert "stopped: 1 requests have no record yet" in result.stderr
