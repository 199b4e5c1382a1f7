"""A provider's row: what distinguishes one OpenAI-compatible endpoint from another, as data.

``ProviderSpec`` holds the facts (base URL, key and base-URL variables, paths, parameter tables,
message rules, model catalogue); ``Quirks`` holds the behaviour that departs from the OpenAI wire
format (how errors are classified, which headers say how long to wait, how rate limits are
reported, model-specific request rules). The generic behaviour is the default: a vendor that is
plain OpenAI-compatible is a spec with no quirks at all.
"""

from __future__ import annotations

import enum
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .._retry import RateLimitFacts, advertised_delay, usable_delay
from ..errors import HINTS, APIStatusError, ModelNotSupportedError, error_from_response
from ..types import Messages
from .params import OPENAI_CHAT, OPENAI_EMBEDDINGS, MessageRules, ParamTable

__all__ = ["ModelCatalog", "ModelEntry", "ModelPolicy", "ProviderSpec", "Quirks", "ResolvedModel"]

log = logging.getLogger("solarstream")


class ModelPolicy(str, enum.Enum):
    """What happens to a model name the provider's table does not know.

    Names the table knows (current names, dated ids, aliases, retired names) always map through it,
    whatever the policy: the vendor's API, its emulator and proxies in front of it serve the same
    models.
    """

    #: ``FALLBACK`` against the vendor's own API (its default base URL), ``PASSTHROUGH`` anywhere else
    AUTO = "auto"
    #: the seed's rule: the default model, with a warning naming the unknown one
    FALLBACK = "fallback"
    #: ``ModelNotSupportedError`` before anything is sent
    STRICT = "strict"
    #: sent as written; the server judges (vLLM, Ollama, LiteLLM, a company proxy)
    PASSTHROUGH = "passthrough"


@dataclass(frozen=True)
class ResolvedModel:
    """A model name as it will be sent, and what the table knows about it (``None``: unknown)."""

    name: str
    info: Any = None


@dataclass(frozen=True)
class ModelEntry:
    """One id a model list shows: ``kind`` is ``chat`` or ``embedding``; ``maps_to`` names the current
    model an alias, retired name or dated id stands for (``None`` for a current name)."""

    id: str
    kind: str = "chat"
    maps_to: str | None = None


@dataclass(frozen=True)
class ModelCatalog:
    """A vendor's model table: chat and embedding models, aliases and retirements."""

    default_model: str
    #: current chat model names, in the order shown
    chat_models: tuple[str, ...]
    #: alias -> current name (every retired name is an alias of its successor)
    aliases: Mapping[str, str]
    #: retired name -> successor
    retired: Mapping[str, str]
    #: exact name or dated id -> the chat model's facts (the vendor's own info object), else None
    lookup: Callable[[str], Any]
    #: embedding model name -> its facts
    embedding_models: Mapping[str, Any] = field(default_factory=dict)
    #: every id the vendor serves that a model list should show (names, dated ids, aliases)
    listed: Callable[[], list[ModelEntry]] | None = None

    def knows(self, name: str) -> bool:
        return self.lookup(name) is not None or name in self.aliases

    def resolve(self, name: str, policy: ModelPolicy, *, vendor: str) -> ResolvedModel:
        """The name to send for ``name`` under ``policy`` (``AUTO`` must be decided by the caller)."""
        if not name:
            return ResolvedModel(self.default_model, self.lookup(self.default_model))
        info = self.lookup(name)
        if info is not None:
            return ResolvedModel(name, info)
        target = self.aliases.get(name)
        if target is not None:
            if name in self.retired:
                log.warning("model %r is retired; using its successor %r", name, target)
            return ResolvedModel(target, self.lookup(target))
        if policy is ModelPolicy.STRICT:
            raise ModelNotSupportedError(
                f"unknown {vendor} model {name!r}; choose one of: {', '.join(self.chat_models)}", param="model")
        if policy is ModelPolicy.PASSTHROUGH:
            return ResolvedModel(name)
        log.warning("unknown model %r; using the default model %r", name, self.default_model)
        return ResolvedModel(self.default_model, self.lookup(self.default_model))


_OPENAI_RESET = re.compile(r"(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m(?!s))?"
                           r"(?:(?P<s>\d+(?:\.\d+)?)s)?(?:(?P<ms>\d+(?:\.\d+)?)ms)?$")


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except (ValueError, OverflowError):
        return None


def _openai_duration(value: str | None) -> float | None:
    """OpenAI's reset durations: ``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``."""
    if not value:
        return None
    match = _OPENAI_RESET.match(value.strip())
    if match is None or not any(match.groupdict().values()):
        seconds = _int(value)
        return usable_delay(float(seconds)) if seconds is not None else None
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    total = parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0) + parts.get("ms", 0) / 1000
    return usable_delay(total)


