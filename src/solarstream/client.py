"""``AsyncClient`` and ``Client``: the OpenAI SDK's shape on solarstream's core.

Code written for ``openai`` moves over by changing the import::

    client = AsyncClient()                     # UPSTAGE_API_KEY, UPSTAGE_BASE_URL / UPSTAGE_API_BASE
    stream = await client.chat.completions.create(model="solar-mini", messages=msgs, stream=True)
    async for chunk in stream: ...

There is one implementation. A client holds a provider (``Upstage`` by default, or any provider:
``AsyncClient(provider=router)``), which validates and builds each request, sends it through its
retry and limit layer on its own connection pool, and streams it with the core's ``ChatStream``.
``Client`` runs the same coroutines on solarstream's background loop (``_sync``), so it also works
inside Jupyter. A client dropped without ``close()`` closes its connections when it is collected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any, Literal, overload

from . import _sync
from ._http import Timeout, Verify, redact_url
from ._stream import ChatStream
from .errors import InvalidRequestError, ModelNotSupportedError
from .providers import OpenAICompatibleProvider, Provider, Upstage
from .types import (
    ChatCompletion,
    ChatCompletionChunk,
    CreateEmbeddingResponse,
    Messages,
    Model,
    StreamEvent,
    ToolCall,
    Usage,
)

__all__ = ["AsyncChatCompletionStream", "AsyncClient", "ChatCompletionStream", "Client", "ModelList"]


class ModelList:
    """The answer of ``models.list()``: OpenAI's list shape, iterable over ``Model`` objects."""

    __slots__ = ("data",)

    object = "list"

    def __init__(self, data: list[Model]) -> None:
        self.data = data

    def __iter__(self) -> Iterator[Model]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def to_dict(self) -> dict[str, Any]:
        return {"object": "list", "data": [m.to_dict() for m in self.data]}

    def __repr__(self) -> str:
        return f"ModelList({[m.id for m in self.data]!r})"


class _StreamState:
    """What a streamed answer has said so far; shared by the async and sync stream objects."""

    __slots__ = ()
    _stream: ChatStream

    @property
    def response_id(self) -> str:
        return self._stream.id

    @property
    def content(self) -> str:
        """The answer's text so far."""
        return self._stream.content

    @property
    def reasoning(self) -> str | None:
        return self._stream.reasoning

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls assembled from their deltas so far (complete after iteration)."""
        return self._stream.tool_calls.calls()

    @property
    def usage(self) -> Usage | None:
        """Token usage, once the stream has sent it (``stream_options={"include_usage": True}``)."""
        return self._stream.usage

    @property
    def finish_reason(self) -> str | None:
        return self._stream.finish_reason

    @property
    def done(self) -> bool:
        """Whether the stream ended normally (``[DONE]`` or a finish reason)."""
        return self._stream.done

    @property
    def request_id(self) -> str | None:
        """The server's request id (``x-request-id``)."""
        return self._stream.request_id

    @property
    def _request_id(self) -> str | None:
        """The openai SDK's name for ``request_id``."""
        return self._stream.request_id

    def completion(self) -> ChatCompletion:
        """What streamed so far as one ``ChatCompletion`` (after iteration: the whole answer)."""
        return self._stream.completion()


class AsyncChatCompletionStream(_StreamState):
    """A streamed answer: an async iterator of ``ChatCompletionChunk`` and an async context manager.

    ``aclose()`` (or ``close()``, awaited, as in the OpenAI SDK) stops early and releases the
    connection. Iterating goes straight to the core stream, so this wrapper costs nothing per chunk.
    """

    __slots__ = ("_stream",)

    def __init__(self, stream: ChatStream) -> None:
        self._stream = stream

    def __aiter__(self) -> ChatStream:
        return self._stream

    async def __anext__(self) -> ChatCompletionChunk:
        return await self._stream.__anext__()

    async def __aenter__(self) -> AsyncChatCompletionStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stream.aclose()

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def close(self) -> None:
        """The OpenAI SDK's name for ``aclose()``."""
        await self._stream.aclose()

    def events(self) -> AsyncIterator[StreamEvent]:
        """The same answer as typed events (text, reasoning, tool-call deltas and assembled calls, ...)."""
        return self._stream.events()

    def text(self) -> AsyncIterator[str]:
        """Only the answer's text pieces."""
        return self._stream.text()

    async def get_final_completion(self) -> ChatCompletion:
        """Read the rest of the stream and return the whole answer as one completion."""
        async with self:
            async for _ in self._stream:
                pass
        return self._stream.completion()

    def __repr__(self) -> str:
        return f"<AsyncChatCompletionStream id={self._stream.id!r} done={self._stream.done}>"


