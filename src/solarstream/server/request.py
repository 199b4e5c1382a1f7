"""Reading a chat request: a bounded body, strict JSON, and the fields the gateway decides itself.

Everything else (message shapes, parameter types and ranges, what the upstream rejects, what it
drops) is the provider's parameter policy, the same as for the library's own clients; this module
only makes sure nothing but request parameters reaches it, so a client can never set the gateway's
transport (``base_url``, ``api_key``, ``extra_headers``, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect, Request

from .._json import kind as _kind
from ..providers.openai_compatible import TRANSPORT_KWARGS
from .errors import GatewayError, bad_request
from .streaming import ClientGone

__all__ = ["ChatBody", "EmbeddingsBody", "parse_chat_body", "parse_embeddings_body", "read_body"]


@dataclass(frozen=True)
class ChatBody:
    model: str
    messages: Any
    stream: bool
    params: dict[str, Any]


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    try:
        async for part in request.stream():
            size += len(part)
            if size > limit:
                raise _too_large(limit)
            parts.append(part)
    except ClientDisconnect:  # gone mid-body (or cut by the body timeout): not an internal error
        raise ClientGone from None
    return b"".join(parts)


def _too_large(limit: int) -> GatewayError:
    return GatewayError(413, f"the request body is larger than this gateway accepts ({limit} bytes); "
                             "send a shorter conversation or raise the gateway's --max-body-bytes",
                        code="request_too_large")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise bad_request(None, "the request body is empty; send a JSON object with model and messages",
                          code="invalid_json")
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise bad_request(None, "the request body is nested too deeply", code="invalid_json") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise bad_request(None, f"the request body is not valid JSON ({exc}); send a JSON object",
                          code="invalid_json") from None


def parse_chat_body(raw: bytes) -> ChatBody:
    """Split a chat-completions body into model, messages, stream and checked-by-the-core params."""
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise bad_request(None, f"the request body must be a JSON object, not {_kind(data)}")
    model = data.get("model")
    if model is None:
        raise bad_request("model", "model is required (for example \"solar-pro4\"; GET /v1/models lists them)",
                          code="missing_required_parameter")
    if not isinstance(model, str) or not model.strip():
        raise bad_request("model", f"model must be a non-empty string, not {_kind(model)}")
    if "messages" not in data:
        raise bad_request("messages", "messages is required: a list of {\"role\": ..., \"content\": ...}",
                          code="missing_required_parameter")
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad_request("stream", f"stream must be true or false, not {_kind(stream)}")
    params = _params(data, ("model", "messages", "stream"))
    if not stream and params.get("stream_options") is not None:
        raise bad_request("stream_options", "stream_options is only allowed with \"stream\": true")
    return ChatBody(model=model, messages=data["messages"], stream=bool(stream), params=params)


def _params(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The request parameters: everything but ``fields``, never a transport setting."""
    params: dict[str, Any] = {}
    for name, value in data.items():
        if name in fields:
            continue
        if name in TRANSPORT_KWARGS or name == "proxy":
            raise bad_request(name, f"{name}: unknown parameter (the gateway's upstream settings are its own)",
                              code="unknown_parameter")
        params[name] = value
    return params


@dataclass(frozen=True)
class EmbeddingsBody:
    model: str
    input: Any
    params: dict[str, Any]


def parse_embeddings_body(raw: bytes) -> EmbeddingsBody:
    """An embeddings body: model and input, the rest checked by the provider's embedding table."""
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise bad_request(None, f"the request body must be a JSON object, not {_kind(data)}")
    model = data.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad_request("model", "model is required: an embedding model such as \"solar-embedding-2-query\"",
                          code="missing_required_parameter" if model is None else "invalid_value")
    if "input" not in data:
        raise bad_request("input", "input is required: a string or a list of strings",
                          code="missing_required_parameter")
    return EmbeddingsBody(model=model, input=data["input"], params=_params(data, ("model", "input")))


