"""What the emulator says: deterministic text, reasoning, tool arguments and token counts.

Everything here is a pure function of the request, so the same request always gets the same
answer, and every answer says plainly that it comes from the emulator, not from a model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "BANNER",
    "DEMO_TOOL",
    "SCRIPT_ANSWER",
    "answer_text",
    "content_text",
    "count_tokens",
    "example_value",
    "filler",
    "json_answer",
    "json_answer_for",
    "pieces",
    "prompt_tokens",
    "quote",
    "reasoning_text",
    "split_arguments",
    "tool_result_text",
]

BANNER = "[solarstream emulator]"
_NOT_A_MODEL = "This is an offline test answer, not a model's."
_QUOTE_LIMIT = 200

SCRIPT_ANSWER = (
    f"{BANNER} Safe-rendering test, not a model's answer. **Bold**, _italic_, `inline code` and a "
    '[link](javascript:alert("x")).\n\n<script>alert("x")</script>\n\n<img src="x" onerror="alert(1)">\n\n'
    "```html\n<b>escaped?</b>\n```\n\n- item one\n- item two\n"
)

#: The tool the ``tools`` scenario calls when the request brought none.
DEMO_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Emulator demo tool: the weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"],
        },
    },
}

_PIECE = re.compile(r"\s*\S+|\s+")


def content_text(content: Any) -> str:
    """A message's text: the string, or the text parts of a list joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return ""


def quote(text: str, limit: int = _QUOTE_LIMIT) -> str:
    """The user's words on one line, cut at ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def answer_text(user_text: str) -> str:
    """The normal answer: says what it is and quotes the last user message."""
    if not user_text.strip():
        return f"{BANNER} {_NOT_A_MODEL} Your message was empty."
    return f"{BANNER} {_NOT_A_MODEL} You wrote: «{quote(user_text)}»."


def tool_result_text(tool_name: str, result: str) -> str:
    """The answer after a tool message: proves the tool result reached the 'model'."""
    name = f" {tool_name}" if tool_name else ""
    return f"{BANNER} {_NOT_A_MODEL} The tool{name} returned: «{quote(result)}»."


def reasoning_text(model: str, effort: str | None, user_text: str) -> str:
    """Emulated reasoning: short, deterministic, and marked as such."""
    how = f" at effort {effort}" if effort else ""
    words = len(user_text.split())
    return (f"{BANNER} Emulated reasoning for {model}{how}, not a model's thoughts. "
            f"The last user message has {words} word{'s' if words != 1 else ''}; I will quote it back.")


def json_answer(user_text: str) -> str:
    """An answer for ``response_format: json_object``: a JSON object that says what it is."""
    return json.dumps({"emulator": "solarstream", "note": _NOT_A_MODEL, "you_wrote": quote(user_text)},
                      ensure_ascii=False)


def json_answer_for(schema: Any) -> str:
    """JSON that fits ``schema`` (tool arguments, ``json_schema`` answers); ``{}`` without one."""
    if not isinstance(schema, Mapping):
        return "{}"
    return json.dumps(example_value(schema), ensure_ascii=False)


def pieces(text: str) -> list[str]:
    """Word-sized pieces that join back to ``text`` exactly (each word with its leading blanks).

    Splitting ``str`` (not bytes) keeps every multi-byte character whole."""
    return _PIECE.findall(text)


def filler(size: int) -> str:
    """``size`` ASCII bytes of benchmark text that still says where it comes from."""
    unit = "solarstream emulator benchmark text "
    return (unit * (size // len(unit) + 1))[:size]


def count_tokens(text: str) -> int:
    """A deterministic token estimate: about four bytes of UTF-8 per token."""
    if not text:
        return 0
    return max(1, (len(text.encode()) + 3) // 4)


def prompt_tokens(messages: list[Any]) -> int:
    """Prompt tokens: the text of every message, plus four per message for the role and framing."""
    total = 0
    for message in messages:
        if isinstance(message, Mapping):
            total += 4 + count_tokens(content_text(message.get("content")))
            for call in message.get("tool_calls") or ():
                if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping):
                    total += count_tokens(str(call["function"].get("arguments", "")))
    return total


def example_value(schema: Any, name: str = "value", depth: int = 0) -> Any:
    """A deterministic value that fits a (subset of) JSON Schema: enum/const/default first, then by type."""
    if not isinstance(schema, Mapping) or depth > 8:
        return f"emulated {name}"
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return example_value(options[0], name, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and isinstance(schema.get("properties"), Mapping)):
        props = schema.get("properties")
        if not isinstance(props, Mapping):
            return {}
        return {str(k): example_value(v, str(k), depth + 1) for k, v in props.items()}
    if kind == "array":
        return [example_value(schema.get("items"), name, depth + 1)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return f"emulated {name}"


def split_arguments(arguments: str, parts: int = 3) -> list[str]:
    """Tool-call arguments cut into ``parts`` pieces (fewer for short strings), as APIs stream them."""
    size = max(1, -(-len(arguments) // parts))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)] or [""]
