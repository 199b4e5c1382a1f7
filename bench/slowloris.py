"""Slow connections against ``solarstream serve --offline`` at a default ``ulimit -n`` of 1024.

    python bench/slowloris.py                          # this checkout, 1,050 slow connections, 20 s
    python bench/slowloris.py --src /tmp/before/src    # another checkout's src/ (say, before the guard)
    python bench/slowloris.py --hard-limit 65536       # soft limit 1024, hard 65536 (serve may raise it)
    python bench/slowloris.py --connections 300 --seconds 5   # quicker

Three processes: the gateway, with RLIMIT_NOFILE soft = 1024 and, unless ``--hard-limit`` says
otherwise, hard = 1024, so it cannot raise it (as under a default ``ulimit -n``); an attacker that keeps
``--connections`` connections open, each sending a partial request head and then one header line every
``--interval`` seconds, and opening a new one whenever the server closes one (slowloris); and, once the
attacker holds its connections, a normal client in this process that makes requests one after another
(``GET /v1/models``, then a chat completion), each on a new connection with a 5 s timeout, for ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
SERVER_FD_LIMIT = 1024
CLIENT_TIMEOUT = 5.0
CHAT = {"model": "solar-mini", "messages": [{"role": "user", "content": "hi"}]}


def _raise_own_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


# --- the attacker (a child process: python bench/slowloris.py --attack PORT ...) -----------------------


@dataclass
class AttackStats:
    opened: int = 0
    closed_by_server: int = 0
    connect_failures: int = 0
    holding: int = 0
    most_held: int = 0

    def report(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in ("opened", "closed_by_server", "connect_failures",
                                                       "holding", "most_held")}


async def _slow_connection(port: int, interval: float, stats: AttackStats, stop: asyncio.Event,
                           full: asyncio.Event, target: int) -> None:
    while not stop.is_set():
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), CLIENT_TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            stats.connect_failures += 1
            await asyncio.sleep(0.1)
            continue
        stats.opened += 1
        stats.holding += 1
        stats.most_held = max(stats.most_held, stats.holding)
        if stats.holding >= target:
            full.set()
        try:
            writer.write(f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
            while not stop.is_set():
                try:
                    if await asyncio.wait_for(reader.read(4096), interval) == b"":
                        stats.closed_by_server += 1
                        break
                except asyncio.TimeoutError:
                    writer.write(b"X-Slow: 1\r\n")  # one more header line, never the blank line
        except OSError:
            stats.closed_by_server += 1
        finally:
            stats.holding -= 1
            writer.close()


async def _attack(port: int, connections: int, interval: float, seconds: float) -> None:
    stats = AttackStats()
    stop, full = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.ensure_future(_slow_connection(port, interval, stats, stop, full, connections))
             for _ in range(connections)]
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(full.wait(), 30)
    print(json.dumps({"ready": stats.holding}), flush=True)
    await asyncio.sleep(seconds)  # the attack's duration
    print(json.dumps({"stats": stats.report()}), flush=True)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- the gateway and the normal client ---------------------------------------------------------------


@dataclass
class ClientStats:
    latencies_ms: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.latencies_ms) + sum(self.failures.values())


async def _normal_client(base: str, seconds: float) -> ClientStats:
    stats = ClientStats()
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            connector = aiohttp.TCPConnector(force_close=True)  # a new connection per request
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                async with session.get(f"{base}/models") as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"HTTP {resp.status}")
                async with session.post(f"{base}/chat/completions", json=CHAT) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"HTTP {resp.status}")
            stats.latencies_ms.append((time.perf_counter() - started) * 1000)
        except (aiohttp.ClientError, asyncio.TimeoutError, RuntimeError, OSError) as exc:
            kind = str(exc) if isinstance(exc, RuntimeError) else type(exc).__name__
            stats.failures[kind] = stats.failures.get(kind, 0) + 1
        await asyncio.sleep(0.1)
    return stats


def _start_gateway(src: Path, hard_limit: int) -> tuple[subprocess.Popen[str], str, list[str]]:
    code = ("import resource; "
            f"resource.setrlimit(resource.RLIMIT_NOFILE, ({SERVER_FD_LIMIT}, {hard_limit})); "
            "from solarstream.cli import main; main()")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTAGE_", "SOLARSTREAM_"))}
    env["PYTHONPATH"] = str(src)
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", "--offline", "--port", "0", "--log-level", "warning"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
    assert proc.stderr is not None
    lines: list[str] = []
    for line in proc.stderr:
        lines.append(line)
        match = re.search(r"OpenAI base URL (http://127\.0\.0\.1:\d+/v1)", line)
        if match:
            break
    else:
        raise SystemExit("the gateway did not start:\n" + "".join(lines))
    stderr = proc.stderr

    def drain() -> None:  # keep reading, or a chatty server blocks on a full pipe
        for line in stderr:
            lines.append(line)

    threading.Thread(target=drain, daemon=True).start()
    return proc, match.group(1), lines


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(src: Path, connections: int, seconds: float, interval: float, hard_limit: int) -> dict[str, Any]:
    _raise_own_fd_limit(max(connections + 500, hard_limit))
    gateway, base, server_lines = _start_gateway(src, hard_limit)
    port = base.rsplit(":", 1)[1].split("/")[0]
    attacker = subprocess.Popen(
        [sys.executable, __file__, "--attack", port, "--connections", str(connections), "--interval", str(interval),
         "--seconds", str(seconds + 2)], stdout=subprocess.PIPE, text=True)
    try:
        assert attacker.stdout is not None
        ready = json.loads(attacker.stdout.readline())["ready"]
        client = asyncio.run(_normal_client(base, seconds))
        attack = json.loads(attacker.stdout.readline())["stats"]
    finally:
        attacker.wait(60)
        gateway.send_signal(2)
        with contextlib.suppress(subprocess.TimeoutExpired):
            gateway.wait(30)
        if gateway.poll() is None:
            gateway.kill()
    warnings = [line.strip() for line in server_lines if "WARNING" in line or "ERROR" in line]
    lat = client.latencies_ms
    return {
        "src": str(src), "connections": connections, "seconds": seconds, "held_at_start": ready,
        "attack": attack, "ok": len(lat), "total": client.total, "failures": client.failures,
        "p50_ms": statistics.median(lat) if lat else None, "p95_ms": _percentile(lat, 0.95) if lat else None,
        "max_ms": max(lat) if lat else None, "server_warnings": warnings[:12], "server_warning_count": len(warnings),
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the src/ directory to run the gateway from")
    parser.add_argument("--connections", type=int, default=1050)
    parser.add_argument("--hard-limit", type=int, default=SERVER_FD_LIMIT,
                        help="the gateway's hard RLIMIT_NOFILE (its soft limit is 1024)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between an attacker's header lines")
    parser.add_argument("--attack", metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attack:
        _raise_own_fd_limit(args.connections + 200)
        asyncio.run(_attack(int(args.attack), args.connections, args.interval, args.seconds))
        return
    result = run(args.src, args.connections, args.seconds, args.interval, args.hard_limit)
    attack = result["attack"]
    print(f"gateway from {result['src']}, RLIMIT_NOFILE {SERVER_FD_LIMIT} (hard {args.hard_limit}); "
          f"{result['connections']} slow connections "
          f"({result['held_at_start']} held when the client started), {result['seconds']:g} s\n")
    print("| normal requests ok | latency p50 / p95 / max, ms | failures | attacker: opened / closed by server "
          "/ connect failures / most held |")
    print("|---:|---:|---|---:|")
    failures = ", ".join(f"{k}: {v}" for k, v in result["failures"].items()) or "none"
    print(f"| {result['ok']} / {result['total']} | {_fmt(result['p50_ms'])} / {_fmt(result['p95_ms'])} / "
          f"{_fmt(result['max_ms'])} | {failures} | {attack['opened']} / {attack['closed_by_server']} / "
          f"{attack['connect_failures']} / {attack['most_held']} |")
    if result["server_warning_count"]:
        print(f"\nserver warnings/errors: {result['server_warning_count']}, first: {result['server_warnings']}")


if __name__ == "__main__":
    main()
