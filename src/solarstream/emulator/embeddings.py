"""``POST /v1/embeddings``: validation as strict as the chat endpoint's, and deterministic vectors.

A vector is a pure function of the model family and the text: SHAKE-256 of both gives ``dims``
signed 16-bit values, scaled to length 1. The same text always gives the same vector, different
texts give unrelated (nearly orthogonal) ones, and the query and passage models of one family give
the same vector for the same text, so an exact-text lookup finds its passage. No model is involved;
the vectors carry no meaning.
"""

from __future__ import annotations

import hashlib
import math
import sys
from array import array
from dataclasses import dataclass
from typing import Any

import orjson

from ..providers.upstage import models as _models
from .answers import count_tokens
from .validation import ApiError

__all__ = ["EmbeddingParams", "embeddings_body", "resolve_embedding_model", "validate_embeddings", "vector"]

_KEYS = ("model", "input", "encoding_format")


def _bad(message: str, param: str = "") -> ApiError:
    return ApiError(400, "invalid_request_body", message, param)


@dataclass(frozen=True)
class EmbeddingParams:
    """A request that passed validation: the model and each input with its token count."""

    info: _models.EmbeddingModelInfo
    inputs: list[str]
    tokens: list[int]

    @property
    def prompt_tokens(self) -> int:
        return sum(self.tokens)


def resolve_embedding_model(name: str, today: str) -> _models.EmbeddingModelInfo:
    """An embedding model that answers on ``today`` (ISO date); anything else is a 400."""
    available = ", ".join(n for n, m in _models.EMBEDDING_MODELS.items() if not m.removal or m.removal > today)
    info = _models.lookup_embedding(name)
    if info is None:
        if _models.lookup(name) is not None or name in _models.RETIRED:
            raise _bad(f"Invalid model '{name}' for embeddings: it is a chat model. Embedding models: "
                       f"{available}.", "model")
        raise _bad(f"Invalid model '{name}'. Available embedding models: {available}.", "model")
    if info.removal is not None and today >= info.removal:
        raise _bad(f"The model '{name}' is retired (removed on {info.removal}); use '{info.successor}' instead.",
                   "model")
    return info


def _inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        if not value:
            raise _bad("'input' must not be an empty string.", "input")
        return [value]
    if not isinstance(value, list):
        raise _bad("'input' must be a string or a list of strings.", "input")
    if not value:
        raise _bad("'input' must be a non-empty list of strings.", "input")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _bad(f"'input[{i}]' must be a string (token arrays are not supported).", f"input[{i}]")
        if not item:
            raise _bad(f"'input[{i}]' must not be an empty string.", f"input[{i}]")
    return value


def validate_embeddings(body: Any, *, today: str) -> EmbeddingParams:
    """Check an embeddings body: keys, model, ``encoding_format``, inputs, each input's length."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    for key in body:
        if key not in _KEYS:
            raise _bad(f"Unknown key '{key}'; the embeddings endpoint takes {', '.join(_KEYS)}.", key)
    if "model" not in body:
        raise _bad("'model' is required.", "model")
    if not isinstance(body["model"], str):
        raise _bad("'model' must be a string.", "model")
    if "input" not in body:
        raise _bad("'input' is required.", "input")
    if "encoding_format" in body and body["encoding_format"] != "float":
        raise _bad("'encoding_format' must be 'float' (base64 is not known to be supported).", "encoding_format")
    inputs = _inputs(body["input"])
    info = resolve_embedding_model(body["model"], today)
    tokens = [count_tokens(text) for text in inputs]
    for i, count in enumerate(tokens):
        if count > info.context_window:
            where = "input" if isinstance(body["input"], str) else f"input[{i}]"
            raise ApiError(400, "context_length_exceeded",
                           f"'{where}' has {count} tokens; '{info.name}' takes at most {info.context_window} "
                           "tokens per input. Split the text into smaller pieces.", where)
    return EmbeddingParams(info, inputs, tokens)


def _family(info: _models.EmbeddingModelInfo) -> str:
    suffix = f"-{info.side}"
    return info.name[: -len(suffix)] if info.name.endswith(suffix) else info.name


def vector(info: _models.EmbeddingModelInfo, text: str) -> list[float]:
    """The deterministic unit vector of ``text`` for this model (``info.dimensions`` floats)."""
    digest = hashlib.shake_256(f"{_family(info)}\x00{text}".encode()).digest(2 * info.dimensions)
    values = array("h", digest)
    if sys.byteorder == "big":
        values.byteswap()  # the same vectors on every machine
    norm = math.hypot(*values)
    if norm == 0:  # 2 * dims zero bytes from SHAKE-256: not going to happen, but never divide by zero
        return [1.0] + [0.0] * (info.dimensions - 1)
    scale = 1.0 / norm
    return [v * scale for v in values]


def embeddings_body(params: EmbeddingParams, texts: list[str]) -> bytes:
    """The OpenAI-shaped answer; ``texts`` are what is embedded (directives removed)."""
    data = [{"object": "embedding", "index": i, "embedding": vector(params.info, text)}
            for i, text in enumerate(texts)]
    tokens = params.prompt_tokens
    return orjson.dumps({"object": "list", "data": data, "model": params.info.name,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
