"""The batch file formats without any I/O: INPUT lines into work, results into records, OUTPUT lines
(ours, OpenAI's and vLLM's) back into what resuming needs, and the compact id table."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from solarstream.batch.formats import BatchResult, ParseOptions, Problem, Work, parse_line, parse_object, read_record
from solarstream.batch.ids import DONE_ERROR, DONE_OK, IN_INPUT, IdTable
from solarstream.batch.job import default_output
from tests.batchkit import completion_body

# verbatim from OpenAI's Batch API guide (the input line and an output line)
OPENAI_INPUT = ('{"custom_id": "request-1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": '
                '"gpt-3.5-turbo-0125", "messages": [{"role": "system", "content": "You are a helpful assistant."},'
                '{"role": "user", "content": "Hello world!"}],"max_tokens": 1000}}')
OPENAI_OUTPUT = ('{"id": "batch_req_123", "custom_id": "request-2", "response": {"status_code": 200, "request_id": '
                 '"req_123", "body": {"id": "chatcmpl-123", "object": "chat.completion", "created": 1711652795, '
                 '"model": "gpt-3.5-turbo-0125", "choices": [{"index": 0, "message": {"role": "assistant", '
                 '"content": "Hello."}, "logprobs": null, "finish_reason": "stop"}], "usage": {"prompt_tokens": 22, '
                 '"completion_tokens": 2, "total_tokens": 24}, "system_fingerprint": "fp_123"}}, "error": null}')
# OpenAI's error file: no response, an error object
OPENAI_ERROR = ('{"id": "batch_req_456", "custom_id": "request-3", "response": null, "error": {"code": '
                '"batch_expired", "message": "This request could not be executed before the completion window '
                'expired."}}')
# vLLM's run-batch: an id of its own, the error as a string next to a 400 response
VLLM_ERROR = ('{"id":"vllm-5b6f","custom_id":"request-4","response":{"status_code":400,"request_id":'
              '"vllm-batch-1","body":null},"error":"The model does not support Chat Completions API"}')
VLLM_OK = ('{"id":"vllm-8c1a","custom_id":"request-5","response":{"status_code":200,"request_id":"vllm-batch-2",'
           '"body":{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[]}},"error":null}')


def parse(line: str | bytes, number: int = 1, **options: Any) -> Work | Problem:
    raw = line.encode() if isinstance(line, str) else line
    return parse_line(raw + b"\n", number, ParseOptions(**options))


def test_an_openai_batch_request_line_is_read_as_openai_writes_it() -> None:
    work = parse(OPENAI_INPUT)
    assert work == Work("request-1", 1, "gpt-3.5-turbo-0125",
                        [{"role": "system", "content": "You are a helpful assistant."},
                         {"role": "user", "content": "Hello world!"}], {"max_tokens": 1000})


def test_a_short_line_without_an_id_is_named_after_its_line() -> None:
    work = parse('{"messages": [{"role": "user", "content": "hi"}], "temperature": 0.5}', 7, model="solar-mini")
    assert work == Work("line-7", 7, "solar-mini", [{"role": "user", "content": "hi"}], {"temperature": 0.5})


def test_a_lines_own_model_wins_over_the_option() -> None:
    work = parse('{"custom_id": "a", "model": "solar-pro3", "messages": []}', model="solar-mini")
    assert isinstance(work, Work)
    assert work.model == "solar-pro3"


def test_without_a_model_anywhere_the_line_is_a_problem() -> None:
    assert parse('{"custom_id": "a", "messages": []}', 3) == Problem(
        3, 'no model: give the request a "model" or pass -m MODEL', "a")


def test_the_system_option_fills_only_lines_without_a_system_message() -> None:
    plain = parse('{"messages": [{"role": "user", "content": "hi"}]}', model="m", system="Be brief.")
    assert isinstance(plain, Work)
    assert plain.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    own = parse('{"messages": [{"role": "system", "content": "Mine."}, {"role": "user", "content": "hi"}]}',
                model="m", system="Be brief.")
    assert isinstance(own, Work)
    assert own.messages[0] == {"role": "system", "content": "Mine."}
    assert len(own.messages) == 2


def test_a_lines_stream_flag_is_dropped_for_the_option() -> None:
    work = parse('{"messages": [], "stream": true, "top_p": 0.5}', model="m")
    assert isinstance(work, Work)
    assert work.params == {"top_p": 0.5}


def test_prompt_lines_keep_their_text_and_get_the_system_prompt() -> None:
    work = parse_line("  Привет, мир  \r\n".encode(), 4, ParseOptions("solar-mini", "Answer in English.", True))
    assert work == Work("line-4", 4, "solar-mini", [{"role": "system", "content": "Answer in English."},
                                                    {"role": "user", "content": "  Привет, мир  "}])


def test_a_prompt_line_that_is_not_utf8_is_a_problem() -> None:
    assert parse_line(b"caf\xe9\n", 2, ParseOptions("m", prompts=True)) == Problem(
        2, "not valid UTF-8 (byte 0xe9 at column 4)", "line-2")


@pytest.mark.parametrize(("line", "message", "custom_id"), [
    ("{not json", "not valid JSON", "line-1"),
    ("[1, 2]", "not a JSON object but an array", "line-1"),
    ('"text"', "not a JSON object but a string", "line-1"),
    ('{"custom_id": 5, "messages": []}', "custom_id must be a non-empty string, not 5", "line-1"),
    ('{"custom_id": "", "messages": []}', 'custom_id must be a non-empty string, not ""', "line-1"),
    ('{"custom_id": "x", "prompt": "hi"}', "neither an OpenAI Batch request line", "x"),
    ('{"custom_id": "x", "url": "/v1/embeddings", "body": {}}',
     'url must be /v1/chat/completions (batch sends chat completions), not "/v1/embeddings"', "x"),
    ('{"custom_id": "x", "body": {}}', 'no "url": a batch request line needs "url": "/v1/chat/completions"', "x"),
    ('{"custom_id": "x", "method": "GET", "url": "/v1/chat/completions", "body": {}}',
     'method must be "POST", not "GET"', "x"),
    ('{"custom_id": "x", "url": "/v1/chat/completions", "body": "hi"}',
     '"body" must be a JSON object holding the chat request, not a string', "x"),
    ('{"custom_id": "x", "url": "/v1/chat/completions", "body": {}, "extra": 1}',
     "unexpected key 'extra' in a batch request line", "x"),
    ('{"custom_id": "x", "messages": [], "base_url": "http://elsewhere"}',
     "base_url: not a request parameter", "x"),
    ('{"custom_id": "x", "messages": [], "api_key": "up_other"}', "api_key: not a request parameter", "x"),
    ('{"custom_id": "x", "messages": [], "model": 3}', "model must be a string, not 3", "x"),
])
def test_each_kind_of_bad_line_says_what_is_wrong(line: str, message: str, custom_id: str) -> None:
    problem = parse(line, model="m")
    assert isinstance(problem, Problem)
    assert problem.message.startswith(message), problem.message
    assert (problem.line, problem.custom_id) == (1, custom_id)


def test_parse_object_takes_prompts_and_objects() -> None:
    assert parse_object("hello", 3, ParseOptions("m"), prompts=True) == Work("line-3", 3, "m", [{"role": "user",
                                                                                   "content": "hello"}])
    assert isinstance(parse_object(7, 1, ParseOptions("m")), Problem)


def test_a_success_record_has_the_openai_batch_output_shape() -> None:
    result = BatchResult("a", True, 200, "req-9", completion_body("Hi"))
    record = json.loads(result.to_json())
    assert list(record) == ["id", "custom_id", "response", "error"]
    assert record["id"].startswith("batch_req_")
    assert len(record["id"]) == len("batch_req_") + 24
    assert record["custom_id"] == "a"
    assert record["response"] == {"status_code": 200, "request_id": "req-9", "body": completion_body("Hi")}
    assert record["error"] is None
    assert ChatCompletion.model_validate(record["response"]["body"]).choices[0].message.content == "Hi"
    assert result.to_json().endswith(b"}\n")
    assert result.to_json().count(b"\n") == 1
    assert result.content == "Hi"


def test_a_failure_record_carries_the_status_body_and_error() -> None:
    envelope = {"error": {"message": "bad", "code": "invalid_request_body"}}
    record = json.loads(BatchResult.failure("a", "invalid_request_body", "HTTP 400: bad", status_code=400,
                                            request_id=None, body=envelope).to_json())
    assert record["response"] == {"status_code": 400, "request_id": record["id"], "body": envelope}
    assert record["error"] == {"code": "invalid_request_body", "message": "HTTP 400: bad"}
    assert json.loads(BatchResult.failure("b", "timeout", "slow").to_json())["response"] is None


@pytest.mark.parametrize(("line", "custom_id", "ok"), [
    (OPENAI_OUTPUT, "request-2", True),
    (OPENAI_ERROR, "request-3", False),
    (VLLM_ERROR, "request-4", False),
    (VLLM_OK, "request-5", True),
    ('{"custom_id": "x", "response": {"status_code": 429, "body": {}}, "error": null}', "x", False),
])
def test_openai_and_vllm_output_lines_are_understood(line: str, custom_id: str, ok: bool) -> None:
    facts = read_record(line.encode() + b"\n")
    assert facts is not None
    assert (facts.custom_id, facts.ok) == (custom_id, ok)


@pytest.mark.parametrize("line", ["", "{", "[]", '{"custom_id": "x"}', '{"response": null, "error": null}',
                                  '{"custom_id": 3, "error": null}'])
def test_lines_that_are_not_records_are_not_taken_for_records(line: str) -> None:
    assert read_record(line.encode()) is None


def test_the_id_table_keeps_flags_per_id_and_grows() -> None:
    table = IdTable()
    ids = [f"row-{i}" for i in range(50_000)]
    for i, custom_id in enumerate(ids):
        assert table.add(custom_id, DONE_OK if i % 2 else DONE_ERROR) == 0
    assert len(table) == 50_000
    assert table.add("row-1", IN_INPUT) == DONE_OK
    assert table.get("row-1") == DONE_OK | IN_INPUT
    assert table.get("row-2") == DONE_ERROR
    assert table.get("not-there") == 0
    table.clear("row-2", DONE_ERROR)
    assert table.get("row-2") == 0
    assert table.count(DONE_OK | DONE_ERROR) == 49_999
    assert table.count(DONE_OK, lacking=IN_INPUT) == 24_999


def test_the_default_output_replaces_jsonl() -> None:
    from pathlib import Path

    assert default_output(Path("/d/requests.jsonl")) == Path("/d/requests.results.jsonl")
    assert default_output(Path("prompts.txt")) == Path("prompts.txt.results.jsonl")
