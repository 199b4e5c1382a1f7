"""Run the gateway (optionally in front of an emulator) on 127.0.0.1 for tests, demos and benchmarks.

``running_gateway`` serves on the current event loop; ``GatewayThread`` serves on a loop of its own
in a background thread, for synchronous clients (the ``openai`` SDK's ``OpenAI``, a browser).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, TypeVar

from .config import GatewayConfig
from .serving import GatewayServer, bind_socket, build_server

__all__ = ["GatewayThread", "RunningGateway", "running_gateway"]

T = TypeVar("T")


@dataclass
class RunningGateway:
    server: GatewayServer
    url: str  # http://127.0.0.1:<port>
    emulator: Any  # solarstream.emulator.Emulator, or None

    @property
    def base_url(self) -> str:
        """The OpenAI base URL to give a client."""
        return f"{self.url}/v1"


@asynccontextmanager
async def running_gateway(
    config: GatewayConfig | None = None, *, emulator: bool = True, shutdown_timeout: int = 5, **overrides: Any
) -> AsyncIterator[RunningGateway]:
    """Serve the gateway on this loop; with ``emulator`` an ``Emulator`` is started as its upstream."""
    async with AsyncExitStack() as stack:
        emu = None
        if config is None:
            config = GatewayConfig(upstream_api_key="")
        if emulator:
            from ..emulator import Emulator

            emu = await stack.enter_async_context(Emulator())
            config = replace(config, upstream_api_key=emu.api_key, upstream_base_url=emu.base_url,
                             upstream_label="emulator")
        if overrides:
            config = replace(config, **overrides)
        server = build_server(config, log_level="warning", shutdown_timeout=shutdown_timeout, log_config=None)
        sock = bind_socket("127.0.0.1", 0)
        port = sock.getsockname()[1]
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        try:
            ready = asyncio.ensure_future(server.ready.wait())
            await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
            if not ready.done():
                ready.cancel()
                task.result()  # raises why it stopped
                raise RuntimeError("the gateway stopped before it started listening")
            yield RunningGateway(server, f"http://127.0.0.1:{port}", emu)
        finally:
            server.should_exit = True
            await task
            sock.close()


class GatewayThread:
    """``with GatewayThread() as gw:`` — the gateway (and an emulator) on a background loop."""

    def __init__(self, config: GatewayConfig | None = None, *, emulator: bool = True, **overrides: Any) -> None:
        self._args = (config, emulator, overrides)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gateway", daemon=True)
        self._context: Any = None
        self.gateway: RunningGateway | None = None

    def __enter__(self) -> RunningGateway:
        self._thread.start()
        config, emulator, overrides = self._args
        self._context = running_gateway(config, emulator=emulator, **overrides)
        self.gateway = self.run(self._context.__aenter__())
        return self.gateway

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30) -> T:
        """Run a coroutine on the gateway's loop (for example ``emulator.wait_for_disconnects()``)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._context is not None:
                self.run(self._context.__aexit__(None, None, None))
            self.run(self._loop.shutdown_asyncgens())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
