"""Providers: the seed's base classes, the generic OpenAI-compatible provider, Upstage, the registry,
and gpt4free's ``RetryProvider`` (on the router, loaded on first use)."""

from typing import TYPE_CHECKING, Any

from .base import AsyncGeneratorProvider, BaseProvider, Provider, ProviderModelMixin, format_prompt
from .openai_compatible import GENERIC, ChatRequest, OpenAICompatibleProvider
from .params import MessageRules, Rule
from .registry import available, create_provider, register
from .spec import ModelCatalog, ModelPolicy, ProviderSpec, Quirks
from .upstage import UPSTAGE, Upstage

if TYPE_CHECKING:
    from ..routing import RetryProvider

__all__ = [
    "GENERIC",
    "UPSTAGE",
    "AsyncGeneratorProvider",
    "BaseProvider",
    "ChatRequest",
    "MessageRules",
    "ModelCatalog",
    "ModelPolicy",
    "OpenAICompatibleProvider",
    "Provider",
    "ProviderModelMixin",
    "ProviderSpec",
    "Quirks",
    "RetryProvider",
    "Rule",
    "Upstage",
    "available",
    "create_provider",
    "format_prompt",
    "register",
]


def __getattr__(name: str) -> Any:
    if name == "RetryProvider":  # the routing package imports this one: load it only when asked
        from ..routing import RetryProvider

        return RetryProvider
    raise AttributeError(f"module 'solarstream.providers' has no attribute {name!r}")
