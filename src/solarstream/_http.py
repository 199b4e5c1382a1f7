"""One HTTP attempt: pooled sessions, timeouts, proxies, TLS -> a ``Response`` or a typed error.

* One aiohttp session per event loop (and per SOCKS proxy) per ``HTTPClient``; it is reused across
  requests, closed when the loop shuts its async generators down (``asyncio.run`` does), and closed
  quietly when the client is garbage-collected, so a client dropped without ``close()`` leaks nothing.
* Timeouts (``Timeout``): ``connect`` bounds opening the connection (TCP, proxy, TLS);
  ``first_byte`` bounds the wait from sending the request to its response headers; ``read`` bounds
  each wait for more body bytes (idle read); ``total`` bounds the whole call, retries and their
  waits included (a ``Deadline`` carries it across attempts and into the body). Body reads run on a
  timer of our own, so a body whose HTTP framing breaks ends within ``read`` instead of hanging.
* No retries here: ``send`` makes exactly one attempt. Errors carry the facts a retry policy needs
  (``retryable``, ``retry_after``, ``rate_limits``); ``_retry`` decides what happens next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

from ._proxies import HTTP_PROXY_SCHEMES, SOCKS_SCHEMES, check_proxy, env_proxy, host_port, is_socks_error, redact_url
from ._tls import Verify, describe_tls_failure, ssl_context
from ._version import __version__
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    InvalidRequestError,
    SolarstreamError,
    StreamTruncatedError,
    error_from_response,
)

__all__ = ["Deadline", "ErrorMapper", "HTTPClient", "Response", "Timeout", "Verify", "check_proxy", "redact_url"]

log = logging.getLogger("solarstream")

USER_AGENT: Final = f"solarstream/{__version__}"
_ERROR_BODY_LIMIT = 64 * 1024
_DRAIN_LIMIT = 64 * 1024
_DRAIN_SECONDS = 0.5
#: Turns an error response (status, raw body, headers) into its typed error: the provider's rules.
ErrorMapper = Callable[[int, bytes, Mapping[str, str]], APIStatusError]


@dataclass(frozen=True)
class Timeout:
    """Seconds for each phase of a request; ``None`` means no limit.

    ``connect``: opening the connection (TCP, proxy, TLS). ``first_byte``: from sending the request
    to its response headers (a non-streamed answer is computed before its headers come, so this is
    long by default). ``read``: the longest wait for the next bytes of the body (keep-alive comments
    count as bytes). ``total``: the whole call, from the first attempt to the last byte, retries and
    the waits between them included.
    """

    connect: float | None = 10.0
    first_byte: float | None = 600.0
    read: float | None = 120.0
    total: float | None = None

    def __post_init__(self) -> None:
        for name in ("connect", "first_byte", "read", "total"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value <= 0):
                raise InvalidRequestError(f"Timeout({name}=...) must be a positive number of seconds or None, "
                                          f"not {value!r}", param="timeout")

    @classmethod
    def coerce(cls, value: Timeout | float | None) -> Timeout:
        """A number bounds connecting and every wait for the next byte; ``None`` keeps defaults."""
        if value is None:
            return cls()
        if isinstance(value, Timeout):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise InvalidRequestError(f"timeout must be a positive number of seconds or a Timeout, not {value!r}",
                                      param="timeout")
        seconds = float(value)
        return cls(connect=seconds, first_byte=seconds, read=seconds, total=None)

    def deadline(self) -> Deadline:
        """The deadline of a call starting now (call it on the event loop that runs the call)."""
        if self.total is None:
            return Deadline(None, None)
        return Deadline(asyncio.get_running_loop().time() + self.total, self.total)


@dataclass(frozen=True)
class Deadline:
    """When a whole call must be over (event-loop time), so every attempt, wait and read can see it."""

    at: float | None
    total: float | None

    def remaining(self) -> float | None:
        """Seconds left (never negative), or ``None`` without a total timeout."""
        if self.at is None:
            return None
        return max(0.0, self.at - asyncio.get_running_loop().time())

    def expired_error(self, doing: str) -> APITimeoutError:
        return APITimeoutError(f"the call took longer than its total timeout of {self.total:g}s "
                               f"({doing}; total timeout)", timer="total")


NO_DEADLINE: Final = Deadline(None, None)


def _bound(phase: float | None, remaining: float | None) -> float | None:
    if remaining is None:
        return phase
    return remaining if phase is None else min(phase, remaining)


class Response:
    """A successful response whose body is read by the caller; always ``finish()`` or ``close()`` it."""

    __slots__ = ("_deadline", "_resp", "_secret", "_timeout", "_timer_error", "headers", "received",
                 "request_id", "status")

    def __init__(self, resp: aiohttp.ClientResponse, timeout: Timeout, deadline: Deadline = NO_DEADLINE,
                 secret: str | None = None, request_id: str | None = None) -> None:
        self._resp = resp
        self._timeout = timeout
        self._deadline = deadline
        self._secret = secret
        self._timer_error: SolarstreamError | None = None
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers
        self.request_id = request_id
        #: Body bytes read so far.
        self.received = 0

    def redact(self, text: str) -> str:
        """``text`` without the request's API key (for messages quoting what the server said)."""
        return text.replace(self._secret, "***") if self._secret and self._secret in text else text

    async def read_chunk(self) -> bytes:
        """The next bytes of the body, ``b""`` at its end.

        A wait for bytes runs on a timer of our own (the idle ``read`` limit or the call's deadline,
        whichever comes first): aiohttp's own read timer is cancelled when the HTTP framing breaks,
        which would leave the wait without any bound.
        """
        content = self._resp.content
        try:
            data = content.read_nowait()
            if not data and not content.is_eof():
                data = await self._wait_for_data(content)
        except SolarstreamError:
            raise
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise APITimeoutError(f"no data for {self._timeout.read}s in the middle of the response after "
                                  f"{self.received} bytes (idle read timeout)", timer="read") from exc
        except (aiohttp.ClientError, HttpProcessingError, OSError, RuntimeError) as exc:
            raise StreamTruncatedError(
                f"the connection broke after {self.received} bytes of the response "
                f"({_describe(exc)}); the answer is incomplete"
            ) from exc
        self.received += len(data)
        return data

    async def _wait_for_data(self, content: aiohttp.StreamReader) -> bytes:
        idle = self._timeout.read
        remaining = self._deadline.remaining()
        limit = _bound(idle, remaining)
        if limit is None:
            return await content.readany()
        loop = asyncio.get_running_loop()
        by_total = remaining is not None and (idle is None or remaining <= idle)
        handle = loop.call_at(loop.time() + limit, self._expire, content, by_total)
        try:
            return await content.readany()
        finally:
            handle.cancel()

    def _expire(self, content: aiohttp.StreamReader, by_total: bool) -> None:
        """The read timer fired: wake the waiting read with the typed error that says why."""
        protocol = self._resp.connection.protocol if self._resp.connection is not None else None
        broken = protocol.exception() if protocol is not None else None
        error: SolarstreamError
        if broken is not None:
            error = StreamTruncatedError(
                f"the response's HTTP framing broke after {self.received} bytes ({_describe(broken)}); "
                "the answer is incomplete")
        elif by_total:
            error = self._deadline.expired_error(f"still reading the response after {self.received} bytes")
        else:
            error = APITimeoutError(f"no data for {self._timeout.read:g}s in the middle of the response after "
                                    f"{self.received} bytes (idle read timeout)", timer="read")
        content.set_exception(error)

    async def read_all(self) -> bytes:
        chunks = []
        while chunk := await self.read_chunk():
            chunks.append(chunk)
        return b"".join(chunks)

    async def finish(self) -> None:
        """The caller got all it wanted: drain a short tail (the chunked terminator after ``[DONE]``,
        say) so the connection can be reused; a long or slow tail closes it instead."""
        content = self._resp.content
        left = _DRAIN_LIMIT
        deadline = asyncio.get_running_loop().time() + _DRAIN_SECONDS
        try:
            while not content.at_eof():
                data = content.read_nowait()
                if not data:
                    data = await self._drain_wait(content, deadline)
                left -= len(data)
                if left < 0:
                    raise _TooMuch
        except (SolarstreamError, aiohttp.ClientError, HttpProcessingError, OSError, RuntimeError, _TooMuch):
            self._resp.close()
        else:
            self._resp.release()

    async def _drain_wait(self, content: aiohttp.StreamReader, deadline: float) -> bytes:
        """Wait for more of the tail on a timer (not ``wait_for``: no task a request)."""
        loop = asyncio.get_running_loop()
        if loop.time() >= deadline:
            raise _TooMuch
        handle = loop.call_at(deadline, content.set_exception, _TooMuch())
        try:
            return await content.readany()
        finally:
            handle.cancel()

    def close(self) -> None:
        """Drop the connection now (cancellation, errors): it is not reused."""
        self._resp.close()


