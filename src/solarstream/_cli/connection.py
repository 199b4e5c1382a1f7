"""The options that say where requests go (``--provider``, ``--api-key``, ``--base-url``, ``--proxy``,
``--ca-bundle``, ``--offline``, ``--max-retries``) and the client they give, with the emulator started
in-process for ``--offline``.

To add a connection option: add it to ``OPTIONS`` and a field of the same name to ``Connection``;
every command that uses ``@connection_options`` passes them on with ``Connection.from_options``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import click

from .render import notice

if TYPE_CHECKING:
    from ..client import AsyncClient

__all__ = ["OPTIONS", "Connection", "connection_options", "endpoint_label", "open_client"]

F = TypeVar("F", bound=Callable[..., Any])

OFFLINE_NOTICE = "offline: answers come from solarstream's built-in emulator, not from a real model"


DEFAULT_PROVIDER = "upstage"


@dataclass(frozen=True)
class Connection:
    provider: str = DEFAULT_PROVIDER
    api_key: str | None = None
    base_url: str | None = None
    proxy: str | None = None
    ca_bundle: str | None = None
    offline: bool = False
    max_retries: int = 2
    #: a routing configuration (``--config FILE``) or models to fall back to (``--fallback``, repeatable)
    config: str | None = None
    fallbacks: tuple[str, ...] = ()

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Connection:
        """From the keyword arguments that ``connection_options`` gave the command."""
        return cls(**{f.name: options[f.name] for f in fields(cls) if f.name in options})

    def __repr__(self) -> str:  # never show the key or a proxy password
        return f"Connection(base_url={self.base_url!r}, offline={self.offline})"

    def check(self) -> None:
        if self.offline and (self.base_url or self.api_key or self.proxy or self.ca_bundle
                             or self.provider != DEFAULT_PROVIDER):
            raise click.UsageError("--offline talks to the built-in emulator; leave out --provider, --base-url, "
                                   "--api-key, --proxy and --ca-bundle")
        if self.config and (self.offline or self.base_url or self.api_key or self.proxy or self.fallbacks):
            raise click.UsageError("--config declares the upstreams and fallbacks itself; leave out --offline, "
                                   "--base-url, --api-key, --proxy and --fallback")


#: the options, in the order ``--help`` shows them
OPTIONS: tuple[Callable[[F], F], ...] = (
    click.option("--provider", metavar="NAME", default=DEFAULT_PROVIDER, show_default=True,
                 envvar="SOLARSTREAM_PROVIDER",
                 help="Provider: upstage, openai-compatible (vLLM, Ollama, LiteLLM, ...; give --base-url), "
                      "another registered name, or module:attribute."),
    click.option("--api-key", metavar="KEY", help="API key (Upstage: default $UPSTAGE_API_KEY)."),
    click.option("--base-url", metavar="URL",
                 help="API base URL (default: $UPSTAGE_BASE_URL, $UPSTAGE_API_BASE, https://api.upstage.ai/v1)."),
    click.option("--proxy", metavar="URL",
                 help="http://, https:// or socks5:// proxy (default: $HTTPS_PROXY / $HTTP_PROXY)."),
    click.option("--ca-bundle", metavar="PATH", type=click.Path(exists=True, dir_okay=True),
                 help="Trust these CA certificates (PEM file or directory), e.g. a company's TLS-inspecting proxy "
                      "(default: $SSL_CERT_FILE, $REQUESTS_CA_BUNDLE, then the system's)."),
    click.option("--offline", is_flag=True,
                 help="Use the built-in emulator (no key, no network); the output says so."),
    click.option("--max-retries", type=click.IntRange(min=0), default=2, show_default=True,
                 help="Retries after connection errors, 429 and 5xx (before any answer arrives)."),
)


def connection_options(fn: F) -> F:
    """Add ``OPTIONS``; the command receives them as keyword arguments (``api_key``, ``base_url``, ...)."""
    for decorator in reversed(OPTIONS):
        fn = decorator(fn)
    return fn


@asynccontextmanager
async def open_client(conn: Connection) -> AsyncIterator[AsyncClient]:
    """An ``AsyncClient`` for ``conn``; for ``--offline`` the emulator runs on this event loop."""
    from ..client import AsyncClient

    if conn.config:
        from ..routing import ConfigError, load_router

        try:
            router = load_router(conn.config)
        except ConfigError as exc:
            raise click.UsageError(exc.message) from None
        async with AsyncClient(provider=router) as client:
            yield client
        return
    if not conn.offline:
        from ..providers import create_provider

        provider = create_provider(conn.provider, api_key=conn.api_key, base_url=conn.base_url, proxy=conn.proxy,
                                   max_retries=conn.max_retries, verify=conn.ca_bundle or True)
        provider.resolve_api_key()  # no key anywhere: say so before anything else happens
        provider.resolve_base_url()
        async with AsyncClient(provider=provider) as client, _with_fallbacks(client, conn) as routed:
            yield routed
        return
    from ..emulator import Emulator

    async with Emulator() as emulator:
        notice(OFFLINE_NOTICE)
        async with AsyncClient(api_key=emulator.api_key, base_url=emulator.base_url,
                               max_retries=conn.max_retries) as client, _with_fallbacks(client, conn) as routed:
            yield routed


@asynccontextmanager
async def _with_fallbacks(client: AsyncClient, conn: Connection) -> AsyncIterator[AsyncClient]:
    """``--fallback``: the same connection for every model, the fallbacks tried in order before the first token."""
    if not conn.fallbacks:
        yield client
        return
    from ..client import AsyncClient
    from ..routing import WILDCARD, Deployment, Router

    router = Router([Deployment(WILDCARD, provider=client.provider, name="cli")], default_fallbacks=conn.fallbacks)
    async with AsyncClient(provider=router) as routed:
        yield routed


def endpoint_label(conn: Connection, client: AsyncClient) -> str:
    """Where the answers came from, safe to store: ``offline``, or the base URL without
    credentials, query or fragment."""
    if conn.offline:
        return "offline"
    if conn.config:
        return "router"
    base_url = client.base_url
    if base_url is None:  # --fallback: the router's one provider
        base_url = getattr(getattr(client.provider, "deployments", [None])[0], "base_url", lambda: None)()
    parts = urlsplit(str(base_url))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return parts._replace(netloc=netloc, query="", fragment="").geturl()
