"""solarstream errors -> the OpenAI error envelope and its HTTP status.

Every failure a client can see goes through ``GatewayError``: a status, the envelope
``{"error": {"message", "type", "param", "code"}}`` and any headers (``Retry-After``). Messages
come from our own typed errors, which never contain keys, so they are safe to return.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    InvalidRequestError,
    MissingAuthError,
    ModelNotSupportedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    SolarstreamError,
    StreamError,
)

__all__ = ["GatewayError", "error_frame", "from_exception"]

#: upstream 4xx statuses that mean "the request was wrong" (others mean the gateway is misconfigured)
_CLIENT_FAULT_STATUSES = {None, 400, 409, 413, 422}


class GatewayError(Exception):
    """An error answer: status, OpenAI envelope fields and extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def body(self) -> bytes:
        return json.dumps(self.envelope(), ensure_ascii=False, separators=(",", ":")).encode()


def bad_request(param: str | None, message: str, code: str = "invalid_value") -> GatewayError:
    """A 400 naming the field at fault."""
    return GatewayError(400, message, param=param, code=code)


def _retry_after(seconds: float | None) -> dict[str, str]:
    """``Retry-After`` in whole seconds (at least 1), plus the exact ``retry-after-ms`` when known
    (the OpenAI SDKs prefer it)."""
    if seconds is None:
        return {"Retry-After": "1"}
    headers = {"Retry-After": str(max(1, math.ceil(seconds)))}
    headers["retry-after-ms"] = str(max(0, round(seconds * 1000)))
    return headers


def from_exception(exc: BaseException) -> GatewayError:
    """The client-facing error for anything raised while serving a request."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, ModelNotSupportedError):
        return GatewayError(404, exc.message, code="model_not_found", param=exc.param or "model")
    if isinstance(exc, QuotaExceededError):
        return GatewayError(
            429,
            f"upstream quota exhausted: {exc.message}",
            type="insufficient_quota",
            code="insufficient_quota",
            headers={"x-should-retry": "false"},
        )
    if isinstance(exc, RateLimitError):
        return GatewayError(
            429,
            f"upstream rate limit: {exc.message}",
            type="rate_limit_error",
            code="rate_limit_exceeded",
            headers=_retry_after(exc.retry_after),
        )
    if isinstance(exc, AuthenticationError):
        return GatewayError(
            401,
            "the upstream API rejected the gateway's own key (the gateway operator must fix its upstream "
            f"key): {exc.message}",
            type="authentication_error",
            code=exc.code or "invalid_api_key",
        )
    if isinstance(exc, InvalidRequestError):
        if exc.status_code in _CLIENT_FAULT_STATUSES:
            return GatewayError(400, exc.message, param=exc.param, code=exc.code or "invalid_value")
        return GatewayError(
            502,
            f"the upstream API answered HTTP {exc.status_code}; check the gateway's --upstream-base-url: "
            f"{exc.message}",
            type="server_error",
            code="upstream_error",
        )
    if isinstance(exc, ServerError):
        return GatewayError(502, f"upstream server error: {exc.message}", type="server_error", code="upstream_error")
    if isinstance(exc, APIStatusError):
        return GatewayError(502, f"upstream error: {exc.message}", type="server_error", code="upstream_error")
    if isinstance(exc, APITimeoutError):
        return GatewayError(504, f"upstream timeout: {exc.message}", type="server_error", code="upstream_timeout")
    if isinstance(exc, APIConnectionError):
        return GatewayError(
            502, f"cannot reach the upstream API: {exc.message}", type="server_error", code="upstream_unreachable"
        )
    if isinstance(exc, StreamError):
        return GatewayError(
            502, f"the upstream stream failed: {exc.message}", type="server_error", code=exc.code or "upstream_error"
        )
    if isinstance(exc, MissingAuthError):  # serve refuses to start without a key; kept for library users
        return GatewayError(500, f"the gateway has no upstream API key: {exc.message}",
                            type="server_error", code="gateway_misconfigured")
    if isinstance(exc, SolarstreamError):
        return GatewayError(502, exc.message, type="server_error", code="upstream_error")
    return GatewayError(500, "internal gateway error; see the gateway's log", type="server_error",
                        code="internal_error")


def error_frame(error: GatewayError) -> bytes:
    """An in-band SSE error event (after the stream has started, the status cannot change)."""
    return b"data: " + error.body() + b"\n\n"
