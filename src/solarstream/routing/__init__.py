"""Routing: one public model name served by several deployments, with failover, cooldowns and strategies.

``Router`` is a provider (use it wherever one goes); ``RetryProvider`` is gpt4free's constructor on
it; ``load_router`` reads a TOML file. See docs/routing.md.
"""

from .config import ConfigError, load_router, router_from_toml
from .deployment import WILDCARD, Deployment, DeploymentState
from .failover import Decision, decide
from .retry_provider import RetryNoProviderError, RetryProvider, RetryProviderError
from .router import NoDeploymentAvailableError, Router
from .strategies import STRATEGIES, LeastInFlight, Ordered, Strategy, UsageBased, Weighted, strategy_named
from .stream import RoutedStream

__all__ = [
    "STRATEGIES",
    "WILDCARD",
    "ConfigError",
    "Decision",
    "Deployment",
    "DeploymentState",
    "LeastInFlight",
    "NoDeploymentAvailableError",
    "Ordered",
    "RetryNoProviderError",
    "RetryProvider",
    "RetryProviderError",
    "RoutedStream",
    "Router",
    "Strategy",
    "UsageBased",
    "Weighted",
    "decide",
    "load_router",
    "router_from_toml",
    "strategy_named",
]
