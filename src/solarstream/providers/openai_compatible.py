"""A provider *instance* for any OpenAI-compatible endpoint: spec, key, base URL, HTTP pool, limiter.

The endpoint's facts and quirks are its ``ProviderSpec``; the behaviour (the parameter policy,
request building, the retry and limit layer, streaming, errors) is written once, here::

    provider = OpenAICompatibleProvider(base_url="http://localhost:8000/v1", api_key_env="VLLM_API_KEY")
    async for piece in provider.create_async_generator("my-model", messages): ...

A request flows down: ``prepare_chat`` (validate, apply the policy, build the body: raises before
anything is sent) -> ``call_with_retries`` (limiter, retry policy, deadline) -> one ``_http`` attempt.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar
from urllib.parse import urlsplit

import orjson

from .._http import Deadline, HTTPClient, Response, Timeout, Verify, check_proxy, parse_json_body, redact_url
from .._retry import Grant, Limiter, RetryPolicy, call_with_retries
from .._stream import ChatStream
from ..errors import InvalidRequestError, MissingAuthError
from ..types import AsyncResult, ChatCompletion, CreateEmbeddingResponse, Messages, Model, StreamEvent
from .base import AsyncGeneratorProvider, ProviderModelMixin, default_instance
from .params import apply_rules, check_encodable, check_headers, embedding_input, mapping, normalise_messages
from .spec import ModelEntry, ModelPolicy, ProviderSpec, ResolvedModel

__all__ = ["GENERIC", "TRANSPORT_KWARGS", "ChatRequest", "OpenAICompatibleProvider"]

#: keyword arguments about the transport, not the request body
TRANSPORT_KWARGS = frozenset({"api_key", "base_url", "timeout", "max_retries", "extra_body", "extra_headers"})

GENERIC = ProviderSpec(
    name="openai-compatible",
    title="the OpenAI-compatible server",
    base_url=None,
    api_key_env=("OPENAI_API_KEY",),
    base_url_env=("OPENAI_BASE_URL",),
    key_required=False,
)


#: base URLs already found well-formed
_CHECKED_URLS: set[str] = set()


@dataclass(frozen=True)
class ChatRequest:
    """A validated request, ready to send."""

    url: str
    headers: dict[str, str] = field(repr=False)  # the Authorization header: never in a repr
    body: bytes = field(repr=False)
    model: str
    stream: bool
    proxy: str | None = field(repr=False)  # may carry a password
    timeout: Timeout
    retry: RetryPolicy
    #: tokens estimated before sending (prompt size plus max_tokens), for the limiter
    tokens: int = 0


def _encode(body: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON; what cannot be sent is an ``InvalidRequestError`` naming the field."""
    try:
        return orjson.dumps(body)
    except (orjson.JSONEncodeError, TypeError):
        check_encodable(body)  # raises for a lone surrogate, naming where it is
        try:  # orjson refuses some valid input (integers over 64 bits, dict subclasses with odd keys)
            return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError(f"the request cannot be sent as JSON: {exc}") from None