class ChatCompletionStream(_StreamState):
    """The sync twin: an iterator of chunks and a context manager; ``close()`` releases early.

    Each chunk is read by the async core on solarstream's background loop.
    """

    __slots__ = ("_iterator", "_stream")

    def __init__(self, stream: ChatStream) -> None:
        self._stream = stream
        self._iterator: Iterator[ChatCompletionChunk] | None = None

    def __iter__(self) -> ChatCompletionStream:
        return self

    def __next__(self) -> ChatCompletionChunk:
        if self._iterator is None:
            self._iterator = _sync.iterate(self._stream)
        return next(self._iterator)

    def __enter__(self) -> ChatCompletionStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._iterator is not None:
            self._iterator.close()  # type: ignore[attr-defined]  # a generator: its finally closes the stream
        _sync.run(self._stream.aclose())

    def get_final_completion(self) -> ChatCompletion:
        with self:
            for _ in self:
                pass
        return self._stream.completion()

    def __repr__(self) -> str:
        return f"<ChatCompletionStream id={self._stream.id!r} done={self._stream.done}>"


class AsyncCompletions:
    """``client.chat.completions``."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    @overload
    async def create(
        self, *, model: str, messages: Messages, stream: Literal[False] = False, **params: Any
    ) -> ChatCompletion: ...

    @overload
    async def create(
        self, *, model: str, messages: Messages, stream: Literal[True], **params: Any
    ) -> AsyncChatCompletionStream: ...

    @overload
    async def create(
        self, *, model: str, messages: Messages, stream: bool, **params: Any
    ) -> ChatCompletion | AsyncChatCompletionStream: ...

    async def create(
        self, *, model: str, messages: Messages, stream: bool = False, **params: Any
    ) -> ChatCompletion | AsyncChatCompletionStream:
        """Send a chat request; ``stream=True`` returns a stream, otherwise the whole completion.

        ``params`` are the request parameters (``temperature``, ``max_tokens``, ``tools``,
        ``reasoning_effort``, ``stream_options``, ...) and per-call ``timeout``, ``max_retries``,
        ``extra_body``, ``extra_headers``. Invalid requests raise before anything is sent; HTTP
        errors raise here, also for streams (the request is sent before this returns).
        """
        provider = self._client.provider
        if not stream:
            return await provider.complete(model, messages, **params)
        core = provider.stream(model, messages, **params)
        await core.start()
        return AsyncChatCompletionStream(core)


class AsyncChat:
    def __init__(self, client: AsyncClient) -> None:
        self.completions = AsyncCompletions(client)


class AsyncModels:
    """``client.models``."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self) -> ModelList:
        """The live model list (``GET {base_url}/models``)."""
        return ModelList(await self._client.provider.list_models())

    async def retrieve(self, model: str) -> Model:
        """One model: any name the provider's model table knows (current, dated, alias, retired),
        else what the live list says; ``ModelNotSupportedError`` if neither knows it."""
        provider = self._client.provider
        known = provider.known_models()
        if known is not None and model in {entry.id for entry in known}:
            return Model(model, 0, getattr(provider, "owned_by", "solarstream"))
        for entry in await provider.list_models():
            if entry.id == model:
                return entry
        raise ModelNotSupportedError(f"unknown model {model!r}; models.list() shows the models", param="model")


class AsyncEmbeddings:
    """``client.embeddings``."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(self, *, model: str, input: str | list[str], **params: Any) -> CreateEmbeddingResponse:
        """Embeddings for a text or a list of texts; ``encoding_format="base64"`` as the OpenAI API gives it."""
        return await self._client.provider.embed(model, input, **params)


class AsyncClient:
    """An OpenAI-style async client for Upstage's Solar models, or for any provider.

    ``api_key`` defaults to ``UPSTAGE_API_KEY``; ``base_url`` to ``UPSTAGE_BASE_URL``, then
    ``UPSTAGE_API_BASE``, then ``https://api.upstage.ai/v1``. ``timeout`` is seconds (connect and
    each wait for the next byte) or a ``Timeout``. Without ``proxy`` the usual proxy variables apply.
    ``verify``: ``True``, ``False``, a CA bundle path or an ``ssl.SSLContext``. ``strict_params``
    refuses parameters that would otherwise be dropped as no-ops. ``provider=`` uses a configured
    provider (another key, the generic OpenAI-compatible one, a ``Router``) instead; the other
    arguments then belong to that provider. Each client owns its connection pool:
    ``await client.aclose()`` or ``async with AsyncClient()`` (a dropped client closes it when collected).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int = 2,
        proxy: str | None = None,
        *,
        verify: Verify = True,
        strict_params: bool = False,
        provider: Provider | None = None,
    ) -> None:
        self.provider: Provider
        if provider is not None:
            given = [name for name, value in (("api_key", api_key), ("base_url", base_url), ("timeout", timeout),
                                              ("proxy", proxy)) if value is not None]
            if given or verify is not True or strict_params:
                raise InvalidRequestError(f"{', '.join(given) or 'verify/strict_params'} configure the provider: "
                                          "pass them to the provider you give as provider=, not to the client")
            self.provider = provider
        else:
            self.provider = Upstage(api_key, base_url, timeout=timeout, max_retries=max_retries, proxy=proxy,
                                    verify=verify, strict_params=strict_params)
            self.provider.resolve_api_key()  # no key anywhere: MissingAuthError now, as the openai SDK does
            self.provider.resolve_base_url()
        self.chat = AsyncChat(self)
        self.models = AsyncModels(self)
        self.embeddings = AsyncEmbeddings(self)

    @property
    def api_key(self) -> str | None:
        provider = self.provider
        return provider.resolve_api_key() if isinstance(provider, OpenAICompatibleProvider) else None

    @property
    def base_url(self) -> str | None:
        provider = self.provider
        return provider.resolve_base_url() if isinstance(provider, OpenAICompatibleProvider) else None

    @property
    def timeout(self) -> Timeout | None:
        return getattr(self.provider, "timeout", None)

    @property
    def max_retries(self) -> int:
        return int(getattr(self.provider, "max_retries", 0))

    @property
    def proxy(self) -> str | None:
        return getattr(self.provider, "proxy", None)

    async def aclose(self) -> None:
        """Close this client's connections (on the running event loop)."""
        await self.provider.aclose()

    async def close(self) -> None:
        """The OpenAI SDK's name for ``aclose()``."""
        await self.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return _repr(self, self.base_url, self.max_retries, self.proxy, self.provider)