class Quirks:
    """How a vendor departs from the OpenAI wire format. The methods here are the generic behaviour."""

    #: response headers that carry the request id, first found wins
    request_id_headers: tuple[str, ...] = ("x-request-id", "request-id")
    #: whether the API has answered ``stop`` for forced tool calls (then: ``tool_calls`` when calls came)
    stop_with_tool_calls: bool = False
    #: hints appended to error messages, by error class (what the user can do)
    hints: Mapping[type[APIStatusError], str] = HINTS
    #: the name clients see as ``owned_by`` in model lists
    owned_by: str = "openai-compatible"

    def classify_error(self, status: int, code: str | None, message: str) -> type[APIStatusError] | None:
        """The vendor's reading of an error response; ``None`` keeps the generic mapping."""
        return None

    def retry_after(self, headers: Mapping[str, str], now: float | None = None) -> float | None:
        """Seconds the server asked us to wait (generic: ``retry-after-ms``, ``Retry-After``)."""
        return advertised_delay(headers, now)

    def rate_limits(self, headers: Mapping[str, str], now: float | None = None) -> RateLimitFacts | None:
        """Generic: OpenAI's ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (as LiteLLM forwards)."""
        limit_requests = _int(headers.get("x-ratelimit-limit-requests"))
        limit_tokens = _int(headers.get("x-ratelimit-limit-tokens"))
        if limit_requests is None and limit_tokens is None:
            return None
        return RateLimitFacts(
            limit_requests=limit_requests,
            remaining_requests=_int(headers.get("x-ratelimit-remaining-requests")),
            reset_requests=_openai_duration(headers.get("x-ratelimit-reset-requests")),
            limit_tokens=limit_tokens,
            remaining_tokens=_int(headers.get("x-ratelimit-remaining-tokens")),
            reset_tokens=_openai_duration(headers.get("x-ratelimit-reset-tokens")),
            interval_requests=60.0 if limit_requests is not None else None,
            interval_tokens=60.0 if limit_tokens is not None else None,
        )

    def successor(self, error: APIStatusError) -> str | None:
        """The model that an error about a retired model names as its replacement (generic: none)."""
        return None

    def request_id(self, headers: Mapping[str, str]) -> str | None:
        for name in self.request_id_headers:
            value = headers.get(name)
            if value:
                return value
        return None

    def check_chat(self, model: ResolvedModel, messages: Messages, params: Mapping[str, Any]) -> None:
        """Model-specific request rules (raise ``InvalidRequestError`` before sending)."""

    def check_embeddings(self, model: ResolvedModel, inputs: list[str], params: Mapping[str, Any]) -> None:
        """Model-specific embedding rules."""

    def error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> APIStatusError:
        """An error response as its typed error, with the retry facts it carried."""
        now = time.time()
        return error_from_response(
            status, raw, request_id=self.request_id(headers), retry_after=self.retry_after(headers, now),
            rate_limits=self.rate_limits(headers, now), classifier=self.classify_error, hints=self.hints,
        )


#: a generic server judges messages itself: any keys and parts go as written
OPEN_MESSAGES = MessageRules(open=True, image_input=True, renamed_roles={}, dropped_keys=frozenset())


@dataclass(frozen=True)
class ProviderSpec:
    """One endpoint's row. Adding a vendor is one of these (plus its ``Quirks``, if it has any)."""

    #: the registry name (``--provider NAME``): lowercase, no spaces
    name: str
    #: shown in messages
    title: str
    #: the default base URL; ``None``: it must be configured (``base_url=`` or ``base_url_env``)
    base_url: str | None
    #: where the key comes from when ``api_key=`` is not given, first set wins
    api_key_env: tuple[str, ...] = ()
    base_url_env: tuple[str, ...] = ()
    #: whether requests need a key (self-hosted servers often take none)
    key_required: bool = True
    #: where a user gets a key (shown when none is found)
    key_help: str = ""
    chat_path: str = "/chat/completions"
    embeddings_path: str | None = "/embeddings"
    models_path: str = "/models"
    chat_params: ParamTable = field(default_factory=lambda: OPENAI_CHAT)
    embedding_params: ParamTable = field(default_factory=lambda: OPENAI_EMBEDDINGS)
    messages: MessageRules = field(default_factory=lambda: OPEN_MESSAGES)
    #: ``None``: model names pass through untouched
    catalog: ModelCatalog | None = None
    quirks: Quirks = field(default_factory=Quirks)

    def is_own_api(self, base_url: str) -> bool:
        """Whether ``base_url`` is the vendor's own API (its default host), not a server in its stead."""
        if self.base_url is None:
            return False
        own, given = urlsplit(self.base_url), urlsplit(base_url)
        return (own.scheme, own.netloc.lower()) == (given.scheme, given.netloc.lower())
