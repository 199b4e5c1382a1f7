"""Running the app on uvicorn: a pre-bound socket, and a server that drains streams before it stops.

uvicorn waits for open connections at shutdown, then cancels them (a cut socket). ``GatewayServer``
first tells the app to drain, so every running stream ends with an in-band error and ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from .app import Gateway, create_app
from .config import GatewayConfig

__all__ = ["GatewayServer", "bind_socket", "build_server", "is_loopback"]


class GatewayServer(uvicorn.Server):
    """uvicorn's server, draining the gateway's streams when shutdown begins."""

    def __init__(self, config: uvicorn.Config, gateway: Gateway) -> None:
        super().__init__(config)
        self.gateway = gateway
        #: set once the server listens (tests and embedders wait on it instead of polling)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
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
    uv_config = uvicorn.Config(
        app,
        log_level=log_level,
        log_config=log_config,
        access_log=False,  # the gateway logs its own lines (with model and tokens)
        lifespan="on",
        timeout_graceful_shutdown=shutdown_timeout,
        server_header=False,
    )
    return GatewayServer(uv_config, app.state.gateway)


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
