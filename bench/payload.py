"""The pre-built stream bodies the bench server sends, and what a client should get out of them.

Chunks are shaped like Upstage's (UUID id, ``chat.completion.chunk``, ``created``, the dated model id,
a few characters of ``delta.content``), encoded once and reused, so the server costs almost nothing.
"""

from __future__ import annotations

import json
import re
import uuid
from functools import lru_cache
from typing import Any

__all__ = [
    "MODEL",
    "PIECES",
    "chunk_count_of",
    "expected_text",
    "messages_for",
    "sse_body",
]

MODEL = "solar-pro4-260806"
CREATED = 1786000000
#: Text pieces of a few characters, cycled; some are not ASCII so UTF-8 decoding is exercised.
PIECES = ("Sol", "ar", " str", "eams", " are", " fa", "st", ",", " 안녕", "하세요", " при", "вет", " and", " co",
          "rrect", ".\n")
_CHUNKS_RE = re.compile(rb"bench:chunks=(\d+)")
DEFAULT_CHUNKS = 100


def messages_for(chunks: int) -> list[dict[str, Any]]:
    """The request messages that ask the bench server for ``chunks`` text chunks."""
    return [
        {"role": "system", "content": "You are a benchmark target."},
        {"role": "user", "content": f"Stream please. bench:chunks={chunks}"},
    ]


def chunk_count_of(body: bytes) -> int:
    """How many text chunks a request body asks for (the directive in its messages)."""
    match = _CHUNKS_RE.search(body)
    return int(match.group(1)) if match else DEFAULT_CHUNKS


def expected_text(chunks: int) -> str:
    full, rest = divmod(chunks, len(PIECES))
    return "".join(PIECES) * full + "".join(PIECES[:rest])


def _chunk(stream_id: str, delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
    obj: dict[str, Any] = {
        "id": stream_id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        obj["usage"] = usage
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def sse_frames(chunks: int) -> list[bytes]:
    """Role chunk, ``chunks`` text chunks, finish chunk with usage, ``[DONE]``: one SSE frame each."""
    stream_id = str(uuid.uuid4())
    frames = [_chunk(stream_id, {"role": "assistant", "content": ""})]
    encoded = [_chunk(stream_id, {"content": piece}) for piece in PIECES]
    frames.extend(encoded[i % len(PIECES)] for i in range(chunks))
    usage = {"prompt_tokens": 24, "completion_tokens": chunks, "total_tokens": chunks + 24}
    frames.append(_chunk(stream_id, {}, "stop", usage))
    frames.append(b"data: [DONE]\n\n")
    return frames


@lru_cache(maxsize=8)
def sse_body(chunks: int, chunked: bool = True) -> bytes:
    """The whole HTTP body. ``chunked``: one HTTP/1.1 chunk per SSE frame, as a streaming server
    flushes them; otherwise the plain bytes (sent with Content-Length)."""
    frames = sse_frames(chunks)
    if not chunked:
        return b"".join(frames)
    return b"".join(b"%x\r\n%b\r\n" % (len(f), f) for f in frames) + b"0\r\n\r\n"
