"""The offline Upstage API: deterministic chat answers and embeddings, rate limits per key and model
enforced as Upstage counts them, and, on request, every wire variant and failure.

``Emulator`` serves it on loopback from the running event loop (tests, benchmarks, the CLI's
``--offline``); ``create_app`` gives the aiohttp application to serve elsewhere. How a request asks
for a behaviour: docs/emulator.md.
"""

from __future__ import annotations

from .app import create_app
from .ratelimit import RateStats
from .scenarios import CATALOG, Scenario, ScenarioError
from .server import API_KEY, Emulator
from .state import RequestRecord

__all__ = ["API_KEY", "CATALOG", "Emulator", "RateStats", "RequestRecord", "Scenario", "ScenarioError", "create_app"]
