"""The one place that talks HTTP: pooled sessions, timeouts, proxies, retries, error mapping.

* One aiohttp session per event loop (and per SOCKS proxy) per ``HTTPClient``; it is reused across
  requests and closed when the loop shuts its async generators down (``asyncio.run`` does), so
  nobody has to remember to close the shared default client.
* Timeouts: ``connect``; ``first_byte`` (sending to response headers); ``read`` (idle: longest wait
  between two reads of the body); optional ``total``. No default total: long reasoning streams
  must not be cut at aiohttp's 300 s.
* Retries (connection errors, 408, 429 ``too_many_requests``, 5xx) happen only before a response
  body is handed out, so a streamed answer is never duplicated.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import os
import random
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp

from ._version import __version__
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    InvalidRequestError,
    RateLimitError,
    ServerError,
    SolarstreamError,
    StreamError,
    StreamTruncatedError,
    error_from_response,
)

__all__ = ["HTTPClient", "Response", "RetryPolicy", "Timeout", "redact_url"]

log = logging.getLogger("solarstream")

USER_AGENT: Final = f"solarstream/{__version__}"
_ERROR_BODY_LIMIT = 64 * 1024
_DRAIN_LIMIT = 64 * 1024
_DRAIN_SECONDS = 0.5
_PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY")
_SOCKS_SCHEMES = {"socks4", "socks4a", "socks5", "socks5h"}
_HTTP_PROXY_SCHEMES = {"http", "https"}


@dataclass(frozen=True)
class Timeout:
    """Seconds for each phase of a request; ``None`` means no limit."""

    connect: float | None = 10.0
    #: From sending the request to its response headers (a non-streamed answer is computed
    #: before its headers come, so this is long by default).
    first_byte: float | None = 600.0
    #: Idle read: the longest wait for the next bytes of the body.
    read: float | None = 120.0
    total: float | None = None

    @classmethod
    def coerce(cls, value: Timeout | float | None) -> Timeout:
        """A number bounds connecting and every wait for the next byte; ``None`` keeps defaults."""
        if value is None:
            return cls()
        if isinstance(value, Timeout):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise InvalidRequestError(f"timeout must be a positive number of seconds or a Timeout, not {value!r}")
        seconds = float(value)
        return cls(connect=seconds, first_byte=seconds, read=seconds, total=None)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    #: First backoff delay in seconds; doubles each attempt, with jitter, up to ``backoff_max``.
    backoff: float = 0.5
    backoff_max: float = 8.0
    #: The longest server-advertised delay we wait for; beyond it the 429 is raised at once.
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise InvalidRequestError(f"max_retries must be 0 or more, not {self.max_retries}")


def redact_url(url: str) -> str:
    """The URL without its credentials: safe for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=f"***@{netloc}").geturl()


def _host_port(url: str) -> str:
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
    if scheme in _HTTP_PROXY_SCHEMES:
        return proxy
    if scheme in _SOCKS_SCHEMES:
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


class Response:
    """A successful response whose body is read by the caller; always ``finish()`` or ``close()`` it."""

    __slots__ = ("_resp", "_secret", "_timeout", "headers", "received", "request_id", "status")

    def __init__(self, resp: aiohttp.ClientResponse, timeout: Timeout, secret: str | None = None) -> None:
        self._resp = resp
        self._timeout = timeout
        self._secret = secret
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers
        self.request_id = _request_id(resp.headers)
        #: Body bytes read so far.
        self.received = 0

    def redact(self, text: str) -> str:
        """``text`` without the request's API key (for messages quoting what the server said)."""
        return text.replace(self._secret, "***") if self._secret and self._secret in text else text

    async def read_chunk(self) -> bytes:
        """The next bytes of the body, ``b""`` at its end."""
        try:
            data = await self._resp.content.readany()
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise APITimeoutError(
                f"no data for {self._timeout.read}s in the middle of the response "
                f"after {self.received} bytes (idle read timeout)"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise StreamTruncatedError(
                f"the connection broke after {self.received} bytes of the response "
                f"({_describe(exc)}); the answer is incomplete"
            ) from exc
        self.received += len(data)
        return data

    async def read_all(self) -> bytes:
        chunks = []
        while chunk := await self.read_chunk():
            chunks.append(chunk)
        return b"".join(chunks)

    async def finish(self) -> None:
        """The caller got all it wanted: drain a short tail so the connection can be reused."""
        content = self._resp.content
        if content.at_eof():
            self._resp.release()
            return
        try:
            await asyncio.wait_for(self._drain(), _DRAIN_SECONDS)
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError, _TooMuch):
            self._resp.close()
        else:
            self._resp.release()

    async def _drain(self) -> None:
        left = _DRAIN_LIMIT
        while data := await self._resp.content.readany():
            left -= len(data)
            if left < 0:
                raise _TooMuch

    def close(self) -> None:
        """Drop the connection now (cancellation, errors): it is not reused."""
        self._resp.close()


