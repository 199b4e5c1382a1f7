"""``Emulator``: the emulator served on loopback from the running event loop, for tests and the CLI.

It binds its own listening socket around aiohttp's ``AppRunner`` so it can count the TCP
connections it accepts (tests of connection reuse need that number), and it serves with
``handler_cancellation=True`` so a client that goes away cancels its handler at once.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import Callable, Iterable
from types import TracebackType

from aiohttp import web

from .app import STATE, create_app
from .ratelimit import RateStats, key_id
from .state import DEFAULT_HISTORY, EmulatorState, RequestRecord

__all__ = ["API_KEY", "Emulator"]

#: A key the emulator accepts (any ``up_`` + letters/digits/underscores key is accepted).
API_KEY = "up_emulator"


class Emulator:
    """``async with Emulator() as emu:`` serves on 127.0.0.1 (a free port unless ``port`` is given).

    ``rpm``/``tpm``: enforced requests and tokens per API key and model in any ``rate_window``
    seconds (``None``: not enforced, the headers still count). ``clock``: Unix time in seconds
    (default ``time.time``). ``history``: recent requests kept in ``requests``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        scenario: str | Iterable[str] | None = None,
        reasoning_field: str = "reasoning",
        rpm: int | None = None,
        tpm: int | None = None,
        rate_window: float = 60.0,
        clock: Callable[[], float] | None = None,
        history: int = DEFAULT_HISTORY,
        shutdown_timeout: float = 2.0,
        ssl: ssl_module.SSLContext | None = None,
    ) -> None:
        self.host = host
        #: serve HTTPS with this context (tests of private CAs and TLS failures)
        self.ssl = ssl
        self.app = create_app(scenario=scenario, reasoning_field=reasoning_field, rpm=rpm, tpm=tpm,
                              rate_window=rate_window, clock=clock, history=history)
        self._requested_port = port
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    @property
    def state(self) -> EmulatorState:
        return self.app[STATE]

    async def start(self) -> None:
        runner = web.AppRunner(self.app, handler_cancellation=True, access_log=None,
                               shutdown_timeout=self._shutdown_timeout)
        await runner.setup()
        self._runner = runner
        handler_factory = runner.server
        assert handler_factory is not None
        state = self.state

        def protocol() -> asyncio.BaseProtocol:
            state.connections += 1
            return handler_factory()

        try:
            self._server = await asyncio.get_running_loop().create_server(
                protocol, self.host, self._requested_port, reuse_address=True, ssl=self.ssl)
        except BaseException:
            await runner.cleanup()
            self._runner = None
            raise
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        """Stop listening, end running streams at once, close every connection."""
        self.state.closing.set()
        if self._server is not None:
            self._server.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def url(self) -> str:
        """``http://host:port`` (``https://`` when serving TLS; no path)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.ssl is not None else 'http'}://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API base to give a client: ``http://127.0.0.1:<port>/v1``."""
        return f"{self.url}/v1"

    @property
    def legacy_base_url(self) -> str:
        """The 2024 base, ``.../v1/solar``; served the same."""
        return f"{self.url}/v1/solar"

    @property
    def api_key(self) -> str:
        return API_KEY

    @property
    def requests(self) -> list[RequestRecord]:
        """The last ``history`` requests received, oldest first (a copy)."""
        return self.state.requests

    @property
    def request_count(self) -> int:
        """Every request received so far, also those no longer in ``requests``."""
        return self.state.request_count

    @property
    def accepted(self) -> int:
        """Chat and embedding requests admitted by the rate limiter (over every key and model)."""
        return self.state.limiter.accepted

    @property
    def rate_limited(self) -> int:
        """Requests the rate limiter refused with 429 (not counting ``[emulate:rate-limit]``)."""
        return self.state.limiter.limited

    def rate_stats(self, model: str, *, api_key: str = API_KEY) -> RateStats:
        """One key+model's counters: ``accepted``, ``limited`` (429s), and what its window holds now.

        ``model`` is the budget's name: a chat model's current name (``solar-pro4`` also for
        ``solar-pro4-260806``), or the embedding model's."""
        return self.state.limiter.stats(key_id(api_key), model)

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        return self.state.connections

    @property
    def disconnects(self) -> int:
        """Streams whose client went away before the stream ended."""
        return self.state.disconnects

    @property
    def attempts(self) -> dict[str, int]:
        """Scenario key (``"error body=envelope code= status=503 times=2"``) -> requests seen with it."""
        return self.state.attempts

    async def wait_for_disconnects(self, count: int = 1) -> int:
        """Return once the server has seen ``count`` client disconnects (wrap in ``asyncio.wait_for``)."""
        return await self.state.wait_for_disconnects(count)

    async def wait_for_requests(self, count: int = 1) -> list[RequestRecord]:
        """Return once ``count`` requests have arrived (their bodies read), e.g. before cancelling one."""
        return await self.state.wait_for_requests(count)
