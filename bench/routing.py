"""The router's cost and its use of rate limits, in one run.

    python bench/routing.py            # about 70 s; writes bench/ROUTING_RESULTS.md
    python bench/routing.py --quick    # a smoke run that prints the table and writes nothing

* TTFC: sequential streamed requests for a short answer, alternating the same deployment called
  directly and through a ``Router`` (one deployment; and two, usage-based); time from the call to
  the first text piece. Every answer is checked whole. Target: the router adds at most 0.5 ms.
* Throughput: two deployments, each an emulator enforcing ``--rpm`` requests per ``--window``
  seconds on its own key, driven by ``--concurrency`` callers for ``--duration`` seconds through a
  usage-based router that learns the limits from the headers (``learn_limits=True``); and the same
  without learning (only 429s and their cooldowns steer it). Target: at least 90 % of the sum of
  the limits, at most 1 % of calls failing.

The emulators and the router share one event loop in this process, so the figures are the
router's own work, not a process hop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from solarstream import Router
from solarstream.emulator import Emulator
from solarstream.emulator.answers import answer_text
from solarstream.providers import Provider, Upstage
from solarstream.routing import Deployment

PROMPT = "Hello"
MESSAGES = [{"role": "user", "content": PROMPT}]
ANSWER = answer_text(PROMPT)
RESULTS = Path(__file__).resolve().parent / "ROUTING_RESULTS.md"
#: an emulator limit nobody reaches: its headers then never say a budget is spent
UNLIMITED = 10**9


async def first_chunk(provider: Provider) -> float:
    """Seconds from the call to the first text piece; the whole answer is read and checked."""
    start = time.perf_counter()
    pieces = provider.stream("solar-mini", MESSAGES).text()
    first = await pieces.__anext__()
    elapsed = time.perf_counter() - start
    rest = [piece async for piece in pieces]
    if first + "".join(rest) != ANSWER:
        raise AssertionError("an answer arrived incomplete")
    return elapsed


@dataclass(frozen=True)
class Ttfc:
    direct: list[float]
    single: list[float]
    double: list[float]


async def measure_ttfc(requests: int) -> Ttfc:
    async with Emulator(rpm=UNLIMITED) as emu, Emulator(rpm=UNLIMITED) as other:
        direct = Upstage(api_key="up_bench", base_url=emu.base_url)
        single = Router([Deployment("solar-mini", provider=direct)])
        double = Router([Deployment("solar-mini", provider=direct, name="a"),
                         Deployment("solar-mini", api_key="up_bench_b", base_url=other.base_url, name="b")],
                        strategy="usage-based")
        targets: list[Provider] = [direct, single, double]
        times: list[list[float]] = [[], [], []]
        for target in targets:
            for _ in range(20):  # warm up: pools, imports, caches
                await first_chunk(target)
        for _ in range(requests):
            for target, found in zip(targets, times, strict=True):
                found.append(await first_chunk(target))
        await double.aclose()
        await direct.aclose()
    return Ttfc(*times)


@dataclass(frozen=True)
class Throughput:
    label: str
    duration: float
    succeeded: int
    failed: int
    limit_per_second: float
    rate_limited: int

    @property
    def ratio(self) -> float:
        return self.succeeded / self.duration / self.limit_per_second

    @property
    def failed_share(self) -> float:
        return self.failed / max(1, self.succeeded + self.failed)


async def measure_throughput(label: str, *, learn: bool, rpm: int, window: float, duration: float,
                             concurrency: int) -> Throughput:
    async with Emulator(rpm=rpm, rate_window=window) as a, Emulator(rpm=rpm, rate_window=window) as b:
        router = Router([Deployment("solar-mini", api_key="up_bench_a", base_url=a.base_url, name="a"),
                         Deployment("solar-mini", api_key="up_bench_b", base_url=b.base_url, name="b")],
                        strategy="usage-based", learn_limits=learn, max_wait=60)
        succeeded = failed = 0
        stop = time.perf_counter() + duration

        async def caller() -> None:
            nonlocal succeeded, failed
            while time.perf_counter() < stop:
                try:
                    completion = await router.complete("solar-mini", MESSAGES)
                except Exception:
                    failed += 1
                    continue
                if completion.choices[0].message.content != ANSWER:
                    raise AssertionError("an answer arrived incomplete")
                if time.perf_counter() <= stop:
                    succeeded += 1

        begun = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        elapsed = min(time.perf_counter(), stop) - begun
        await router.aclose()
        return Throughput(label, elapsed, succeeded, failed, 2 * rpm / window, a.rate_limited + b.rate_limited)


def ms(values: list[float], q: float = 0.5) -> float:
    return statistics.quantiles(values, n=100)[int(q * 100) - 1] * 1000 if q != 0.5 else \
        statistics.median(values) * 1000


def report(ttfc: Ttfc, runs: list[Throughput], args: argparse.Namespace) -> str:
    base = ms(ttfc.direct)
    lines = [
        "# Routing benchmark",
        "",
        "Command (from the repository root):",
        "",
        "```",
        f"python bench/routing.py --requests {args.requests} --duration {args.duration:g} --rpm {args.rpm} "
        f"--window {args.window:g} --concurrency {args.concurrency}",
        "```",
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}. The emulators and the router run "
        "on one event loop in one process: the figures are the router's own work.",
        "",
        "## Time to first chunk",
        "",
        f"{args.requests} sequential streamed requests per target for the same short answer, alternating, "
        "from the call to the first text piece; every answer checked whole.",
        "",
        "| target | median, ms | p90, ms | added to direct, ms (target <= 0.5) |",
        "|---|---:|---:|---:|",
        f"| the deployment directly (`Upstage`) | {base:.3f} | {ms(ttfc.direct, 0.9):.3f} | — |",
        f"| `Router`, that one deployment | {ms(ttfc.single):.3f} | {ms(ttfc.single, 0.9):.3f} | "
        f"{ms(ttfc.single) - base:+.3f} |",
        f"| `Router`, two deployments, usage-based | {ms(ttfc.double):.3f} | {ms(ttfc.double, 0.9):.3f} | "
        f"{ms(ttfc.double) - base:+.3f} |",
        "",
        "## Sustained throughput against rate limits",
        "",
        f"Two deployments, each an emulator enforcing {args.rpm} requests per {args.window:g} s on its own key "
        f"(sum: {2 * args.rpm / args.window:g} requests/s); {args.concurrency} callers send non-streamed requests "
        f"through a usage-based router for {args.duration:g} s; calls that fail are counted, not retried by the "
        "caller.",
        "",
        "| router | calls answered | per second | of the sum of the limits (target >= 90 %) | calls failed "
        "(target <= 1 %) | 429s the emulators sent |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(f"| {run.label} | {run.succeeded} | {run.succeeded / run.duration:.1f} | {run.ratio:.1%} | "
                     f"{run.failed} ({run.failed_share:.2%}) | {run.rate_limited} |")
    lines += [
        "",
        "- With `learn_limits=True` the router reads `X-Upstage-RateLimit-Limit-*` and `-Interval-*` from the "
        "first answers and paces each deployment at 97 % of its limit (the core `Limiter`, which waits for each "
        "deployment's exact next slot), so the budget is used evenly and the emulators refuse nothing: 97 % is "
        "the pacing's headroom, and it holds for any length of run.",
        "- Without it, each deployment runs until the emulator answers 429, then cools down for the advertised "
        "`Retry-After` (whole seconds, rounded up, as Upstage sends it); callers wait for the earliest deployment "
        "to come back instead of failing, so nothing fails. A sliding window gives its whole budget at once, so "
        "a run of exactly three windows gets exactly three budgets (100 %); each cycle also loses up to a second "
        "to the rounding of the advertised waits, which costs more with shorter windows.",
        "",
    ]
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    logging.getLogger("solarstream").setLevel(logging.ERROR)  # the failovers of the 429 runs are expected
    ttfc = await measure_ttfc(args.requests)
    runs = [
        await measure_throughput("usage-based, `learn_limits=True`", learn=True, rpm=args.rpm, window=args.window,
                                 duration=args.duration, concurrency=args.concurrency),
        await measure_throughput("usage-based, 429s and cooldowns only", learn=False, rpm=args.rpm,
                                 window=args.window, duration=args.duration, concurrency=args.concurrency),
    ]
    text = report(ttfc, runs, args)
    print(text)
    if not args.quick:
        RESULTS.write_text(text, encoding="utf-8")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="TTFC requests per target")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load per throughput run")
    parser.add_argument("--rpm", type=int, default=600, help="requests each emulator allows per window")
    parser.add_argument("--window", type=float, default=10.0, help="the emulators' rate window, seconds")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent callers in the throughput runs")
    parser.add_argument("--quick", action="store_true", help="a smoke run; writes nothing")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.duration, args.rpm, args.window = 30, 2.0, 50, 1.0
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))