class _TooMuch(Exception):
    pass


class _LoopSessions:
    """The sessions one ``HTTPClient`` holds on one event loop, closed with that loop."""

    def __init__(self) -> None:
        self.sessions: dict[str | None, aiohttp.ClientSession] = {}
        self.closer: AsyncIterator[None] | None = None

    async def aclose(self) -> None:
        sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            await session.close()


async def _close_at_loop_shutdown(holder: _LoopSessions) -> AsyncIterator[None]:
    """An async generator parked on its first ``yield``: ``loop.shutdown_asyncgens()`` (run by
    ``asyncio.run`` and by pytest-asyncio) finalises it, which closes the sessions cleanly."""
    try:
        yield
    finally:
        await holder.aclose()


class HTTPClient:
    """Sends requests with pooling, timeouts, proxies and retries; maps failures to typed errors."""

    def __init__(
        self,
        *,
        timeout: Timeout | None = None,
        retry: RetryPolicy | None = None,
        proxy: str | None = None,
        connection_limit: int = 1000,
    ) -> None:
        self.timeout = timeout or Timeout()
        self.retry = retry or RetryPolicy()
        self.proxy = check_proxy(proxy)
        self.connection_limit = connection_limit
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopSessions] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        proxy = redact_url(self.proxy) if self.proxy else None
        return f"HTTPClient(timeout={self.timeout!r}, retry={self.retry!r}, proxy={proxy!r})"

    async def _session(self, proxy: str | None) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        holder = self._loops.get(loop)
        if holder is None:
            holder = self._loops[loop] = _LoopSessions()
        if holder.closer is None:
            holder.closer = _close_at_loop_shutdown(holder)
            await holder.closer.__anext__()
        socks = proxy if proxy and urlsplit(proxy).scheme.lower() in _SOCKS_SCHEMES else None
        session = holder.sessions.get(socks)
        if session is None or session.closed:
            session = holder.sessions[socks] = self._new_session(socks)
        return session

    def _new_session(self, socks: str | None) -> aiohttp.ClientSession:
        connector: aiohttp.BaseConnector
        if socks is None:
            connector = aiohttp.TCPConnector(limit=self.connection_limit, limit_per_host=0)
        else:
            from aiohttp_socks import ProxyConnector

            scheme, _, rest = socks.partition("://")
            scheme = scheme.lower()
            rdns = scheme in ("socks5h", "socks4a")
            plain = {"socks5h": "socks5", "socks4a": "socks4"}.get(scheme, scheme)
            connector = ProxyConnector.from_url(f"{plain}://{rest}", rdns=rdns, limit=self.connection_limit)
        return aiohttp.ClientSession(
            connector=connector,
            # not trust_env: it also reads ~/.netrc for the target host, and a matching entry (any
            # "default" one) makes aiohttp refuse our Authorization header. Env proxies are looked
            # up in send() instead, only when no proxy was given.
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),
            headers={"User-Agent": USER_AGENT},
            auto_decompress=True,
        )

    async def aclose(self) -> None:
        """Close this client's sessions on the running loop."""
        loop = asyncio.get_running_loop()
        holder = self._loops.pop(loop, None)
        if holder is not None:
            await holder.aclose()
            if holder.closer is not None:
                await holder.closer.aclose()  # type: ignore[attr-defined]

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        proxy: str | None = None,
        timeout: Timeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> Response:
        """Send and return a 2xx response, retrying what may be retried; raise a typed error otherwise."""
        proxy = check_proxy(proxy) if proxy is not None else self.proxy
        timeout = timeout or self.timeout
        retry = retry or self.retry
        session = await self._session(proxy)
        http_proxy = proxy if proxy and urlsplit(proxy).scheme.lower() in _HTTP_PROXY_SCHEMES else None
        if proxy is None:
            proxy = http_proxy = await _env_proxy(url)
        secret = _bearer(headers)  # redacted from anything the server quotes back
        client_timeout = aiohttp.ClientTimeout(
            total=timeout.total, sock_connect=timeout.connect, sock_read=timeout.first_byte
        )
        attempt = 0
        while True:
            try:
                resp = await session.request(
                    method, url, data=body, headers=headers, proxy=http_proxy,
                    timeout=client_timeout, allow_redirects=False,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = _connection_error(exc, url, proxy, timeout)
                if error is None:
                    raise
                if attempt < retry.max_retries and _retryable_connection_error(exc):
                    delay = _backoff(attempt, retry)
                    log.warning("retrying in %.2fs after %s (attempt %d of %d)",
                                delay, error.message, attempt + 2, retry.max_retries + 1)
                    await asyncio.sleep(delay)
                    attempt += 1
                    continue
                raise error from exc
            if resp.status == 407 and http_proxy:
                resp.close()  # the proxy answered for itself (plain http:// through an HTTP proxy)
                raise APIConnectionError(
                    f"the proxy {_host_port(http_proxy)} refused the request: HTTP 407 "
                    "(check the proxy's user name and password)"
                )
            if resp.status < 400:
                if resp.connection is not None and resp.connection.protocol is not None:
                    protocol = resp.connection.protocol
                    protocol.read_timeout = timeout.read
                    if not resp.content.is_eof():
                        protocol.start_timeout()  # the timer running now still has the first-byte limit
                return Response(resp, timeout, secret)
            status_error = await _status_error(resp, secret)
            if attempt < retry.max_retries and _retryable_status(status_error):
                status_delay = _retry_delay(attempt, resp.headers, retry)
                if status_delay is not None:
                    log.warning("retrying in %.2fs after %s (attempt %d of %d)",
                                status_delay, status_error.message, attempt + 2, retry.max_retries + 1)
                    await asyncio.sleep(status_delay)
                    attempt += 1
                    continue
            raise status_error

    async def request_json(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        proxy: str | None = None,
        timeout: Timeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> Any:
        """A whole JSON answer (non-streamed completions, the model list)."""
        import json

        response = await self.send(method, url, headers=headers, body=body, proxy=proxy, timeout=timeout,
                                   retry=retry)
        try:
            raw = await response.read_all()
        except BaseException:
            response.close()
            raise
        await response.finish()
        try:
            return json.loads(raw)
        except ValueError as exc:
            from .errors import excerpt

            raise StreamError(
                f"HTTP {response.status} answer is not JSON: {excerpt(raw) or '(empty body)'}",
                body=excerpt(raw),
            ) from exc


async def _env_proxy(url: str) -> str | None:
    """The HTTP(S)_PROXY / NO_PROXY choice for ``url``, as aiohttp's ``trust_env`` makes it.

    Loopback targets (the emulator, a local gateway) never go through an env proxy, as in Go's
    ``ProxyFromEnvironment``: a corporate proxy cannot reach this machine's 127.0.0.1.
    """
    if not any(os.environ.get(name) for name in _PROXY_VARIABLES):
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


def _request_id(headers: Mapping[str, str]) -> str | None:
    for name in ("x-request-id", "request-id", "x-upstage-request-id"):
        value = headers.get(name)
        if value:
            return value
    return None


def _bearer(headers: Mapping[str, str]) -> str | None:
    """The API key sent, so that an error quoting it back can be redacted."""
    for name, value in headers.items():
        if name.lower() == "authorization" and value[:7].lower() == "bearer " and len(value) > 14:
            return value[7:]
    return None


async def _status_error(resp: aiohttp.ClientResponse, secret: str | None = None) -> APIStatusError:
    raw = bytearray()

    async def read() -> None:
        # the whole body (up to the limit), not just the first read: an envelope split across
        # reads must still be parsed, or its code (and so the error class) would be lost
        while len(raw) < _ERROR_BODY_LIMIT and (data := await resp.content.readany()):
            raw.extend(data)

    try:
        await asyncio.wait_for(read(), 5.0)
    except (asyncio.TimeoutError, aiohttp.ClientError, OSError):
        pass  # keep what arrived
    finally:
        resp.close()
    body = bytes(raw[:_ERROR_BODY_LIMIT])
    if secret:  # some APIs quote the key they refused
        body = body.replace(secret.encode(), b"***")
    return error_from_response(
        resp.status, body, request_id=_request_id(resp.headers),
        retry_after=_advertised_delay(resp.headers),
    )


def _retryable_status(error: APIStatusError) -> bool:
    return isinstance(error, (RateLimitError, ServerError)) or error.status_code == 408


def _retryable_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return True
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError, aiohttp.ClientSSLError)):
        return False  # the server may be working on it (timeouts) or will fail the same way (TLS)
    # SOCKS failures to reach the proxy are OSErrors (retried); a python_socks ProxyError is the
    # proxy's answer (a rejected password, a refused target), which a retry would only repeat.
    return isinstance(exc, (aiohttp.ClientConnectionError, OSError))


