"""``solarstream serve``: what it refuses before starting, and a real run with --offline."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from click.testing import CliRunner

from solarstream.emulator import answers
from solarstream.server import GatewayConfig
from solarstream.server.command import serve
from solarstream.server.config import DEFAULT_MAX_CONNECTIONS
from solarstream.server.serving import fd_reserve, is_loopback


def _soft_fd_limit(pid: int) -> int | None:
    """The soft RLIMIT_NOFILE of a running process (Linux), or None where /proc does not say."""
    try:
        with open(f"/proc/{pid}/limits", encoding="ascii") as limits:
            for line in limits:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except OSError:
        pass
    return None


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_refuses_a_public_address_without_a_key(host: str) -> None:
    result = CliRunner().invoke(serve, ["--host", host, "--offline"])
    assert result.exit_code == 2
    assert "--api-key" in result.output
    assert "--insecure-no-auth" in result.output


def test_refuses_to_start_without_an_upstream_key() -> None:
    result = CliRunner().invoke(serve, [])
    assert result.exit_code == 2
    assert "UPSTAGE_API_KEY" in result.output
    assert "--offline" in result.output


def test_offline_and_an_upstream_url_exclude_each_other() -> None:
    result = CliRunner().invoke(serve, ["--offline", "--upstream-base-url", "http://127.0.0.1:9/v1"])
    assert result.exit_code == 2
    assert "exclude each other" in result.output


def test_a_busy_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(serve, ["--offline", "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


@pytest.mark.parametrize(("args", "words"), [
    (["--cors-origin", "*"], "--cors-origin '*' is not allowed"),
    (["--cors-origin", "https://app.example/chat"], "is not an origin"),
    (["--allowed-host", "http://gw.example/"], "not a URL"),
    (["--allowed-host", "gw.example:99999"], "no valid port"),
])
def test_bad_cors_origins_and_allowed_hosts_are_usage_errors(args: list[str], words: str) -> None:
    result = CliRunner().invoke(serve, ["--offline", *args])
    assert result.exit_code == 2
    assert words in result.output


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("localhost")
    assert is_loopback("::1")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("example.com")


def test_serve_offline_end_to_end() -> None:
    """A real process: it says where it listens, answers, logs without secrets, and stops on Ctrl-C."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTAGE_", "SOLARSTREAM_"))}
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    start = ("import resource; from solarstream.cli import main; "  # as under a default `ulimit -n`
             f"resource.setrlimit(resource.RLIMIT_NOFILE, ({min(soft, 1024)}, {hard})); main()")
    proc = subprocess.Popen(
        [sys.executable, "-c", start, "serve", "--offline", "--port", "0", "--api-key", "gw-cli-key-9"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True,
    )
    try:
        assert proc.stderr is not None
        seen = []
        match = None
        for line in proc.stderr:  # uvicorn's start-up lines, then ours (printed once it listens)
            seen.append(line)
            match = re.search(r"http://127\.0\.0\.1:(\d+)/v1", line)
            if match:
                break
        assert match, seen
        assert "emulator" in proc.stderr.readline()
        base = match.group(0)  # printed once the socket accepts connections
        request = urllib.request.Request(
            f"{base}/chat/completions",
            data=json.dumps({"model": "solar-mini", "messages": [{"role": "user", "content": "hi"}]}).encode(),
            headers={"Authorization": "Bearer gw-cli-key-9", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["choices"][0]["message"]["content"] == answers.answer_text("hi")
        port = int(match.group(1))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:  # a forged log line
            raw.sendall(f"GET /x%0AFORGED%20line HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                        "Connection: close\r\n\r\n".encode())
            assert raw.recv(100).startswith(b"HTTP/1.1 404 ")
        soft_now = _soft_fd_limit(proc.pid)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0
        assert "POST /v1/chat/completions 200 model=solar-mini" in err
        assert "GET /x\\x0aFORGED\\x20line 404 " in err
        assert not [line for line in err.splitlines() if line.startswith("FORGED")]
        assert "gw-cli-key-9" not in err
        assert "up_emulator" not in err
        # serve raised its soft open-file limit so --max-connections fits beside its reserve
        wanted = DEFAULT_MAX_CONNECTIONS + fd_reserve(GatewayConfig(upstream_api_key=""))
        assert soft_now is None or soft_now >= min(hard, wanted)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
