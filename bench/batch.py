"""Benchmark of ``solarstream batch``: overhead, rate limits, memory (bench/BATCH_RESULTS.md).

* overhead: the real command on 20,000 requests against a local server answering pre-encoded
  completions (bench/batch_server.py, pinned to its own CPU), against a minimal aiohttp loop
  (semaphore, ``json.dumps``, append to a file) at the same concurrency; interleaved rounds,
  each in fresh processes, medians compared. Target: >= 0.8x the loop's requests/s.
* limits: a job against the emulator enforcing a requests limit, then a tokens limit (learned
  from its headers, as a job does by default). Target: >= 95% of the limit, <= 1% of requests 429.
* memory: a 1,000,000-line INPUT run by the real command, then resumed from an OUTPUT holding
  999,000 records; peak RSS of each (``ru_maxrss``). Target: <= 250 MB. The pre-pass and the
  resume scan are timed on their own, and the cost of fsync per record is measured.

``python bench/batch.py`` runs everything (about 15 minutes on 2 cores) and writes
bench/BATCH_RESULTS.md and bench/batch_results.json; ``--quick`` runs small sizes and writes
nothing; ``--only overhead|limits|memory|fsync`` runs one part.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: bench/ is a package of the repository root
    sys.path.insert(0, str(ROOT))

RESULTS_MD = ROOT / "bench" / "BATCH_RESULTS.md"
RESULTS_JSON = ROOT / "bench" / "batch_results.json"
KEY = "up_bench_key"
SERVER_CPU, CLIENT_CPU = 0, 1


# --- inputs --------------------------------------------------------------------------------------


def write_input(path: Path, count: int, prefix: str = "Say something short about item") -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(count):
            f.write(json.dumps({"custom_id": f"r-{i:07d}", "model": "solar-mini",
                                "messages": [{"role": "user", "content": f"{prefix} {i}"}]}) + "\n")
    return path


def count_ok(path: Path) -> tuple[int, int]:
    """(records, successes) of an OUTPUT."""
    records = ok = 0
    with open(path, "rb") as f:
        for raw in f:
            records += 1
            record = json.loads(raw)
            ok += record.get("error") is None and (record.get("response") or {}).get("status_code") == 200
    return records, ok


# --- the minimal aiohttp loop the overhead is measured against -------------------------------------


async def naive_loop(source: Path, output: Path, url: str, concurrency: int) -> None:
    """The loop people write: a semaphore, json.dumps, append each result to a file."""
    import aiohttp

    with open(source, encoding="utf-8") as f:  # noqa: ASYNC230
        lines = [json.loads(line) for line in f]
    semaphore = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        with open(output, "a", encoding="utf-8") as out:  # noqa: ASYNC230

            async def one(line: dict[str, Any]) -> None:
                async with semaphore:
                    body = {k: v for k, v in line.items() if k != "custom_id"}
                    async with session.post(url, data=json.dumps(body), headers=headers) as response:
                        data = await response.json()
                    out.write(json.dumps({"custom_id": line["custom_id"],
                                          "response": {"status_code": response.status, "body": data},
                                          "error": None}) + "\n")

            await asyncio.gather(*(one(line) for line in lines))


# --- processes -----------------------------------------------------------------------------------


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


@contextlib.contextmanager
def completion_server() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "bench.batch_server", "--cpu", str(SERVER_CPU)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


def timed(argv: list[str], cpu: int | None = CLIENT_CPU) -> tuple[float, int, int]:
    """Run ``argv`` in a child that reports its own child's peak RSS: (seconds, exit status, peak RSS KiB)."""
    wrapper = ("import resource, subprocess, sys, os\n"
               f"cpu = {cpu!r}\n"
               "pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None and hasattr(os, "
               "'sched_setaffinity') else None\n"
               "status = subprocess.run(sys.argv[1:], preexec_fn=pin).returncode\n"
               "print(status, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", wrapper, *argv], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    elapsed = time.perf_counter() - start
    status, rss = proc.stdout.split()
    if int(status) not in (0,):
        sys.stderr.write(proc.stderr)
    return elapsed, int(status), int(rss)


def _check_run(name: str, status: int, counts: tuple[int, int], expected: int) -> None:
    """Every figure comes from a run that did all its work: exit 0, one success record per request."""
    if status != 0 or counts != (expected, expected):
        raise RuntimeError(f"{name}: exit status {status}, (records, successes) {counts}, expected {expected}")


