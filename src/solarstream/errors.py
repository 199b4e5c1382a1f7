"""Every error solarstream raises.

::

    SolarstreamError
    ├── MissingAuthError            no API key anywhere (raised before any request)
    ├── APIStatusError              the API answered with an error status
    │   ├── AuthenticationError     401 invalid_api_key (or no envelope)
    │   ├── QuotaExceededError      401 api_key_is_blocked, 429 usage_limit_exceeded
    │   ├── RateLimitError          429 too_many_requests (retried first)
    │   ├── InvalidRequestError     400 and other 4xx; also raised before sending for known-bad requests
    │   │   └── ModelNotSupportedError   retired/invalid model, or an unknown model under strict checking
    │   └── ServerError             5xx (retried first)
    ├── APIConnectionError          connect, proxy, TLS, reset
    │   └── APITimeoutError         connect / first byte / idle read / total timeout
    └── StreamError                 an error event inside a stream, or a malformed stream
        └── StreamTruncatedError    the body ended before [DONE] or a finish reason

HTTP errors carry ``status_code``, ``code``, ``request_id`` and the parsed ``body``. Messages are
built by us from safe parts only: they never contain an API key or a proxy password.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "InvalidRequestError",
    "MissingAuthError",
    "ModelNotSupportedError",
    "QuotaExceededError",
    "RateLimitError",
    "ServerError",
    "SolarstreamError",
    "StreamError",
    "StreamTruncatedError",
    "classify",
    "error_from_response",
]

_EXCERPT = 200


class SolarstreamError(Exception):
    """Base of every error raised by solarstream."""

    #: Whether sending the same request again may succeed (a retry policy's first question).
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class MissingAuthError(SolarstreamError):
    """No API key was given and none was found in the environment."""


class APIStatusError(SolarstreamError):
    """The API answered with an error status (or, with ``status_code`` None, would have)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
        rate_limits: Any = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.param = param
        self.request_id = request_id
        self.body = body
        #: Seconds the server asked us to wait (429, 503), if it said; always finite and >= 0.
        self.retry_after = retry_after
        #: What the response's rate-limit headers said (a ``RateLimitFacts``), if it had any.
        self.rate_limits = rate_limits

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        """408, 429 ``too_many_requests`` and 5xx may succeed when sent again."""
        return self.status_code == 408


class AuthenticationError(APIStatusError):
    """401: the key is missing, mistyped or deleted."""


class QuotaExceededError(APIStatusError):
    """The account cannot spend more: blocked key (401) or usage cap reached (429)."""


class RateLimitError(APIStatusError):
    """429 too_many_requests: slow down; ``retry_after`` says for how long if the server did."""

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return True


class InvalidRequestError(APIStatusError):
    """The request is wrong (400 and other 4xx), or known to be rejected and so never sent."""


class ModelNotSupportedError(InvalidRequestError):
    """The model is retired or invalid, or unknown while strict model checking was asked for."""


class ServerError(APIStatusError):
    """5xx: trouble on the server side."""

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return True


class APIConnectionError(SolarstreamError):
    """The request did not get an answer: connect, proxy, TLS or a reset connection.

    ``retryable`` is true when the request cannot have reached the server's application (the
    connection was refused or reset before a response): sending it again is safe.
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class APITimeoutError(APIConnectionError):
    """A timeout elapsed; ``timer`` says which: ``connect``, ``first_byte``, ``read`` (idle) or ``total``."""

    def __init__(self, message: str, *, timer: str | None = None, retryable: bool = False) -> None:
        super().__init__(message, retryable=retryable)
        self.timer = timer


class StreamError(SolarstreamError):
    """The stream reported an error inside it, or is not a valid stream."""

    def __init__(self, message: str, *, code: str | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.body = body


class StreamTruncatedError(StreamError):
    """The body ended before ``[DONE]`` or a finish reason: the answer is incomplete."""


#: The generic hints; a provider adds its own (where to get a key, which models are current).
HINTS: dict[type[APIStatusError], str] = {
    AuthenticationError: "check the API key (api_key= or its environment variable)",
    QuotaExceededError: "add credits or raise the account's limit with the provider",
    RateLimitError: "slow down or retry later",
    ServerError: "the service is having trouble; retry later",
}

#: ``(status, code, message) -> error class or None``: a provider's own reading of an error
Classifier = Callable[[int, "str | None", str], "type[APIStatusError] | None"]


def classify(status: int, code: str | None) -> type[APIStatusError]:
    """The generic mapping: status first, then the body's ``code`` (never the free-text message)."""
    if status == 401:
        return AuthenticationError
    if status == 403 and code in ("insufficient_quota", "insufficient_credit"):
        return QuotaExceededError
    if status == 429:
        return QuotaExceededError if code == "insufficient_quota" else RateLimitError
    if status >= 500:
        return ServerError
    if status in (400, 404) and code in ("model_not_found", "invalid_model"):
        return ModelNotSupportedError
    return InvalidRequestError


def excerpt(raw: bytes | str, limit: int = _EXCERPT) -> str:
    """A short, single-line, printable piece of a body, safe to show in a message."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_from_response(
    status: int,
    raw_body: bytes,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
    rate_limits: Any = None,
    classifier: Classifier | None = None,
    hints: Mapping[type[APIStatusError], str] = HINTS,
) -> APIStatusError:
    """Map an error response to its typed error: the JSON envelope, other JSON, HTML, or nothing.

    ``classifier`` is the provider's reading of status, code and message (Upstage reports a
    retired model as a generic 400, say); where it returns ``None`` the generic mapping applies.
    """
    body: Any = None
    try:
        body = json.loads(raw_body) if raw_body else None
    except ValueError:
        body = None
    code: str | None = None
    param: str | None = None
    detail: str | None = None
    if isinstance(body, Mapping):
        envelope = body.get("error")
        if isinstance(envelope, Mapping):
            code = _str_or_none(envelope.get("code")) or _str_or_none(envelope.get("type"))
            param = _str_or_none(envelope.get("param"))
            detail = _str_or_none(envelope.get("message"))
        elif isinstance(envelope, str):
            detail = envelope
        if detail is None:
            detail = _str_or_none(body.get("message")) or _str_or_none(body.get("detail"))
    detail = excerpt(detail, 500) if detail is not None else excerpt(raw_body) if raw_body else "(empty body)"
    cls = (classifier(status, code, detail) if classifier is not None else None) or classify(status, code)
    parts = [f"HTTP {status}"]
    if code:
        parts.append(code)
    message = f"{' '.join(parts)}: {detail}"
    hint = hints.get(cls)
    if hint:
        message += f" ({hint})"
    if request_id:
        message += f" [request id {request_id}]"
    return cls(
        message,
        status_code=status,
        code=code,
        param=param,
        request_id=request_id,
        body=body if body is not None else excerpt(raw_body) if raw_body else None,
        retry_after=retry_after,
        rate_limits=rate_limits,
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
