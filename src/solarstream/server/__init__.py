"""The OpenAI-compatible gateway (extra ``server``): ``create_app(GatewayConfig(...))`` and the chat page.

``solarstream serve`` runs it on uvicorn; see docs/gateway.md.
"""

from __future__ import annotations

from .app import Gateway, create_app
from .config import GatewayConfig
from .serving import GatewayServer, build_server

__all__ = ["Gateway", "GatewayConfig", "GatewayServer", "build_server", "create_app"]
