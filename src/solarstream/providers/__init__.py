"""Providers: the base classes of the provider framework and the Upstage provider."""

from .base import AsyncGeneratorProvider, BaseProvider, ProviderModelMixin, format_prompt
from .openai_compatible import EndpointConfig, OpenAICompatibleProvider
from .upstage import Upstage

__all__ = [
    "AsyncGeneratorProvider",
    "BaseProvider",
    "EndpointConfig",
    "OpenAICompatibleProvider",
    "ProviderModelMixin",
    "Upstage",
    "format_prompt",
]
