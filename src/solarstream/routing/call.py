"""One routed call's state, and the fallback tables a router is configured with."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._http import NO_DEADLINE, Deadline, Timeout
from .._stream import ChatStream
from ..errors import InvalidRequestError, SolarstreamError
from ..providers import ChatRequest
from .deployment import DeploymentState

__all__ = ["Call", "Prepared", "fallback_table"]

#: what a deployment's request is before sending: a prepared request, a stream not yet started, or
#: nothing (providers that only take whole calls)
Prepared = ChatRequest | ChatStream | None


def fallback_table(value: Any, what: str) -> dict[str, list[str]]:
    """``{"a": ["b", "c"]}`` or LiteLLM's ``[{"a": ["b", "c"]}]`` -> ``{"a": ["b", "c"]}``."""
    if value is None:
        return {}
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, Sequence) and not isinstance(value, str):
        pairs: list[tuple[Any, Any]] = []
        for entry in value:
            if not isinstance(entry, Mapping):
                raise InvalidRequestError(f"{what}: each entry maps a model name to its fallbacks, not "
                                          f"{type(entry).__name__}", param=what)
            pairs.extend(entry.items())
        items = pairs
    else:
        raise InvalidRequestError(f"{what} maps model names to lists of fallback model names", param=what)
    table: dict[str, list[str]] = {}
    for name, targets in items:
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(name, str) or not isinstance(targets, Sequence) or \
                not all(isinstance(t, str) and t for t in targets):
            raise InvalidRequestError(f"{what}[{name!r}]: a list of model names", param=what)
        table[name] = list(targets)
    return table


@dataclass
class Call:
    """One routed call: what to send, where it may go, and what happened so far."""

    model: str
    kwargs: dict[str, Any]
    proxy: str | None
    #: model names whose deployments may serve, in order (the asked one, then its fallbacks)
    groups: list[str]
    single: bool
    max_attempts: int
    timeout: Timeout | None
    #: deployments tried first (a retired model's successor on the same provider)
    first: list[DeploymentState] = field(default_factory=list)
    deadline: Deadline = NO_DEADLINE
    attempts: int = 0
    #: out for the rest of this call (removed, wrong model, refused the request before sending)
    excluded: set[int] = field(default_factory=set)
    #: failed in this round; they come back after their cooldown once every candidate was tried
    tried: set[int] = field(default_factory=set)
    errors: list[tuple[DeploymentState, SolarstreamError]] = field(default_factory=list)
    prepared: dict[int, Prepared] = field(default_factory=dict)
    context_switched: bool = False
