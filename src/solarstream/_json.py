"""JSON for the hot path: orjson, with the standard library where orjson refuses valid input.

orjson parses a typical chunk 3-4x faster than ``json.loads`` (1.5-1.8x end to end on a
stream; bench/PROFILE.md). It rejects lone surrogate escapes (``"\\ud83d"``), which ``json``
accepts and which a server that escapes non-ASCII can send when it splits an emoji across two
chunks, so a refusal is retried with ``json.loads``; a real syntax error still raises ``ValueError``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["dumps", "kind", "loads"]


def loads(data: str | bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON (non-ASCII kept as is, like ``ensure_ascii=False``)."""
    return orjson.dumps(obj)


def kind(value: Any) -> str:
    """What a JSON value is, for messages: ``null``, ``a boolean``, ``a number``, ``a string`` (or
    ``an empty string``), ``an array``, ``an object``; other Python values by their type's name."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string" if value.strip() else "an empty string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
