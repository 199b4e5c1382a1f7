"""Proxies: which one a request uses (``proxy=``, else the environment's), checked early, never shown
with its password."""

from __future__ import annotations

import asyncio
import ipaddress
import os
from urllib.parse import urlsplit

from .errors import InvalidRequestError

__all__ = ["HTTP_PROXY_SCHEMES", "SOCKS_SCHEMES", "check_proxy", "env_proxy", "host_port", "is_socks_error",
           "redact_url"]

_PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY")
SOCKS_SCHEMES = {"socks4", "socks4a", "socks5", "socks5h"}
HTTP_PROXY_SCHEMES = {"http", "https"}


def redact_url(url: str) -> str:
    """The URL without its credentials: safe for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=f"***@{netloc}").geturl()


def host_port(url: str) -> str:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if parts.scheme in ("https", "wss") else 80)
    return f"{parts.hostname}:{port}"


def check_proxy(proxy: str | None) -> str | None:
    """Validate a proxy URL early, with a message that never shows its password."""
    if not proxy:
        return None
    scheme = urlsplit(proxy).scheme.lower()
    if scheme in HTTP_PROXY_SCHEMES:
        return proxy
    if scheme in SOCKS_SCHEMES:
        try:
            import aiohttp_socks  # noqa: F401
        except ImportError:
            raise InvalidRequestError(
                f"SOCKS proxy {redact_url(proxy)} needs the 'socks' extra: pip install 'solarstream[socks]'"
            ) from None
        return proxy
    raise InvalidRequestError(
        f"unsupported proxy {redact_url(proxy)}: use http://, https://, socks4://, socks5:// or socks5h://"
    )


#: ``os.environ``'s own dict (bytes keys on POSIX): a membership test there costs ~0.1 us, where
#: ``os.environ.get`` encodes each key first (~0.7 us each, four a request)
_ENVIRON_DATA = getattr(os.environ, "_data", None)
_PROXY_KEYS = tuple(os.fsencode(name) for name in _PROXY_VARIABLES) if os.name == "posix" else ()


def _proxy_variables_set() -> bool:
    if isinstance(_ENVIRON_DATA, dict) and _PROXY_KEYS:
        return any(_ENVIRON_DATA.get(key) for key in _PROXY_KEYS)
    return any(os.environ.get(name) for name in _PROXY_VARIABLES)


async def env_proxy(url: str) -> str | None:
    """The HTTP(S)_PROXY / NO_PROXY choice for ``url``, as aiohttp's ``trust_env`` makes it.

    Loopback targets (the emulator, a local gateway) never go through an env proxy, as in Go's
    ``ProxyFromEnvironment``: a corporate proxy cannot reach this machine's 127.0.0.1.
    """
    if not _proxy_variables_set():
        return None  # the common case, checked without scanning the environment (37-49 us a request)
    if _is_loopback(urlsplit(url).hostname or ""):
        return None
    from aiohttp.helpers import get_env_proxy_for_url
    from yarl import URL

    try:  # reads ~/.netrc for the proxy's credentials: off the loop, as aiohttp does
        proxy_url, auth = await asyncio.to_thread(get_env_proxy_for_url, URL(url))
    except LookupError:
        return None
    if auth is not None:
        # credentials go back into the URL: aiohttp sends those for plain http:// requests too
        # (proxy_headers= reach only CONNECT, and proxy_auth= is deprecated in aiohttp 3.14)
        proxy_url = proxy_url.with_user(auth.login).with_password(auth.password)
    return str(proxy_url)


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_socks_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith(("python_socks", "aiohttp_socks"))
