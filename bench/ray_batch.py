"""Benchmark of ``solarstream batch --ray`` against the local engine (bench/RAY_RESULTS.md).

The same job, no limits, against the pre-encoded completion server of bench/batch.py (pinned to
CPU 0): the real command with the local engine, and with ``--ray`` joined to one local Ray (started
here on loopback, 2 CPUs, as the tests do) with 1 and 2 workers. Each run is a fresh process;
rounds are interleaved and medians compared.

Two figures per engine: the whole job (start-up included: for Ray, connecting and starting the
workers) at N requests, and a 1-request job. Ray's cost per request is the difference of the
slopes, ((T_N - T_1) / (N - 1)) for Ray minus the same for the local engine: what each request
pays for its two round trips through Ray (driver to worker and back, worker to the limiter actor
and back) on top of the HTTP call.

Then the shared limiter: a job with 4 Ray workers against the emulator enforcing a requests limit
(learned from its headers), the share of the limit achieved and the 429s (target: >= 95%, <= 1%).

``python bench/ray_batch.py`` (about 3 minutes on 2 cores) writes bench/RAY_RESULTS.md and
bench/ray_results.json; ``--quick`` runs small sizes and writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: bench/ is a package of the repository root
    sys.path.insert(0, str(ROOT))

from bench.batch import KEY, completion_server, count_ok, solarstream_batch, write_input  # noqa: E402

RESULTS_MD = ROOT / "bench" / "RAY_RESULTS.md"
RESULTS_JSON = ROOT / "bench" / "ray_results.json"
#: Ray on loopback only (see tests/conftest.py): no usage report, no token authentication
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
ENGINES: dict[str, list[str]] = {"local": [], "ray, 1 worker": ["--ray", "--ray-workers", "1"],
                                 "ray, 2 workers": ["--ray", "--ray-workers", "2"]}


def _job(source: Path, output: Path, base_url: str, engine: list[str], concurrency: int,
         env: dict[str, str]) -> float:
    """Seconds the whole command took; every request must have its success record."""
    output.unlink(missing_ok=True)
    argv = solarstream_batch(str(source), "-o", str(output), "--base-url", base_url, "--api-key", KEY,
                             "--concurrency", str(concurrency), "--quiet", *engine)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    expected = source.read_bytes().count(b"\n")
    if proc.returncode != 0 or count_ok(output) != (expected, expected):
        raise RuntimeError(f"{engine or 'local'}: exit {proc.returncode}, {count_ok(output)} of {expected}: "
                           f"{proc.stderr.strip()[-500:]}")
    return elapsed


def measure(work: Path, requests: int, rounds: int, concurrency: int, env: dict[str, str]) -> dict[str, Any]:
    big = write_input(work / "big.jsonl", requests)
    one = write_input(work / "one.jsonl", 1)
    times: dict[str, dict[str, list[float]]] = {name: {"n": [], "one": []} for name in ENGINES}
    with completion_server() as base_url:
        for _ in range(rounds):
            for name, engine in ENGINES.items():
                times[name]["one"].append(_job(one, work / "out-one.jsonl", base_url, engine, concurrency, env))
                times[name]["n"].append(_job(big, work / "out-big.jsonl", base_url, engine, concurrency, env))
    medians = {name: {kind: statistics.median(values) for kind, values in t.items()} for name, t in times.items()}
    per_request = {name: (m["n"] - m["one"]) / (requests - 1) for name, m in medians.items()}
    return {"requests": requests, "concurrency": concurrency, "rounds": rounds, "times": times, "median": medians,
            "per_request_ms": {name: value * 1000 for name, value in per_request.items()},
            "rate": {name: requests / m["n"] for name, m in medians.items()},
            "steady_rate": {name: 1 / value for name, value in per_request.items()}}


async def shared_limit(work: Path, env: dict[str, str], limit: int, window: float, requests: int,
                       workers: int) -> dict[str, Any]:
    """Achieved rate of a Ray job against an enforced limit, from the second request on (the first
    goes alone, to learn the limit) to the last, as the emulator saw them."""
    from solarstream.emulator import Emulator

    source = write_input(work / "limited.jsonl", requests)
    output = work / "limited.results.jsonl"
    output.unlink(missing_ok=True)
    loop = asyncio.get_running_loop()
    async with Emulator(rpm=limit, tpm=10**9, rate_window=window, history=10) as emu:
        proc = await asyncio.create_subprocess_exec(
            *solarstream_batch(str(source), "-o", str(output), "--base-url", emu.base_url, "--api-key", KEY,
                               "--concurrency", "16", "--quiet", "--ray", "--ray-workers", str(workers)),
            cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE)
        try:  # (the bounds are hang guards for a job that fails early, not timing assertions)
            await asyncio.wait_for(emu.wait_for_requests(2), 120)
            start = loop.time()
            await asyncio.wait_for(emu.wait_for_requests(requests), 600)
            elapsed = loop.time() - start
        except asyncio.TimeoutError:
            proc.kill()
            _, err = await proc.communicate()
            raise RuntimeError(f"limited job: it stopped sending: {err.decode()[-500:]}") from None
        _, err = await proc.communicate()
        if proc.returncode != 0 or count_ok(output) != (requests, requests):
            raise RuntimeError(f"limited job: exit {proc.returncode}: {err.decode()[-500:]}")
        limited, accepted = emu.rate_limited, emu.accepted
    achieved = (requests - 2) / elapsed
    return {"limit": limit, "window": window, "requests": requests, "workers": workers,
            "achieved_per_second": achieved, "limit_per_second": limit / window,
            "fraction_of_limit": achieved / (limit / window), "answered_429": limited,
            "fraction_429": limited / (accepted + limited)}


def report(r: dict[str, Any], command: str) -> str:
    local = r["per_request_ms"]["local"]
    lines = ["# `solarstream batch --ray` benchmark results", "", "Command (from the repository root):", "",
             "```", command, "```", "",
             f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; one local Ray (2 CPUs, loopback) "
             "shared by the driver, the workers and the completion server (pinned to CPU 0), so the workers "
             "compete with the server for the same two cores; other work may have been running.", "",
             f"{r['requests']:,} requests, concurrency {r['concurrency']}, no limits, {r['rounds']} interleaved "
             "rounds, each job a fresh `solarstream batch` process. *Start-up* is the 1-request job (for Ray: "
             "joining the cluster and starting the workers); *per request* is (T_N - T_1) / (N - 1).", "",
             "| engine | job, s (median) | requests/s, whole job | start-up, s | per request, ms | "
             "requests/s, steady | vs local, steady |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name in ENGINES:
        m = r["median"][name]
        lines.append(f"| {name} | {m['n']:.2f} | {r['rate'][name]:,.0f} | {m['one']:.2f} | "
                     f"{r['per_request_ms'][name]:.3f} | {r['steady_rate'][name]:,.0f} | "
                     f"{local / r['per_request_ms'][name]:.2f}x |")
    lines += ["", "Ray's own cost per request (per request on Ray minus per request locally):", ""]
    lines += [f"- {name}: {r['per_request_ms'][name] - local:+.3f} ms" for name in ENGINES if name != "local"]
    if "shared_limit" in r:
        q = r["shared_limit"]
        lines += ["", "## One limiter for the cluster", "",
                  f"{q['requests']} requests, {q['workers']} Ray workers, concurrency 16, against the emulator "
                  f"enforcing {q['limit']} requests per {q['window']:g} s (learned from its headers):", "",
                  "| achieved / s | limit / s | of the limit | 429s | target |", "|---:|---:|---:|---:|---|",
                  f"| {q['achieved_per_second']:.2f} | {q['limit_per_second']:.2f} | {q['fraction_of_limit']:.1%} | "
                  f"{q['answered_429']} ({q['fraction_429']:.1%}) | >= 95%, <= 1%: "
                  f"{'PASS' if q['fraction_of_limit'] >= 0.95 and q['fraction_429'] <= 0.01 else 'FAIL'} |"]
    lines += ["", "On one machine the Ray engine cannot be faster: the HTTP work is the same and each request "
              "adds two round trips through Ray (driver to worker, worker to the limiter actor). It pays "
              "where the work is spread over machines (docs/scale.md)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes; print, write nothing")
    args = parser.parse_args(argv)
    os.environ.update(RAY_ENV)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", logging_level=logging.WARNING)
    env = {**os.environ, "RAY_ADDRESS": str(ray.get_runtime_context().gcs_address)}
    try:
        with tempfile.TemporaryDirectory(prefix="solarstream-ray-bench-") as tmp:
            results = measure(Path(tmp), 1_000 if args.quick else 10_000, 1 if args.quick else 3, 64, env)
            results["shared_limit"] = asyncio.run(shared_limit(Path(tmp), env, 60, 5.0, 60 if args.quick else 240, 4))
    finally:
        ray.shutdown()
    command = "python bench/ray_batch.py" + (" --quick" if args.quick else "")
    text = report(results, command)
    print(text)
    if not args.quick:
        RESULTS_JSON.write_text(json.dumps(results, indent=2) + "\n")
        RESULTS_MD.write_text(text + "\n")


if __name__ == "__main__":
    main()
