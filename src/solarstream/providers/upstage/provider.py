"""``Upstage``: the seed's provider, on Upstage's documented API, and everything Upstage-specific.

The row (``UPSTAGE``): base URL, key and base-URL variables, the parameter tables (what Upstage
accepts, what it rejects and why, what changes nothing and is dropped), the message rules and the
model catalogue. The quirks (``UpstageQuirks``): how Upstage reports a retired model, a blocked key
or an exhausted quota, its ``X-Upstage-RateLimit-*`` headers, and its model-specific request rules.
Nothing outside this package (and the emulator) knows any of it.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from ..._retry import RateLimitFacts, usable_delay
from ...errors import (
    HINTS,
    APIStatusError,
    AuthenticationError,
    InvalidRequestError,
    ModelNotSupportedError,
    QuotaExceededError,
)
from ...types import Messages
from .. import params as p
from ..base import content_text
from ..openai_compatible import OpenAICompatibleProvider
from ..params import MessageRules, ParamTable, Rule
from ..spec import ModelCatalog, ProviderSpec, Quirks, ResolvedModel
from . import models as _models

__all__ = ["UPSTAGE", "Upstage", "UpstageQuirks"]

_NOT_UPSTAGE = "is not supported by Upstage"
_SUCCESSOR = re.compile(r"\buse '([A-Za-z0-9][A-Za-z0-9._/:-]*)' instead")


def _tools(name: str, value: Any) -> None:
    p.tools(name, value)
    for i, tool in enumerate(value):
        if tool["function"].get("strict") is True:
            raise p.bad(f"{name}[{i}].function.strict", "strict tools are rejected by Upstage (HTTP 400); remove it")


#: what Upstage's chat endpoint takes, and what it does with everything else an OpenAI client sends
CHAT_PARAMS: ParamTable = {
    "temperature": Rule(p.number(0, 2)),
    "top_p": Rule(p.number(0, 1)),
    "max_tokens": Rule(p.positive_int),
    "max_completion_tokens": Rule(p.positive_int),
    "stop": Rule(p.stop),
    "tools": Rule(_tools),
    "tool_choice": Rule(p.tool_choice),
    "response_format": Rule(p.response_format),
    "reasoning_effort": Rule(p.string),
    "top_k": Rule(p.positive_int),
    "prompt_cache_key": Rule(p.string),
    "stream_options": Rule(p.stream_options),
    "frequency_penalty": Rule(p.number(-2, 2)),
    "presence_penalty": Rule(p.number(-2, 2)),
    "seed": Rule(p.integer),
    # changes nothing at Upstage: dropped (refused under strict_params)
    "user": Rule(p.string, noop=lambda v: isinstance(v, str), why="Upstage has no end-user field"),
    "safety_identifier": Rule(p.string, noop=lambda v: isinstance(v, str), why="Upstage has no end-user field"),
    "parallel_tool_calls": Rule(
        p.boolean, noop=lambda v: isinstance(v, bool),
        why="Upstage has no such switch: the model makes the tool calls it decides on, one or several"),
    "store": Rule(noop=lambda v: v is False, why="Upstage never stores completions",
                  refuse="store=true is rejected by Upstage (HTTP 400): it does not store completions; remove it"),
    "metadata": Rule(p.mapping, noop=lambda v: isinstance(v, Mapping),
                     why="metadata only labels stored completions, and Upstage stores none"),
    "n": Rule(noop=lambda v: v == 1 and not isinstance(v, bool), why="Upstage gives one answer per request",
              refuse="Upstage gives one answer per request; send n separate requests"),
    "logprobs": Rule(noop=lambda v: v is False, why="Upstage returns no log probabilities",
                     refuse="Upstage returns no log probabilities; remove logprobs"),
    "top_logprobs": Rule(noop=lambda v: v == 0 and not isinstance(v, bool), why="Upstage returns no log probabilities",
                         refuse="Upstage returns no log probabilities; remove top_logprobs"),
    "logit_bias": Rule(noop=lambda v: v == {}, why="an empty logit_bias changes nothing",
                       refuse=f"logit_bias {_NOT_UPSTAGE}"),
    "service_tier": Rule(noop=lambda v: v in ("auto", "default"), why="Upstage has one service tier",
                         refuse="Upstage has no service tiers; remove service_tier"),
    "modalities": Rule(noop=lambda v: v == ["text"], why="Solar chat models answer in text",
                       refuse="Solar chat models answer in text only; remove modalities"),
    # would change the answer and cannot be honoured: refused with the reason
    "audio": Rule(refuse="Solar chat models do not produce audio"),
    "prediction": Rule(refuse=f"predicted outputs are {_NOT_UPSTAGE[3:]}"),
    "verbosity": Rule(refuse=f"verbosity {_NOT_UPSTAGE}"),
    "web_search_options": Rule(refuse=f"web search {_NOT_UPSTAGE}"),
    "functions": Rule(refuse="the legacy functions API is not supported; use tools"),
    "function_call": Rule(refuse="the legacy functions API is not supported; use tool_choice"),
}

EMBEDDING_PARAMS: ParamTable = {
    "user": Rule(p.string, noop=lambda v: isinstance(v, str), why="Upstage has no end-user field"),
    "dimensions": Rule(p.positive_int, refuse="Upstage embedding models have fixed sizes (1024 for "
                       "solar-embedding-2-*); remove dimensions"),
}

_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id"})

#: fields clients add to the answers they return, which come back in ``message.model_dump()``: the
#: openai SDK's ``parsed`` (from ``parse()``) and LiteLLM's ``provider_specific_fields`` (the reasoning).
#: They describe the previous answer and change nothing upstream, like ``refusal`` and ``audio``.
_CLIENT_ONLY_KEYS = frozenset({"parsed", "provider_specific_fields"})

MESSAGES = MessageRules(keys={role: _KEYS for role in ("system", "user", "assistant", "tool")},
                        dropped_keys=MessageRules.dropped_keys | _CLIENT_ONLY_KEYS)

CATALOG = ModelCatalog(
    default_model=_models.DEFAULT_MODEL,
    chat_models=tuple(_models.CURRENT_MODELS),
    aliases=_models.ALIASES,
    retired={name: r.successor for name, r in _models.RETIRED.items()},
    lookup=_models.lookup,
    embedding_models=_models.EMBEDDING_MODELS,
    listed=_models.listed,
)

_RATE = "x-upstage-ratelimit-"


def _number(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(_RATE + name)
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _delay_from_stamp(stamp: float, now: float) -> float | None:
    """Upstage's retry and reset headers are Unix timestamps (seen in ms too); small numbers are delays."""
    if stamp > 1e12:  # milliseconds since the epoch
        stamp /= 1000
    if stamp < 1e9:  # a small number is a delay, not a timestamp
        return usable_delay(stamp)
    return usable_delay(max(stamp - now, 0.0))


