"""JSON for the hot path: orjson, with the standard library where orjson refuses valid input.

orjson parses a typical chunk 3-4x faster than ``json.loads`` (1.5-1.8x end to end on a
stream; bench/PROFILE.md). It rejects lone surrogate escapes (``"\\ud83d"``), which ``json``
accepts and which a server that escapes non-ASCII can send when it splits an emoji across two
chunks, so a refusal is retried with ``json.loads``; a real syntax error still raises ``ValueError``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "loads"]


def loads(data: str | bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON (non-ASCII kept as is, like ``ensure_ascii=False``)."""
    return orjson.dumps(obj)
