"""Decide the answer to a valid request: its text pieces, reasoning, tool calls, finish reason and usage.

Pure: the same request and scenarios give the same plan (only tool-call ids are fresh), so how
an answer is put on the wire (``respond``) is separate from what it says.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import answers
from .scenarios import Scenario, strip_directives
from .validation import ApiError, ChatParams

__all__ = ["Plan", "PlannedCall", "last_user_text", "make_plan"]


@dataclass(frozen=True)
class PlannedCall:
    id: str
    name: str
    arguments: str


@dataclass
class Plan:
    reasoning: list[str] = field(default_factory=list)
    #: ``None``: no content at all (tool calls, or reasoning used the whole ``max_tokens``)
    content: list[str] | None = None
    tool_calls: list[PlannedCall] = field(default_factory=list)
    finish_reason: str = "stop"
    usage: dict[str, Any] = field(default_factory=dict)
    #: ``reasoning`` or ``reasoning_content``
    reasoning_field: str = "reasoning"
    #: how many times ``content`` is sent (benchmark answers repeat one piece; cheap to plan)
    repeat: int = 1

    @property
    def text(self) -> str | None:
        return "".join(self.content) * self.repeat if self.content is not None else None


def last_user_text(messages: Any) -> str:
    """The text of the last user message (directives included), or ``""``."""
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, Mapping) and message.get("role") == "user":
                return answers.content_text(message.get("content"))
    return ""


def _tool_result(messages: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(tool name, result) when the conversation ends with a tool message."""
    last = messages[-1]
    if last.get("role") != "tool":
        return None
    call_id = last.get("tool_call_id")
    name = ""
    for message in messages:
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping) and call.get("id") == call_id and isinstance(call.get("function"), Mapping):
                name = str(call["function"].get("name") or "")
    return name, answers.content_text(last.get("content"))


def _tool_calls(params: ChatParams, scenario: Scenario | None) -> list[PlannedCall]:
    tools = params.body.get("tools") or ([answers.DEMO_TOOL] if scenario is not None else [])
    choice = params.body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return []
    functions = [t["function"] for t in tools]
    if isinstance(choice, Mapping):
        wanted = choice["function"]["name"]
        chosen = [f for f in functions if f["name"] == wanted]
        if not chosen:
            raise ApiError(400, "invalid_request_body",
                           f"'tool_choice' names the function '{wanted}', which is not in 'tools'.", "tool_choice")
        functions = chosen
    count = scenario.number("count") if scenario is not None else 1
    picked = [functions[i % len(functions)] for i in range(count)]
    return [
        PlannedCall(f"call_{uuid.uuid4().hex[:24]}", f["name"],
                    answers.json_answer_for(f.get("parameters")))
        for f in picked
    ]


def _text(params: ChatParams, scenarios: Mapping[str, Scenario], user_text: str) -> str:
    result = _tool_result(params.messages)
    if result is not None:
        return answers.tool_result_text(*result)
    if "echo" in scenarios:
        return user_text
    if "script" in scenarios:
        return answers.SCRIPT_ANSWER
    fmt = params.body.get("response_format")
    if isinstance(fmt, Mapping):
        if fmt.get("type") == "json_object":
            return answers.json_answer(user_text)
        if fmt.get("type") == "json_schema":
            return answers.json_answer_for(fmt["json_schema"].get("schema"))
    return answers.answer_text(user_text)


def _cut_at_stop(text: str, stop: Any) -> str:
    words = [stop] if isinstance(stop, str) else stop or []
    cut = min((i for i in (text.find(w) for w in words if w) if i >= 0), default=-1)
    return text[:cut] if cut >= 0 else text


def make_plan(params: ChatParams, scenarios: Mapping[str, Scenario], *, reasoning_field: str = "reasoning",
              cached: bool = False) -> Plan:
    """The answer to ``params`` under ``scenarios``; ``cached``: its ``prompt_cache_key`` was seen before."""
    plan = Plan(reasoning_field=reasoning_field)
    if "reasoning" in scenarios:
        plan.reasoning_field = scenarios["reasoning"].word("field")
    speed = scenarios.get("speed")
    user_text = strip_directives(last_user_text(params.messages))
    budget = params.max_tokens
    if speed is not None:
        plan.content = [answers.filler(speed.number("size"))]
        plan.repeat = speed.number("chunks")
    else:
        if params.reasons or "reasoning" in scenarios:
            plan.reasoning = answers.pieces(answers.reasoning_text(params.info.name, params.effort, user_text))
        if _tool_result(params.messages) is None:
            plan.tool_calls = _tool_calls(params, scenarios.get("tools"))
        if plan.tool_calls:
            finish = scenarios["tools"].word("finish") if "tools" in scenarios else "tool_calls"
            plan.finish_reason = finish
        else:
            text = _text(params, scenarios, user_text)
            stop = params.body.get("stop")
            plan.content = answers.pieces(_cut_at_stop(text, stop) if stop else text)
    if budget is not None and not plan.tool_calls and speed is None:
        _apply_budget(plan, budget)
    plan.usage = _usage(params, plan, cached)
    return plan


def _apply_budget(plan: Plan, budget: int) -> None:
    """Reasoning spends ``max_tokens`` first; what is cut ends with ``finish_reason: length``."""
    spent = 0
    for i, piece in enumerate(plan.reasoning):
        spent += answers.count_tokens(piece)
        if spent > budget:
            plan.reasoning, plan.content, plan.finish_reason = plan.reasoning[:i], None, "length"
            return
    if plan.content is None:
        return
    for i, piece in enumerate(plan.content):
        spent += answers.count_tokens(piece)
        if spent > budget:
            plan.content, plan.finish_reason = plan.content[:i] or None, "length"
            return


def _usage(params: ChatParams, plan: Plan, cached: bool) -> dict[str, Any]:
    reasoning = sum(answers.count_tokens(p) for p in plan.reasoning)
    completion = reasoning + sum(answers.count_tokens(p) for p in plan.content or ()) * plan.repeat
    completion += sum(answers.count_tokens(c.arguments) + answers.count_tokens(c.name) for c in plan.tool_calls)
    usage: dict[str, Any] = {
        "prompt_tokens": params.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": params.prompt_tokens + completion,
    }
    if plan.reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    if "prompt_cache_key" in params.body:
        usage["prompt_tokens_details"] = {"cached_tokens": params.prompt_tokens if cached else 0}
    return usage
