"""From solarstream's chunks and completions to llm's ``StreamEvent`` objects and response records.

Reasoning becomes ``reasoning`` events, which llm shows dimmed on stderr (hidden by ``-R``) and logs
beside the answer; tool calls become ``tool_call_name``/``tool_call_args`` events and, once the
answer is complete, ``response.add_tool_call`` entries for llm's tool loop. One ``Answer`` serves the
sync and the async model alike: only the loop that feeds it differs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import llm
from llm.parts import StreamEvent
from llm.utils import simplify_usage_dict

from ..types import ChatCompletion, ChatCompletionChunk, ToolCall, Usage

__all__ = ["Answer", "usage_record"]


class Answer:
    """What one answer has said so far, as llm events; ``finish`` records the rest on the response."""

    def __init__(self) -> None:
        #: tool-call index -> the id its events carry (the API's id, or the core's ``call_<index>``)
        self._ids: dict[int, str] = {}
        self._reasoned = False

    def feed(self, chunk: ChatCompletionChunk) -> Iterator[StreamEvent]:
        """The events of one streamed chunk."""
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta.reasoning:
                self._reasoned = True
                yield StreamEvent(type="reasoning", chunk=delta.reasoning)
            for piece in delta.tool_calls or ():
                call_id = self._ids.get(piece.index)
                if call_id is None:
                    call_id = self._ids[piece.index] = piece.id or f"call_{piece.index}"
                    name = piece.function.name if piece.function else None
                    yield StreamEvent(type="tool_call_name", chunk=name or "", tool_call_id=call_id)
                arguments = piece.function.arguments if piece.function else None
                if arguments:
                    yield StreamEvent(type="tool_call_args", chunk=arguments, tool_call_id=call_id)
            if delta.content:
                yield StreamEvent(type="text", chunk=delta.content)

    def whole(self, completion: ChatCompletion) -> Iterator[StreamEvent]:
        """The events of a non-streamed completion, in the order a stream would give them."""
        if not completion.choices:
            return
        message = completion.choices[0].message
        if message.reasoning:
            self._reasoned = True
            yield StreamEvent(type="reasoning", chunk=message.reasoning)
        for index, call in enumerate(message.tool_calls or ()):
            call_id = self._ids[index] = call.id or f"call_{index}"
            yield StreamEvent(type="tool_call_name", chunk=call.function.name or "", tool_call_id=call_id)
            yield StreamEvent(type="tool_call_args", chunk=call.function.arguments or "", tool_call_id=call_id)
        if message.content:
            yield StreamEvent(type="text", chunk=message.content)

    def finish(self, response: Any, completion: ChatCompletion) -> Iterator[StreamEvent]:
        """Record tool calls, usage, the resolved model and the raw answer on the llm ``response``.

        Yields one redacted ``reasoning`` marker when the model reports reasoning tokens but sent no
        reasoning text, as llm's own plugins do.
        """
        calls = completion.choices[0].message.tool_calls if completion.choices else None
        for index, call in zip(sorted(self._ids), calls or (), strict=False):
            response.add_tool_call(llm.ToolCall(name=call.function.name or "", arguments=_arguments(call),
                                                tool_call_id=self._ids[index]))
        if completion.usage is not None:
            response.set_usage(**usage_record(completion.usage))
            if completion.usage.reasoning_tokens and not self._reasoned:
                yield StreamEvent(type="reasoning", chunk="", redacted=True)
        if completion.model:
            response.set_resolved_model(completion.model)
        response.response_json = completion.to_dict()


def _arguments(call: ToolCall) -> dict[str, Any]:
    """The call's arguments as a dict; text that is not a JSON object is kept under ``_raw``, as llm does."""
    text = call.function.arguments or ""
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return {"_raw": text}
    return value if isinstance(value, dict) else {"_raw": text}


def usage_record(usage: Usage) -> dict[str, Any]:
    """``response.set_usage`` arguments: prompt and completion tokens, and the non-zero details."""
    details = simplify_usage_dict({"completion_tokens_details": usage.completion_tokens_details or {},
                                   "prompt_tokens_details": usage.prompt_tokens_details or {}})  # type: ignore[no-untyped-call]
    return {"input": usage.prompt_tokens, "output": usage.completion_tokens, "details": details or None}