def solarstream_batch(*args: str) -> list[str]:
    return [sys.executable, "-m", "solarstream", "batch", *args]


# --- the parts -------------------------------------------------------------------------------------


def overhead(work: Path, requests: int, rounds: int, concurrency: int) -> dict[str, Any]:
    source = write_input(work / "overhead.jsonl", requests)
    rates: dict[str, list[float]] = {"solarstream": [], "naive": []}
    with completion_server() as base_url:
        for _ in range(rounds):
            for name in ("solarstream", "naive"):
                output = work / f"overhead-{name}.jsonl"
                output.unlink(missing_ok=True)
                if name == "solarstream":
                    argv = solarstream_batch(str(source), "-o", str(output), "--base-url", base_url, "--api-key",
                                             KEY, "--concurrency", str(concurrency), "--quiet")
                else:
                    argv = [sys.executable, "-m", "bench.batch", "naive", str(source), str(output),
                            f"{base_url}/chat/completions", str(concurrency)]
                elapsed, status, _ = timed(argv)
                _check_run(name, status, count_ok(output), requests)
                rates[name].append(requests / elapsed)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    return {"requests": requests, "concurrency": concurrency, "rounds": rounds, "rates": rates,
            "median": medians, "ratio": medians["solarstream"] / medians["naive"]}


async def _limited_job(kind: str, limit: int, window: float, requests: int, work: Path) -> dict[str, Any]:
    from solarstream.emulator import Emulator

    source = write_input(work / f"limits-{kind}.jsonl", requests)
    output = work / f"limits-{kind}.results.jsonl"
    output.unlink(missing_ok=True)
    options: dict[str, Any] = {"rpm": limit, "tpm": 10**9} if kind == "requests" else {"rpm": 10**6, "tpm": limit}
    async with Emulator(rate_window=window, **options) as emu:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.batch", "job", str(source), str(output), emu.base_url, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, preexec_fn=lambda: _pin(CLIENT_CPU))
        out, _ = await proc.communicate()
        summary = json.loads(out)
        rate_limited, accepted = emu.rate_limited, emu.accepted
    elapsed = summary["elapsed"]
    achieved = (requests if kind == "requests" else summary["tokens"]) / elapsed
    return {"kind": kind, "limit": limit, "window": window, "requests": requests, "elapsed": elapsed,
            "achieved_per_second": achieved, "limit_per_second": limit / window,
            "fraction_of_limit": achieved / (limit / window), "answered_429": rate_limited,
            "fraction_429": rate_limited / (accepted + rate_limited), "ok": summary["ok"],
            "tokens": summary["tokens"], "pauses": summary["pauses"]}


