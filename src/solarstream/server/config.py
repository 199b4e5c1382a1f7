"""The gateway's settings: one frozen object, built by ``serve`` or by tests, read by the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._http import redact_url

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_CONCURRENCY", "GatewayConfig"]

DEFAULT_MAX_CONCURRENCY = 64
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class GatewayConfig:
    """What the gateway needs to run. Keys are hidden from ``repr`` so a logged config leaks nothing."""

    #: The Upstage (or emulator) key the gateway spends; it never leaves the server.
    upstream_api_key: str = field(repr=False)
    #: The upstream base URL (``None``: the provider's default, ``https://api.upstage.ai/v1`` for Upstage).
    upstream_base_url: str | None = None
    #: The key clients must send as ``Authorization: Bearer ...``; ``None`` means no auth.
    api_key: str | None = field(default=None, repr=False)
    #: In-flight upstream requests allowed at once; beyond it, 429 with Retry-After.
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    #: Largest request body accepted; larger ones get 413 with the error envelope.
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: Upstream retries the gateway makes itself (0: clients retry; the OpenAI SDK does).
    upstream_max_retries: int = 0
    #: Seconds an upstream request may wait for its first byte, and between two reads.
    upstream_timeout: float = 600.0
    #: Shown by /health and the page: "upstage" or "emulator".
    upstream_label: str = "upstage"
    #: The upstream provider, by registered name (``--provider``); ignored when ``upstream`` is given.
    provider: str = "upstage"
    #: A configured provider object (a ``Router`` from ``--config``) to use instead of ``provider``.
    upstream: Any = field(default=None, repr=False)
    #: Refuse parameters that would otherwise be dropped as no-ops (``--strict-params``).
    strict_params: bool = False

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, not {self.max_concurrency}")
        if self.max_body_bytes < 1024:
            raise ValueError(f"max_body_bytes must be at least 1024, not {self.max_body_bytes}")
        if self.upstream_max_retries < 0:
            raise ValueError(f"upstream_max_retries must be 0 or more, not {self.upstream_max_retries}")

    @property
    def auth_required(self) -> bool:
        return bool(self.api_key)

    @property
    def safe_upstream_url(self) -> str:
        return redact_url(self.upstream_base_url) if self.upstream_base_url else f"the {self.provider} default"
