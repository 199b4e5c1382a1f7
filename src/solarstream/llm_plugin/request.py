"""From an ``llm.Prompt`` to the keyword arguments of ``chat.completions.create``.

``prompt.messages`` is the whole chain for this turn (history from ``llm -c``, tool calls and their
results included), so it is translated as it is, never rebuilt from ``conversation``.
"""

from __future__ import annotations

import json
from typing import Any

import llm
from llm.parts import Message, TextPart, ToolCallPart, ToolResultPart

__all__ = ["request_params", "wire_messages"]


def request_params(prompt: llm.Prompt, *, stream: bool) -> dict[str, Any]:
    """``messages`` and the request parameters: options, tools and the response format."""
    params: dict[str, Any] = {name: value for name, value in prompt.options if value is not None}
    if params.pop("json_object", None):
        params["response_format"] = {"type": "json_object"}
    if prompt.schema:
        params["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": prompt.schema}}
    tools = [_tool(tool) for tool in prompt.tools if isinstance(tool, llm.Tool)]
    if tools:
        params["tools"] = tools
    if stream:
        params["stream_options"] = {"include_usage": True}
    return {"messages": wire_messages(prompt.messages), **params}


def _tool(tool: llm.Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.input_schema or {"type": "object"}}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def wire_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """The chain in Upstage's (OpenAI's) message shape.

    Reasoning parts stay out: the API takes no reasoning on messages.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            out.extend(_tool_result(part) for part in message.parts if isinstance(part, ToolResultPart))
            continue
        text = "".join(part.text for part in message.parts if isinstance(part, TextPart))
        calls = [_tool_call(part) for part in message.parts if isinstance(part, ToolCallPart)]
        if message.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
            if calls:
                entry["tool_calls"] = calls
            out.append(entry)
        elif text:
            out.append({"role": message.role, "content": text})
    return out


def _tool_call(part: ToolCallPart) -> dict[str, Any]:
    return {"id": part.tool_call_id, "type": "function",
            "function": {"name": part.name, "arguments": json.dumps(part.arguments, ensure_ascii=False)}}


def _tool_result(part: ToolResultPart) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": part.tool_call_id, "name": part.name,
            "content": part.output or part.exception or ""}
