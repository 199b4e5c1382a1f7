"""Import time of what a user writes, each in a fresh interpreter (median of several runs)."""

from __future__ import annotations

import statistics
import subprocess
import sys

__all__ = ["IMPORTS", "import_seconds"]

#: label -> the statement timed
IMPORTS = {
    "import solarstream": "import solarstream",
    "from solarstream import Upstage": "from solarstream import Upstage",
    "from solarstream import AsyncClient": "from solarstream import AsyncClient",
    "import openai": "import openai",
    "from openai import AsyncOpenAI": "from openai import AsyncOpenAI",
}

_PROBE = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"


def import_seconds(statement: str, runs: int) -> float | None:
    """Median seconds of ``statement`` in ``runs`` fresh interpreters; None if it fails to import.
    One discarded run first, so byte-code compilation and a cold disk cache do not count."""
    times = []
    for i in range(runs + 1):
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE.format(stmt=statement)], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            return None
        if i:
            times.append(float(proc.stdout.strip()))
    return statistics.median(times)
