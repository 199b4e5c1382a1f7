"""The ``-o`` options of each Solar model: pydantic classes built from solarstream's model table.

Ranges are checked here, so ``llm`` reports a bad value before anything is sent. ``reasoning_effort``
exists only on models that reason and takes only the values that model accepts; on the others a
clear error says which models take it.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

import llm
from pydantic import Field, create_model, field_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from ..providers.upstage.models import MODELS, ModelInfo

__all__ = ["SolarOptions", "options_for"]


class SolarOptions(llm.KeyModel.Options):
    """What every Solar chat model takes."""

    temperature: float | None = Field(
        default=None, ge=0, le=2,
        description="Sampling temperature between 0 and 2: higher is more varied, lower more focused.")
    top_p: float | None = Field(
        default=None, ge=0, le=1,
        description="Nucleus sampling between 0 and 1: sample only from the tokens within this probability mass.")
    top_k: int | None = Field(
        default=None, ge=1, description="Sample only from the k most likely tokens.")
    max_tokens: int | None = Field(
        default=None, ge=1, description="The most tokens to write; reasoning tokens count against it.")
    stop: str | list[str] | None = Field(
        default=None, description="Stop writing where this string would appear (the Python API also takes a list).")
    seed: int | None = Field(
        default=None, description="Integer seed, for repeatable sampling where the model supports it.")
    frequency_penalty: float | None = Field(
        default=None, ge=-2, le=2,
        description="Between -2 and 2: positive values make repeating the same words less likely.")
    presence_penalty: float | None = Field(
        default=None, ge=-2, le=2,
        description="Between -2 and 2: positive values make new topics more likely.")
    json_object: bool | None = Field(
        default=None,
        description='Answer with one JSON object (response_format json_object); the prompt must say "JSON".')
    prompt_cache_key: str | None = Field(
        default=None, description="Requests with the same key reuse Upstage's cache of their common prompt prefix.")


def _effort_help(info: ModelInfo) -> str:
    verb = "turns" if len(info.reasoning_off) == 1 else "turn"
    off = f"; {' and '.join(info.reasoning_off)} {verb} reasoning off" if info.reasoning_off else ""
    default = "reasons" if info.reasons_by_default else "does not reason"
    return (f"How hard {info.name} thinks before answering: {', '.join(info.reasoning_efforts)}{off}. "
            f"Unset, the model {default} by default.")


def _reasoning_models() -> str:
    return "; ".join(f"{m.name} ({', '.join(m.reasoning_efforts)})" for m in MODELS.values() if m.reasons)


def _no_reasoning(info: ModelInfo) -> Any:
    """A field validator for models that do not reason: the API rejects ``reasoning_effort`` for them."""

    def check(cls: type[SolarOptions], value: Any) -> Any:
        if value is not None:
            raise PydanticCustomError(
                "no_reasoning", "{model} does not reason, so it takes no reasoning_effort; the models that do: "
                "{models}", {"model": info.name, "models": _reasoning_models()})
        return value

    return field_validator("reasoning_effort")(classmethod(check))


@cache
def options_for(info: ModelInfo) -> type[SolarOptions]:
    """The options class for one model (cached: every name and dated id of a model shares it)."""
    fields: dict[str, Any] = {}
    validators: dict[str, Any] = {}
    if info.max_output is not None:
        fields["max_tokens"] = (int | None, Field(
            default=None, ge=1, le=info.max_output,
            description=f"The most tokens to write, at most {info.max_output:,}; reasoning tokens count against it."))
    if info.reasons:
        effort: Any = Literal.__getitem__(info.reasoning_efforts)
        fields["reasoning_effort"] = (effort | None, Field(default=None, description=_effort_help(info)))
    else:
        # present but hidden from `llm models --options`, so that setting it gets a clear error
        hidden: Any = SkipJsonSchema[Any]  # type: ignore[misc]  # a runtime type expression
        fields["reasoning_effort"] = (hidden, None)
        validators["no_reasoning_effort"] = _no_reasoning(info)
    return create_model(
        "Options", __base__=SolarOptions, __validators__=validators, __module__=__name__, **fields)
