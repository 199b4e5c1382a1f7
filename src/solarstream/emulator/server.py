"""``Emulator``: the emulator served on loopback from the running event loop, for tests and the CLI.

It binds its own listening socket around aiohttp's ``AppRunner`` so it can count the TCP
connections it accepts (tests of connection reuse need that number), and it serves with
``handler_cancellation=True`` so a client that goes away cancels its handler at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType

from aiohttp import web

from .app import STATE, create_app
from .state import EmulatorState, RequestRecord

__all__ = ["API_KEY", "Emulator"]

#: A key the emulator accepts (any ``up_`` + letters/digits/underscores key is accepted).
API_KEY = "up_emulator"


class Emulator:
    """``async with Emulator() as emu:`` serves on 127.0.0.1 (a free port unless ``port`` is given)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        scenario: str | Iterable[str] | None = None,
        reasoning_field: str = "reasoning",
        shutdown_timeout: float = 2.0,
    ) -> None:
        self.host = host
        self.app = create_app(scenario=scenario, reasoning_field=reasoning_field)
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
                protocol, self.host, self._requested_port, reuse_address=True)
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
        """``http://host:port`` (no path)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

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
        return self.state.requests

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
