"""A deployment (one way to serve a public model name) and what the router knows about it.

``Deployment`` is configuration: the provider (an object, or a registered name to build one), the
model to send, key, base URL, weight and rate limits. ``DeploymentState`` is the router's live view
of one: in flight, successes, failures, the last error, until when it is cooling down, and the
rate-limit facts its responses reported. Nothing here holds a key in a ``repr`` or a status.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .._http import redact_url
from .._retry import Grant, Limiter, RateLimitFacts
from ..errors import APIStatusError, InvalidRequestError, SolarstreamError
from ..providers import OpenAICompatibleProvider, Quirks, create_provider

__all__ = ["WILDCARD", "Deployment", "DeploymentState", "ErrorNote"]

#: a deployment whose ``model_name`` is this serves every name no other deployment serves
WILDCARD = "*"

_GENERIC_QUIRKS = Quirks()


@dataclass(frozen=True)
class Deployment:
    """One way to serve the public model name ``model_name``.

    ``provider`` is a provider object (``Upstage(...)``, any ``Provider``) or a registered name
    (``"upstage"``, ``"openai-compatible"``, ``"module:attribute"``) that the router builds with
    ``api_key``, ``base_url`` and ``options``. ``model`` is what is sent (default: ``model_name``;
    for the wildcard ``"*"``: the name asked for). ``weight`` steers the weighted strategy;
    ``rpm``/``tpm`` pace requests to this deployment (per minute).
    """

    model_name: str
    model: str | None = None
    provider: Any = "upstage"
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    weight: float = 1.0
    rpm: float | None = None
    tpm: float | None = None
    name: str | None = None
    #: more keyword arguments for building the provider by name (``timeout``, ``proxy``, ``verify``, ...)
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model_name, str) or not self.model_name:
            raise InvalidRequestError(f"a deployment needs a model_name (the public name), not {self.model_name!r}",
                                      param="model_name")
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise InvalidRequestError(f"deployment {self.model_name!r}: model must be a non-empty string",
                                      param="model")
        if (isinstance(self.weight, bool) or not isinstance(self.weight, (int, float))
                or not math.isfinite(self.weight) or self.weight <= 0):
            raise InvalidRequestError(f"deployment {self.model_name!r}: weight must be a positive number, "
                                      f"not {self.weight!r}", param="weight")
        for limit in ("rpm", "tpm"):
            value = getattr(self, limit)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value <= 0):
                raise InvalidRequestError(f"deployment {self.model_name!r}: {limit} must be a positive number, "
                                          f"not {value!r}", param=limit)
        if not isinstance(self.provider, str) and not callable(getattr(self.provider, "stream", None)) \
                and not callable(getattr(self.provider, "create_async_generator", None)):
            raise InvalidRequestError(f"deployment {self.model_name!r}: provider must be a provider object or a "
                                      f"registered name, not {type(self.provider).__name__}", param="provider")

    @classmethod
    def coerce(cls, value: Deployment | Mapping[str, Any]) -> Deployment:
        """A ``Deployment``, or a mapping of its fields (``api_key_env`` names a variable holding the key;
        LiteLLM's ``{"model_name": ..., "litellm_params": {"model", "api_key", "api_base", "rpm", ...}}`` works too)."""
        if isinstance(value, Deployment):
            return value
        if not isinstance(value, Mapping):
            raise InvalidRequestError(f"a deployment is a Deployment or a mapping, not {type(value).__name__}",
                                      param="deployments")
        fields = dict(value)
        nested = fields.pop("litellm_params", None)  # LiteLLM's model_list entries
        if isinstance(nested, Mapping):
            for key, item in nested.items():
                fields.setdefault("base_url" if key == "api_base" else str(key), item)
        env = fields.pop("api_key_env", None)
        if env is not None:
            key = os.environ.get(env)
            if not key:
                raise InvalidRequestError(f"deployment {fields.get('model_name')!r}: the environment variable "
                                          f"{env} (api_key_env) is not set", param="api_key_env")
            fields["api_key"] = key
        try:
            return cls(**fields)
        except TypeError as exc:
            raise InvalidRequestError(f"deployment {fields.get('model_name')!r}: {exc}", param="deployments") from None

    def build(self, *, max_retries: int | None = None) -> Any:
        """The provider object: the one given, or one built from the registered name."""
        if not isinstance(self.provider, str):
            return self.provider
        kwargs: dict[str, Any] = {**self.options}
        if self.api_key is not None:
            kwargs["api_key"] = self.api_key
        if self.base_url is not None:
            kwargs["base_url"] = self.base_url
        if max_retries is not None:
            kwargs.setdefault("max_retries", max_retries)
        return create_provider(self.provider, **kwargs)


@dataclass
class ErrorNote:
    """The last error of a deployment, as ``status()`` shows it (built from safe parts only)."""

    type: str
    message: str
    status_code: int | None
    code: str | None
    at: float  # Unix time

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "status_code": self.status_code, "code": self.code,
                "at": round(self.at, 3)}


