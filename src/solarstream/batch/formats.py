"""The file formats: INPUT lines into work, results into OUTPUT records, OUTPUT lines back into facts.

INPUT, one request a line (docs/batch.md):

* an OpenAI Batch request line: ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}``;
* a short line: ``{"custom_id"?, "messages": [...], ...request parameters}``;
* with ``prompts``: plain text, one user prompt a line.

OUTPUT, one record a line, in the OpenAI Batch output shape (vLLM's ``run-batch`` writes the same):
``{"id": "batch_req_…", "custom_id", "response": {"status_code", "request_id", "body"} | null,
"error": {"code", "message"} | null}``. A record is a success when ``error`` is null and the
response has a 2xx status; anything else is an error record.

Everything here is pure (no I/O, no provider), so every engine parses and writes the same way.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from .._json import kind as _kind

__all__ = [
    "CHAT_URL",
    "BatchResult",
    "ParseOptions",
    "Problem",
    "RecordFacts",
    "Work",
    "dumps_line",
    "line_id",
    "parse_line",
    "parse_object",
    "read_record",
]

CHAT_URL = "/v1/chat/completions"

#: keys of an OpenAI Batch request line
_BATCH_KEYS = frozenset({"custom_id", "method", "url", "body"})
#: body keys that are client settings, never request parameters: a line may not set them (a line
#: that set ``base_url`` would send the API key to a server of its choosing)
_NOT_PARAMETERS = frozenset({"api_key", "base_url", "timeout", "max_retries", "extra_body", "extra_headers",
                             "proxy", "self"})


def line_id(line: int) -> str:
    """The custom_id of a line that has none."""
    return f"line-{line}"


@dataclass(frozen=True)
class ParseOptions:
    """How lines are read: ``model`` fills only lines without one; ``system`` is added to prompts and
    to lines whose messages do not start with a system message."""

    model: str | None = None
    system: str | None = None
    prompts: bool = False


@dataclass(frozen=True, slots=True)
class Work:
    """One request to send: its id, its line, and what goes to ``prepare_chat``."""

    custom_id: str
    line: int
    model: str
    messages: Any
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with one line; ``custom_id`` is the line's own when readable, else ``line-N``."""

    line: int
    message: str
    custom_id: str


def parse_line(raw: bytes, line: int, options: ParseOptions) -> Work | Problem:
    """One non-blank INPUT line (with or without its line break)."""
    if options.prompts:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Problem(line, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                           line_id(line))
        return _prompt_work(text.rstrip("\r\n"), line, options)
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:  # orjson refuses lone surrogate escapes, which JSON allows
            obj = json.loads(raw)
        except ValueError:
            return Problem(line, f"not valid JSON ({_json_reason(exc)})", line_id(line))
    return parse_object(obj, line, options)


def _json_reason(exc: orjson.JSONDecodeError) -> str:
    reason = str(exc.msg) if getattr(exc, "msg", None) else str(exc)
    column = getattr(exc, "colno", None)
    return f"{reason} at column {column}" if column else reason


def _prompt_work(text: str, line: int, options: ParseOptions) -> Work | Problem:
    messages: list[dict[str, Any]] = [{"role": "user", "content": text}]
    if options.system:
        messages.insert(0, {"role": "system", "content": options.system})
    if not options.model:
        return Problem(line, "no model: pass -m MODEL (model= from Python)", line_id(line))
    return Work(line_id(line), line, options.model, messages)


def parse_object(obj: Any, line: int, options: ParseOptions, *, prompts: bool = False) -> Work | Problem:
    """One request given as a parsed object (a line's JSON, or an item given to ``aresults``);
    with ``prompts`` a ``str`` is a prompt."""
    if prompts and isinstance(obj, str):
        return _prompt_work(obj, line, options)
    if not isinstance(obj, Mapping):
        return Problem(line, f"not a JSON object but {_kind(obj)}", line_id(line))
    custom_id = obj.get("custom_id")
    readable = custom_id if isinstance(custom_id, str) and custom_id else line_id(line)
    if "custom_id" in obj and not (isinstance(custom_id, str) and custom_id):
        return Problem(line, f"custom_id must be a non-empty string, not {_shown(custom_id)}", readable)
    if "body" in obj or "url" in obj or "method" in obj:
        body = _batch_body(obj, line, readable)
        if isinstance(body, Problem):
            return body
    elif "messages" in obj:
        body = {k: v for k, v in obj.items() if k != "custom_id"}
    else:
        return Problem(line, 'neither an OpenAI Batch request line ({"custom_id", "method", "url", "body"}) '
                             'nor a short line ({"messages": [...], ...}): it has no "body" or "messages"',
                       readable)
    return _work(body, line, readable, options)