# --- the sync client: the same coroutines, run on the background loop ---------------------------


class Completions:
    """``client.chat.completions`` (sync)."""

    def __init__(self, inner: AsyncCompletions) -> None:
        self._inner = inner

    @overload
    def create(
        self, *, model: str, messages: Messages, stream: Literal[False] = False, **params: Any
    ) -> ChatCompletion: ...

    @overload
    def create(
        self, *, model: str, messages: Messages, stream: Literal[True], **params: Any
    ) -> ChatCompletionStream: ...

    @overload
    def create(
        self, *, model: str, messages: Messages, stream: bool, **params: Any
    ) -> ChatCompletion | ChatCompletionStream: ...

    def create(
        self, *, model: str, messages: Messages, stream: bool = False, **params: Any
    ) -> ChatCompletion | ChatCompletionStream:
        """See ``AsyncCompletions.create``."""
        result = _sync.run(self._inner.create(model=model, messages=messages, stream=stream, **params))
        if isinstance(result, AsyncChatCompletionStream):
            return ChatCompletionStream(result._stream)
        return result


class Chat:
    def __init__(self, inner: AsyncChat) -> None:
        self.completions = Completions(inner.completions)


class Models:
    """``client.models`` (sync)."""

    def __init__(self, inner: AsyncModels) -> None:
        self._inner = inner

    def list(self) -> ModelList:
        return _sync.run(self._inner.list())

    def retrieve(self, model: str) -> Model:
        return _sync.run(self._inner.retrieve(model))


class Embeddings:
    """``client.embeddings`` (sync)."""

    def __init__(self, inner: AsyncEmbeddings) -> None:
        self._inner = inner

    def create(self, *, model: str, input: str | list[str], **params: Any) -> CreateEmbeddingResponse:
        return _sync.run(self._inner.create(model=model, input=input, **params))


class Client:
    """The synchronous client: same arguments and behaviour as ``AsyncClient``.

    It runs the async core on solarstream's background event loop, so it works in plain scripts
    and inside a running loop's thread (Jupyter) alike. ``client.close()`` or ``with Client()``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int = 2,
        proxy: str | None = None,
        *,
        verify: Verify = True,
        strict_params: bool = False,
        provider: Provider | None = None,
    ) -> None:
        self._async = AsyncClient(api_key, base_url, timeout, max_retries, proxy, verify=verify,
                                  strict_params=strict_params, provider=provider)
        self.chat = Chat(self._async.chat)
        self.models = Models(self._async.models)
        self.embeddings = Embeddings(self._async.embeddings)

    @property
    def provider(self) -> Provider:
        return self._async.provider

    @property
    def api_key(self) -> str | None:
        return self._async.api_key

    @property
    def base_url(self) -> str | None:
        return self._async.base_url

    @property
    def timeout(self) -> Timeout | None:
        return self._async.timeout

    @property
    def max_retries(self) -> int:
        return self._async.max_retries

    @property
    def proxy(self) -> str | None:
        return self._async.proxy

    def close(self) -> None:
        """Close this client's connections."""
        _sync.run(self._async.aclose())

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return _repr(self, self.base_url, self.max_retries, self.proxy, self.provider)


def _repr(client: object, base_url: str | None, max_retries: int, proxy: str | None, provider: Any) -> str:
    """Never the key; the proxy without its password."""
    shown = f", proxy={redact_url(proxy)!r}" if proxy else ""
    if not isinstance(provider, Upstage):
        return f"{type(client).__name__}(provider={provider!r})"
    return f"{type(client).__name__}(base_url={base_url!r}, max_retries={max_retries}{shown})"
