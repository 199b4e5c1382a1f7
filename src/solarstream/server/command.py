"""``solarstream serve``: the OpenAI-compatible gateway on uvicorn (extra ``server``)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import sys
from dataclasses import replace

import click

from ..errors import InvalidRequestError, MissingAuthError
from ..providers import create_provider
from .config import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEAD_TIMEOUT,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEAD_BYTES,
    DEFAULT_MAX_HEADERS,
    GatewayConfig,
)
from .hosts import ANY_HOST
from .logsafe import install
from .serving import bind_socket, build_server, is_loopback, raise_fd_limit

__all__ = ["serve"]


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free).")
@click.option("--api-key", envvar="SOLARSTREAM_API_KEY", default=None, show_envvar=True,
              help="Key clients must send as 'Authorization: Bearer KEY' (not the Upstage key).")
@click.option("--provider", "provider_name", default="upstage", show_default=True, metavar="NAME",
              help="Upstream provider: a registered name (upstage, openai-compatible, ...) or module:attribute.")
@click.option("--upstream-base-url", default=None,
              help="Upstream base URL (Upstage: UPSTAGE_BASE_URL, UPSTAGE_API_BASE or https://api.upstage.ai/v1).")
@click.option("--config", "config_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Route through the deployments, fallbacks and strategy of this TOML file (docs/routing.md); "
                   "its status is at GET /v1/router/status.")
@click.option("--strict-params", is_flag=True,
              help="Refuse request parameters that would otherwise be dropped as no-ops (user, n=1, ...).")
@click.option("--offline", is_flag=True, help="Answer from the built-in emulator (no Upstage key needed).")
@click.option("--insecure-no-auth", is_flag=True,
              help="Allow listening on a non-loopback address without --api-key.")
@click.option("--max-concurrency", default=DEFAULT_MAX_CONCURRENCY, show_default=True, type=click.IntRange(1),
              help="In-flight upstream requests; beyond it clients get 429 with Retry-After.")
@click.option("--max-body-bytes", default=DEFAULT_MAX_BODY_BYTES, show_default=True, type=click.IntRange(1024),
              help="Largest request body accepted (larger: 413).")
@click.option("--upstream-max-retries", default=0, show_default=True, type=click.IntRange(0),
              help="Retries the gateway makes upstream (clients such as the openai SDK retry themselves).")
@click.option("--shutdown-timeout", default=30, show_default=True, type=click.IntRange(0),
              help="Seconds to let non-streamed requests finish at shutdown.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Also answer requests whose Host is NAME (or NAME:PORT); repeatable. Loopback names and the "
                   "listening address are always answered; '*' turns the check off.")
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="URL",
              help="Let web pages from this origin (e.g. https://app.example) call the API; repeatable.")
@click.option("--max-connections", default=DEFAULT_MAX_CONNECTIONS, show_default=True, type=click.IntRange(1),
              help="Open connections at most; at the cap the longest-idle ones without a request are closed.")
@click.option("--max-head-bytes", default=DEFAULT_MAX_HEAD_BYTES, show_default=True, type=click.IntRange(1024),
              help="Largest request head (request line and headers); larger: 431.")
@click.option("--max-headers", default=DEFAULT_MAX_HEADERS, show_default=True, type=click.IntRange(1),
              help="Most header fields in a request; more: 431.")
@click.option("--head-timeout", default=DEFAULT_HEAD_TIMEOUT, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds a client has to send a whole request head.")
@click.option("--body-timeout", default=DEFAULT_BODY_TIMEOUT, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds a client has to send a request body, once the head is in.")
@click.option("--keepalive-timeout", default=DEFAULT_KEEPALIVE_TIMEOUT, show_default=True,
              type=click.FloatRange(min=0.1), help="Seconds an idle keep-alive connection stays open.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def serve(
    host: str, port: int, api_key: str | None, provider_name: str, upstream_base_url: str | None,
    config_file: str | None, strict_params: bool, offline: bool,
    insecure_no_auth: bool, max_concurrency: int, max_body_bytes: int, upstream_max_retries: int,
    shutdown_timeout: int, allowed_hosts: tuple[str, ...], cors_origins: tuple[str, ...], max_connections: int,
    max_head_bytes: int, max_headers: int, head_timeout: float, body_timeout: float, keepalive_timeout: float,
    log_level: str,
) -> None:
    """Serve the OpenAI wire format (POST /v1/chat/completions, GET /v1/models) and a chat page at /.

    The Upstage key (UPSTAGE_API_KEY) stays on the server; clients use --api-key, if one is set.
    """
    if not api_key and not is_loopback(host) and not insecure_no_auth:
        raise click.UsageError(
            f"refusing to listen on {host} without a gateway key: anyone who can reach it could spend your "
            "Upstage credits. Pass --api-key (or set SOLARSTREAM_API_KEY), or --insecure-no-auth if you mean it."
        )
    if offline and upstream_base_url:
        raise click.UsageError("--offline and --upstream-base-url exclude each other")
    provider_given = click.get_current_context().get_parameter_source("provider_name") is not (
        click.core.ParameterSource.DEFAULT)
    if config_file and (offline or upstream_base_url or provider_given):
        raise click.UsageError("--config declares the upstreams itself; leave out --offline, --provider and "
                               "--upstream-base-url")
    try:
        config = GatewayConfig(
            upstream_api_key="", api_key=api_key or None, max_concurrency=max_concurrency,
            max_body_bytes=max_body_bytes, upstream_max_retries=upstream_max_retries,
            max_connections=max_connections, max_head_bytes=max_head_bytes, max_headers=max_headers,
            head_timeout=head_timeout, body_timeout=body_timeout, keepalive_timeout=keepalive_timeout,
            allowed_hosts=(*allowed_hosts, *_bind_name(host)), cors_origins=cors_origins,
            provider=provider_name, strict_params=strict_params,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if config_file:
        from ..routing import ConfigError, load_router

        try:
            router = load_router(config_file)
        except ConfigError as exc:
            raise click.UsageError(exc.message) from None
        config = replace(config, upstream=router, upstream_label="router")
    elif not offline:
        try:
            upstream = create_provider(provider_name)
            config = replace(config, upstream_api_key=upstream.resolve_api_key() or "",
                             upstream_base_url=upstream.resolve_base_url(upstream_base_url),
                             upstream_label=upstream.spec.name)
        except MissingAuthError as exc:
            raise click.UsageError(
                f"the gateway needs an upstream API key: {exc.message}; or use --offline to serve the built-in "
                "emulator") from None
        except InvalidRequestError as exc:
            raise click.UsageError(exc.message) from None
    _setup_logging(log_level)
    raise_fd_limit(config)
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                                   "choose another --port or --host") from None
    with contextlib.suppress(KeyboardInterrupt), sock:
        asyncio.run(_run(config, sock, offline=offline, log_level=log_level, shutdown_timeout=shutdown_timeout))


async def _run(config: GatewayConfig, sock: socket.socket, *, offline: bool, log_level: str,
               shutdown_timeout: int) -> None:
    if not offline:
        await _serve(config, sock, log_level, shutdown_timeout)
        return
    from ..emulator import Emulator

    async with Emulator() as emulator:
        config = replace(config, upstream_api_key=emulator.api_key, upstream_base_url=emulator.base_url,
                         upstream_label="emulator")
        await _serve(config, sock, log_level, shutdown_timeout)


async def _serve(config: GatewayConfig, sock: socket.socket, log_level: str, shutdown_timeout: int) -> None:
    server = build_server(config, log_level=log_level, shutdown_timeout=shutdown_timeout)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    upstream = ("the built-in emulator (answers are not from a real model)" if config.upstream_label == "emulator"
                else config.safe_upstream_url)
    if config.upstream_label == "router":
        router = config.upstream
        upstream = (f"a router of {len(router.deployments)} deployments for {', '.join(router.model_names) or '*'} "
                    f"(strategy {router.strategy.name}; state at /v1/router/status)")
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    ready = asyncio.ensure_future(server.ready.wait())
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if ready.done():  # said once it really listens
        click.echo(
            f"solarstream gateway: chat page http://{shown}:{port}/ ; OpenAI base URL http://{shown}:{port}/v1\n"
            f"  upstream: {upstream}; gateway key: {'required' if config.auth_required else 'not required'}",
            err=True,
        )
    else:
        ready.cancel()
    await task


def _bind_name(host: str) -> tuple[str, ...]:
    """A host *name* given to --host (an address is matched anyway) is a name clients will use."""
    name = host.strip("[]")
    if name in ("", "localhost", ANY_HOST):
        return ()
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return (name,)
    return ()


def _setup_logging(level: str) -> None:
    logger = logging.getLogger("solarstream")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        install(handler)  # every line, also the core's, with client or upstream text escaped
        logger.addHandler(handler)
    logger.setLevel(level.upper())
