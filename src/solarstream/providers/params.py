"""Declarative request rules, one table per endpoint kind (chat, embeddings), and the policy applying them.

A ``Rule`` says how one parameter is treated at one endpoint: checked and sent; dropped when its
value changes nothing there (``noop``), unless ``strict_params`` asks to refuse instead; or refused
with the reason. A provider's spec holds its own tables (built from the pieces here), so a rule
added for one endpoint never widens what another accepts. ``None`` always means "not set" (as in
the OpenAI SDK) and is never sent.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._json import kind as _kind
from ..errors import InvalidRequestError

__all__ = [
    "OPENAI_CHAT",
    "OPENAI_EMBEDDINGS",
    "MessageRules",
    "ParamTable",
    "Rule",
    "apply_rules",
    "check_encodable",
    "check_headers",
    "normalise_messages",
]

log = logging.getLogger("solarstream")

Check = Callable[[str, Any], None]


def bad(param: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"{param}: {message}", param=param)


@dataclass(frozen=True)
class Rule:
    """How one request parameter is treated by one endpoint."""

    #: type and range check for values that are sent
    check: Check | None = None
    #: values that change nothing at this endpoint: dropped before sending (refused under strict_params)
    noop: Callable[[Any], bool] | None = None
    #: why values that are not ``noop`` are refused; ``None``: they are accepted (after ``check``)
    refuse: str | None = None
    #: why a ``noop`` value changes nothing (shown under strict_params and in the debug log)
    why: str = ""


ParamTable = Mapping[str, Rule]


# --- checks ---------------------------------------------------------------------------------------


def number(low: float, high: float) -> Check:
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad(name, f"must be a number, not {_kind(value)}")
        if not low <= value <= high:
            raise bad(name, f"must be between {low:g} and {high:g}, not {value:g}")

    return check


def positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad(name, f"must be a positive integer, not {value!r}")


def integer(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(name, f"must be an integer, not {value!r}")


def string(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise bad(name, f"must be a string, not {_kind(value)}")


def boolean(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise bad(name, f"must be true or false, not {_kind(value)}")


def stop(name: str, value: Any) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise bad(name, "must be a string or a list of strings")


def mapping(name: str, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise bad(name, f"must be an object, not {_kind(value)}")


def stream_options(name: str, value: Any) -> None:
    mapping(name, value)
    unknown = sorted(set(value) - {"include_usage"})
    if unknown:
        raise bad(f"{name}.{unknown[0]}", "unknown option; stream_options takes only include_usage")
    if "include_usage" in value:
        boolean(f"{name}.include_usage", value["include_usage"])


def tools(name: str, value: Any) -> None:
    if not isinstance(value, list):
        raise bad(name, "must be a list of tools")
    for i, tool in enumerate(value):
        if not isinstance(tool, Mapping) or tool.get("type") != "function":
            raise bad(f"{name}[{i}]", 'must be {"type": "function", "function": {...}}')
        fn = tool.get("function")
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise bad(f"{name}[{i}].function.name", "is required")
        if "parameters" in fn and fn["parameters"] is not None and not isinstance(fn["parameters"], Mapping):
            raise bad(f"{name}[{i}].function.parameters", "must be a JSON Schema object")


def tool_choice(name: str, value: Any) -> None:
    if value in ("auto", "none", "required"):
        return
    fn = value.get("function") if isinstance(value, Mapping) else None
    if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
        return
    raise bad(name, 'must be "auto", "none", "required" or {"type": "function", "function": {"name": ...}}')


def response_format(name: str, value: Any) -> None:
    if not isinstance(value, Mapping) or value.get("type") not in ("text", "json_object", "json_schema"):
        raise bad(name, 'must be {"type": "json_object"} or {"type": "json_schema", "json_schema": {...}}')
    if value.get("type") == "json_schema" and not isinstance(value.get("json_schema"), Mapping):
        raise bad(name, 'type "json_schema" needs a "json_schema" object')


def embedding_input(name: str, value: Any) -> None:
    if isinstance(value, str):
        if not value:
            raise bad(name, "is an empty string; give the text to embed")
        return
    if not isinstance(value, list) or not value:
        raise bad(name, "must be a string or a non-empty list of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise bad(f"{name}[{i}]", f"must be a string, not {_kind(item)} (token arrays are not supported)")
        if not item:
            raise bad(f"{name}[{i}]", "is an empty string; give the text to embed")




# --- the OpenAI tables (what the generic OpenAI-compatible provider sends as given) ---------------


def _accept(check: Check | None = None) -> Rule:
    return Rule(check=check)


OPENAI_CHAT: ParamTable = {
    "temperature": _accept(number(0, 2)),
    "top_p": _accept(number(0, 1)),
    "max_tokens": _accept(positive_int),
    "max_completion_tokens": _accept(positive_int),
    "stop": _accept(stop),
    "tools": _accept(tools),
    "tool_choice": _accept(tool_choice),
    "parallel_tool_calls": _accept(boolean),
    "response_format": _accept(response_format),
    "reasoning_effort": _accept(string),
    "stream_options": _accept(stream_options),
    "frequency_penalty": _accept(number(-2, 2)),
    "presence_penalty": _accept(number(-2, 2)),
    "seed": _accept(integer),
    "n": _accept(positive_int),
    "logprobs": _accept(boolean),
    "top_logprobs": _accept(integer),
    "logit_bias": _accept(mapping),
    "user": _accept(string),
    "safety_identifier": _accept(string),
    "prompt_cache_key": _accept(string),
    "store": _accept(boolean),
    "metadata": _accept(mapping),
    "service_tier": _accept(string),
    "modalities": _accept(),
    "audio": _accept(mapping),
    "prediction": _accept(mapping),
    "verbosity": _accept(string),
    "web_search_options": _accept(mapping),
    # vLLM / Ollama extensions commonly sent to OpenAI-compatible servers
    "top_k": _accept(integer),
    "min_p": _accept(number(0, 1)),
    "repetition_penalty": _accept(number(0, 10)),
}

OPENAI_EMBEDDINGS: ParamTable = {
    "encoding_format": _accept(string),
    "dimensions": _accept(positive_int),
    "user": _accept(string),
}

#: each parameter dropped once per process is logged once (at debug level)
_logged_drops: set[tuple[str, str]] = set()


def apply_rules(table: ParamTable, params: Mapping[str, Any], *, strict: bool, where: str) -> dict[str, Any]:
    """The parameters to send: checked, no-ops dropped (or refused when ``strict``), the rest refused."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if value is None:
            continue
        rule = table.get(name)
        if rule is None:
            known = ", ".join(sorted(n for n, r in table.items() if r.refuse is None))
            raise bad(name, f"unknown parameter for {where}; known: {known} (extra_body={{...}} sends anything as is)")
        if rule.noop is not None and rule.noop(value):
            if strict:
                raise bad(name, f"{rule.why} (strict_params=True refuses what would otherwise be dropped)")
            _log_drop(where, name, rule.why)
            continue
        if rule.refuse is not None:
            raise bad(name, rule.refuse)
        if rule.check is not None:
            rule.check(name, value)
        out[name] = value
    return out


