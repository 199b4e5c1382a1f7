"""The Solar model table: one place for names, dated ids, aliases, retirements and capabilities.

Facts come from shared/UPSTAGE_API.md (November 2026). The provider, the emulator, the CLI's
``models`` command and the gateway all read this table, so a model change is a one-line edit here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..spec import ModelEntry

__all__ = [
    "ALIASES",
    "CURRENT_MODELS",
    "DEFAULT_MODEL",
    "EMBEDDING_MODELS",
    "MODELS",
    "RETIRED",
    "EmbeddingModelInfo",
    "ModelInfo",
    "RetiredModel",
    "listed",
    "lookup",
    "lookup_embedding",
]


@dataclass(frozen=True)
class ModelInfo:
    """A model that answers today."""

    name: str
    dated_id: str
    context_window: int | None
    max_output: int | None
    tools: bool
    #: Accepted ``reasoning_effort`` values; empty means the API rejects the parameter.
    reasoning_efforts: tuple[str, ...] = ()
    #: Efforts that switch reasoning off (the emulator sends no reasoning for them).
    reasoning_off: tuple[str, ...] = ()
    #: Whether the model reasons when ``reasoning_effort`` is omitted.
    reasons_by_default: bool = False
    note: str = ""

    @property
    def reasons(self) -> bool:
        return bool(self.reasoning_efforts)


@dataclass(frozen=True)
class EmbeddingModelInfo:
    """An embedding model: ``POST {base}/embeddings``; queries and passages use different models."""

    name: str
    dimensions: int
    context_window: int
    #: ``query`` or ``passage`` (asymmetric retrieval: embed each side with its own model)
    side: str
    #: the day requests stop working (ISO date), if announced
    removal: str | None = None
    successor: str | None = None
    note: str = ""


@dataclass(frozen=True)
class RetiredModel:
    """A name that no longer answers; ``successor`` is what it maps to."""

    name: str
    successor: str
    retired: str
    note: str = ""


MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        ModelInfo(
            "solar-pro4",
            "solar-pro4-260806",
            context_window=512_000,
            max_output=128_000,
            tools=True,
            reasoning_efforts=("none", "minimal", "low", "medium", "high", "xhigh", "max"),
            reasoning_off=("none", "minimal"),
            reasons_by_default=False,
            note="flagship since 2026-08-06",
        ),
        ModelInfo(
            "solar-pro3",
            "solar-pro3-260323",
            context_window=128_000,
            max_output=None,
            tools=True,
            reasoning_efforts=("low", "medium", "high"),
            reasoning_off=("low",),
            reasons_by_default=True,
        ),
        ModelInfo("solar-mini", "solar-mini-250422", context_window=32_000, max_output=None, tools=True),
        ModelInfo(
            "syn-pro",
            "syn-pro-251021",
            context_window=None,
            max_output=None,
            tools=False,
            note="Japanese-focused",
        ),
    )
}

DEFAULT_MODEL = "solar-pro4"
CURRENT_MODELS: list[str] = list(MODELS)

RETIRED: dict[str, RetiredModel] = {
    r.name: r
    for r in (
        RetiredModel("solar-pro2", "solar-pro3", "2026-10-30"),
        RetiredModel("solar-pro", DEFAULT_MODEL, "2025", "the seed's default model"),
        RetiredModel("solar-1-mini-chat", "solar-mini", "2025", "renamed"),
        RetiredModel("upstage/solar-1-mini-chat", "solar-mini", "2025", "renamed"),
        RetiredModel("solar-1-mini-chat-ja", "syn-pro", "2025-04-10"),
        RetiredModel("solar-mini-ja", "syn-pro", "2025-04-10"),
        RetiredModel("upstage/solar-1-mini-chat-ja", "syn-pro", "2025-04-10"),
        RetiredModel("solar-pro-preview-240910", DEFAULT_MODEL, "2024"),
    )
}

#: alias -> current model name; every retired name is an alias of its successor.
ALIASES: dict[str, str] = {name: r.successor for name, r in RETIRED.items()}

_DATED = re.compile(r"^(?P<base>[a-z0-9-]+?)-(?P<date>\d{6})$")
_BY_DATED_ID: dict[str, ModelInfo] = {m.dated_id: m for m in MODELS.values()}


def lookup(name: str) -> ModelInfo | None:
    """The current model behind an exact name or a dated id (``solar-pro4-260806``), else ``None``.

    Any six-digit date suffix on a current name is accepted: Upstage publishes new snapshots
    under the same alias and we should not refuse one we have not heard of yet.
    """
    info = MODELS.get(name) or _BY_DATED_ID.get(name)
    if info is not None:
        return info
    match = _DATED.match(name)
    return MODELS.get(match["base"]) if match else None


EMBEDDING_MODELS: dict[str, EmbeddingModelInfo] = {
    m.name: m
    for m in (
        EmbeddingModelInfo("solar-embedding-2-query", 1024, 8192, "query"),
        EmbeddingModelInfo("solar-embedding-2-passage", 1024, 8192, "passage"),
        EmbeddingModelInfo("embedding-query", 4096, 4096, "query", removal="2026-12-31",
                           successor="solar-embedding-2-query", note="Solar Embedding 1"),
        EmbeddingModelInfo("embedding-passage", 4096, 4096, "passage", removal="2026-12-31",
                           successor="solar-embedding-2-passage", note="Solar Embedding 1"),
    )
}


def lookup_embedding(name: str) -> EmbeddingModelInfo | None:
    """The embedding model of that exact name, else ``None``."""
    return EMBEDDING_MODELS.get(name)


def listed() -> list[ModelEntry]:
    """Every id a model list shows: current names with their dated ids, then aliases (retired names
    included, since requests with them are mapped to their successor), then embedding models."""
    entries: list[ModelEntry] = []
    for info in MODELS.values():
        entries += [ModelEntry(info.name), ModelEntry(info.dated_id, maps_to=info.name)]
    entries += [ModelEntry(alias, maps_to=target) for alias, target in ALIASES.items()]
    entries += [ModelEntry(name, "embedding") for name in EMBEDDING_MODELS]
    return entries
