"""Provider base classes, seed-compatible: ``AsyncGeneratorProvider``, ``ProviderModelMixin``, ``format_prompt``.

A provider implements one thing, ``create_async_generator``; the sync iterator
(``create_completion``) and the whole-answer coroutine (``create_async``) are derived from it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from .. import _sync
from ..errors import ModelNotSupportedError
from ..types import AsyncResult, CreateResult, Messages

__all__ = ["AsyncGeneratorProvider", "BaseProvider", "ProviderModelMixin", "format_prompt"]

log = logging.getLogger("solarstream")


def format_prompt(messages: Messages, add_special_tokens: bool = False) -> str:
    """The original helper: one message gives its content; several give ``Role: content`` lines
    and a final ``Assistant:`` line (for backends that take a single prompt string)."""
    if not add_special_tokens and len(messages) <= 1:
        return _content_text(messages[0].get("content")) if messages else ""
    lines = [f"{str(m.get('role', 'user')).capitalize()}: {_content_text(m.get('content'))}" for m in messages]
    return "\n".join([*lines, "Assistant:"])


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return str(content)


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

    @classmethod
    def create_async_generator(
        cls, model: str, messages: Messages, proxy: str | None = None, **kwargs: Any
    ) -> AsyncResult:
        raise NotImplementedError

    @classmethod
    def create_completion(
        cls, model: str, messages: Messages, stream: bool = True, proxy: str | None = None, **kwargs: Any
    ) -> CreateResult:
        """Sync twin of ``create_async_generator``: runs it on solarstream's background loop."""
        source = cls.create_async_generator(model, messages, proxy=proxy, **kwargs)
        if stream:
            return _sync.iterate(source)
        return iter([_sync.run(_join(source))])

    @classmethod
    async def create_async(cls, model: str, messages: Messages, **kwargs: Any) -> str:
        """The whole answer as one string."""
        return await _join(cls.create_async_generator(model, messages, **kwargs))


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
