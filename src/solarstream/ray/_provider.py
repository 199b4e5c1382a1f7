"""A provider as it travels to Ray workers: its settings, without its connections.

A provider instance holds an HTTP pool and TLS context bound to the driver's process, so it
cannot be pickled as it is. ``ProviderRecipe`` keeps everything else (class, spec, key, base URL,
timeouts, retry policy, parameter policy, proxy, CA bundle) and builds the same provider with a
pool of its own in each worker. The key and base URL are resolved on the driver: a worker on
another node does not have the driver's environment variables.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._http import HTTPClient, Timeout
from .._retry import Limiter
from ..errors import InvalidRequestError

if TYPE_CHECKING:
    from ..providers.openai_compatible import OpenAICompatibleProvider

__all__ = ["ProviderRecipe"]

#: attributes rebuilt in the worker, not carried
_REBUILT = frozenset({"http", "limiter"})


@dataclass(frozen=True)
class ProviderRecipe:
    """What builds ``provider`` again in another process (``build()``); never shows the key."""

    cls: type[OpenAICompatibleProvider]
    state: dict[str, Any] = field(repr=False)  # holds the API key
    timeout: Timeout
    proxy: str | None = field(repr=False)  # may carry a password
    verify: bool | str
    connection_limit: int

    @classmethod
    def of(cls, provider: OpenAICompatibleProvider) -> ProviderRecipe:
        """The recipe of ``provider``; raises ``InvalidRequestError`` for settings that cannot travel."""
        http = provider.http
        verify = http.verify
        if isinstance(verify, ssl.SSLContext):
            raise InvalidRequestError("the Ray engine cannot send an ssl.SSLContext to its workers; give the CA "
                                      "bundle as a path (verify='ca.pem', --ca-bundle) instead", param="verify")
        state = {k: v for k, v in vars(provider).items() if k not in _REBUILT}
        if state.get("spec") is type(provider).default_spec:
            del state["spec"]  # the class's own row: the worker has it (and its rules hold functions)
        state["api_key"] = provider.resolve_api_key()
        state["_base_url"] = provider.resolve_base_url()
        return cls(type(provider), state, http.timeout, http.proxy,
                   verify if isinstance(verify, bool) else os.fspath(verify), http.connection_limit)

    def build(self) -> OpenAICompatibleProvider:
        """The provider, with its own HTTP pool and an unused limiter (the job's is passed per call)."""
        provider = self.cls.__new__(self.cls)
        vars(provider).update(self.state)
        if "spec" not in self.state:
            provider.spec = self.cls.default_spec
        provider.http = HTTPClient(timeout=self.timeout, proxy=self.proxy, verify=self.verify,
                                   connection_limit=self.connection_limit)
        provider.limiter = Limiter()
        return provider