def _log_drop(where: str, name: str, why: str) -> None:
    if (where, name) not in _logged_drops:
        _logged_drops.add((where, name))
        log.debug("dropped %s before sending to %s: %s", name, where, why)


# --- messages --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageRules:
    """What an endpoint accepts in ``messages``."""

    #: keys each role may carry (None-valued keys are dropped before this check)
    keys: Mapping[str, frozenset[str]] = field(default_factory=lambda: {
        "system": frozenset({"role", "content", "name"}),
        "user": frozenset({"role", "content", "name"}),
        "assistant": frozenset({"role", "content", "name", "tool_calls"}),
        "tool": frozenset({"role", "content", "tool_call_id", "name"}),
    })
    #: roles that are sent as another role (OpenAI's own rule for models without a developer role)
    renamed_roles: Mapping[str, str] = field(default_factory=lambda: {"developer": "system"})
    #: keys dropped although set: they describe the previous answer and change nothing upstream
    dropped_keys: frozenset[str] = frozenset({"refusal", "annotations", "audio", "function_call", "reasoning",
                                              "reasoning_content"})
    image_input: bool = False
    #: whether any key is allowed (a generic server judges for itself)
    open: bool = False


def _as_dict(message: Any, where: str) -> dict[str, Any]:
    if isinstance(message, dict):
        return message
    if isinstance(message, Mapping):
        return dict(message)
    for method in ("model_dump", "to_dict"):  # the openai SDK's pydantic models, our own objects
        convert = getattr(message, method, None)
        if callable(convert):
            value = convert()
            if isinstance(value, Mapping):
                return dict(value)
    raise bad(where, f"must be an object ({{'role': ..., 'content': ...}}), not {type(message).__name__}")


