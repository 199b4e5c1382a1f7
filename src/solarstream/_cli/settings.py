"""What a chat asks with: the model, system prompt and request parameters, and which model that is.

The model is chosen in this order (first one set wins): ``-m/--model`` (or ``$SOLARSTREAM_MODEL``,
which click reads as the option's default, as ``llm`` does with ``$LLM_MODEL``), the model of the
conversation being continued, the default saved with ``solarstream models default NAME``, and the
built-in default of the model table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..types import Messages

__all__ = ["ChatSettings", "builtin_default_model", "choose_model", "first_messages"]


@dataclass(frozen=True)
class ChatSettings:
    model: str
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    #: the parameters that came from ``-o KEY VALUE`` (their errors then name ``-o KEY``)
    option_keys: frozenset[str] = frozenset()
    stream: bool = True
    json_lines: bool = False
    show_usage: bool = False

    def with_model(self, model: str) -> ChatSettings:
        return replace(self, model=model)

    def with_system(self, system: str | None) -> ChatSettings:
        return replace(self, system=system)


def first_messages(settings: ChatSettings) -> Messages:
    return [{"role": "system", "content": settings.system}] if settings.system else []


def builtin_default_model() -> str:
    from ..providers.upstage.models import DEFAULT_MODEL

    return DEFAULT_MODEL


def choose_model(option: str | None, conversation_model: str | None = None) -> str:
    """The model by the precedence in the module docstring."""
    if option:
        return option
    if conversation_model:
        return conversation_model
    from .config import saved_default_model

    return saved_default_model() or builtin_default_model()
