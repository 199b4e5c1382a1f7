"""Providers: the seed's base classes, the generic OpenAI-compatible provider, Upstage, the registry."""

from .base import AsyncGeneratorProvider, BaseProvider, Provider, ProviderModelMixin, format_prompt
from .openai_compatible import GENERIC, ChatRequest, OpenAICompatibleProvider
from .params import MessageRules, Rule
from .registry import available, create_provider, register
from .spec import ModelCatalog, ModelPolicy, ProviderSpec, Quirks
from .upstage import UPSTAGE, Upstage

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
    "Rule",
    "Upstage",
    "available",
    "create_provider",
    "format_prompt",
    "register",
]