class OpenAICompatibleProvider(AsyncGeneratorProvider, ProviderModelMixin):
    """One configured endpoint. Arguments left out come from the spec's environment variables,
    looked up when each request is built (so a key set after start-up is seen)."""

    #: the row instances use unless given their own (``spec=``)
    default_spec: ClassVar[ProviderSpec] = GENERIC
    working: ClassVar[bool] = True
    needs_auth: ClassVar[bool] = False
    supports_system_message: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        spec: ProviderSpec | None = None,
        api_key_env: str | Sequence[str] | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int = 2,
        proxy: str | None = None,
        verify: Verify = True,
        strict_params: bool = False,
        model_policy: ModelPolicy | str = ModelPolicy.AUTO,
        retry: RetryPolicy | None = None,
        limiter: Limiter | None = None,
        name: str | None = None,
    ) -> None:
        self.spec: ProviderSpec = spec or self.default_spec
        if api_key_env is not None:
            names = (api_key_env,) if isinstance(api_key_env, str) else tuple(api_key_env)
            self.spec = replace(self.spec, api_key_env=names)
        self.api_key = api_key
        self._base_url = base_url
        self.timeout = Timeout.coerce(timeout)
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self.strict_params = strict_params
        try:
            self.model_policy = ModelPolicy(model_policy)
        except ValueError:
            choices = ", ".join(p.value for p in ModelPolicy)
            raise InvalidRequestError(f"model_policy must be one of {choices}, not {model_policy!r}",
                                      param="model_policy") from None
        self.limiter = limiter or Limiter()
        self._own_api: dict[str, bool] = {}
        self.name = name or self.spec.name
        self.http = HTTPClient(timeout=self.timeout, proxy=proxy, verify=verify)

    def __repr__(self) -> str:
        shown = f", proxy={redact_url(self.proxy)!r}" if self.proxy else ""
        base = self._base_url or self.spec.base_url
        return f"{type(self).__name__}(name={self.name!r}, base_url={base!r}{shown})"

    @property
    def proxy(self) -> str | None:
        return self.http.proxy

    @property
    def max_retries(self) -> int:
        return self.retry.max_retries

    @property
    def owned_by(self) -> str:
        """What model lists show as ``owned_by``."""
        return self.spec.quirks.owned_by

    # --- configuration lookups -----------------------------------------------------------------

    def resolve_api_key(self, api_key: str | None = None) -> str | None:
        """The key to send: ``api_key``, the instance's, or the first set variable of the spec."""
        spec = self.spec
        key = api_key or self.api_key or next((os.environ[v] for v in spec.api_key_env if os.environ.get(v)), None)
        if not key:
            if not spec.key_required:
                return None
            env = " or ".join(spec.api_key_env) or "api_key="
            raise MissingAuthError(
                f"no API key for {spec.title}: set {env} or pass api_key=..."
                + (f" ({spec.key_help})" if spec.key_help else "")
            )
        if not (key.isascii() and key.isprintable() and " " not in key):  # (the only printable ASCII space)
            raise InvalidRequestError("the API key contains spaces or control characters; check how it was set",
                                      param="api_key")
        return key

    def resolve_base_url(self, base_url: str | None = None) -> str:
        spec = self.spec
        url = base_url or self._base_url or next((os.environ[v] for v in spec.base_url_env if os.environ.get(v)),
                                                 None)
        url = (url or spec.base_url or "").rstrip("/")
        if not url:
            env = " or ".join(spec.base_url_env)
            raise InvalidRequestError(f"no base URL for {spec.title}: pass base_url=..." +
                                      (f" or set {env}" if env else ""), param="base_url")
        if url in _CHECKED_URLS:
            return url
        if not url.startswith(("http://", "https://")):
            raise InvalidRequestError(f"base URL must start with http:// or https://, not {redact_url(url)!r}",
                                      param="base_url")
        if not (url.isascii() and url.isprintable() and " " not in url):
            raise InvalidRequestError(f"base URL {redact_url(url)!r} holds spaces, control or non-ASCII characters",
                                      param="base_url")
        if "@" in urlsplit(url).netloc:
            raise InvalidRequestError(f"base URL {redact_url(url)!r} carries a user name or password; keep it "
                                      "out of the URL and pass api_key= instead (or set its variable)",
                                      param="base_url")
        if len(_CHECKED_URLS) < 256:  # the check runs per request; the same few URLs come back
            _CHECKED_URLS.add(url)
        return url

    @property
    def base_url(self) -> str:
        """The base URL requests go to (from the instance, the environment or the spec)."""
        return self.resolve_base_url()

    def model_policy_for(self, base_url: str) -> ModelPolicy:
        """``AUTO`` decided for ``base_url``: the seed's fallback only against the vendor's own API."""
        if self.model_policy is not ModelPolicy.AUTO:
            return self.model_policy
        own = self._own_api.get(base_url)
        if own is None:
            own = self._own_api[base_url] = self.spec.is_own_api(base_url)
        return ModelPolicy.FALLBACK if own else ModelPolicy.PASSTHROUGH

    def resolve(self, model: str, base_url: str) -> ResolvedModel:
        catalog = self.spec.catalog
        if catalog is None:
            if not model:
                raise InvalidRequestError(f"model is required for {self.spec.title}", param="model")
            return ResolvedModel(model)
        return catalog.resolve(model, self.model_policy_for(base_url), vendor=self.spec.title)

    def known_models(self) -> list[ModelEntry] | None:
        """Every model id the provider's table knows (names, dated ids, aliases, embedding models);
        ``None`` when it has no table (names pass through; ask ``list_models()``)."""
        catalog = self.spec.catalog
        if catalog is None:
            return None
        if catalog.listed is not None:
            return catalog.listed()
        return ([ModelEntry(name) for name in catalog.chat_models]
                + [ModelEntry(alias, maps_to=target) for alias, target in catalog.aliases.items()]
                + [ModelEntry(name, "embedding") for name in catalog.embedding_models])

    @classmethod
    def get_parameters(cls) -> frozenset[str]:
        return frozenset(cls.default_spec.chat_params) | TRANSPORT_KWARGS

    # --- building ------------------------------------------------------------------------------

    def _headers(self, key: str | None, accept: str, extra: Any) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": accept}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        if extra is not None:
            headers.update(check_headers(extra))
        return headers

    def _transport(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {k: kwargs.pop(k) for k in [k for k in kwargs if k in TRANSPORT_KWARGS]}

    def _policy(self, transport: Mapping[str, Any]) -> tuple[Timeout, RetryPolicy]:
        timeout = transport.get("timeout")
        max_retries = transport.get("max_retries")
        retry = self.retry
        if max_retries is not None and max_retries != retry.max_retries:
            retry = replace(retry, max_retries=max_retries)
        return (Timeout.coerce(timeout) if timeout is not None else self.timeout), retry

    def prepare_chat(
        self,
        model: str,
        messages: Messages,
        *,
        stream: bool,
        proxy: str | None = None,
        **kwargs: Any,
    ) -> ChatRequest:
        """Validate everything, apply the parameter policy and build the request; raises before sending."""
        spec = self.spec
        transport = self._transport(kwargs)
        base_url = self.resolve_base_url(transport.get("base_url"))
        resolved = self.resolve(model, base_url)
        sent_messages = normalise_messages(messages, spec.messages, strict=self.strict_params, where=spec.title)
        if not stream and kwargs.get("stream_options") is not None:
            raise InvalidRequestError('stream_options: is only allowed with stream=True', param="stream_options")
        params = apply_rules(spec.chat_params, kwargs, strict=self.strict_params, where=spec.title)
        spec.quirks.check_chat(resolved, sent_messages, params)
        body: dict[str, Any] = {"model": resolved.name, "messages": sent_messages, **params, "stream": stream}
        extra_body = transport.get("extra_body")
        if extra_body is not None:
            mapping("extra_body", extra_body)
            body.update(extra_body)
        encoded = _encode(body)
        key = self.resolve_api_key(transport.get("api_key"))
        timeout, retry = self._policy(transport)
        limit = params.get("max_completion_tokens") or params.get("max_tokens") or 0
        return ChatRequest(
            url=base_url + spec.chat_path,
            headers=self._headers(key, "text/event-stream" if stream else "application/json",
                                  transport.get("extra_headers")),
            body=encoded,
            model=resolved.name,
            stream=stream,
            proxy=check_proxy(proxy),
            timeout=timeout,
            retry=retry,
            tokens=len(encoded) // 4 + int(limit),
        )

    # --- sending -------------------------------------------------------------------------------

    async def send(self, request: ChatRequest, *, deadline: Deadline | None = None,
                   grant: list[Grant] | None = None) -> Response:
        """Send a prepared request through the retry and limit layer; a 2xx response or a typed error."""
        http, quirks = self.http, self.spec.quirks
        deadline = deadline or request.timeout.deadline()

        def attempt() -> Any:
            return http.send("POST", request.url, headers=request.headers, body=request.body, proxy=request.proxy,
                             timeout=request.timeout, deadline=deadline, errors=quirks.error,
                             request_id=quirks.request_id)

        return await call_with_retries(
            attempt, policy=request.retry, limiter=self.limiter, deadline=deadline, tokens=request.tokens,
            facts=lambda response: quirks.rate_limits(response.headers),
            on_grant=grant.append if grant is not None else None,
        )

    def open_stream(self, request: ChatRequest, *, deadline: Deadline | None = None) -> ChatStream:
        """A stream for a prepared request; the request is sent by ``start()`` or the first iteration.
        ``deadline`` bounds it as part of a larger call (a router's), instead of its own total timeout."""
        grants: list[Grant] = []
        limiter = self.limiter

        def settle(stream: ChatStream) -> None:
            if grants:
                limiter.settle(grants[0], stream.usage.total_tokens if stream.usage else None)

        return ChatStream(lambda: self.send(request, deadline=deadline, grant=grants), model=request.model,
                          stop_with_tool_calls=self.spec.quirks.stop_with_tool_calls, on_close=settle)

    async def send_completion(self, request: ChatRequest, *, deadline: Deadline | None = None) -> ChatCompletion:
        grants: list[Grant] = []
        response = await self.send(request, deadline=deadline, grant=grants)
        data = await _read_json(response)
        if not isinstance(data, dict):
            raise InvalidRequestError("the API answered with JSON that is not a completion object")
        completion = ChatCompletion.from_dict(data, stop_with_tool_calls=self.spec.quirks.stop_with_tool_calls)
        completion.request_id = response.request_id
        completion.response_headers = dict(response.headers)
        if grants:
            self.limiter.settle(grants[0], completion.usage.total_tokens if completion.usage else None)
        return completion

    # --- the public calls ------------------------------------------------------------------------

    @default_instance
    def stream(self, /, model: str, messages: Messages, proxy: str | None = None, **kwargs: Any) -> ChatStream:
        """The structured stream: iterate it for chunks, or use ``.events()`` for typed events."""
        return self.open_stream(self.prepare_chat(model, messages, stream=True, proxy=proxy, **kwargs))

    @default_instance
    def stream_events(
        self, /, model: str, messages: Messages, proxy: str | None = None, **kwargs: Any
    ) -> AsyncIterator[StreamEvent]:
        """Typed events (``TextDelta``, ``ReasoningDelta``, ``ToolCallDelta``, ``ToolCalls``,
        ``UsageReport``, ``Finish``) for one request."""
        return self.stream(model, messages, proxy=proxy, **kwargs).events()

    @default_instance
    def create_async_generator(
        self, /, model: str, messages: Messages, proxy: str | None = None, **kwargs: Any
    ) -> AsyncResult:
        """The answer's text, piece by piece, as it streams."""
        return self.stream(model, messages, proxy=proxy, **kwargs).text()

    @default_instance
    async def complete(
        self, /, model: str, messages: Messages, proxy: str | None = None, **kwargs: Any
    ) -> ChatCompletion:
        """One non-streamed request: the whole completion with usage, tool calls and reasoning."""
        return await self.send_completion(self.prepare_chat(model, messages, stream=False, proxy=proxy, **kwargs))

    @default_instance
    async def embed(
        self, /, model: str, input: str | list[str], proxy: str | None = None, **kwargs: Any
    ) -> CreateEmbeddingResponse:
        """Embeddings for one text or a list of texts (``POST {base}/embeddings``), as floats.

        ``encoding_format="base64"`` gives each vector as base64 of little-endian float32, as the
        OpenAI API does; it is encoded here, so the upstream is always asked for floats.
        """
        spec = self.spec
        if spec.embeddings_path is None:
            raise InvalidRequestError(f"{spec.title} has no embeddings endpoint", param="model")
        transport = self._transport(kwargs)
        encoding = kwargs.pop("encoding_format", None) or "float"
        if encoding not in ("float", "base64"):
            raise InvalidRequestError(f'encoding_format: must be "float" or "base64", not {encoding!r}',
                                      param="encoding_format")
        base_url = self.resolve_base_url(transport.get("base_url"))
        embedding_input("input", input)
        resolved = self._resolve_embedding(model)
        inputs = [input] if isinstance(input, str) else list(input)
        params = apply_rules(spec.embedding_params, kwargs, strict=self.strict_params, where=spec.title)
        spec.quirks.check_embeddings(resolved, inputs, params)
        body: dict[str, Any] = {"model": resolved.name, "input": input, **params}
        if transport.get("extra_body") is not None:
            mapping("extra_body", transport["extra_body"])
            body.update(transport["extra_body"])
        encoded = _encode(body)
        timeout, retry = self._policy(transport)
        request = ChatRequest(
            url=base_url + spec.embeddings_path,
            headers=self._headers(self.resolve_api_key(transport.get("api_key")), "application/json",
                                  transport.get("extra_headers")),
            body=encoded, model=resolved.name, stream=False, proxy=check_proxy(proxy), timeout=timeout, retry=retry,
            tokens=len(encoded) // 4,
        )
        grants: list[Grant] = []
        response = await self.send(request, grant=grants)
        data = await _read_json(response)
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise InvalidRequestError("the embeddings answer has no 'data' list")
        result = CreateEmbeddingResponse.from_dict(data)
        if grants:
            self.limiter.settle(grants[0], result.usage.total_tokens if result.usage else None)
        result.request_id = response.request_id
        return result.encoded(encoding) if encoding == "base64" else result

    def _resolve_embedding(self, model: str) -> ResolvedModel:
        catalog = self.spec.catalog
        if not model:
            raise InvalidRequestError("model is required for embeddings", param="model")
        if catalog is None or model in catalog.embedding_models:
            return ResolvedModel(model, catalog.embedding_models.get(model) if catalog else None)
        if catalog.knows(model):
            raise InvalidRequestError(
                f"model: {model!r} is a chat model; embeddings need an embedding model: "
                f"{', '.join(catalog.embedding_models)}", param="model")
        if self.model_policy_for(self.resolve_base_url()) is ModelPolicy.PASSTHROUGH:
            return ResolvedModel(model)
        from ..errors import ModelNotSupportedError

        raise ModelNotSupportedError(f"unknown embedding model {model!r}; choose one of: "
                                     f"{', '.join(catalog.embedding_models)}", param="model")

    @default_instance
    async def list_models(
        self, /, *, api_key: str | None = None, base_url: str | None = None, proxy: str | None = None,
    ) -> list[Model]:
        """The live model list (``GET {base}/models``)."""
        url = self.resolve_base_url(base_url) + self.spec.models_path
        headers = self._headers(self.resolve_api_key(api_key), "application/json", None)
        del headers["Content-Type"]
        quirks = self.spec.quirks
        deadline = self.timeout.deadline()
        response = await call_with_retries(
            lambda: self.http.send("GET", url, headers=headers, proxy=check_proxy(proxy), deadline=deadline,
                                   errors=quirks.error, request_id=quirks.request_id),
            policy=self.retry, limiter=None, deadline=deadline)
        data = await _read_json(response)
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise InvalidRequestError("the model list answer has no 'data' list")
        return [Model(str(e.get("id")), int(e.get("created") or 0), str(e.get("owned_by") or quirks.owned_by))
                for e in entries if isinstance(e, dict) and e.get("id")]

    @default_instance
    async def aclose(self) -> None:
        """Close this provider's connections on the running loop (also done when it is collected)."""
        await self.http.aclose()

    async def __aenter__(self) -> OpenAICompatibleProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _read_json(response: Response) -> Any:
    try:
        raw = await response.read_all()
    except BaseException:
        response.close()
        raise
    await response.finish()
    return parse_json_body(raw, response)
