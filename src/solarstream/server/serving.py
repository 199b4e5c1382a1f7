"""Running the app on uvicorn: a pre-bound socket, and a server that drains streams before it stops.

uvicorn waits for open connections at shutdown, then cancels them (a cut socket). ``GatewayServer``
first tells the app to drain, so every running stream ends with an in-band error and ``[DONE]``.
Connections go through ``connections.GuardedHttpToolsProtocol`` (bounded heads, timeouts, a cap that
fits the process's file-descriptor limit); logging through ``logsafe.SafeLogFilter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import logging
import math
import socket
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from .app import Gateway, create_app
from .config import GatewayConfig
from .connections import ConnectionGuard, ConnectionLimits, guarded_protocol
from .logsafe import SafeLogFilter

try:
    import resource
except ImportError:  # Windows: no RLIMIT_NOFILE to fit
    resource = None  # type: ignore[assignment]

__all__ = ["BACKLOG", "GatewayServer", "bind_socket", "build_server", "connection_budget", "fd_reserve",
           "is_loopback", "raise_fd_limit"]

log = logging.getLogger("solarstream.server")

#: how many connections asyncio accepts in one go, before the protocol (and the cap) sees them
BACKLOG = 128
#: the kernel's queue of connections not yet accepted (capped by net.core.somaxconn)
LISTEN_QUEUE = 4096


def fd_reserve(config: GatewayConfig) -> int:
    """File descriptors kept free besides client connections: an accept burst, upstream connections
    (twice over, for an in-process emulator), and the rest (listening socket, logs, event loop)."""
    return BACKLOG + 2 * config.max_concurrency + 64


def _fd_limits() -> tuple[int, int] | None:
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard


def raise_fd_limit(config: GatewayConfig) -> None:
    """Raise this process's soft RLIMIT_NOFILE (up to the hard limit) so ``max_connections`` fits."""
    limits = _fd_limits()
    if limits is None or resource is None:
        return
    soft, hard = limits
    wanted = config.max_connections + fd_reserve(config)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    new = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def connection_budget(config: GatewayConfig) -> int:
    """``max_connections``, lowered if the open-file limit cannot hold that many besides the reserve.

    Past the limit ``accept()`` fails (EMFILE) and asyncio stops accepting for a second, for everyone;
    below it the guard's eviction keeps working.
    """
    limits = _fd_limits()
    if limits is None or resource is None or limits[0] == resource.RLIM_INFINITY:
        return config.max_connections
    return min(config.max_connections, max(16, limits[0] - fd_reserve(config)))


def _safe_logging_config(base: dict[str, Any]) -> dict[str, Any]:
    """uvicorn's logging config with ``SafeLogFilter`` on each of its handlers."""
    config = copy.deepcopy(base)
    config.setdefault("filters", {})["solarstream_safe"] = {"()": SafeLogFilter}
    for handler in config.get("handlers", {}).values():
        handler["filters"] = [*handler.get("filters", []), "solarstream_safe"]
    return config


class GatewayServer(uvicorn.Server):
    """uvicorn's server, draining the gateway's streams when shutdown begins."""

    def __init__(self, config: uvicorn.Config, gateway: Gateway, guard: ConnectionGuard) -> None:
        super().__init__(config)
        self.gateway = gateway
        #: the connection limits and counters (open, evicted, refused, timed_out, too_large)
        self.guard = guard
        #: set once the server listens (tests and embedders wait on it instead of polling)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        for sock in sockets or ():
            # asyncio listened with BACKLOG, which is also how many connections it accepts per loop
            # tick; a longer kernel queue (the same call again) keeps a connection flood from
            # overflowing it, which would drop a client's SYN and cost it a one-second retransmit
            with contextlib.suppress(OSError):
                sock.listen(LISTEN_QUEUE)
        if self.started:
            self.ready.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.gateway.drain()
        await super().shutdown(sockets)


def build_server(
    config: GatewayConfig,
    *,
    log_level: str = "info",
    shutdown_timeout: int = 30,
    log_config: dict[str, Any] | None = LOGGING_CONFIG,
) -> GatewayServer:
    """The gateway on uvicorn; ``log_config=None`` leaves logging as the embedding program set it."""
    app = create_app(config)
    budget = connection_budget(config)
    if budget < config.max_connections:
        log.warning("the open-file limit (ulimit -n) leaves room for %d connections, not --max-connections %d; "
                    "raise the limit to allow more", budget, config.max_connections)
    guard = ConnectionGuard(ConnectionLimits.from_config(config, budget))
    uv_config = uvicorn.Config(
        app,
        http=guarded_protocol(guard),
        ws="none",  # the gateway has no websocket endpoint
        log_level=log_level,
        log_config=_safe_logging_config(log_config) if log_config is not None else None,
        access_log=False,  # the gateway logs its own lines (with model and tokens)
        lifespan="on",
        timeout_graceful_shutdown=shutdown_timeout,
        # the guard runs its own idle clock; uvicorn's (whole seconds) stays as a backstop
        timeout_keep_alive=math.ceil(config.keepalive_timeout),
        backlog=BACKLOG,
        server_header=False,
    )
    return GatewayServer(uv_config, app.state.gateway, guard)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready socket (so errors surface before uvicorn starts and port 0 can be read back)."""
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # accepted sockets inherit it; without it Nagle + delayed ACKs add ~40 ms to small SSE writes.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
