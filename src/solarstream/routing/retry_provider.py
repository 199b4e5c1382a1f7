"""``RetryProvider``: gpt4free's constructor and behaviour, on the router, without its bugs.

``RetryProvider([ProviderA, ProviderB], shuffle=True)`` tries the providers (classes or instances)
in turn, in random order when ``shuffle``, until one answers; ``single_provider_retry=True`` sends
to the first one only, up to ``max_retries`` times. Unlike the original it never moves to another
provider once text was handed out (the caller would get a garbled, duplicated answer): a failure
after the first piece is raised as it is. A provider that failed cools down, so the next calls skip
it for as long as the API said (else ``cooldown`` seconds). As in gpt4free, one failure is raised as
it is, several as ``RetryProviderError`` naming each provider, and ``ignored=[names]`` skips some.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from ..errors import SolarstreamError
from ..providers import OpenAICompatibleProvider
from ..providers.base import default_of
from ..types import AsyncResult, Messages
from .call import Call
from .deployment import WILDCARD, Deployment, DeploymentState
from .router import Router

__all__ = ["RetryNoProviderError", "RetryProvider", "RetryProviderError"]


class RetryProviderError(SolarstreamError):
    """Every provider failed; the message names each one and its error (as gpt4free's does)."""


class RetryNoProviderError(SolarstreamError):
    """No provider was left to try (all ignored, or all cooling down)."""


def _name(provider: Any) -> str:
    return provider.__name__ if isinstance(provider, type) else type(provider).__name__


def _instance(provider: Any) -> Any:
    """Classes of solarstream providers are used through their default instance (as class-level calls are)."""
    if isinstance(provider, type) and issubclass(provider, OpenAICompatibleProvider):
        return default_of(provider)
    return provider


class RetryProvider(Router):
    """g4f's ``RetryProvider(providers, shuffle=True, single_provider_retry=False, max_retries=3)``."""

    def __init__(
        self,
        providers: Sequence[Any],
        shuffle: bool = True,
        single_provider_retry: bool = False,
        max_retries: int = 3,
        **router_options: Any,
    ) -> None:
        if not providers:
            raise RetryNoProviderError("RetryProvider needs at least one provider")
        self.providers = list(providers)
        self.shuffle = shuffle
        self.single_provider_retry = single_provider_retry
        self.max_retries = max_retries
        names: dict[str, int] = {}
        deployments = []
        for provider in self.providers:
            base = _name(provider)
            names[base] = names.get(base, 0) + 1
            label = base if names[base] == 1 else f"{base}#{names[base]}"
            deployments.append(Deployment(WILDCARD, provider=_instance(provider), name=label))
        router_options.setdefault("strategy", "weighted" if shuffle else "ordered")
        router_options.setdefault("retry_on", (SolarstreamError,))  # as gpt4free: any error moves on
        router_options.setdefault("max_attempts", len(deployments))
        super().__init__(deployments, **router_options)

    @property
    def last_provider(self) -> Any:
        """The provider (as given) that answered the latest call."""
        state = self.last_deployment
        return self.providers[state.index] if state is not None else None

    def get_providers(self, ignored: Sequence[str] = ()) -> list[Any]:
        """The providers not ``ignored`` (by class name), shuffled when ``shuffle``."""
        chosen = [p for p in self.providers if _name(p) not in ignored]
        if self.shuffle:
            random.shuffle(chosen)
        return chosen

    def create_async_generator(
        self, model: str, messages: Messages, proxy: str | None = None, *, ignored: Sequence[str] = (),
        **kwargs: Any
    ) -> AsyncResult:
        """Text pieces from the first provider that answers (see the module docstring)."""
        if self.single_provider_retry:
            return self._single(model, messages, proxy, ignored, kwargs)
        call = self._call(model, proxy, kwargs)
        for state in self.group(call.model):
            if _name(self.providers[state.index]) in ignored:
                call.excluded.add(id(state))
        return self._text(call, messages)

    async def _single(self, model: str, messages: Messages, proxy: str | None, ignored: Sequence[str],
                      kwargs: dict[str, Any]) -> AsyncResult:
        """The first provider only; its own retry policy makes the ``max_retries`` attempts, and no
        attempt is made again once text has arrived."""
        providers = self.get_providers(ignored)
        if not providers:
            raise RetryNoProviderError("No providers available")
        provider = _instance(providers[0])
        if isinstance(provider, OpenAICompatibleProvider):
            kwargs = {**kwargs, "max_retries": max(0, self.max_retries - 1)}
        async for piece in provider.create_async_generator(model, messages, proxy=proxy, **kwargs):
            yield piece

    def _exhausted(self, call: Call, wait: float | None = None) -> SolarstreamError:
        failed: dict[str, SolarstreamError] = {}
        for state, error in call.errors:
            failed[_label(self, state)] = error
        if len(failed) == 1:
            return next(iter(failed.values()))
        if failed:
            lines = [f"{name}: {type(error).__name__}: {error.message}" for name, error in failed.items()]
            return RetryProviderError("RetryProvider failed:\n" + "\n".join(lines))
        return RetryNoProviderError(super()._exhausted(call, wait).message)


def _label(router: RetryProvider, state: DeploymentState) -> str:
    return _name(router.providers[state.index])
