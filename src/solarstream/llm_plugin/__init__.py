"""An ``llm`` plugin (simonw/llm) for Upstage's Solar models, on solarstream's client.

Installed with the ``llm`` extra; llm finds it through the ``llm`` entry point. Every current model
of solarstream's model table is registered under its name and, pinned, under its dated id; retired
names are llm aliases of their successors (``solar-pro`` -> ``solar-pro4``), so ``llm aliases``
lists them. The embedding models are registered for ``llm embed``.
"""

from __future__ import annotations

from collections.abc import Callable

import llm

from ..providers.upstage.models import ALIASES, EMBEDDING_MODELS, MODELS
from .embeddings import SolarEmbedding
from .models import AsyncSolarChat, SolarChat, model_error
from .options import SolarOptions, options_for

__all__ = [
    "AsyncSolarChat",
    "SolarChat",
    "SolarEmbedding",
    "SolarOptions",
    "model_error",
    "options_for",
    "register_embedding_models",
    "register_models",
]


@llm.hookimpl
def register_models(register: Callable[..., None]) -> None:
    """Each current model with its retired names as aliases, then each pinned dated id."""
    for info in MODELS.values():
        aliases = tuple(name for name, target in ALIASES.items() if target == info.name)
        register(SolarChat(info.name, info), AsyncSolarChat(info.name, info), aliases=aliases)
    for info in MODELS.values():
        register(SolarChat(info.dated_id, info), AsyncSolarChat(info.dated_id, info))


@llm.hookimpl
def register_embedding_models(register: Callable[..., None]) -> None:
    """Each embedding model (queries and passages are separate models: embed each side with its own)."""
    for info in EMBEDDING_MODELS.values():
        register(SolarEmbedding(info))
