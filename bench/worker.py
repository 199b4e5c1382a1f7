"""One client variant in its own process: its figures and its peak RSS are its own.

``python -m bench.worker VARIANT BASE_URL --single 30000 --repeats 3 --ttfc 200`` or
``... --concurrent 500 --chunks 200``; prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
from typing import Any

from . import measure
from .clients import VARIANTS, make_variant

__all__ = ["main", "run"]


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def run(args: argparse.Namespace) -> dict[str, Any]:
    variant = make_variant(args.variant, args.base_url)
    out: dict[str, Any] = {"variant": args.variant}
    try:
        if args.concurrent:
            await measure.consume(variant, 10)  # imports and first-use setup happen before the baseline
            out["rss_before_mb"] = _rss_now_mb()
            out["concurrent_rates"] = await measure.concurrent(variant, args.concurrent, args.chunks)
            out["peak_rss_mb"] = _peak_rss_mb()
        if args.single:
            out["single_rates"] = await measure.single_stream(variant, args.single, args.repeats)
        if args.ttfc:
            out["ttfc"] = await measure.time_to_first_chunk(variant, args.ttfc, args.ttfc_chunks)
    finally:
        await variant.aclose()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Measure one client variant against the bench server.")
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("base_url")
    parser.add_argument("--single", type=int, default=0, help="chunks in the single-stream test (0: skip)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ttfc", type=int, default=0, help="sequential requests for time to first chunk")
    parser.add_argument("--ttfc-chunks", type=int, default=16)
    parser.add_argument("--concurrent", type=int, default=0, help="simultaneous streams (0: skip)")
    parser.add_argument("--chunks", type=int, default=200, help="chunks per concurrent stream")
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    json.dump(asyncio.run(run(args)), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