def _backoff(attempt: int, retry: RetryPolicy) -> float:
    ceiling: float = min(retry.backoff_max, retry.backoff * 2.0**attempt)
    return ceiling * (0.5 + random.random() / 2)


def _advertised_delay(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asked us to wait: retry-after-ms, Retry-After, or Upstage's timestamps."""
    now = time.time() if now is None else now
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(float(value) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(float(value), 0.0)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value) if _looks_like_date(value) else None
            if when is not None:
                return max(when.timestamp() - now, 0.0)
    stamps = []
    for name in ("x-upstage-ratelimit-retry-after-requests", "x-upstage-ratelimit-retry-after-tokens"):
        value = headers.get(name)
        if value:
            try:
                stamps.append(float(value))
            except ValueError:
                continue
    if stamps:
        stamp = max(stamps)
        if stamp > 1e12:  # milliseconds since the epoch
            stamp /= 1000
        if stamp < 1e9:  # a small number is a delay, not a timestamp
            return max(stamp, 0.0)
        return max(stamp - now, 0.0)
    return None


def _looks_like_date(value: str) -> bool:
    try:
        return email.utils.parsedate_to_datetime(value) is not None
    except (TypeError, ValueError, IndexError):
        return False


def _retry_delay(attempt: int, headers: Mapping[str, str], retry: RetryPolicy) -> float | None:
    advertised = _advertised_delay(headers)
    if advertised is None:
        return _backoff(attempt, retry)
    if advertised > retry.max_retry_after:
        return None  # waiting that long is the caller's decision: raise with .retry_after set
    return advertised + random.random() * min(0.1, retry.backoff)


def _is_socks_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith(("python_socks", "aiohttp_socks"))


def _describe(exc: BaseException) -> str:
    """A short cause without URLs (which could carry credentials)."""
    if isinstance(exc, aiohttp.ClientOSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "incomplete body"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    return type(exc).__name__


def _connection_error(
    exc: BaseException, url: str, proxy: str | None, timeout: Timeout
) -> SolarstreamError | None:
    """The typed error for a failure before any response; None for errors that are not network's."""
    target = _host_port(url)
    via = f" via proxy {_host_port(proxy)}" if proxy else ""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return APITimeoutError(f"could not connect to {target}{via} within {timeout.connect}s (connect timeout)")
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return APITimeoutError(
            f"no response from {target} within {timeout.first_byte}s (first byte timeout)"
        )
    if isinstance(exc, asyncio.TimeoutError):
        return APITimeoutError(f"the request to {target} took longer than {timeout.total}s (total timeout)")
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return APIConnectionError(
            f"the proxy {_host_port(proxy or '')} refused the request: HTTP {exc.status} {exc.message}"
            + (" (check the proxy's user name and password)" if exc.status == 407 else "")
        )
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return APIConnectionError(f"could not connect to the proxy {_host_port(proxy or '')} ({_describe(exc)})")
    if isinstance(exc, aiohttp.ClientSSLError):
        return APIConnectionError(f"TLS handshake with {target}{via} failed ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return APIConnectionError(f"could not connect to {target}{via} ({reason}); is the base URL right?")
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidRequestError(f"invalid URL {redact_url(str(exc.url))}")
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return APIConnectionError(f"the connection to {target}{via} failed ({_describe(exc)})")
    if isinstance(exc, EOFError) and proxy and urlsplit(proxy).scheme.lower() in _SOCKS_SCHEMES:
        # python_socks reads the handshake with readexactly(): a proxy that hangs up (as on a
        # wrong password) surfaces as asyncio.IncompleteReadError
        return APIConnectionError(
            f"the SOCKS proxy {_host_port(proxy)} closed the connection during the handshake "
            "(check the proxy's user name and password)"
        )
    if _is_socks_error(exc):
        return APIConnectionError(f"the SOCKS proxy {_host_port(proxy or '')} failed ({type(exc).__name__})")
    return None