class _TooMuch(Exception):
    pass


class _LoopSessions:
    """The sessions one ``HTTPClient`` holds on one event loop, closed with that loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sessions: dict[str | None, aiohttp.ClientSession] = {}
        self.closer: AsyncIterator[None] | None = None

    async def aclose(self) -> None:
        # the closer (below) stays parked: the loop finalises it at shutdown, with nothing left to close
        sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            await session.close()


async def _close_at_loop_shutdown(holder: _LoopSessions) -> AsyncIterator[None]:
    """An async generator parked on its first ``yield``: ``loop.shutdown_asyncgens()`` (run by
    ``asyncio.run`` and by pytest-asyncio) finalises it, which closes the sessions cleanly."""
    try:
        yield
    finally:
        sessions, holder.sessions = list(holder.sessions.values()), {}
        for session in sessions:
            await session.close()


#: close tasks started for collected clients (the loop keeps only weak references to tasks)
_closing: set[asyncio.Task[None]] = set()


def _close_collected(pools: dict[asyncio.AbstractEventLoop, _LoopSessions]) -> None:
    """A client was garbage-collected without ``close()``: close its sessions on their loops.

    Runs from the garbage collector, possibly in another thread; ``pools`` is kept alive by the
    finaliser (not by the client), so the sessions are still open here and close without warnings.
    """
    for loop, holder in list(pools.items()):
        if not holder.sessions:
            continue
        if loop.is_closed():
            for session in holder.sessions.values():
                connector = session.connector
                if connector is not None:
                    connector._close()  # no loop to await on: close the transports at once
                session._connector = None  # the session is done; aiohttp would warn otherwise
            holder.sessions = {}
            continue
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(_spawn_close, holder)


def _spawn_close(holder: _LoopSessions) -> None:
    task = holder.loop.create_task(holder.aclose())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


class HTTPClient:
    """Makes single attempts with pooling, timeouts, proxies and TLS; maps failures to typed errors."""

    def __init__(
        self,
        *,
        timeout: Timeout | None = None,
        proxy: str | None = None,
        verify: Verify = True,
        connection_limit: int = 1000,
    ) -> None:
        self.timeout = timeout or Timeout()
        self.proxy = check_proxy(proxy)
        self.verify = verify
        self._ssl = ssl_context(verify)
        self.connection_limit = connection_limit
        self._loops: dict[asyncio.AbstractEventLoop, _LoopSessions] = {}
        weakref.finalize(self, _close_collected, self._loops)

    def __repr__(self) -> str:
        proxy = redact_url(self.proxy) if self.proxy else None
        return f"HTTPClient(timeout={self.timeout!r}, proxy={proxy!r})"

    async def _session(self, proxy: str | None) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        holder = self._loops.get(loop)
        if holder is None:
            self._forget_closed_loops()
            holder = self._loops[loop] = _LoopSessions(loop)
        if holder.closer is None:
            holder.closer = _close_at_loop_shutdown(holder)
            await holder.closer.__anext__()
        socks = proxy if proxy and urlsplit(proxy).scheme.lower() in SOCKS_SCHEMES else None
        session = holder.sessions.get(socks)
        if session is None or session.closed:
            session = holder.sessions[socks] = self._new_session(socks)
        return session

    def _forget_closed_loops(self) -> None:
        for loop in [loop for loop in self._loops if loop.is_closed()]:
            del self._loops[loop]

    def _new_session(self, socks: str | None) -> aiohttp.ClientSession:
        connector: aiohttp.BaseConnector
        if socks is None:
            connector = aiohttp.TCPConnector(limit=self.connection_limit, limit_per_host=0, ssl=self._ssl)
        else:
            from aiohttp_socks import ProxyConnector

            scheme, _, rest = socks.partition("://")
            scheme = scheme.lower()
            rdns = scheme in ("socks5h", "socks4a")
            plain = {"socks5h": "socks5", "socks4a": "socks4"}.get(scheme, scheme)
            connector = ProxyConnector.from_url(f"{plain}://{rest}", rdns=rdns, limit=self.connection_limit,
                                                ssl=self._ssl)
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
        holder = self._loops.pop(asyncio.get_running_loop(), None)
        if holder is not None:
            await holder.aclose()

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        proxy: str | None = None,
        timeout: Timeout | None = None,
        deadline: Deadline = NO_DEADLINE,
        errors: ErrorMapper | None = None,
        request_id: Callable[[Mapping[str, str]], str | None] | None = None,
    ) -> Response:
        """One attempt: a 2xx ``Response``, or a typed error carrying the facts a retry policy needs."""
        proxy = check_proxy(proxy) if proxy is not None else self.proxy
        timeout = timeout or self.timeout
        session = await self._session(proxy)
        http_proxy = proxy if proxy and urlsplit(proxy).scheme.lower() in HTTP_PROXY_SCHEMES else None
        if proxy is None:
            proxy = http_proxy = await env_proxy(url)
        secret = _bearer(headers)  # redacted from anything the server quotes back
        remaining = deadline.remaining()
        if remaining is not None and remaining <= 0:
            raise deadline.expired_error("before sending the request")
        connect, first_byte = _bound(timeout.connect, remaining), _bound(timeout.first_byte, remaining)
        client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=first_byte)
        try:
            resp = await session.request(
                method, url, data=body, headers=headers, proxy=http_proxy,
                timeout=client_timeout, allow_redirects=False,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = _connection_error(exc, url, proxy, timeout, deadline)
            if error is None:
                raise
            raise error from exc
        if resp.status == 407 and http_proxy:
            resp.close()  # the proxy answered for itself (plain http:// through an HTTP proxy)
            raise APIConnectionError(
                f"the proxy {host_port(http_proxy)} refused the request: HTTP 407 "
                "(check the proxy's user name and password)"
            )
        find_id = request_id or _request_id
        if resp.status < 400:
            if resp.connection is not None and resp.connection.protocol is not None:
                protocol = resp.connection.protocol
                protocol.read_timeout = None  # body reads run on our own timer:
                protocol.start_timeout()  # this cancels aiohttp's (still set to the first-byte limit)
            return Response(resp, timeout, deadline, secret, find_id(resp.headers))
        raw = await _error_body(resp)
        if secret:  # some APIs quote the key they refused
            raw = raw.replace(secret.encode(), b"***")
        error_mapper = errors or _generic_errors
        status_error = error_mapper(resp.status, raw, resp.headers)
        if status_error.request_id is None:
            status_error.request_id = find_id(resp.headers)
        raise status_error


def parse_json_body(raw: bytes, response: Response) -> Any:
    from . import _json
    from .errors import StreamError, excerpt

    try:
        return _json.loads(raw)
    except ValueError as exc:
        shown = excerpt(response.redact(raw.decode("utf-8", "replace")))
        raise StreamError(f"HTTP {response.status} answer is not JSON: {shown or '(empty body)'}",
                          body=shown) from exc


def _generic_errors(status: int, raw: bytes, headers: Mapping[str, str]) -> APIStatusError:
    from ._retry import advertised_delay

    return error_from_response(status, raw, retry_after=advertised_delay(headers))


async def _error_body(resp: aiohttp.ClientResponse) -> bytes:
    raw = bytearray()

    async def read() -> None:
        # the whole body (up to the limit), not just the first read: an envelope split across
        # reads must still be parsed, or its code (and so the error class) would be lost
        while len(raw) < _ERROR_BODY_LIMIT and (data := await resp.content.readany()):
            raw.extend(data)

    try:
        await asyncio.wait_for(read(), 5.0)
    except (asyncio.TimeoutError, aiohttp.ClientError, HttpProcessingError, OSError, RuntimeError):
        pass  # keep what arrived
    finally:
        resp.close()
    return bytes(raw[:_ERROR_BODY_LIMIT])


def _request_id(headers: Mapping[str, str]) -> str | None:
    for name in ("x-request-id", "request-id"):
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


def _describe(exc: BaseException) -> str:
    """A short cause without URLs (which could carry credentials)."""
    if isinstance(exc, aiohttp.ClientOSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    if isinstance(exc, aiohttp.ClientPayloadError):
        cause = exc.__cause__
        if isinstance(cause, HttpProcessingError):
            return f"incomplete body: {_describe(cause)}"
        return "incomplete body"
    if isinstance(exc, HttpProcessingError):
        detail = " ".join(str(exc.message or "").split())[:80]
        return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, RuntimeError) and "closed" in str(exc).lower():
        return "connection closed"
    return type(exc).__name__


def _connection_error(
    exc: BaseException, url: str, proxy: str | None, timeout: Timeout, deadline: Deadline
) -> SolarstreamError | None:
    """The typed error for a failure before any response; None for errors that are not network's."""
    target = host_port(url)
    via = f" via proxy {host_port(proxy)}" if proxy else ""
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        remaining = deadline.remaining()
        if remaining is not None and remaining <= 0.001:
            doing = "connecting" if isinstance(exc, aiohttp.ConnectionTimeoutError) else "waiting for the response"
            return deadline.expired_error(f"{doing} to {target}" if doing == "connecting" else doing)
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return APITimeoutError(f"could not connect to {target}{via} within {timeout.connect:g}s "
                                   "(connect timeout)", timer="connect", retryable=True)
        return APITimeoutError(f"no response from {target} within {timeout.first_byte:g}s (first byte timeout)",
                               timer="first_byte")
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return APIConnectionError(
            f"the proxy {host_port(proxy or '')} refused the request: HTTP {exc.status} {exc.message}"
            + (" (check the proxy's user name and password)" if exc.status == 407 else "")
        )
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return APIConnectionError(f"could not connect to the proxy {host_port(proxy or '')} ({_describe(exc)})",
                                  retryable=True)
    if isinstance(exc, aiohttp.ClientSSLError):
        return APIConnectionError(f"TLS with {target}{via} failed: {describe_tls_failure(exc)}; if a company proxy "
                                  "or a private CA signs it, pass verify='/path/to/ca.pem' (--ca-bundle) or set "
                                  "SSL_CERT_FILE")
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return APIConnectionError(f"could not connect to {target}{via} ({reason}); is the base URL right?",
                                  retryable=True)
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidRequestError(f"invalid URL {redact_url(str(exc.url))}", param="base_url")
    if isinstance(exc, (aiohttp.ClientError, OSError, HttpProcessingError)):
        return APIConnectionError(f"the connection to {target}{via} failed ({_describe(exc)})", retryable=True)
    if isinstance(exc, EOFError) and proxy and urlsplit(proxy).scheme.lower() in SOCKS_SCHEMES:
        # python_socks reads the handshake with readexactly(): a proxy that hangs up (as on a
        # wrong password) surfaces as asyncio.IncompleteReadError
        return APIConnectionError(
            f"the SOCKS proxy {host_port(proxy)} closed the connection during the handshake "
            "(check the proxy's user name and password)"
        )
    if is_socks_error(exc):
        # a python_socks ProxyError is the proxy's answer (a rejected password, a refused
        # target), which a retry would only repeat
        return APIConnectionError(f"the SOCKS proxy {host_port(proxy or '')} failed ({type(exc).__name__})")
    return None