def _batch_body(obj: Mapping[str, Any], line: int, custom_id: str) -> dict[str, Any] | Problem:
    extra = sorted(k for k in obj if k not in _BATCH_KEYS)
    if extra:
        return Problem(line, f"unexpected key {extra[0]!r} in a batch request line (it has custom_id, method, "
                             "url and body)", custom_id)
    method = obj.get("method", "POST")
    if method != "POST":
        return Problem(line, f"method must be \"POST\", not {_shown(method)}", custom_id)
    url = obj.get("url")
    if url != CHAT_URL:
        if url is None:
            return Problem(line, f'no "url": a batch request line needs "url": "{CHAT_URL}"', custom_id)
        return Problem(line, f"url must be {CHAT_URL} (batch sends chat completions), not {_shown(url)}",
                       custom_id)
    body = obj.get("body")
    if not isinstance(body, Mapping):
        return Problem(line, f'"body" must be a JSON object holding the chat request, not {_kind(body)}',
                       custom_id)
    return dict(body)


def _work(body: dict[str, Any], line: int, custom_id: str, options: ParseOptions) -> Work | Problem:
    for key in body:
        if key in _NOT_PARAMETERS:
            return Problem(line, f"{key}: not a request parameter (it is a client setting and cannot be set per "
                                 "line)", custom_id)
    model = body.pop("model", None)
    if model is None or model == "":
        model = options.model
        if not model:
            return Problem(line, 'no model: give the request a "model" or pass -m MODEL', custom_id)
    elif not isinstance(model, str):
        return Problem(line, f"model must be a string, not {_shown(model)}", custom_id)
    messages = body.pop("messages", None)
    body.pop("stream", None)  # --stream decides how every request is sent
    if options.system and isinstance(messages, list) and not (
            messages and isinstance(messages[0], Mapping) and messages[0].get("role") == "system"):
        messages = [{"role": "system", "content": options.system}, *messages]
    return Work(custom_id, line, model, messages, body)




def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:59] + "…"


# --- results and records ---------------------------------------------------------------------------


@dataclass(slots=True)
class BatchResult:
    """The outcome of one request: what its OUTPUT record says (``to_dict()`` is that record).

    ``body`` is the chat completion for a success, the API's error body (when it sent one) for a
    failure; ``error`` is ``{"code", "message"}`` for a failure, else ``None``.
    """

    custom_id: str
    ok: bool
    status_code: int | None = None
    request_id: str | None = None
    body: Any = None
    error: dict[str, str] | None = None
    #: tokens the answer used (0 when it reported none)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: attempts made (429 retries included)
    attempts: int = 0
    id: str = field(default_factory=lambda: "batch_req_" + secrets.token_hex(12))

    def to_dict(self) -> dict[str, Any]:
        """The OUTPUT record, in the OpenAI Batch output shape."""
        response = None
        if self.status_code is not None:
            response = {"status_code": self.status_code, "request_id": self.request_id or self.id,
                        "body": self.body}
        return {"id": self.id, "custom_id": self.custom_id, "response": response, "error": self.error}

    def to_json(self) -> bytes:
        """The OUTPUT line (compact JSON and a line break)."""
        return dumps_line(self.to_dict())

    @property
    def content(self) -> str | None:
        """The answer's text (``choices[0].message.content``), ``None`` for failures."""
        if not self.ok or not isinstance(self.body, Mapping):
            return None
        try:
            content = self.body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            return None
        return content if isinstance(content, str) else None

    @classmethod
    def failure(cls, custom_id: str, code: str, message: str, *, status_code: int | None = None,
                request_id: str | None = None, body: Any = None, attempts: int = 0) -> BatchResult:
        return cls(custom_id, False, status_code, request_id, body, {"code": code, "message": message},
                   attempts=attempts)


def dumps_line(record: Mapping[str, Any]) -> bytes:
    """One JSONL line; the standard library takes what orjson refuses (lone surrogates, huge ints)."""
    try:
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except (orjson.JSONEncodeError, TypeError):
        return (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()


@dataclass(frozen=True, slots=True)
class RecordFacts:
    """What resuming needs from an OUTPUT line."""

    custom_id: str
    ok: bool


def read_record(raw: bytes) -> RecordFacts | None:
    """The custom_id and success of an OUTPUT line; ``None`` if it is not a batch output record."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            obj = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(obj, dict):
        return None
    custom_id = obj.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or ("response" not in obj and "error" not in obj):
        return None
    response = obj.get("response")
    status = response.get("status_code", 200) if isinstance(response, dict) else None
    ok = (obj.get("error") is None and isinstance(status, int) and not isinstance(status, bool)
          and 200 <= status < 300)
    return RecordFacts(custom_id, ok)
