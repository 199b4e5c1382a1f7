"""Run the whole benchmark: ``python bench/run.py`` (about 3-4 minutes) or ``--quick`` (smoke, < 1 minute).

Starts the pre-encoded bench server in its own process (pinned to the last CPU), runs every client
variant in its own process (pinned to CPU 0), times imports in fresh interpreters, then prints the
figures and ratios and writes bench/RESULTS.md and bench/results.png.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the ``bench`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import report
from bench.clients import VARIANTS, client_unavailable
from bench.imports import IMPORTS, import_seconds

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"

#: rounds x repeats single-stream samples per variant; TTFC requests are spread over the rounds
FULL = {"single": 30_000, "rounds": 5, "repeats": 2, "ttfc": 200, "ttfc_chunks": 16, "streams": 500,
        "chunks": 200, "concurrent_rounds": 3, "import_runs": 9, "estimate": "3-4 minutes on 2 cores"}
QUICK = {"single": 2_000, "rounds": 1, "repeats": 2, "ttfc": 20, "ttfc_chunks": 16, "streams": 50, "chunks": 50,
         "concurrent_rounds": 1, "import_runs": 2, "estimate": "30 seconds"}


def cpus() -> tuple[int | None, int | None]:
    """(server CPU, client CPU): separate cores when there are at least two."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[-1], cpus[0]) if len(cpus) >= 2 else (None, None)


@contextmanager
def bench_server(cpu: int | None) -> Iterator[str]:
    """The bench server in a child process; yields its base URL."""
    cmd = [sys.executable, "-m", "bench.server"] + ([] if cpu is None else ["--cpu", str(cpu)])
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"the bench server did not start (exit status {proc.poll()})")
        yield f"http://127.0.0.1:{int(line)}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def run_worker(variant: str, base_url: str, args: list[str], cpu: int | None) -> dict[str, Any]:
    """One measurement in a fresh process; raises with the worker's error output if it failed."""
    cmd = [sys.executable, "-m", "bench.worker", variant, base_url, *args]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise RuntimeError(tail[0])
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def measure_all(names: list[str], base_url: str, cfg: dict[str, Any], cpu: int | None,
                progress: bool) -> dict[str, dict[str, Any]]:
    """Every variant, interleaved in rounds (a, b, c, ... then again), each round a fresh process per
    variant: a disturbance on a shared machine then hits all variants alike instead of one."""
    out: dict[str, dict[str, Any]] = {name: {"single_rates": [], "ttfc": [], "concurrent_rates": [],
                                             "peak_rss_mb": [], "rss_before_mb": []} for name in names}
    failed: dict[str, str] = {}
    ttfc_per_round = -(-cfg["ttfc"] // cfg["rounds"])
    stream_args = ["--single", str(cfg["single"]), "--repeats", str(cfg["repeats"]),
                   "--ttfc", str(ttfc_per_round), "--ttfc-chunks", str(cfg["ttfc_chunks"])]
    crowd_args = ["--concurrent", str(cfg["streams"]), "--chunks", str(cfg["chunks"])]
    plan = [("single stream + TTFC", stream_args)] * cfg["rounds"] + [("concurrent", crowd_args)] * cfg[
        "concurrent_rounds"]
    for i, (what, args) in enumerate(plan):
        if progress:
            print(f"round {i + 1}/{len(plan)}: {what}", file=sys.stderr, flush=True)
        for name in names:
            if name in failed:
                continue
            try:
                result = run_worker(name, base_url, args, cpu)
            except RuntimeError as exc:
                failed[name] = str(exc)
                continue
            for key, value in result.items():
                if key in out[name]:
                    out[name][key].extend(value if isinstance(value, list) else [value])
    for name, reason in failed.items():
        out[name] = {"failed": reason}
    return out


def machine_notes(server_cpu: int | None, client_cpu: int | None) -> list[str]:
    cpu_model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu_model)
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=False).stdout.strip() or "unknown"
    except OSError:
        commit = "unknown"
    versions = ", ".join(f"{p} {_version(p)}" for p in ("aiohttp", "openai", "httpx2", "orjson"))
    pinning = (f"server pinned to CPU {server_cpu}, each client process to CPU {client_cpu}"
               if server_cpu is not None else "no CPU pinning (fewer than 2 CPUs or no sched_setaffinity)")
    return [
        f"{datetime.date.today().isoformat()}, solarstream commit {commit}",
        f"{cpu_model}, {os.cpu_count()} CPUs; {pinning}",
        f"{platform.system()} {platform.release()}; Python {platform.python_version()} "
        f"({platform.python_implementation()}), standard asyncio event loop",
        versions,
        "server: bench/server.py, a raw asyncio.Protocol HTTP/1.1 server sending pre-encoded bodies "
        "(chunked transfer encoding, one HTTP chunk per SSE frame) over loopback",
    ]


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def run(cfg: dict[str, Any], *, progress: bool = True, pin: bool = True) -> tuple[dict[str, Any], list[str]]:
    server_cpu, client_cpu = cpus() if pin else (None, None)
    notes: list[str] = []
    results: dict[str, Any] = {"config": cfg, "variants": {}, "imports": {},
                               "machine": machine_notes(server_cpu, client_cpu)}
    unavailable = client_unavailable()
    names = list(VARIANTS)
    if unavailable:
        names.remove("asyncclient")
        results["variants"]["asyncclient"] = {"skipped": "skipped: " + unavailable}
        notes.append(f"(e) AsyncClient row skipped: {unavailable}.")
    load_before = _load()
    with bench_server(server_cpu) as base_url:
        results["variants"].update(measure_all(names, base_url, cfg, client_cpu, progress))
    results["machine"].append(f"load average (1 min) before the client runs {load_before}, after {_load()} "
                              "(above ~0.2 means something else was running: expect noise)")
    for name, v in results["variants"].items():
        if "failed" in v:
            notes.append(f"{report.LABELS[name]} FAILED: {v['failed']}")
    if progress:
        print("timing imports ...", file=sys.stderr, flush=True)
    for label, statement in IMPORTS.items():
        results["imports"][label] = import_seconds(statement, cfg["import_runs"])
        if results["imports"][label] is None:
            notes.append(f"`{statement}` failed to import; no import figure for it.")
    return results, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a small smoke run; writes nothing unless --out")
    parser.add_argument("--out", type=Path, default=None, help="where RESULTS.md and results.png go "
                        "(default: bench/ for a full run)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server and clients to CPUs")
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    results, notes = run(cfg, pin=not args.no_pin)
    print(report.figures_table(results))
    print()
    print(report.ratios_table(results))
    print()
    print(report.imports_table(results))
    out = args.out if args.out is not None else (None if args.quick else BENCH)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        command = "python bench/run.py" + (" --quick" if args.quick else "")
        (out / "RESULTS.md").write_text(report.render_results(results, command, notes))
        (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
        report.write_chart(results, out / "results.png")
        print(f"\nwrote {out / 'RESULTS.md'} and {out / 'results.png'}", file=sys.stderr)
    failed = [name for name, v in results["variants"].items() if "failed" in v]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
