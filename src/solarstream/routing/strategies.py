"""How the router picks among the deployments of a model that are ready now.

A strategy sees only deployments that are neither cooling down nor held back by their rate limits,
and picks one; the router asks again after every failure, so a strategy also decides the order in
which a call fails over.

* ``ordered``: the first in configuration order (a primary and its fallbacks);
* ``weighted``: random, in proportion to ``weight`` (g4f's ``shuffle=True`` with equal weights);
* ``least-in-flight``: the one with the fewest calls in progress;
* ``usage-based``: the one with the largest share of its rate budget left, as the
  ``X-Upstage-RateLimit-*`` headers of its last response said (less the requests sent since).
  With ``Router(learn_limits=True)`` the limits in those headers also pace each deployment.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar

from ..errors import InvalidRequestError
from .deployment import DeploymentState

__all__ = ["STRATEGIES", "LeastInFlight", "Ordered", "Strategy", "UsageBased", "Weighted", "strategy_named"]


class Strategy:
    """Base: ``pick`` one of ``ready`` (never empty, in configuration order)."""

    name: ClassVar[str] = ""

    def pick(self, ready: Sequence[DeploymentState]) -> DeploymentState:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Ordered(Strategy):
    name = "ordered"

    def pick(self, ready: Sequence[DeploymentState]) -> DeploymentState:
        return ready[0]


class Weighted(Strategy):
    """Random in proportion to weight; ``rng`` makes it repeatable (tests, benchmarks)."""

    name = "weighted"

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()

    def pick(self, ready: Sequence[DeploymentState]) -> DeploymentState:
        if len(ready) == 1:
            return ready[0]
        return self.rng.choices(ready, weights=[d.weight for d in ready])[0]


class LeastInFlight(Strategy):
    name = "least-in-flight"

    def pick(self, ready: Sequence[DeploymentState]) -> DeploymentState:
        return min(ready, key=lambda d: (d.in_flight / d.weight, d.index))


class UsageBased(Strategy):
    name = "usage-based"

    def pick(self, ready: Sequence[DeploymentState]) -> DeploymentState:
        return max(ready, key=lambda d: (d.remaining_fraction(), -d.in_flight, -d.index))


STRATEGIES: dict[str, type[Strategy]] = {s.name: s for s in (Ordered, Weighted, LeastInFlight, UsageBased)}
_ALIASES = {"fallback": "ordered", "order": "ordered", "shuffle": "weighted", "simple-shuffle": "weighted",
            "weighted-shuffle": "weighted", "least-busy": "least-in-flight", "usage-based-routing": "usage-based",
            "least-used": "usage-based"}


def strategy_named(value: str | Strategy) -> Strategy:
    """A strategy object from its name (``ordered``, ``weighted``, ``least-in-flight``, ``usage-based``)."""
    if isinstance(value, Strategy):
        return value
    key = str(value).strip().lower().replace("_", "-")
    cls = STRATEGIES.get(_ALIASES.get(key, key))
    if cls is None:
        raise InvalidRequestError(f"unknown routing strategy {value!r}; choose one of: {', '.join(STRATEGIES)}",
                                  param="strategy")
    return cls()
