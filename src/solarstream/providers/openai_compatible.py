"""A provider for any OpenAI-compatible chat endpoint, driven by an ``EndpointConfig``.

The endpoint's facts (base URL, key and base-URL environment variables, what it rejects) are data;
the behaviour (validation, request building, streaming, errors) is written once, here.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from .._http import HTTPClient, RetryPolicy, Timeout, check_proxy, redact_url
from .._stream import ChatStream
from ..errors import InvalidRequestError, MissingAuthError
from ..types import AsyncResult, ChatCompletion, Messages, Model, StreamEvent
from .base import AsyncGeneratorProvider, ProviderModelMixin

__all__ = ["ChatRequest", "EndpointConfig", "OpenAICompatibleProvider", "default_http_client"]

_ROLES = ("system", "user", "assistant", "tool")
#: keyword arguments about the transport, not the request body
TRANSPORT_KWARGS = frozenset({"api_key", "base_url", "timeout", "max_retries", "extra_body", "extra_headers"})


@dataclass(frozen=True)
class EndpointConfig:
    """What distinguishes one OpenAI-compatible endpoint from another."""

    name: str
    base_url: str
    api_key_env: tuple[str, ...]
    base_url_env: tuple[str, ...] = ()
    chat_path: str = "/chat/completions"
    models_path: str = "/models"
    #: where a user gets a key (shown when none is found)
    key_help: str = ""
    #: request parameters the endpoint accepts, beyond model/messages/stream
    parameters: frozenset[str] = frozenset()
    #: parameters the endpoint is known to reject -> why (OpenAI accepts them, this one does not)
    rejected_parameters: Mapping[str, str] = field(default_factory=dict)
    supports_developer_role: bool = False
    supports_strict_tools: bool = False
    supports_image_input: bool = False


@dataclass(frozen=True)
class ChatRequest:
    """A validated request, ready to send."""

    url: str
    headers: dict[str, str] = field(repr=False)  # the Authorization header: never in a repr
    body: bytes
    model: str
    stream: bool
    proxy: str | None = field(repr=False)  # may carry a password
    timeout: Timeout | None
    retry: RetryPolicy | None


_default_http: HTTPClient | None = None


def default_http_client() -> HTTPClient:
    """The pooled client shared by classmethod calls (its sessions are per event loop)."""
    global _default_http
    if _default_http is None:
        _default_http = HTTPClient()
    return _default_http


def _retry(http: HTTPClient, request: ChatRequest) -> RetryPolicy | None:
    """``max_retries=`` changes only how many retries: the client's backoff and limits stay."""
    if request.retry is None:
        return None
    return replace(http.retry, max_retries=request.retry.max_retries)


def _bad(param: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"{param}: {message}", param=param)


def _number(low: float, high: float) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _bad(name, f"must be a number, not {type(value).__name__}")
        if not low <= value <= high:
            raise _bad(name, f"must be between {low:g} and {high:g}, not {value:g}")

    return check


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad(name, f"must be a positive integer, not {value!r}")