class DeploymentState:
    """The router's live view of one deployment (``status()`` shows it)."""

    def __init__(self, config: Deployment, provider: Any, name: str, index: int, *, learn: bool,
                 owned: bool) -> None:
        self.config = config
        self.provider = provider
        self.name = name
        self.index = index
        #: whether the router built the provider (then it closes it)
        self.owned = owned
        self.model_name = config.model_name
        self.weight = float(config.weight)
        #: paces this deployment: configured rpm/tpm, and (usage-based strategy) limits learned from headers
        self.limiter = Limiter(config.rpm, config.tpm, learn=learn)
        self.cooling_until = -math.inf  # time.monotonic()
        self.cooling_reason: str | None = None
        self.in_flight = 0
        self.successes = 0
        self.failures = 0
        self.last_error: ErrorNote | None = None
        self.facts: RateLimitFacts | None = None
        #: requests started since ``facts`` arrived (the remaining counts are that much lower now)
        self.started_since_facts = 0

    def __repr__(self) -> str:
        return f"<deployment {self.name!r} serving {self.model_name!r}>"

    @property
    def model(self) -> str:
        """The model name sent to this deployment."""
        return self.config.model or self.model_name

    def derive(self, name: str, **changes: Any) -> DeploymentState:
        """A deployment on the same provider with other fields (a wildcard's model, a retired model's
        successor): its own cooldown, counters and limits, since the API counts per key and model."""
        return DeploymentState(replace(self.config, **changes), self.provider, name, self.index,
                               learn=self.limiter.learn, owned=False)

    @property
    def quirks(self) -> Quirks:
        spec = getattr(self.provider, "spec", None)
        quirks = getattr(spec, "quirks", None)
        return quirks if isinstance(quirks, Quirks) else _GENERIC_QUIRKS

    @property
    def prepares(self) -> bool:
        """Whether requests can be prepared and sent in steps (deadline and limiter under the router's control)."""
        return isinstance(self.provider, OpenAICompatibleProvider)

    @property
    def streams(self) -> bool:
        return callable(getattr(self.provider, "stream", None))

    # --- cooling ------------------------------------------------------------------------------

    def cooling_for(self, now: float | None = None) -> float:
        """Seconds until this deployment may be used again (0: now)."""
        now = time.monotonic() if now is None else now
        return max(0.0, self.cooling_until - now)

    def cool(self, seconds: float, reason: str) -> float:
        """Cool down for ``seconds`` from now; a later deadline already set is kept. Returns the deadline."""
        until = time.monotonic() + seconds
        if until > self.cooling_until:
            self.cooling_until = until
            self.cooling_reason = reason
        return self.cooling_until

    def available_in(self, tokens: int = 0) -> float:
        """Seconds until the next request may start: cooldown, and the pacing of configured or learned limits."""
        return max(self.cooling_for(), self.limiter.wait_time(tokens))

    # --- accounting ---------------------------------------------------------------------------

    def begin(self) -> None:
        self.in_flight += 1
        self.started_since_facts += 1

    def end(self) -> None:
        self.in_flight -= 1

    def observe(self, facts: RateLimitFacts | None) -> None:
        if facts is None:
            return
        self.facts = facts
        self.started_since_facts = 0
        self.limiter.observe(facts)

    def settle(self, grant: Grant | None, tokens: int | None) -> None:
        if grant is not None:
            self.limiter.settle(grant, tokens)

    def failed(self, error: SolarstreamError) -> None:
        self.failures += 1
        status = error.status_code if isinstance(error, APIStatusError) else None
        code = getattr(error, "code", None)
        self.last_error = ErrorNote(type(error).__name__, error.message[:300], status,
                                    code if isinstance(code, str) else None, time.time())
        if isinstance(error, APIStatusError):
            self.observe(error.rate_limits)

    def remaining_fraction(self) -> float:
        """The share of the rate budget left, as the last response's headers said (1.0: unknown)."""
        facts = self.facts
        if facts is None:
            return 1.0
        shares = []
        if facts.limit_requests and facts.remaining_requests is not None:
            left = facts.remaining_requests - self.started_since_facts
            shares.append(left / facts.limit_requests)
        if facts.limit_tokens and facts.remaining_tokens is not None:
            shares.append(facts.remaining_tokens / facts.limit_tokens)
        return min(shares) if shares else 1.0

    # --- showing ------------------------------------------------------------------------------

    def base_url(self) -> str | None:
        provider = self.provider
        if isinstance(provider, OpenAICompatibleProvider):
            try:
                return redact_url(provider.resolve_base_url())
            except SolarstreamError:
                return None
        return None

    def status(self) -> dict[str, Any]:
        """JSON-ready: what it serves, where, and how it is doing. No key, no proxy password."""
        now = time.monotonic()
        cooling = self.cooling_for(now)
        facts = self.facts
        return {
            "name": self.name,
            "model_name": self.model_name,
            "model": self.model,
            "provider": getattr(self.provider, "name", None) or type(self.provider).__name__,
            "base_url": self.base_url(),
            "weight": self.weight,
            "rpm": self.config.rpm,
            "tpm": self.config.tpm,
            "cooling": cooling > 0,
            "cooling_until": round(time.time() + cooling, 3) if cooling > 0 else None,
            "cooling_seconds": round(cooling, 3),
            "cooling_reason": self.cooling_reason if cooling > 0 else None,
            "in_flight": self.in_flight,
            "successes": self.successes,
            "failures": self.failures,
            "last_error": self.last_error.to_dict() if self.last_error else None,
            "rate_limits": None if facts is None else {
                "limit_requests": facts.limit_requests, "remaining_requests": facts.remaining_requests,
                "limit_tokens": facts.limit_tokens, "remaining_tokens": facts.remaining_tokens},
        }