def normalise_messages(messages: Any, rules: MessageRules, *, strict: bool, where: str) -> list[dict[str, Any]]:
    """Messages as they are sent: objects converted, no-op fields dropped, roles renamed, all checked.

    The caller's list and dicts are never modified; a message that needs no change is sent as is.
    """
    if isinstance(messages, (str, bytes)) or not isinstance(messages, (list, tuple)) or not messages:
        raise bad("messages", "must be a non-empty list of {'role': ..., 'content': ...} objects")
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(messages):
        at = f"messages[{i}]"
        message = _as_dict(raw, at)
        changed = message is not raw
        if None in message.values() or not rules.dropped_keys.isdisjoint(message):
            dropped = [k for k, v in message.items() if (v is None and k != "content") or k in rules.dropped_keys]
            # None means "not set", as for parameters: never refused, even under strict_params
            refused = [k for k in dropped if message[k] is not None]
            if refused and strict:
                raise bad(f"{at}.{refused[0]}", f"is not sent to {where} (strict_params=True refuses it)")
            if dropped:
                message = {k: v for k, v in message.items() if k not in dropped}
                changed = True
        role = message.get("role")
        if isinstance(role, str) and role in rules.renamed_roles:
            if strict:
                raise bad(f"{at}.role", f"{role!r} is sent to {where} as {rules.renamed_roles[role]!r} "
                                        "(strict_params=True refuses it)")
            if not changed:
                message = dict(message)
            role = message["role"] = rules.renamed_roles[role]
            changed = True
        _check_message(message, role, at, rules, where)
        out.append(message if changed else raw)
    return out


def _check_message(message: dict[str, Any], role: Any, at: str, rules: MessageRules, where: str) -> None:
    allowed = rules.keys.get(role) if isinstance(role, str) else None
    if allowed is None and not (rules.open and isinstance(role, str) and role):
        raise bad(f"{at}.role", f"must be one of {', '.join(rules.keys)}, not {role!r}")
    if allowed is not None and not rules.open and not allowed.issuperset(message):
        key = next(k for k in message if k not in allowed)
        raise bad(f"{at}.{key}", f"is not accepted on {role} messages by {where}")
    content = message.get("content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind in ("image_url", "input_image", "image") and not rules.image_input:
                raise bad(f"{at}.content[{j}]", f"image input is not supported by {where} chat models")
            if (kind != "text" or not isinstance(part.get("text"), str)) and not rules.open:
                raise bad(f"{at}.content[{j}]", f"content parts must be text parts, not {kind!r}")
    elif content is None:
        if role != "assistant" or not message.get("tool_calls"):
            raise bad(f"{at}.content", "is required" + (" (or tool_calls)" if role == "assistant" else ""))
    elif not isinstance(content, str):
        raise bad(f"{at}.content", f"must be a string or a list of text parts, not {_kind(content)}")
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise bad(f"{at}.tool_call_id", "is required on tool messages")
    calls = message.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise bad(f"{at}.tool_calls", "must be a list")
        for k, call in enumerate(calls):
            if not isinstance(call, Mapping):
                raise bad(f"{at}.tool_calls[{k}]", "must be an object with id, type and function")


# --- what cannot be sent at all ---------------------------------------------------------------------


def _lone_surrogate(value: str) -> int | None:
    for index, char in enumerate(value):
        if "\ud800" <= char <= "\udfff":
            return index
    return None


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            key_text = str(key)
            yield f"{path}.{key_text}" if path else key_text, key_text
            yield from _walk(item, f"{path}.{key_text}" if path else key_text)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")


def check_encodable(body: Mapping[str, Any]) -> None:
    """Raise ``InvalidRequestError`` naming the field that holds a lone surrogate (not valid UTF-8)."""
    for path, text in _walk(body, ""):
        at = _lone_surrogate(text)
        if at is not None:
            code = f"\\u{ord(text[at]):04x}"
            raise bad(path, f"contains a lone surrogate ({code} at character {at}) that cannot be sent as UTF-8; "
                            "it usually comes from text decoded with errors='surrogateescape' or a broken "
                            "emoji: clean it (e.g. text.encode('utf-8', 'replace').decode())")


_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def check_headers(headers: Any, name: str = "extra_headers") -> dict[str, str]:
    """``extra_headers`` as sent: names must be HTTP tokens, values may not hold CR, LF or NUL.

    Values are never shown in the message (they may be secrets).
    """
    mapping(name, headers)
    out: dict[str, str] = {}
    for key, value in headers.items():
        if not isinstance(key, str) or not key or not set(key) <= _TOKEN_CHARS:
            raise bad(f"{name}[{key!r}]", "is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~)")
        if value is None:
            continue
        if not isinstance(value, str):
            raise bad(f"{name}[{key!r}]", f"must be a string, not {_kind(value)}")
        if any(c in value for c in "\r\n\0"):
            raise bad(f"{name}[{key!r}]", "holds a line break or NUL character, which HTTP headers cannot carry")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise bad(f"{name}[{key!r}]", "holds characters outside Latin-1, which HTTP headers cannot carry; "
                                          "percent-encode it") from None
        out[key] = value
    return out
