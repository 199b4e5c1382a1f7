"""One access-log line per request: method, path, status, model, duration, tokens. Never headers.

A plain ASGI middleware (not ``BaseHTTPMiddleware``, which buffers and hides disconnects). Handlers
add what only they know (model, stream, usage, how a stream ended) to ``scope["solarstream.log"]``.
What the client chose (method, path, model) is escaped, so it cannot start a line or fake a field;
the logger also carries a ``SafeLogFilter``, for every other line the gateway writes.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .logsafe import escape_field, install

__all__ = ["LOG_KEY", "AccessLogMiddleware", "log_info"]

log = logging.getLogger("solarstream.server")
install(log)
LOG_KEY = "solarstream.log"


def log_info(scope: Scope) -> dict[str, Any]:
    """The per-request dict handlers fill in for the access log."""
    info: dict[str, Any] = scope.setdefault(LOG_KEY, {})
    return info


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = log_info(scope)
        started = time.perf_counter()
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            status = info.get("status", status) or 500
            log.info("%s", format_line(scope["method"], scope["path"], status, elapsed_ms, info))


def format_line(method: str, path: str, status: int, elapsed_ms: float, info: dict[str, Any]) -> str:
    parts = [escape_field(method, 20), escape_field(path, 400), str(status)]
    if "model" in info:
        parts.append(f"model={escape_field(str(info['model']))}")
    if "stream" in info:
        parts.append(f"stream={'true' if info['stream'] else 'false'}")
    parts.append(f"duration_ms={elapsed_ms:.1f}")
    usage = info.get("usage")
    if usage is not None:
        completion = getattr(usage, "completion_tokens", None)  # embeddings have prompt tokens only
        parts.append(f"tokens={usage.prompt_tokens}+{completion}={usage.total_tokens}" if completion is not None
                     else f"tokens={usage.total_tokens}")
    else:
        parts.append("tokens=-")
    if "outcome" in info:
        parts.append(f"outcome={escape_field(str(info['outcome']))}")
    if "error" in info:
        parts.append(f"error={escape_field(str(info['error']))}")  # may be the upstream's code
    return " ".join(parts)
