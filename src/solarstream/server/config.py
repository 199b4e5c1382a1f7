"""The gateway's settings: one frozen object, built by ``serve`` or by tests, read by the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._http import redact_url
from .hosts import normalize_allowed_host, normalize_origin

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEAD_TIMEOUT",
    "DEFAULT_KEEPALIVE_TIMEOUT",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_HEADERS",
    "DEFAULT_MAX_HEAD_BYTES",
    "GatewayConfig",
]

DEFAULT_MAX_CONCURRENCY = 64
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 4096
DEFAULT_MAX_HEAD_BYTES = 32 * 1024
DEFAULT_MAX_HEADERS = 100
DEFAULT_HEAD_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 60.0
DEFAULT_KEEPALIVE_TIMEOUT = 15.0


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
    #: Open client connections at most; at the cap the longest-waiting connection that is not in
    #: a request is closed to make room, and a newcomer is refused (503) only if none is.
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    #: Largest request head (request line, headers and, for chunked bodies, the trailers); larger: 431.
    max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES
    #: Most header fields in one request head; more: 431.
    max_headers: int = DEFAULT_MAX_HEADERS
    #: Seconds from a connection's first byte (or its accept) to the end of the request head.
    head_timeout: float = DEFAULT_HEAD_TIMEOUT
    #: Seconds from the end of the head to the end of the body.
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    #: Seconds an idle keep-alive connection is kept open between requests.
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    #: Host names (``name`` for any port, ``name:port`` for one) answered besides the loopback
    #: names and the address the request arrived on; ``"*"`` turns the Host check off.
    allowed_hosts: tuple[str, ...] = ()
    #: Web origins (``https://app.example``) allowed to call the API from a browser (CORS).
    cors_origins: tuple[str, ...] = ()
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
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {self.max_connections}")
        if self.max_head_bytes < 1024:
            raise ValueError(f"max_head_bytes must be at least 1024, not {self.max_head_bytes}")
        if self.max_headers < 1:
            raise ValueError(f"max_headers must be at least 1, not {self.max_headers}")
        for name in ("head_timeout", "body_timeout", "keepalive_timeout"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} must be more than 0 seconds, not {value}")
        # normalised here, so a bad value fails at start-up with its reason, not at the first request
        object.__setattr__(self, "allowed_hosts", tuple(normalize_allowed_host(h) for h in self.allowed_hosts))
        object.__setattr__(self, "cors_origins", tuple(normalize_origin(o) for o in self.cors_origins))

    @property
    def auth_required(self) -> bool:
        return bool(self.api_key)

    @property
    def safe_upstream_url(self) -> str:
        return redact_url(self.upstream_base_url) if self.upstream_base_url else f"the {self.provider} default"
