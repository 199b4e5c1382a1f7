"""Providers by name: ``--provider NAME``, ``serve --provider NAME``, ``get_provider("upstage")``.

Vendors register through the ``solarstream.providers`` entry-point group, the built-ins exactly as
a third-party package would (see pyproject.toml). An entry point names either a ``ProviderSpec``
(a vendor defined only as configuration) or a provider class. ``module:attribute`` paths and
runtime ``register()`` calls work too.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from ..errors import InvalidRequestError
from .openai_compatible import OpenAICompatibleProvider
from .spec import ProviderSpec

__all__ = ["GROUP", "available", "create_provider", "register"]

GROUP = "solarstream.providers"

Factory = Callable[..., OpenAICompatibleProvider]

_registered: dict[str, Factory] = {}


def register(name: str, target: ProviderSpec | type[OpenAICompatibleProvider]) -> None:
    """Add a provider by name at run time (tests, embedding programs)."""
    _registered[name] = _factory(target, name)


def _factory(target: Any, name: str) -> Factory:
    if isinstance(target, ProviderSpec):
        spec = target

        def from_spec(**kwargs: Any) -> OpenAICompatibleProvider:
            return OpenAICompatibleProvider(spec=spec, **kwargs)

        return from_spec
    if isinstance(target, type) and issubclass(target, OpenAICompatibleProvider):
        return target
    raise InvalidRequestError(f"provider {name!r} is neither a ProviderSpec nor an OpenAICompatibleProvider "
                              f"class but {type(target).__name__}", param="provider")


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available() -> list[str]:
    """Every provider name that ``create_provider`` takes."""
    return sorted(set(_entry_points()) | set(_registered))


def create_provider(name: str, **kwargs: Any) -> OpenAICompatibleProvider:
    """A provider instance by registered name or ``module:attribute`` path, configured by ``kwargs``."""
    factory = _registered.get(name)
    if factory is None:
        found = _entry_points().get(name)
        if found is not None:
            factory = _factory(found.load(), name)
        elif ":" in name:
            module, _, attribute = name.partition(":")
            try:
                target = getattr(importlib.import_module(module), attribute)
            except (ImportError, AttributeError) as exc:
                raise InvalidRequestError(f"cannot load provider {name!r}: {exc}", param="provider") from None
            factory = _factory(target, name)
        else:
            raise InvalidRequestError(f"unknown provider {name!r}; available: {', '.join(available())} "
                                      "(or give module:attribute)", param="provider")
    return factory(**kwargs)
