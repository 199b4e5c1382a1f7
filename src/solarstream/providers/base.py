"""Provider base classes, seed-compatible: ``AsyncGeneratorProvider``, ``ProviderModelMixin``, ``format_prompt``.

A provider implements one thing, ``create_async_generator``; the sync iterator
(``create_completion``) and the whole-answer coroutine (``create_async``) are derived from it.
Providers are objects (``Upstage(api_key=...)``); the seed's class-level calls
(``Upstage.create_async_generator(...)``) go to a default instance of the class
(``default_instance`` below), so both spellings of the seed's examples keep working.
"""

from __future__ import annotations

import logging
import threading
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from .. import _sync
from ..errors import ModelNotSupportedError
from ..types import AsyncResult, ChatCompletion, CreateEmbeddingResponse, CreateResult, Messages, Model

if TYPE_CHECKING:
    from .._stream import ChatStream
    from .spec import ModelEntry

__all__ = [
    "AsyncGeneratorProvider",
    "BaseProvider",
    "Provider",
    "ProviderModelMixin",
    "default_instance",
    "format_prompt",
]

log = logging.getLogger("solarstream")

P = ParamSpec("P")
R = TypeVar("R")


def format_prompt(messages: Messages, add_special_tokens: bool = False) -> str:
    """The original helper: one message gives its content; several give ``Role: content`` lines
    and a final ``Assistant:`` line (for backends that take a single prompt string)."""
    if not add_special_tokens and len(messages) <= 1:
        return content_text(messages[0].get("content")) if messages else ""
    lines = [f"{str(m.get('role', 'user')).capitalize()}: {content_text(m.get('content'))}" for m in messages]
    return "\n".join([*lines, "Assistant:"])


def content_text(content: Any) -> str:
    """The text of a message's content (a string, or the text parts of a list)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return str(content)


_defaults: dict[type, Any] = {}
_defaults_lock = threading.Lock()


def default_of(cls: type[R]) -> R:
    """The instance that class-level calls on ``cls`` use: created once, configured from the
    environment at each request (key and base URL are looked up when a request is built)."""
    instance = _defaults.get(cls)
    if instance is None:
        with _defaults_lock:
            instance = _defaults.get(cls)
            if instance is None:
                instance = _defaults[cls] = cls()
    return instance


class default_instance(Generic[P, R]):
    """A method that also works on the class: ``Upstage.stream(...)`` is ``default_of(Upstage).stream(...)``."""

    def __init__(self, method: Callable[Concatenate[Any, P], R]) -> None:
        self.method = method
        self.__doc__ = method.__doc__
        self.__name__ = method.__name__
        self.__wrapped__ = method

    @overload
    def __get__(self, obj: None, owner: type) -> Callable[P, R]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> Callable[P, R]: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> Callable[P, R]:
        if obj is None:
            assert owner is not None
            obj = default_of(owner)
        return types.MethodType(self.method, obj)


class Provider(Protocol):
    """What clients, the gateway, the CLI and batch jobs need of a provider (a ``Router`` is one too)."""

    def stream(self, model: str, messages: Messages, proxy: str | None = None, **kwargs: Any) -> ChatStream: ...

    async def complete(self, model: str, messages: Messages, proxy: str | None = None,
                       **kwargs: Any) -> ChatCompletion: ...

    async def embed(self, model: str, input: str | list[str], proxy: str | None = None,
                    **kwargs: Any) -> CreateEmbeddingResponse: ...

    async def list_models(self) -> list[Model]: ...

    def known_models(self) -> list[ModelEntry] | None: ...

    async def aclose(self) -> None: ...


class BaseProvider:
    """Declarative facts about a provider; subclasses set them as class attributes."""

    url: ClassVar[str | None] = None
    working: ClassVar[bool] = False
    needs_auth: ClassVar[bool] = False
    supports_stream: ClassVar[bool] = False
    supports_system_message: ClassVar[bool] = False
    supports_message_history: ClassVar[bool] = False

    @classmethod
    def get_parameters(cls) -> frozenset[str]:
        """The keyword arguments this provider understands."""
        return frozenset()


class AsyncGeneratorProvider(BaseProvider):
    """A provider whose answer is an async iterator of text pieces."""

    supports_stream: ClassVar[bool] = True

    @default_instance
    def create_async_generator(
        self, /, model: str, messages: Messages, proxy: str | None = None, **kwargs: Any
    ) -> AsyncResult:
        raise NotImplementedError

    @default_instance
    def create_completion(
        self, /, model: str, messages: Messages, stream: bool = True, proxy: str | None = None, **kwargs: Any
    ) -> CreateResult:
        """Sync twin of ``create_async_generator``: runs it on solarstream's background loop."""
        source = self.create_async_generator(model, messages, proxy=proxy, **kwargs)
        if stream:
            return _sync.iterate(source)
        return iter([_sync.run(_join(source))])

    @default_instance
    async def create_async(self, /, model: str, messages: Messages, **kwargs: Any) -> str:
        """The whole answer as one string."""
        return await _join(self.create_async_generator(model, messages, **kwargs))


async def _join(source: AsyncResult) -> str:
    return "".join([part async for part in source])


class ProviderModelMixin:
    """Model names, aliases and the rules that turn what a caller wrote into a model to send."""

    default_model: ClassVar[str] = ""
    models: ClassVar[list[str]] = []
    model_aliases: ClassVar[dict[str, str]] = {}
    #: retired name -> successor; such names are also aliases, and warn when used.
    retired_models: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def is_model_id(cls, model: str) -> bool:
        """Whether ``model`` names a model exactly (a current name or a dated id)."""
        return model in cls.models

    @classmethod
    def get_model(cls, model: str, *, strict: bool = False) -> str:
        """Exact names and ids as they are; aliases to their target; empty to the default.

        Anything else falls back to ``default_model`` with a warning, as the seed did, or raises
        ``ModelNotSupportedError`` when ``strict``.
        """
        if not model:
            return cls.default_model
        if cls.is_model_id(model):
            return model
        target = cls.model_aliases.get(model)
        if target is not None:
            if model in cls.retired_models:
                log.warning("model %r is retired; using its successor %r", model, target)
            return target
        if strict:
            raise ModelNotSupportedError(
                f"unknown model {model!r}; choose one of: {', '.join(cls.models)}", param="model"
            )
        log.warning("unknown model %r; using the default model %r", model, cls.default_model)
        return cls.default_model
