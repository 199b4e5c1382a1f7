"""Proxies, through a real proxy (pproxy, HTTP + SOCKS5 with a password) on loopback.

Proof that a request went through the proxy, not around it: the raw server records the peer
port of each connection, and a connection that came straight from us has a peer port owned by
a socket of this process (read from /proc), while a proxied one belongs to the pproxy process.
pproxy's verbose log must also name the upstream it connected to.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from solarstream import Upstage
from solarstream.errors import APIConnectionError
from tests.conftest import API_KEY, MESSAGES, PROXY_PASSWORD, kw
from tests.rawserver import RawServer, sse_reply, text_stream

USER = "tuser"


class ProxyProcess:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "pproxy", "-l", f"http+socks5://127.0.0.1:0#{USER}:{PROXY_PASSWORD}", "-v",
             "--auth", "-1"],  # pproxy otherwise trusts an IP for 30 days after one good login
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        line = self.wait_for(r"Serving on .*:(\d+)")
        self.port = int(re.search(r":(\d+) by", line).group(1))  # type: ignore[union-attr]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 10.0) -> str:
        """The first log line matching ``pattern`` (waits for it; ``timeout`` guards a hang)."""
        regex = re.compile(pattern)
        found: list[str] = []

        def match() -> bool:
            found[:] = [line for line in self.lines if regex.search(line)]
            return bool(found) or self.proc.poll() is not None

        with self._cond:
            self._cond.wait_for(match, timeout)
        assert found, f"pproxy never logged {pattern!r}; log: {self.lines}"
        return found[0]

    def url(self, scheme: str, password: str = PROXY_PASSWORD) -> str:
        return f"{scheme}://{USER}:{password}@127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        assert self.proc.stdout is not None
        self._reader.join(10)
        self.proc.stdout.close()


@pytest.fixture(scope="session")
def pproxy() -> Iterator[ProxyProcess]:
    proxy = ProxyProcess()
    try:
        yield proxy
    finally:
        proxy.close()


def own_tcp_ports() -> set[int]:
    """Local ports of the TCP sockets this process holds open."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[9] in inodes:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def came_from_this_process(server: RawServer, index: int = 0) -> bool:
    return server.conns[index].peer[1] in own_tcp_ports()


@pytest.mark.parametrize("scheme", ["http", "socks5", "socks5h"])
async def test_requests_go_through_the_proxy(server: RawServer, pproxy: ProxyProcess, scheme: str) -> None:
    server.enqueue(sse_reply(text_stream(["via ", scheme])), sse_reply(text_stream(["again"])))
    answer = await Upstage.create_async("solar-pro4", MESSAGES, proxy=pproxy.url(scheme), **kw(server))
    assert answer == f"via {scheme}"
    assert server.connections == 1
    assert not came_from_this_process(server)
    pproxy.wait_for(rf"-> 127\.0\.0\.1:{server.port}\b")
    # a second request through the same proxy works too (the pooled tunnel or a new one)
    assert await Upstage.create_async("solar-pro4", MESSAGES, proxy=pproxy.url(scheme), **kw(server)) == "again"


async def test_socks5h_resolves_the_name_at_the_proxy(server: RawServer, pproxy: ProxyProcess) -> None:
    server.enqueue(sse_reply(text_stream(["remote dns"])))
    base = f"http://localhost:{server.port}/v1"
    answer = await Upstage.create_async("solar-pro4", MESSAGES, proxy=pproxy.url("socks5h"),
                                        base_url=base, api_key="up_x")
    assert answer == "remote dns"
    pproxy.wait_for(rf"-> localhost:{server.port}\b")  # the proxy got the name, not an address


async def test_without_a_proxy_the_connection_is_direct(server: RawServer) -> None:
    server.enqueue(sse_reply(text_stream(["direct"])))
    assert await Upstage.create_async("solar-pro4", MESSAGES, **kw(server)) == "direct"
    assert came_from_this_process(server)  # the check itself can tell both cases apart


@pytest.mark.parametrize("scheme", ["http", "socks5", "socks5h"])
async def test_wrong_proxy_password(server: RawServer, pproxy: ProxyProcess, scheme: str) -> None:
    wrong = "wr0ngPa55w0rdQ7"
    with pytest.raises(APIConnectionError) as info:
        await Upstage.create_async("solar-pro4", MESSAGES, proxy=pproxy.url(scheme, wrong), **kw(server, max_retries=0))
    exc = info.value
    for secret in (wrong, PROXY_PASSWORD):
        assert secret not in str(exc)
        assert secret not in repr(exc)
        assert secret not in str(exc.__cause__)
    assert "proxy" in str(exc)
    assert f"127.0.0.1:{pproxy.port}" in str(exc)
    assert server.connections == 0


async def test_env_proxy_is_used_when_no_proxy_is_given(server: RawServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Loopback targets never take an env proxy (below), so the target is a name only the proxy
    # could reach: the raw server plays the HTTP proxy and answers the absolute-form request itself.
    monkeypatch.setenv("HTTP_PROXY", server.url)
    server.enqueue(sse_reply(text_stream(["env proxy"])))
    text = await Upstage.create_async("solar-pro4", MESSAGES, base_url="http://upstage.invalid/v1", api_key=API_KEY)
    assert text == "env proxy"
    assert server.requests[0].path == "http://upstage.invalid/v1/chat/completions"


async def test_env_proxy_never_applies_to_loopback(
    server: RawServer, pproxy: ProxyProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the emulator and a local gateway live on 127.0.0.1, which a corporate proxy cannot reach
    monkeypatch.setenv("HTTP_PROXY", pproxy.url("http"))
    server.enqueue(sse_reply(text_stream(["direct"])))
    assert await Upstage.create_async("solar-pro4", MESSAGES, **kw(server)) == "direct"
    assert came_from_this_process(server, 0)


async def test_no_proxy_bypasses_the_env_proxy(server: RawServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.setenv("NO_PROXY", "upstage.invalid")
    with pytest.raises(APIConnectionError, match=r"upstage\.invalid"):
        await Upstage.create_async("solar-pro4", MESSAGES, base_url="http://upstage.invalid/v1", api_key=API_KEY,
                                   max_retries=0)
    assert server.requests == []  # went straight for the (unresolvable) host, not to the proxy


async def test_explicit_proxy_wins_over_env(
    server: RawServer, pproxy: ProxyProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the env points at a dead proxy: an explicit SOCKS proxy must not be combined with it
    async with RawServer() as dead:
        dead_url = dead.url
    monkeypatch.setenv("HTTP_PROXY", dead_url)
    server.enqueue(sse_reply(text_stream(["explicit"])))
    assert await Upstage.create_async("solar-pro4", MESSAGES, proxy=pproxy.url("socks5"), **kw(server)) == "explicit"
    assert not came_from_this_process(server, 0)


async def test_env_proxy_for_https_only_leaves_http_direct(
    server: RawServer, pproxy: ProxyProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", pproxy.url("http"))
    server.enqueue(sse_reply(text_stream(["plain http"])))
    assert await Upstage.create_async("solar-pro4", MESSAGES, **kw(server)) == "plain http"
    assert came_from_this_process(server, 0)


async def test_unsupported_proxy_scheme_is_refused_before_sending(server: RawServer) -> None:
    from solarstream.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError) as info:
        await Upstage.create_async("solar-pro4", MESSAGES, proxy=f"ftp://u:{PROXY_PASSWORD}@127.0.0.1:1", **kw(server))
    assert PROXY_PASSWORD not in str(info.value)
    assert server.connections == 0
