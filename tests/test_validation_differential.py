"""The client's request checks against the emulator's, on a generated corpus (issue 10).

The emulator validates requests with its own implementation on purpose (so it can catch the client's
mistakes). This test compares the two verdicts for every request of a generated corpus:

* the client accepts and sends body B: the emulator must accept B (else production gets a 400);
* the client refuses: the emulator must refuse the same request sent as written (else the client is
  stricter than the API for no reason).

Every disagreement fails the test unless it is listed in ``KNOWN`` with its reason.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from solarstream.emulator.validation import ApiError, validate_chat
from solarstream.errors import InvalidRequestError
from solarstream.providers import Upstage

MODELS = ["solar-pro4", "solar-pro3", "solar-mini", "syn-pro"]
USER = [{"role": "user", "content": "Say hi in JSON."}]
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}

#: (parameter, value) pairs, valid and invalid, each tried alone on every model
PARAMS: list[tuple[str, Any]] = [
    ("temperature", 0.5), ("temperature", 0), ("temperature", 2), ("temperature", -1), ("temperature", 3),
    ("temperature", "hot"), ("temperature", True), ("temperature", float("nan")),
    ("top_p", 0.9), ("top_p", 1.5), ("top_p", "x"),
    ("max_tokens", 16), ("max_tokens", 0), ("max_tokens", -5), ("max_tokens", 1.5), ("max_tokens", True),
    ("max_completion_tokens", 16), ("max_completion_tokens", 0),
    ("stop", "x"), ("stop", ["a", "b"]), ("stop", [1]), ("stop", 5),
    ("tools", [TOOL]), ("tools", [{"type": "function"}]), ("tools", "x"), ("tools", [{"type": "retrieval"}]),
    ("tools", [{"type": "function", "function": {"name": "f", "strict": True}}]),
    ("tools", [{"type": "function", "function": {"name": "f", "parameters": "x"}}]),
    ("tool_choice", "auto"), ("tool_choice", "none"), ("tool_choice", "required"), ("tool_choice", "sometimes"),
    ("tool_choice", {"type": "function", "function": {"name": "lookup"}}), ("tool_choice", {"type": "function"}),
    ("response_format", {"type": "json_object"}), ("response_format", {"type": "text"}),
    ("response_format", {"type": "json_schema", "json_schema": {"name": "s", "schema": {}}}),
    ("response_format", {"type": "json_schema"}), ("response_format", {"type": "xml"}), ("response_format", "json"),
    ("reasoning_effort", "high"), ("reasoning_effort", "low"), ("reasoning_effort", "max"),
    ("reasoning_effort", "none"), ("reasoning_effort", "extreme"), ("reasoning_effort", 3),
    ("top_k", 5), ("top_k", 0), ("top_k", "5"),
    ("prompt_cache_key", "k1"), ("prompt_cache_key", 5),
    ("frequency_penalty", 0.5), ("frequency_penalty", 3), ("presence_penalty", -2), ("presence_penalty", "x"),
    ("seed", 1), ("seed", 1.5), ("seed", "1"),
    ("stream_options", {"include_usage": True}), ("stream_options", {"include_usage": "yes"}),
    ("stream_options", {"other": 1}), ("stream_options", "yes"),
    # what OpenAI clients send that Upstage rejects or ignores: the parameter policy
    ("n", 1), ("n", 2), ("store", False), ("store", True), ("logprobs", False), ("logprobs", True),
    ("top_logprobs", 0), ("top_logprobs", 3), ("user", "u-1"), ("parallel_tool_calls", False),
    ("parallel_tool_calls", True), ("parallel_tool_calls", "x"), ("metadata", {"a": "b"}),
    ("service_tier", "auto"), ("service_tier", "flex"), ("modalities", ["text"]), ("modalities", ["audio"]),
    ("logit_bias", {}), ("logit_bias", {"1": 5}), ("frobnicate", 1),
]

#: message lists, valid and invalid
MESSAGES: list[tuple[str, list[Any]]] = [
    ("plain", USER),
    ("system+user", [{"role": "system", "content": "Be brief."}, *USER]),
    ("empty", []),
    ("not a list", "hi"),  # type: ignore[list-item]
    ("developer", [{"role": "developer", "content": "Be brief."}, *USER]),
    ("robot", [{"role": "robot", "content": "x"}]),
    ("int content", [{"role": "user", "content": 5}]),
    ("text parts", [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]),
    ("part without text", [{"role": "user", "content": [{"type": "text"}]}]),
    ("image part", [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
    ("no content", [{"role": "user"}]),
    ("tool without id", [*USER, {"role": "tool", "content": "r"}]),
    ("tool loop", [*USER, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "r"}]),
    ("assistant without content", [*USER, {"role": "assistant", "content": None}, *USER]),
    ("model_dump nulls", [*USER, {"role": "assistant", "content": "hi", "refusal": None, "annotations": None,
                                  "audio": None, "function_call": None, "tool_calls": None}, *USER]),
    ("unknown key", [{"role": "user", "content": "x", "weird": 1}]),
    ("not an object", ["hello"]),
]


@dataclass(frozen=True)
class Case:
    model: str
    messages: Any
    params: dict[str, Any]
    stream: bool

    @property
    def name(self) -> str:
        return json.dumps([self.model, self.params, self.stream], default=str)[:120]


def corpus() -> Iterator[Case]:
    for model, (name, value), stream in itertools.product(MODELS, PARAMS, (True, False)):
        yield Case(model, USER, {name: value}, stream)
    for model, (_, messages) in itertools.product(MODELS, MESSAGES):
        yield Case(model, messages, {}, True)
    yield Case("solar-pro4", USER, {"tools": [TOOL], "tool_choice": "auto", "temperature": 0.2}, True)


#: (predicate, reason): disagreements that are known, each with why
KNOWN: list[tuple[Callable[[Case, str], bool], str]] = [
    (lambda case, verdict: verdict == "client refuses" and "stream_options" in case.params and not case.stream,
     "OpenAI refuses stream_options without stream=True; whether Upstage does is not documented, so the client "
     "refuses it before sending (the emulator only checks its shape)"),
]


def client_verdict(case: Case) -> tuple[bool, Any]:
    """(accepted, the body that would be sent | the error)."""
    provider = Upstage(api_key="up_differential")  # Upstage's own base URL: nothing is sent
    try:
        request = provider.prepare_chat(case.model, case.messages, stream=case.stream, **case.params)
    except InvalidRequestError as exc:
        return False, exc
    return True, json.loads(request.body)


def emulator_verdict(body: dict[str, Any]) -> tuple[bool, str]:
    try:
        validate_chat(body)
    except ApiError as exc:
        return False, f"{exc.code}: {exc.message}"
    return True, ""


def _disagreement(case: Case) -> str | None:
    accepted, sent = client_verdict(case)
    if accepted:
        ok, why = emulator_verdict(sent)
        return None if ok else f"client sends, emulator refuses ({why})"
    raw = {"model": case.model, "messages": case.messages, **case.params, "stream": case.stream}
    ok, _ = emulator_verdict(json.loads(json.dumps(raw, default=str)))
    return "client refuses" if ok else None


def test_the_corpus_is_large_and_mixed() -> None:
    verdicts = [client_verdict(case)[0] for case in corpus()]
    assert len(verdicts) > 500
    assert 0.3 < sum(verdicts) / len(verdicts) < 0.8  # plenty of both valid and invalid requests


def test_client_and_emulator_agree_on_every_request_but_the_known_differences() -> None:
    unexplained = []
    explained = 0
    for case in corpus():
        verdict = _disagreement(case)
        if verdict is None:
            continue
        if any(known(case, verdict) for known, _ in KNOWN):
            explained += 1
            continue
        unexplained.append(f"{case.name} in {json.dumps(case.messages, default=str)[:80]}: {verdict}")
    assert unexplained == []
    assert explained > 0  # the known differences are still real (else remove them from KNOWN)


@pytest.mark.parametrize(("params", "dropped"), [
    ({"user": "u-1"}, "user"), ({"store": False}, "store"), ({"n": 1}, "n"), ({"logprobs": False}, "logprobs"),
    ({"parallel_tool_calls": False}, "parallel_tool_calls"), ({"metadata": {"a": "b"}}, "metadata"),
])
def test_what_the_client_drops_the_emulator_would_have_refused(params: dict[str, Any], dropped: str) -> None:
    """The point of dropping: sent as written, Upstage's strict key check would answer 400."""
    accepted, sent = client_verdict(Case("solar-pro4", USER, params, True))
    assert accepted
    assert dropped not in sent
    ok, why = emulator_verdict({"model": "solar-pro4", "messages": USER, **params})
    assert not ok
    assert dropped in why