#: the parameters whose rules depend on the model
_MODEL_RULED = frozenset({"reasoning_effort", "tools", "response_format", "max_tokens", "max_completion_tokens"})


class UpstageQuirks(Quirks):
    """Where Upstage's API departs from OpenAI's (shared/UPSTAGE_API.md)."""

    request_id_headers = ("x-request-id", "request-id", "x-upstage-request-id")
    stop_with_tool_calls = True  # seen: a forced tool call finished with "stop"
    owned_by = "upstage"
    hints: Mapping[type[APIStatusError], str] = {
        **HINTS,
        AuthenticationError: "check UPSTAGE_API_KEY (keys start with 'up_') or pass api_key=",
        QuotaExceededError: "add credits or a payment method in the Upstage console",
        ModelNotSupportedError: f"use a current model: {', '.join(_models.CURRENT_MODELS)}",
    }

    def classify_error(self, status: int, code: str | None, message: str) -> type[APIStatusError] | None:
        if status == 401 and code == "api_key_is_blocked":
            return QuotaExceededError
        if status == 429 and code == "usage_limit_exceeded":
            return QuotaExceededError
        if status == 403 and any(w in message.lower() for w in ("credit", "quota", "billing", "payment", "balance")):
            return QuotaExceededError  # seen: 403 "Insufficient credit" from an account without credit
        if status == 400 and code == "invalid_request_body" and _names_a_bad_model(message):
            # Upstage reports a retired or invalid model as a generic 400 body error; the message is
            # the only place that says which, so this is the one rule that reads it.
            return ModelNotSupportedError
        return None

    def successor(self, error: APIStatusError) -> str | None:
        """Upstage names a retired model's replacement: ``... is retired (...); use 'solar-pro3' instead.``"""
        if not isinstance(error, ModelNotSupportedError):
            return None
        found = _SUCCESSOR.search(error.message)
        return found[1] if found else None

    def retry_after(self, headers: Mapping[str, str], now: float | None = None) -> float | None:
        """The standard headers first, else ``X-Upstage-RateLimit-Retry-After-*`` (the later one wins)."""
        now = time.time() if now is None else now
        standard = super().retry_after(headers, now)
        if standard is not None:
            return standard
        delays = [d for d in (self._stamp_delay(headers, name, now) for name in
                              ("retry-after-requests", "retry-after-tokens")) if d is not None]
        return max(delays) if delays else None

    def _stamp_delay(self, headers: Mapping[str, str], name: str, now: float) -> float | None:
        stamp = _number(headers, name)
        return _delay_from_stamp(stamp, now) if stamp is not None else None

    def rate_limits(self, headers: Mapping[str, str], now: float | None = None) -> RateLimitFacts | None:
        limit_requests, limit_tokens = _number(headers, "limit-requests"), _number(headers, "limit-tokens")
        if limit_requests is None and limit_tokens is None:
            return None
        now = time.time() if now is None else now
        remaining_requests, remaining_tokens = _number(headers, "remaining-requests"), _number(headers,
                                                                                              "remaining-tokens")
        return RateLimitFacts(
            limit_requests=_whole(limit_requests),
            remaining_requests=_whole(remaining_requests),
            reset_requests=self._stamp_delay(headers, "reset-requests", now),
            limit_tokens=_whole(limit_tokens),
            # seen stale and -1: a hint only (the limiter counts tokens itself from usage)
            remaining_tokens=_whole(remaining_tokens) if remaining_tokens is not None and remaining_tokens >= 0
            else None,
            reset_tokens=self._stamp_delay(headers, "reset-tokens", now),
            interval_requests=_positive(_number(headers, "interval-requests")),
            interval_tokens=_positive(_number(headers, "interval-tokens")),
        )

    def check_chat(self, model: ResolvedModel, messages: Messages, params: Mapping[str, Any]) -> None:
        info = model.info
        if not isinstance(info, _models.ModelInfo) or not params.keys() & _MODEL_RULED:
            return  # a name we do not know (passthrough: the API is the judge), or nothing to check
        effort = params.get("reasoning_effort")
        if effort is not None:
            if not info.reasons:
                reasoning = [m.name for m in _models.MODELS.values() if m.reasons]
                raise InvalidRequestError(
                    f"reasoning_effort: {info.name} does not reason and Upstage rejects the parameter for it; "
                    f"remove it or use {' or '.join(reasoning)}", param="reasoning_effort")
            if effort not in info.reasoning_efforts:
                raise InvalidRequestError(
                    f"reasoning_effort: {info.name} accepts {', '.join(info.reasoning_efforts)}, not {effort!r}",
                    param="reasoning_effort")
        if params.get("tools") and not info.tools:
            raise InvalidRequestError(f"tools: {info.name} does not support tool calling", param="tools")
        fmt = params.get("response_format")
        wants_json = isinstance(fmt, Mapping) and fmt.get("type") == "json_object"
        if wants_json and not any("JSON" in content_text(m.get("content")) for m in messages):
            raise InvalidRequestError(
                'response_format: {"type": "json_object"} needs the word "JSON" in the prompt '
                "(Upstage answers 400 otherwise); say what JSON you want", param="response_format")
        for name in ("max_tokens", "max_completion_tokens"):
            limit = info.max_output
            value = params.get(name)
            if limit is not None and isinstance(value, int) and value > limit:
                raise InvalidRequestError(f"{name}: {info.name} writes at most {limit} tokens, not {value}",
                                          param=name)

    def check_embeddings(self, model: ResolvedModel, inputs: list[str], params: Mapping[str, Any]) -> None:
        info = model.info
        removal = info.removal if isinstance(info, _models.EmbeddingModelInfo) else None
        if removal is not None and datetime.date.today().isoformat() >= removal:
            assert isinstance(info, _models.EmbeddingModelInfo)
            raise ModelNotSupportedError(f"model: {info.name} was removed on {removal}; use {info.successor}",
                                         param="model")


