"""Request validation as the real API does it (shared/UPSTAGE_API.md), with its error codes.

The emulator must refuse what Upstage refuses, or code that passes against it fails in production:
unknown keys, wrong types, ``store``, the ``developer`` role, strict tools, images, reasoning on
models without it, ``json_object`` without the word JSON, retired models, and a prompt plus
``max_tokens`` over the context window.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..providers.upstage import models as _models
from .answers import content_text, prompt_tokens

__all__ = ["ApiError", "ChatParams", "check_api_key", "validate_chat"]

_KEY = re.compile(r"^up_[A-Za-z0-9_]+$")
_ROLES = ("system", "user", "assistant", "tool")


class ApiError(Exception):
    """An error answer: status, ``code`` and the envelope's message."""

    def __init__(self, status: int, code: str, message: str, param: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param


def _bad(message: str, param: str = "") -> ApiError:
    return ApiError(400, "invalid_request_body", message, param)


def check_api_key(authorization: str | None) -> None:
    """``Authorization: Bearer up_...``; the key itself never appears in a message."""
    if not authorization:
        raise ApiError(401, "invalid_api_key", "Missing API key: send the header 'Authorization: Bearer up_...'.")
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not _KEY.match(key.strip()):
        raise ApiError(401, "invalid_api_key",
                       "Invalid API key. Keys look like 'up_' followed by letters and digits.")


@dataclass(frozen=True)
class ChatParams:
    """A request that passed validation."""

    body: dict[str, Any]
    info: _models.ModelInfo
    messages: list[dict[str, Any]]
    stream: bool
    prompt_tokens: int

    @property
    def max_tokens(self) -> int | None:
        value = self.body.get("max_completion_tokens", self.body.get("max_tokens"))
        return value if isinstance(value, int) else None

    @property
    def include_usage(self) -> bool:
        options = self.body.get("stream_options")
        return isinstance(options, Mapping) and options.get("include_usage") is True

    @property
    def effort(self) -> str | None:
        value = self.body.get("reasoning_effort")
        return value if isinstance(value, str) else None

    @property
    def reasons(self) -> bool:
        """Whether this model, with this ``reasoning_effort``, sends reasoning."""
        info, effort = self.info, self.effort
        if not info.reasons:
            return False
        if effort is None:
            return info.reasons_by_default
        return effort not in info.reasoning_off


def _number(low: float, high: float) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _bad(f"'{name}' must be a number.", name)
        if not low <= value <= high:
            raise _bad(f"'{name}' must be between {low:g} and {high:g}.", name)

    return check


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad(f"'{name}' must be a positive integer.", name)


def _integer(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"'{name}' must be an integer.", name)


def _string(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise _bad(f"'{name}' must be a string.", name)


def _boolean(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise _bad(f"'{name}' must be a boolean.", name)


def _stop(name: str, value: Any) -> None:
    if not isinstance(value, str) and not (isinstance(value, list) and all(isinstance(s, str) for s in value)):
        raise _bad(f"'{name}' must be a string or a list of strings.", name)


def _stream_options(name: str, value: Any) -> None:
    if not isinstance(value, Mapping) or set(value) - {"include_usage"}:
        raise _bad(f"'{name}' must be an object with only 'include_usage'.", name)
    if "include_usage" in value:
        _boolean(f"{name}.include_usage", value["include_usage"])


def _tools(name: str, value: Any) -> None:
    if not isinstance(value, list):
        raise _bad(f"'{name}' must be a list.", name)
    for i, tool in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(tool, Mapping) or tool.get("type") != "function":
            raise _bad(f"'{where}' must be an object with type 'function'.", where)
        fn = tool.get("function")
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise _bad(f"'{where}.function.name' is required.", f"{where}.function.name")
        if fn.get("strict") is True:
            raise _bad(f"'{where}.function.strict' is not supported.", f"{where}.function.strict")
        if "parameters" in fn and not isinstance(fn["parameters"], Mapping):
            raise _bad(f"'{where}.function.parameters' must be an object.", f"{where}.function.parameters")


def _tool_choice(name: str, value: Any) -> None:
    if value in ("auto", "none", "required"):
        return
    fn = value.get("function") if isinstance(value, Mapping) else None
    if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
        raise _bad(f"'{name}' must be 'auto', 'none', 'required' or a named function.", name)


def _response_format(name: str, value: Any) -> None:
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise _bad(f"'{name}.type' must be 'text', 'json_object' or 'json_schema'.", f"{name}.type")
    if kind == "json_schema" and not isinstance(value.get("json_schema"), Mapping):
        raise _bad(f"'{name}.json_schema' must be an object.", f"{name}.json_schema")


#: every key the chat endpoint accepts, and its check
_CHECKS: dict[str, Callable[[str, Any], None]] = {
    "model": _string,
    "messages": lambda name, value: None,  # checked on its own
    "stream": _boolean,
    "stream_options": _stream_options,
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "max_tokens": _positive_int,
    "max_completion_tokens": _positive_int,
    "stop": _stop,
    "tools": _tools,
    "tool_choice": _tool_choice,
    "response_format": _response_format,
    "reasoning_effort": _string,
    "top_k": _positive_int,
    "prompt_cache_key": _string,
    "frequency_penalty": _number(-2, 2),
    "presence_penalty": _number(-2, 2),
    "seed": _integer,
}


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise _bad("'messages' must be a non-empty list.", "messages")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _bad(f"'{where}' must be an object.", where)
        role = message.get("role")
        if role == "developer":
            raise _bad(f"'{where}.role': 'developer' is not supported; use 'system'.", f"{where}.role")
        if role not in _ROLES:
            raise _bad(f"'{where}.role' must be one of {', '.join(_ROLES)}.", f"{where}.role")
        extra = set(message) - {"role", "content", "name", "tool_calls", "tool_call_id"}
        if extra:
            key = sorted(extra)[0]
            raise _bad(f"Unknown key '{where}.{key}'.", f"{where}.{key}")
        content = message.get("content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, Mapping) else None
                if kind in ("image_url", "input_image", "image"):
                    raise _bad(f"'{where}.content[{j}]': image input is not supported by this model.",
                               f"{where}.content")
                if kind != "text" or not isinstance(part.get("text"), str):
                    raise _bad(f"'{where}.content[{j}]' must be a text part.", f"{where}.content")
        elif content is None:
            if role != "assistant" or not message.get("tool_calls"):
                raise _bad(f"'{where}.content' is required.", f"{where}.content")
        elif not isinstance(content, str):
            raise _bad(f"'{where}.content' must be a string or a list of text parts.", f"{where}.content")
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise _bad(f"'{where}.tool_call_id' is required for tool messages.", f"{where}.tool_call_id")
    return messages


def resolve_model(name: str) -> _models.ModelInfo:
    """A current name or dated id; retired and unknown names are a 400 ``invalid_request_body``."""
    info = _models.lookup(name)
    if info is not None:
        return info
    retired = _models.RETIRED.get(name)
    if retired is not None:
        raise _bad(f"The model '{name}' is retired (since {retired.retired}); use '{retired.successor}' "
                   "instead.", "model")
    raise _bad(f"Invalid model '{name}'. Available models: {', '.join(_models.CURRENT_MODELS)}.", "model")


def validate_chat(body: Any) -> ChatParams:
    """Check a chat-completions body in the order the API reports problems."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    if "store" in body:
        raise _bad("Unknown key 'store': storing completions is not supported.", "store")
    for key in body:
        if key not in _CHECKS:
            raise _bad(f"Unknown key '{key}'.", key)
    if "model" not in body:
        raise _bad("'model' is required.", "model")
    for key, value in body.items():
        _CHECKS[key](key, value)
    messages = _check_messages(body.get("messages"))
    info = resolve_model(body["model"])
    if "reasoning_effort" in body:
        if not info.reasons:
            raise _bad(f"'reasoning_effort' is not supported by the model '{info.name}'.", "reasoning_effort")
        if body["reasoning_effort"] not in info.reasoning_efforts:
            raise _bad(f"'reasoning_effort' for '{info.name}' must be one of {', '.join(info.reasoning_efforts)}.",
                       "reasoning_effort")
    if body.get("tools") and not info.tools:
        raise _bad(f"The model '{info.name}' does not support tool calling.", "tools")
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_object" and \
            not any("JSON" in content_text(m.get("content")) for m in messages):
        raise _bad("'response_format' of type 'json_object' requires the word 'JSON' in the messages.",
                   "response_format")
    tokens = prompt_tokens(messages)
    params = ChatParams(body, info, messages, body.get("stream") is True, tokens)
    limit = params.max_tokens
    if limit is not None and info.max_output is not None and limit > info.max_output:
        raise _bad(f"'max_tokens' must be at most {info.max_output} for '{info.name}'.", "max_tokens")
    window = info.context_window
    if window is not None and tokens + (limit or 0) > window:
        raise ApiError(400, "context_length_exceeded",
                       f"This model's maximum context length is {window} tokens; the request has {tokens} prompt "
                       f"tokens and max_tokens {limit or 0}. Shorten the messages or lower max_tokens.",
                       "messages")
    return params