def limits(work: Path, quick: bool, rounds: int) -> list[dict[str, Any]]:
    """Each kind of limit ``rounds`` times, interleaved; the emulator (this process) on the server's
    CPU, the job on the client's, so that neither starves the other."""
    scale = 0.2 if quick else 1.0
    _pin(SERVER_CPU)
    try:
        runs = []
        for _ in range(rounds):
            runs.append(asyncio.run(_limited_job("requests", 300, 10.0, int(900 * scale), work)))
            runs.append(asyncio.run(_limited_job("tokens", 20_000, 10.0, int(1500 * scale), work)))
        return runs
    finally:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def _measure_in_child(code: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _drop_last(path: Path, keep: int) -> None:
    """Keep the first ``keep`` records of OUTPUT (an OUTPUT a job left part way)."""
    with open(path, "rb") as f:
        offset = 0
        for _ in range(keep):
            offset += len(f.readline())
    os.truncate(path, offset)


def memory(work: Path, lines: int, left: int) -> dict[str, Any]:
    source = write_input(work / "million.jsonl", lines)
    output = work / "million.results.jsonl"
    output.unlink(missing_ok=True)
    size_mb = source.stat().st_size / 1e6
    prepass = _measure_in_child(
        "import asyncio, json, time\nfrom pathlib import Path\nfrom solarstream.providers import Upstage\n"
        "from solarstream.batch.formats import ParseOptions\nfrom solarstream.batch.ids import IdTable\n"
        "from solarstream.batch.prepass import prepass\nfrom solarstream.batch.transport import prepare\n"
        "from solarstream.batch.reader import count_lines\n"
        f"provider = Upstage(api_key={KEY!r}, base_url='http://127.0.0.1:9/v1')\n"
        "async def main():\n    start = time.perf_counter()\n"
        f"    source = Path({str(source)!r})\n"
        "    report = await prepass(source, IdTable(count_lines(source)), ParseOptions(), "
        "lambda w: prepare(provider, w, False))\n"
        "    return {'seconds': time.perf_counter() - start, 'total': report.total, 'invalid': report.invalid}\n"
        "print(json.dumps(asyncio.run(main())))\n")
    with completion_server() as base_url:
        argv = solarstream_batch(str(source), "-o", str(output), "--base-url", base_url, "--api-key", KEY, "--quiet")
        run_seconds, status, run_rss = timed(argv)
        _check_run("full run", status, count_ok(output), lines)
        _drop_last(output, lines - left)
        scan = _measure_in_child(
            "import asyncio, json, time\nfrom pathlib import Path\nfrom solarstream.batch.ids import IdTable\n"
            "from solarstream.batch.journal import scan_output\nstart = time.perf_counter()\n"
            f"scan = asyncio.run(scan_output(Path({str(output)!r}), IdTable()))\n"
            "print(json.dumps({'seconds': time.perf_counter() - start, 'records': scan.records}))\n")
        resume_seconds, status, resume_rss = timed(argv)
        _check_run("resume", status, count_ok(output), lines)
    return {"lines": lines, "input_mb": size_mb, "output_mb": output.stat().st_size / 1e6,
            "run_seconds": run_seconds, "run_peak_rss_mb": run_rss / 1024, "resume_left": left,
            "resume_seconds": resume_seconds, "resume_peak_rss_mb": resume_rss / 1024,
            "prepass_seconds": prepass["seconds"], "scan_seconds": scan["seconds"], "scan_records": scan["records"]}


async def _fsync_cost(work: Path, records: int) -> dict[str, float]:
    from bench.batch_server import COMPLETION
    from solarstream.batch.formats import BatchResult
    from solarstream.batch.journal import RecordWriter

    line = BatchResult("r-0000001", True, 200, "bench-request", json.loads(COMPLETION)).to_json()
    out: dict[str, float] = {"record_bytes": len(line)}
    for name, interval in (("never", 3600.0), ("every second", 1.0), ("every record", 0.0)):
        path = work / f"fsync-{interval}.jsonl"
        path.unlink(missing_ok=True)
        writer = RecordWriter(path, sync_interval=interval)
        writer.open()
        start = time.perf_counter()
        for _ in range(records):
            writer.write(line)
            await asyncio.sleep(0)
        await writer.aclose()
        out[name] = (time.perf_counter() - start) / records * 1e6
    return out


def fsync_cost(work: Path, records: int) -> dict[str, Any]:
    costs = asyncio.run(_fsync_cost(work, records))
    return {"records": records, "record_bytes": int(costs.pop("record_bytes")), "us_per_record": costs}


# --- children ----------------------------------------------------------------------------------------


def _child(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "naive":
        source, output, url, concurrency = argv[1:5]
        asyncio.run(naive_loop(Path(source), Path(output), url, int(concurrency)))
    elif mode == "job":
        from solarstream import batch

        source, output, base_url = argv[1:4]
        summary = batch.run(source, output, base_url=base_url, api_key=KEY)
        print(json.dumps({"elapsed": summary.elapsed, "ok": summary.ok, "succeeded": summary.succeeded,
                          "tokens": summary.tokens_in + summary.tokens_out, "rate_limited": summary.rate_limited,
                          "pauses": summary.pauses}))


# --- the report --------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "SHORT"


def report(results: dict[str, Any], command: str) -> str:
    lines = ["# `solarstream batch` benchmark results", "", "Command (from the repository root):", "",
             "```", command, "```", "",
             f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; other work was running on it.", ""]
    rows: list[tuple[str, str, str, str]] = []
    if "overhead" in results:
        o = results["overhead"]
        lines += ["## Overhead", "",
                  f"{o['requests']:,} requests, concurrency {o['concurrency']}, {o['rounds']} interleaved rounds in "
                  "fresh processes (server pinned to CPU 0, client to CPU 1); requests/s of the whole process, "
                  "start-up and both passes over INPUT included.", "",
                  "| client | requests/s (median) | rounds |", "|---|---:|---|",
                  f"| `solarstream batch` | {o['median']['solarstream']:,.0f} | "
                  f"{', '.join(f'{r:,.0f}' for r in o['rates']['solarstream'])} |",
                  f"| minimal aiohttp loop | {o['median']['naive']:,.0f} | "
                  f"{', '.join(f'{r:,.0f}' for r in o['rates']['naive'])} |", ""]
        rows.append(("overhead: batch / minimal loop", f"{o['ratio']:.2f}x", ">= 0.8x", _verdict(o["ratio"] >= 0.8)))
    if "limits" in results:
        lines += ["## Rate limits", "",
                  "The emulator enforcing a limit over a sliding window; the job learns it from the headers "
                  "(no --rpm/--tpm). Achieved = requests (or tokens) / the job's elapsed time; rounds "
                  "interleaved. A pause without a 429 is the limiter keeping to a `Remaining: 0` header.", "",
                  "| limit | requests | elapsed, s | achieved / s | limit / s | of the limit | 429s | pauses |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for item in results["limits"]:
            lines.append(f"| {item['limit']:,} {item['kind']} per {item['window']:g} s | {item['requests']:,} | "
                         f"{item['elapsed']:.1f} | {item['achieved_per_second']:,.1f} | "
                         f"{item['limit_per_second']:,.1f} | {item['fraction_of_limit']:.1%} | "
                         f"{item['answered_429']} ({item['fraction_429']:.2%}) | {item.get('pauses', '')} |")
        for kind in ("requests", "tokens"):
            runs = [item for item in results["limits"] if item["kind"] == kind]
            if not runs:
                continue
            achieved = statistics.median(item["fraction_of_limit"] for item in runs)
            limited = sum(item["answered_429"] for item in runs) / sum(item["requests"] for item in runs)
            rows.append((f"limits ({kind}): achieved / limit (median of {len(runs)})", f"{achieved:.1%}", ">= 95%",
                         _verdict(achieved >= 0.95)))
            rows.append((f"limits ({kind}): requests answered 429 (all runs)", f"{limited:.2%}", "<= 1%",
                         _verdict(limited <= 0.01)))
        lines.append("")
    if "memory" in results:
        m = results["memory"]
        lines += ["## Memory", "",
                  f"INPUT of {m['lines']:,} lines ({m['input_mb']:.0f} MB), OUTPUT {m['output_mb']:.0f} MB; against "
                  "the completion server.", "",
                  "| | seconds | peak RSS, MB |", "|---|---:|---:|",
                  f"| full run | {m['run_seconds']:.0f} | {m['run_peak_rss_mb']:.0f} |",
                  f"| resume, {m['lines'] - m['resume_left']:,} records in OUTPUT, {m['resume_left']:,} left | "
                  f"{m['resume_seconds']:.1f} | {m['resume_peak_rss_mb']:.0f} |",
                  f"| the pre-pass alone ({m['lines']:,} lines, every one through `prepare_chat`) | "
                  f"{m['prepass_seconds']:.1f} | |",
                  f"| the resume scan alone ({m['scan_records']:,} records) | {m['scan_seconds']:.1f} | |", ""]
        rows.append(("memory: peak RSS, full run", f"{m['run_peak_rss_mb']:.0f} MB", "<= 250 MB",
                     _verdict(m["run_peak_rss_mb"] <= 250)))
        rows.append(("memory: peak RSS, resume", f"{m['resume_peak_rss_mb']:.0f} MB", "<= 250 MB",
                     _verdict(m["resume_peak_rss_mb"] <= 250)))
        rows.append(("pre-pass of 1,000,000 lines", f"{m['prepass_seconds']:.1f} s", "seconds",
                     _verdict(m["prepass_seconds"] < 60)))
    if "fsync" in results:
        f = results["fsync"]
        lines += ["## The cost of fsync", "",
                  f"{f['records']:,} records of {f['record_bytes']} bytes appended by `RecordWriter` (one `write` "
                  "each, O_APPEND):", "",
                  "| fsync | µs per record |", "|---|---:|"]
        lines += [f"| {name} | {value:.1f} |" for name, value in f["us_per_record"].items()]
        lines.append("")
    lines += ["## Ratios and targets (same run)", "", "| figure | measured | target | |", "|---|---:|---:|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    lines += ["", "## What bounds them", "", *BOUNDS, ""]
    return "\n".join(lines)


BOUNDS = [
    "- **Overhead.** Both clients spend most of a request in aiohttp (building the request, parsing the "
    "response: 150-250 µs of CPU each here). The job adds, per request, `prepare_chat` twice (once in the "
    "pre-pass, once to send: ~8 µs each), the record (orjson and one `write`, ~5 µs) and the limiter's "
    "fast path, plus what the loop does not do at all: ~0.1 s more start-up imports and reading INPUT "
    "twice (~0.2 s of pre-pass for 20,000 lines). The loop creates all its tasks at once; the job's fixed "
    "workers do not, which is why it sometimes comes out ahead. Rounds vary by ±20% on this shared "
    "machine (other sessions ran tests meanwhile); over five full runs the ratio of medians was 0.80x, "
    "0.85x, 0.91x, 1.00x and 1.40x.",
    "- **Limits.** The limiter paces at 97% of the limit (3% headroom for timing jitter), so ~97% is the "
    "ceiling by design; 429s are avoided because the first request goes alone and its headers set the "
    "pace, and because token estimates are corrected from usage (the estimate then tracks what requests "
    "really use). The few token-limit 429s come from the pacing's tolerance of one request's worth of "
    "burst and from the first request, whose tokens are spent before the limit is known; each costs one "
    "job-wide pause. A run can land lower when the emulator, starved of CPU, admits steadily paced "
    "requests in clusters: its window then shows `Remaining: 0`, and the limiter waits for the reset, "
    "which Upstage and the emulator give in whole seconds (one requests run of eight, before the emulator "
    "was pinned to its own CPU: 91.7%; another 94.1%).",
    "- **Memory.** Flat in the length of OUTPUT and INPUT: ids are 64-bit hashes in one open-addressing "
    "table (~18 MB for a million), records are never kept, and INPUT and OUTPUT are streamed; what "
    "remains is the interpreter, aiohttp and the requests in flight. The full run's time is the "
    "per-request client cost above, a million times.",
    "- **Pre-pass.** ~10 µs a line on an idle core: parsing (orjson, ~1 µs), the provider's `prepare_chat` "
    "(messages, parameter rules, the model table, the body encoded once: ~8 µs), the id table (~0.5 µs). "
    "Measured here while other jobs shared the two CPUs, so the figure is up to twice the idle one.",
    "- **Resume.** Scanning OUTPUT parses every record (~4 µs for a 457-byte record); the pre-pass then "
    "only reads the ids of lines whose record stays (they are not checked again), and the second read "
    "of INPUT skips them: about one scan plus two parses of INPUT, whatever is left to send.",
    "- **fsync.** Once a second costs nothing measurable; after every record it costs a disk flush per "
    "record (0.2-4 ms here, depending on the disk's load), capping a job at a few hundred to a few "
    "thousand records a second. A killed process loses nothing either way (the page cache survives "
    "it); the sync bounds what a power cut can take to the last second.",
]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("naive", "job"):
        _child(argv)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes; print, write nothing")
    parser.add_argument("--only", choices=("overhead", "limits", "memory", "fsync"))
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="solarstream-batch-bench-") as tmp:
        work = Path(tmp)
        parts = [args.only] if args.only else ["overhead", "limits", "memory", "fsync"]
        for part in parts:
            print(f"running {part}...", file=sys.stderr, flush=True)
            if part == "overhead":
                results["overhead"] = overhead(work, 2_000 if args.quick else 20_000, 1 if args.quick else 3, 64)
            elif part == "limits":
                results["limits"] = limits(work, args.quick, 1 if args.quick else 3)
            elif part == "memory":
                lines = 20_000 if args.quick else 1_000_000
                results["memory"] = memory(work, lines, lines // 1000)
            else:
                results["fsync"] = fsync_cost(work, 2_000 if args.quick else 20_000)
    command = "python bench/batch.py" + (f" --only {args.only}" if args.only else "") + (" --quick" if args.quick
                                                                                       else "")
    text = report(results, command)
    print(text)
    if not args.quick:
        previous = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() and args.only else {}
        previous.update(results)
        RESULTS_JSON.write_text(json.dumps(previous, indent=2) + "\n")
        RESULTS_MD.write_text(report(previous, "python bench/batch.py") + "\n")


if __name__ == "__main__":
    main()