def _whole(value: float | None) -> int | None:
    return int(value) if value is not None else None


def _positive(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


def _names_a_bad_model(message: str) -> bool:
    text = message.lower()
    return "model" in text and any(w in text for w in ("retired", "invalid", "not found", "deprecated", "not exist"))


UPSTAGE = ProviderSpec(
    name="upstage",
    title="Upstage",
    base_url="https://api.upstage.ai/v1",
    api_key_env=("UPSTAGE_API_KEY",),
    base_url_env=("UPSTAGE_BASE_URL", "UPSTAGE_API_BASE"),
    key_help="get one at https://console.upstage.ai/api-keys",
    chat_params=CHAT_PARAMS,
    embedding_params=EMBEDDING_PARAMS,
    messages=MESSAGES,
    catalog=CATALOG,
    quirks=UpstageQuirks(),
)


class Upstage(OpenAICompatibleProvider):
    """Upstage's Solar models, streaming over aiohttp: ``Upstage(api_key=..., base_url=...)``.

    The seed's class-level calls (``Upstage.create_async_generator(...)``) use a default instance
    that reads ``UPSTAGE_API_KEY`` and ``UPSTAGE_BASE_URL`` / ``UPSTAGE_API_BASE`` per request.
    """

    default_spec: ClassVar[ProviderSpec] = UPSTAGE
    url: ClassVar[str | None] = "https://console.upstage.ai/playground"
    api_endpoint: ClassVar[str] = f"{UPSTAGE.base_url}{UPSTAGE.chat_path}"
    working: ClassVar[bool] = True
    needs_auth: ClassVar[bool] = True
    supports_stream: ClassVar[bool] = True
    supports_system_message: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True

    default_model: ClassVar[str] = _models.DEFAULT_MODEL
    models: ClassVar[list[str]] = list(_models.CURRENT_MODELS)
    model_aliases: ClassVar[dict[str, str]] = dict(_models.ALIASES)
    retired_models: ClassVar[Mapping[str, str]] = {name: r.successor for name, r in _models.RETIRED.items()}

    @classmethod
    def is_model_id(cls, model: str) -> bool:
        return _models.lookup(model) is not None