def _integer(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(name, f"must be an integer, not {value!r}")


def _string(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise _bad(name, f"must be a string, not {type(value).__name__}")


def _stop(name: str, value: Any) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise _bad(name, "must be a string or a list of strings")


def _mapping(name: str, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise _bad(name, f"must be an object, not {type(value).__name__}")


def _tools(name: str, value: Any) -> None:
    if not isinstance(value, list):
        raise _bad(name, "must be a list of tools")
    for i, tool in enumerate(value):
        if not isinstance(tool, Mapping) or tool.get("type") != "function":
            raise _bad(f"{name}[{i}]", 'must be {"type": "function", "function": {...}}')
        fn = tool.get("function")
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise _bad(f"{name}[{i}].function.name", "is required")


def _tool_choice(name: str, value: Any) -> None:
    if value in ("auto", "none", "required"):
        return
    if isinstance(value, Mapping) and isinstance(value.get("function"), Mapping):
        return
    raise _bad(name, 'must be "auto", "none", "required" or {"type": "function", "function": {"name": ...}}')


def _response_format(name: str, value: Any) -> None:
    if not isinstance(value, Mapping) or value.get("type") not in ("text", "json_object", "json_schema"):
        raise _bad(name, 'must be {"type": "json_object"} or {"type": "json_schema", "json_schema": {...}}')
    if value.get("type") == "json_schema" and not isinstance(value.get("json_schema"), Mapping):
        raise _bad(name, 'type "json_schema" needs a "json_schema" object')


#: how each known request parameter is checked
PARAMETER_CHECKS: dict[str, Callable[[str, Any], None]] = {
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
    "stream_options": _mapping,
    "frequency_penalty": _number(-2, 2),
    "presence_penalty": _number(-2, 2),
    "seed": _integer,
}


class OpenAICompatibleProvider(AsyncGeneratorProvider, ProviderModelMixin):
    """Validation, request building and execution for an endpoint described by ``config``."""

    config: ClassVar[EndpointConfig]
    working: ClassVar[bool] = True
    needs_auth: ClassVar[bool] = True
    supports_system_message: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True

    @classmethod
    def get_parameters(cls) -> frozenset[str]:
        return cls.config.parameters | TRANSPORT_KWARGS

    # --- configuration lookups -----------------------------------------------------------------

    @classmethod
    def resolve_api_key(cls, api_key: str | None = None) -> str:
        key = api_key or next((os.environ[v] for v in cls.config.api_key_env if os.environ.get(v)), None)
        if not key:
            env = " or ".join(cls.config.api_key_env)
            raise MissingAuthError(
                f"no API key for {cls.config.name}: set {env} or pass api_key=..."
                + (f" ({cls.config.key_help})" if cls.config.key_help else "")
            )
        if any(c.isspace() or not c.isprintable() for c in key) or not key.isascii():
            raise InvalidRequestError("the API key contains spaces or control characters; check how it was set",
                                      param="api_key")
        return key

    @classmethod
    def resolve_base_url(cls, base_url: str | None = None) -> str:
        url = base_url or next((os.environ[v] for v in cls.config.base_url_env if os.environ.get(v)), None)
        url = (url or cls.config.base_url).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise InvalidRequestError(f"base URL must start with http:// or https://, not {redact_url(url)!r}",
                                      param="base_url")
        return url

    # --- validation ----------------------------------------------------------------------------

    @classmethod
    def check_messages(cls, messages: Messages) -> None:
        if not isinstance(messages, list) or not messages:
            raise _bad("messages", "must be a non-empty list of {'role': ..., 'content': ...} objects")
        cfg = cls.config
        for i, message in enumerate(messages):
            where = f"messages[{i}]"
            if not isinstance(message, Mapping):
                raise _bad(where, f"must be an object, not {type(message).__name__}")
            role = message.get("role")
            if role == "developer" and not cfg.supports_developer_role:
                raise _bad(f"{where}.role", f"'developer' is rejected by {cfg.name}; use 'system'")
            if role not in _ROLES:
                raise _bad(f"{where}.role", f"must be one of {', '.join(_ROLES)}, not {role!r}")
            content = message.get("content")
            if isinstance(content, list):
                for j, part in enumerate(content):
                    kind = part.get("type") if isinstance(part, Mapping) else None
                    if kind in ("image_url", "input_image", "image") and not cfg.supports_image_input:
                        raise _bad(f"{where}.content[{j}]", f"image input is not supported by {cfg.name} chat models")
                    if kind != "text":
                        raise _bad(f"{where}.content[{j}]", f"content parts must be text, not {kind!r}")
            elif content is not None and not isinstance(content, str):
                kind = type(content).__name__
                raise _bad(f"{where}.content", f"must be a string or a list of text parts, not {kind}")
            elif content is None and role != "assistant":
                raise _bad(f"{where}.content", "is required")
            if role == "tool" and not message.get("tool_call_id"):
                raise _bad(f"{where}.tool_call_id", "is required on tool messages")

    @classmethod
    def check_parameters(cls, model: str, messages: Messages, params: Mapping[str, Any]) -> None:
        cfg = cls.config
        for name, value in params.items():
            reason = cfg.rejected_parameters.get(name)
            if reason is not None:
                raise _bad(name, reason)
            if name not in cfg.parameters:
                raise _bad(name, f"unknown parameter for {cfg.name}; known: {', '.join(sorted(cfg.parameters))}"
                           " (extra_body={...} sends anything as is)")
            check = PARAMETER_CHECKS.get(name)
            if check is not None and value is not None:
                check(name, value)
        for i, tool in enumerate(params.get("tools") or ()):
            if tool["function"].get("strict") and not cfg.supports_strict_tools:
                raise _bad(f"tools[{i}].function.strict", f"strict tools are rejected by {cfg.name}; remove it")

    @classmethod
    def check_model_parameters(cls, model: str, messages: Messages, params: Mapping[str, Any]) -> None:
        """Endpoint-specific rules that depend on the model; subclasses extend it."""

    # --- building and sending --------------------------------------------------------------------

    @classmethod
    def prepare_chat(
        cls,
        model: str,
        messages: Messages,
        *,
        stream: bool,
        proxy: str | None = None,
        model_policy: str = "fallback",
        **kwargs: Any,
    ) -> ChatRequest:
        """Validate everything and build the request; raises before anything is sent.

        ``model_policy``: ``fallback`` (the seed's: unknown names fall back to the default),
        ``strict`` (unknown names raise) or ``passthrough`` (unknown names are sent as written).
        """
        transport = {k: kwargs.pop(k) for k in list(kwargs) if k in TRANSPORT_KWARGS}
        if model_policy == "passthrough":
            resolved = cls.get_model(model, strict=True) if cls._knows(model) else model
        else:
            resolved = cls.get_model(model, strict=model_policy == "strict")
        cls.check_messages(messages)
        params = {k: v for k, v in kwargs.items() if v is not None}
        cls.check_parameters(resolved, messages, params)
        cls.check_model_parameters(resolved, messages, params)
        body: dict[str, Any] = {"model": resolved, "messages": messages, **params, "stream": stream}
        extra_body = transport.get("extra_body")
        if extra_body is not None:
            _mapping("extra_body", extra_body)
            body.update(extra_body)
        headers = {
            "Authorization": f"Bearer {cls.resolve_api_key(transport.get('api_key'))}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
        }
        extra_headers = transport.get("extra_headers")
        if extra_headers is not None:
            _mapping("extra_headers", extra_headers)
            headers.update(extra_headers)
        timeout = transport.get("timeout")
        max_retries = transport.get("max_retries")
        return ChatRequest(
            url=cls.resolve_base_url(transport.get("base_url")) + cls.config.chat_path,
            headers=headers,
            body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
            model=resolved,
            stream=stream,
            proxy=check_proxy(proxy),
            timeout=Timeout.coerce(timeout) if timeout is not None else None,
            retry=RetryPolicy(max_retries=max_retries) if max_retries is not None else None,
        )

    @classmethod
    def _knows(cls, model: str) -> bool:
        return not model or cls.is_model_id(model) or model in cls.model_aliases

    @staticmethod
    def open_stream(http: HTTPClient, request: ChatRequest) -> ChatStream:
        """A stream for a prepared request; the request is sent on first iteration."""
        return ChatStream(
            lambda: http.send("POST", request.url, headers=request.headers, body=request.body,
                              proxy=request.proxy, timeout=request.timeout, retry=_retry(http, request))
        )

    @staticmethod
    async def send_completion(http: HTTPClient, request: ChatRequest) -> ChatCompletion:
        data = await http.request_json("POST", request.url, headers=request.headers, body=request.body,
                                       proxy=request.proxy, timeout=request.timeout, retry=_retry(http, request))
        if not isinstance(data, dict):
            raise InvalidRequestError("the API answered with JSON that is not a completion object")
        return ChatCompletion.from_dict(data)

    # --- the public calls ------------------------------------------------------------------------

    @classmethod
    def stream(cls, model: str, messages: Messages, proxy: str | None = None, **kwargs: Any) -> ChatStream:
        """The structured stream: iterate it for chunks, or use ``.events()`` for typed events."""
        return cls.open_stream(default_http_client(), cls.prepare_chat(model, messages, stream=True,
                                                                        proxy=proxy, **kwargs))

    @classmethod
    def stream_events(
        cls, model: str, messages: Messages, proxy: str | None = None, **kwargs: Any
    ) -> AsyncIterator[StreamEvent]:
        """Typed events (``TextDelta``, ``ReasoningDelta``, ``ToolCallDelta``, ``ToolCalls``,
        ``UsageReport``, ``Finish``) for one request."""
        return cls.stream(model, messages, proxy=proxy, **kwargs).events()

    @classmethod
    def create_async_generator(
        cls, model: str, messages: Messages, proxy: str | None = None, **kwargs: Any
    ) -> AsyncResult:
        """The answer's text, piece by piece, as it streams."""
        return cls.stream(model, messages, proxy=proxy, **kwargs).text()

    @classmethod
    async def complete(
        cls, model: str, messages: Messages, proxy: str | None = None, **kwargs: Any
    ) -> ChatCompletion:
        """One non-streamed request: the whole completion with usage, tool calls and reasoning."""
        request = cls.prepare_chat(model, messages, stream=False, proxy=proxy, **kwargs)
        return await cls.send_completion(default_http_client(), request)

    @classmethod
    async def list_models(
        cls, *, api_key: str | None = None, base_url: str | None = None, proxy: str | None = None,
        http: HTTPClient | None = None,
    ) -> list[Model]:
        """The live model list (``GET {base}/models``)."""
        http = http or default_http_client()
        url = cls.resolve_base_url(base_url) + cls.config.models_path
        headers = {"Authorization": f"Bearer {cls.resolve_api_key(api_key)}", "Accept": "application/json"}
        data = await http.request_json("GET", url, headers=headers, proxy=check_proxy(proxy))
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise InvalidRequestError("the model list answer has no 'data' list")
        return [Model(str(e.get("id")), int(e.get("created") or 0), str(e.get("owned_by") or "upstage"))
                for e in entries if isinstance(e, dict) and e.get("id")]
