"""Bytes on the wire: SSE frames for chunks, comments, errors and ``[DONE]``; JSON bodies.

A ``Framer`` holds the parts every chunk of one answer shares (id, created, model, line ending)
as ready strings, so each chunk costs one small ``json.dumps`` of its delta.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["Framer", "dumps", "error_body"]


def dumps(obj: Any) -> str:
    """Compact JSON with UTF-8 text as is (the API does not \\u-escape Cyrillic or Korean)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def error_body(message: str, code: str, *, type_: str = "invalid_request_error", param: str = "") -> dict[str, Any]:
    """The API's error envelope."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class Framer:
    """Encodes the SSE frames of one streamed answer."""

    __slots__ = ("_end", "_head", "_nl")

    def __init__(self, completion_id: str, created: int, model: str, *, crlf: bool = False) -> None:
        self._nl = "\r\n" if crlf else "\n"
        self._end = self._nl * 2
        self._head = (f'data: {{"id":{dumps(completion_id)},"object":"chat.completion.chunk",'
                      f'"created":{created},"model":{dumps(model)},"system_fingerprint":null,"choices":')

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None,
              usage: dict[str, Any] | None = None) -> bytes:
        """One ``chat.completion.chunk`` with a single choice."""
        reason = "null" if finish_reason is None else dumps(finish_reason)
        tail = f',"usage":{dumps(usage)}}}' if usage is not None else "}"
        choice = f'[{{"index":0,"delta":{dumps(delta)},"logprobs":null,"finish_reason":{reason}}}]'
        return (self._head + choice + tail + self._end).encode()

    def usage_only(self, usage: dict[str, Any]) -> bytes:
        """The separate usage chunk some servers send: ``"choices": []``."""
        return (self._head + f'[],"usage":{dumps(usage)}}}' + self._end).encode()

    def done(self) -> bytes:
        return ("data: [DONE]" + self._end).encode()

    def ping(self) -> bytes:
        return (": ping" + self._end).encode()

    def error(self, body: dict[str, Any], *, event: bool = False) -> bytes:
        """An error reported inside the stream, optionally as ``event: error``."""
        prefix = "event: error" + self._nl if event else ""
        return (prefix + "data: " + dumps(body) + self._end).encode()
