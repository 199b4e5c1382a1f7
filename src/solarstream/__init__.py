"""solarstream: fast, correct streaming for Upstage's Solar models.

Names are loaded on first use, so ``import solarstream`` stays cheap (the CLI starts fast and
programs that only need the emulator or the types do not pay for the HTTP stack).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._http import Timeout
    from ._retry import Limiter, RetryPolicy
    from ._stream import ChatStream
    from .client import AsyncClient, Client
    from .errors import (
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
        StreamTruncatedError,
    )
    from .providers import Upstage
    from .routing import Router

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AuthenticationError",
    "ChatStream",
    "Client",
    "InvalidRequestError",
    "Limiter",
    "MissingAuthError",
    "ModelNotSupportedError",
    "QuotaExceededError",
    "RateLimitError",
    "RetryPolicy",
    "Router",
    "ServerError",
    "SolarstreamError",
    "StreamError",
    "StreamTruncatedError",
    "Timeout",
    "Upstage",
    "__version__",
]

_HOMES = {
    "AsyncClient": ".client",
    "Client": ".client",
    "ChatStream": "._stream",
    "Limiter": "._retry",
    "RetryPolicy": "._retry",
    "Router": ".routing",
    "Timeout": "._http",
    "Upstage": ".providers",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        module = importlib.import_module(_HOMES[name], __name__)
    elif name in __all__:
        module = importlib.import_module(".errors", __name__)
    else:
        raise AttributeError(f"module 'solarstream' has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
