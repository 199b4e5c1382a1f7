"""Shared fixtures: a clean environment for every test, the fake upstreams (raw server, emulator),
providers pointed at them, and isolated user directories. Helpers that are not fixtures are in
tests/helpers.py.

Fixtures, one per job:

* ``server``: the raw fake upstream (exact bytes) on the test's loop; ``kw(server)`` points a call at it.
* ``emu``: the emulator on the test's loop. ``emu_env``: the same, with UPSTAGE_API_KEY and
  UPSTAGE_BASE_URL pointing at it.
* ``emu_thread``: one emulator per module on a background loop, for code that runs its own loop
  (the CLI, ``Client``, llm); ``threaded_emu`` is its ``Emulator``.
* ``http``: an ``Upstage`` provider with fast retries (key and base URL given per call);
  ``emu_provider``: one bound to ``emu``.
* ``session``: a plain aiohttp session. ``user_dirs``: solarstream's data and config directories
  under ``tmp_path`` (the CLI modules use it for every test). ``llm_home``: llm's files under
  ``tmp_path``, the plugin pointed at ``threaded_emu``.
* ``ray_address``: one local Ray for the whole session (loopback only), for the Ray engine and stage.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from solarstream import Upstage
from solarstream.emulator import Emulator
from tests.helpers import FAST_RETRY, ThreadedEmulator
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
    """The offline emulator on 127.0.0.1, on the test's loop."""
    async with Emulator() as emulator:
        yield emulator


@pytest.fixture
def emu_env(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The emulator, with UPSTAGE_API_KEY and UPSTAGE_BASE_URL pointing at it (code that reads the environment)."""
    monkeypatch.setenv("UPSTAGE_BASE_URL", emu.base_url)
    monkeypatch.setenv("UPSTAGE_API_KEY", emu.api_key)
    return emu


@pytest.fixture(scope="module")
def emu_thread() -> Iterator[ThreadedEmulator]:
    """One emulator per module on a background loop (its request records show what was sent)."""
    running = ThreadedEmulator()
    with running:
        yield running


@pytest.fixture(scope="module")
def threaded_emu(emu_thread: ThreadedEmulator) -> Emulator:
    return emu_thread.emulator


@pytest.fixture
async def http() -> AsyncIterator[Upstage]:
    """An Upstage provider with fast retries; the key and base URL are given per call (``kw(server)``)."""
    provider = Upstage(retry=FAST_RETRY)
    yield provider
    await provider.aclose()


@pytest.fixture
async def emu_provider(emu: Emulator) -> AsyncIterator[Upstage]:
    """An Upstage provider bound to the emulator, with fast retries."""
    provider = Upstage(emu.api_key, emu.base_url, retry=FAST_RETRY)
    yield provider
    await provider.aclose()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session, for asserting on raw bytes."""
    async with aiohttp.ClientSession() as s:
        yield s


@dataclass(frozen=True)
class UserDirs:
    data: Path
    config: Path

    @property
    def log(self) -> Path:
        return self.data / "logs.db"


@pytest.fixture
def user_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> UserDirs:
    """solarstream's user files under ``tmp_path`` (``isolate_user_dirs``)."""
    return isolate_user_dirs(monkeypatch, tmp_path)


def isolate_user_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> UserDirs:
    """Point every user file solarstream writes at ``tmp_path`` (the XDG variables too, as a second
    guard); the environment's SOLARSTREAM_MODEL and SOLARSTREAM_LOGS_PATH are removed."""
    dirs = UserDirs(tmp_path / "data", tmp_path / "config")
    monkeypatch.setenv("SOLARSTREAM_DATA_DIR", str(dirs.data))
    monkeypatch.setenv("SOLARSTREAM_CONFIG_DIR", str(dirs.config))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.delenv("SOLARSTREAM_MODEL", raising=False)
    monkeypatch.delenv("SOLARSTREAM_LOGS_PATH", raising=False)
    return dirs


@pytest.fixture
def llm_home(threaded_emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """llm's files in a temporary directory; the plugin pointed at ``threaded_emu`` with a test key."""
    home = tmp_path / "llm"
    for name in ("LLM_MODEL", "LLM_RAISE_ERRORS", "LLM_OPENAI_SHOW_RESPONSES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLM_USER_PATH", str(home))
    monkeypatch.setenv("UPSTAGE_BASE_URL", threaded_emu.base_url)
    monkeypatch.setenv("UPSTAGE_API_KEY", API_KEY)
    return home


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
