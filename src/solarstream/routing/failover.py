"""What an error before the first token means for routing, and how long it cools a deployment.

``decide`` reads the typed error (its class, status and code, never the free text) and says:

* ``FAILOVER``: the next deployment may answer (connection errors, timeouts before the answer,
  5xx, 408, 429 ``too_many_requests``, a stream that broke before any output, listed classes);
* ``CONTEXT``: the prompt does not fit (``context_length_exceeded``): a longer-context fallback;
* ``MODEL``: the model is retired or invalid there: its successor, or a configured fallback;
* ``REMOVE``: the deployment cannot serve anyone (401, ``api_key_is_blocked``,
  ``usage_limit_exceeded``, no key, a wrong URL): out for its cooldown, then the next one;
* ``RAISE``: the request itself is wrong (400 validation) or the call's time is up.
"""

from __future__ import annotations

import enum

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
    excerpt,
)

__all__ = ["Decision", "advised_cooldown", "decide", "reason"]

#: 4xx statuses that say the request is wrong (the same request fails everywhere)
_REQUEST_FAULTS = {None, 400, 409, 413, 415, 422}


class Decision(enum.Enum):
    FAILOVER = "failover"
    CONTEXT = "context"
    MODEL = "model"
    REMOVE = "remove"
    RAISE = "raise"


def is_context_error(error: SolarstreamError) -> bool:
    return getattr(error, "code", None) == "context_length_exceeded"


def is_model_error(error: SolarstreamError) -> bool:
    """A retired or invalid model: the typed error, a ``model_not_found`` code, or a 400/404 about ``model``."""
    if isinstance(error, ModelNotSupportedError):
        return True
    if not isinstance(error, InvalidRequestError) or error.status_code is None:
        return False
    return error.code in ("model_not_found", "invalid_model") or (
        error.status_code in (400, 404) and error.param == "model")


def decide(error: SolarstreamError, retry_on: tuple[type[BaseException], ...] = ()) -> Decision:
    """The routing decision for ``error``, raised before any output reached the caller."""
    if isinstance(error, (AuthenticationError, QuotaExceededError, MissingAuthError)):
        return Decision.REMOVE
    if is_context_error(error):
        return Decision.CONTEXT
    if is_model_error(error):
        return Decision.MODEL
    if isinstance(error, APITimeoutError):
        # the call's own total timeout is spent: no deployment can answer within it
        return Decision.RAISE if error.timer == "total" and not isinstance(error, retry_on) else Decision.FAILOVER
    if isinstance(error, (APIConnectionError, RateLimitError, ServerError, StreamError)):
        return Decision.FAILOVER
    if isinstance(error, APIStatusError) and error.status_code == 408:
        return Decision.FAILOVER
    if retry_on and isinstance(error, retry_on):
        return Decision.FAILOVER
    if isinstance(error, APIStatusError) and error.status_code not in _REQUEST_FAULTS:
        return Decision.REMOVE  # 403, 404 without a model, 405: this deployment is misconfigured
    return Decision.RAISE


def advised_cooldown(error: SolarstreamError) -> float | None:
    """Seconds the API asked us to stay away: ``Retry-After``/``retry-after-ms``/Upstage's retry
    stamps (``error.retry_after``), else the reset of an exhausted budget; ``None`` if it said nothing."""
    if not isinstance(error, APIStatusError):
        return None
    if error.retry_after is not None:
        return float(error.retry_after)
    facts = error.rate_limits
    if facts is None:
        return None
    resets = []
    if facts.remaining_requests is not None and facts.remaining_requests <= 0 and facts.reset_requests is not None:
        resets.append(facts.reset_requests)
    if facts.remaining_tokens is not None and facts.remaining_tokens <= 0 and facts.reset_tokens is not None:
        resets.append(facts.reset_tokens)
    return max(resets) if resets else None


def reason(error: BaseException) -> str:
    """A short, safe description for a log line: class, status, code and the start of the message."""
    if not isinstance(error, SolarstreamError):
        return type(error).__name__
    parts = [type(error).__name__]
    if isinstance(error, APIStatusError) and error.status_code is not None:
        parts.append(str(error.status_code))
    code = getattr(error, "code", None)
    if isinstance(code, str) and code:
        parts.append(code)
    return f"{' '.join(parts)}: {excerpt(error.message, 160)}"
