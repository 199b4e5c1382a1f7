"""Shared fixtures: a clean environment for every test, the raw fake upstream, and one local Ray."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from solarstream.emulator import Emulator
from tests.rawserver import RawServer

#: Ray on loopback only, for this process and the commands it starts (set before anything imports
#: ray, which reads them once): no usage report, no token authentication (it would keep the
#: commands from joining), and this Ray's switch that makes it bind 127.0.0.1 as asked instead of
#: the machine's outward interface
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
for _name, _value in RAY_ENV.items():
    os.environ.setdefault(_name, _value)

#: distinctive secrets: tests assert they never leak into messages, reprs or logs
API_KEY = "up_SeCrEtKeY4Tests9x7Q2"
PROXY_PASSWORD = "pr0xyPa55w0rdZ9"

_ENV = (
    "UPSTAGE_API_KEY", "UPSTAGE_BASE_URL", "UPSTAGE_API_BASE",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "WS_PROXY", "WSS_PROXY",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy", "ws_proxy", "wss_proxy",
    "SOLARSTREAM_API_KEY", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test depends on the machine's keys, proxies or ~/.netrc."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path_factory.getbasetemp() / "empty-netrc"
    netrc.touch()
    monkeypatch.setenv("NETRC", str(netrc))


@pytest.fixture
async def server() -> AsyncIterator[RawServer]:
    async with RawServer() as srv:
        yield srv


def kw(server: RawServer, **extra: Any) -> dict[str, Any]:
    """The keyword arguments that point the provider at the raw server."""
    return {"base_url": server.base_url, "api_key": API_KEY, **extra}


MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "Hello"}]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """The offline emulator on 127.0.0.1 (a module may override this, e.g. to set env vars too)."""
    async with Emulator() as emulator:
        yield emulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session, for asserting on raw bytes."""
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """One local Ray for the whole session (2 CPUs, loopback, no dashboard); its address, which
    the commands the tests start join through ``RAY_ADDRESS``."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", logging_level=logging.WARNING,
             namespace="solarstream-tests")
    address = str(ray.get_runtime_context().gcs_address)
    assert address.startswith("127.0.0.1:"), address  # never the outward interface
    try:
        yield address
    finally:
        ray.shutdown()
