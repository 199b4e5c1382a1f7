"""The gateway's OpenAPI document, written by hand so it describes the real answers exactly.

The handlers read raw JSON themselves (to answer every bad input with the OpenAI envelope and a 400,
never FastAPI's 422), so the schema cannot be inferred from them; it is kept next to the rules it
documents (request.py and the core's parameter checks) and checked by schemathesis in the tests.
"""

from __future__ import annotations

from typing import Any

from .._version import __version__

__all__ = ["openapi_document"]



def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description,
                           "content": {"application/json": {"schema": _ref("ErrorEnvelope")}}}
    if headers:
        out["headers"] = headers
    return out


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}}}

_TEXT_PART = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
}

_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"enum": ["system", "user", "assistant", "tool"]},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": _TEXT_PART}, {"type": "null"}]},
        "name": {"type": "string"},
        "tool_call_id": {"type": "string"},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
    },
}


def _number(low: float, high: float) -> dict[str, Any]:
    return {"type": ["number", "null"], "minimum": low, "maximum": high}


_POSITIVE_INT = {"type": ["integer", "null"], "minimum": 1}

_CHAT_REQUEST = {
    "type": "object",
    "required": ["model", "messages"],
    "additionalProperties": False,
    "properties": {
        "model": {"type": "string", "minLength": 1, "description": "A Solar model (GET /v1/models).",
                  "examples": ["solar-pro4"]},
        "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        "stream": {"type": ["boolean", "null"],
                   "description": "true: answer as server-sent events (text/event-stream)."},
        "stream_options": {"type": ["object", "null"],
                           "properties": {"include_usage": {"type": "boolean"}}},
        "temperature": _number(0, 2),
        "top_p": _number(0, 1),
        "max_tokens": _POSITIVE_INT,
        "max_completion_tokens": _POSITIVE_INT,
        "top_k": _POSITIVE_INT,
        "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
        "tools": {"type": ["array", "null"], "items": {"type": "object"}},
        "tool_choice": {"anyOf": [{"enum": ["auto", "none", "required"]}, {"type": "object"}, {"type": "null"}]},
        "response_format": {"type": ["object", "null"]},
        "reasoning_effort": {"type": ["string", "null"]},
        "prompt_cache_key": {"type": ["string", "null"]},
        "frequency_penalty": _number(-2, 2),
        "presence_penalty": _number(-2, 2),
        "seed": {"type": ["integer", "null"]},
        "n": {"type": ["integer", "null"], "description": "Only 1 (Upstage gives one answer per request)."},
    },
}

#: one server-sent event: ``data`` is a chat.completion.chunk as JSON, an error envelope, or ``[DONE]``
_SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {"type": "string"},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}

_USAGE = {
    "type": "object",
    "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
    "properties": {
        "prompt_tokens": {"type": "integer"},
        "completion_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
        "completion_tokens_details": {"type": "object"},
        "prompt_tokens_details": {"type": "object"},
    },
}

_CHAT_COMPLETION = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "chat.completion"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "system_fingerprint": {"type": ["string", "null"]},
        "choices": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "message", "finish_reason"],
                "properties": {
                    "index": {"type": "integer"},
                    "message": {
                        "type": "object",
                        "required": ["role", "content"],
                        "properties": {
                            "role": {"const": "assistant"},
                            "content": {"type": ["string", "null"]},
                            "reasoning": {"type": "string"},
                            "tool_calls": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                    "logprobs": {},
                    "finish_reason": {"type": ["string", "null"]},
                },
            },
        },
        "usage": _USAGE,
    },
}

_MODEL = {
    "type": "object",
    "required": ["id", "object", "created", "owned_by"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "model"},
        "created": {"type": "integer"},
        "owned_by": {"type": "string"},
    },
}

_ERROR_ENVELOPE = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}

_HEALTH = {
    "type": "object",
    "required": ["status", "version", "upstream", "in_flight", "max_concurrency"],
    "properties": {
        "status": {"enum": ["ok", "shutting_down"]},
        "version": {"type": "string"},
        "upstream": {"type": "string"},
        "in_flight": {"type": "integer"},
        "max_concurrency": {"type": "integer"},
    },
}


def openapi_document(*, auth_required: bool) -> dict[str, Any]:
    """The document served at /openapi.json; auth is declared only when the gateway enforces it."""
    unauthorized = {"401": _error("Missing or wrong gateway key (Authorization: Bearer <key>), "
                                  "or the upstream rejected the gateway's key.")}
    security: dict[str, Any] = {"security": [{"bearerAuth": []}]} if auth_required else {}
    chat: dict[str, Any] = {
        "summary": "Create a chat completion (OpenAI wire format)",
        "operationId": "createChatCompletion",
        **security,
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ChatCompletionRequest")}}},
        "responses": {
            "200": {
                "description": "The completion; with stream=true, server-sent events of chat.completion.chunk "
                               "objects ending in `data: [DONE]` (errors after the first chunk come in-band as "
                               '`data: {"error": {...}}`).',
                "content": {
                    "application/json": {"schema": _ref("ChatCompletion")},
                    "text/event-stream": {"schema": _SSE_EVENT},
                },
            },
            "400": _error("Invalid request: malformed JSON, a wrong or unknown field, or a parameter Upstage "
                          "rejects; `param` names the field."),
            **unauthorized,
            "404": _error("Unknown model (code model_not_found)."),
            "413": _error("The body is larger than the gateway's --max-body-bytes."),
            "429": _error("Rate limited (upstream, or the gateway's concurrency cap), or quota exhausted "
                          "(code insufficient_quota).", _RETRY_AFTER),
            "500": _error("Internal gateway error."),
            "502": _error("The upstream failed or could not be reached."),
            "503": _error("The gateway is shutting down.", _RETRY_AFTER),
            "504": _error("The upstream timed out."),
        },
    }
    models_security = security
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "solarstream gateway",
            "version": __version__,
            "description": "OpenAI-compatible Chat Completions in front of Upstage's Solar models.",
        },
        "paths": {
            "/v1/chat/completions": {"post": chat},
            "/v1/models": {
                "get": {
                    "summary": "List the models",
                    "operationId": "listModels",
                    **models_security,
                    "responses": {
                        "200": {"description": "The models",
                                "content": {"application/json": {"schema": _ref("ModelList")}}},
                        **unauthorized,
                    },
                }
            },
            "/v1/models/{model}": {
                "get": {
                    "summary": "Describe one model",
                    "operationId": "retrieveModel",
                    **models_security,
                    "parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {"description": "The model",
                                "content": {"application/json": {"schema": _ref("Model")}}},
                        **unauthorized,
                        "404": _error("Unknown model (code model_not_found)."),
                    },
                }
            },
            "/health": {
                "get": {
                    "summary": "Liveness and load",
                    "operationId": "health",
                    "responses": {
                        "200": {"description": "Serving", "content": {"application/json": {"schema": _ref("Health")}}},
                        "503": {"description": "Shutting down",
                                "content": {"application/json": {"schema": _ref("Health")}}},
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "ChatCompletionRequest": _CHAT_REQUEST,
                "ChatCompletion": _CHAT_COMPLETION,
                "Model": _MODEL,
                "ModelList": {
                    "type": "object",
                    "required": ["object", "data"],
                    "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _ref("Model")}},
                },
                "ErrorEnvelope": _ERROR_ENVELOPE,
                "Health": _HEALTH,
            },
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
