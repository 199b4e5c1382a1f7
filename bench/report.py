"""Turn one run's measurements into the figures table, the ratio checks, RESULTS.md and the chart."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LABELS", "Ratio", "figures_table", "ratios", "ratios_table", "render_results", "write_chart"]

LABELS = {
    "upstage_text": "(a) Upstage.create_async_generator",
    "upstage_events": "(b) Upstage.stream_events",
    "naive": "(c) seed's naive aiohttp loop",
    "openai": "(d) openai SDK (AsyncOpenAI)",
    "asyncclient": "(e) solarstream.AsyncClient",
    "pooled": "(f) raw aiohttp loop, one pooled session",
}

Results = dict[str, Any]


@dataclass(frozen=True)
class Ratio:
    what: str
    value: float | None
    target: float
    higher_is_better: bool

    @property
    def mark(self) -> str:
        if self.value is None:
            return "n/a"
        ok = self.value >= self.target if self.higher_is_better else self.value <= self.target
        return "PASS" if ok else "short"

    @property
    def target_text(self) -> str:
        return f"{'>=' if self.higher_is_better else '<='} {self.target:g}x"


def _median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def single_median(r: Results, v: str) -> float | None:
    return _median(r["variants"].get(v, {}).get("single_rates"))


def concurrent_median(r: Results, v: str) -> float | None:
    return _median(r["variants"].get(v, {}).get("concurrent_rates"))


def ttfc_median(r: Results, v: str) -> float | None:
    return _median(r["variants"].get(v, {}).get("ttfc"))


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def ratios(r: Results) -> list[Ratio]:
    """The issue's targets, each computed from figures of this same run."""
    out = []
    for mine in ("upstage_text", "upstage_events"):
        out.append(Ratio(f"single-stream {mine} / naive", _ratio(single_median(r, mine), single_median(r, "naive")),
                         1.2, True))
        out.append(Ratio(f"single-stream {mine} / openai",
                         _ratio(single_median(r, mine), single_median(r, "openai")), 10, True))
    out.append(Ratio("single-stream asyncclient / openai",
                     _ratio(single_median(r, "asyncclient"), single_median(r, "openai")), 8, True))
    for mine in ("upstage_text", "upstage_events", "asyncclient"):
        out.append(Ratio(f"concurrent {mine} / openai",
                         _ratio(concurrent_median(r, mine), concurrent_median(r, "openai")), 8, True))
    for mine in ("upstage_text", "upstage_events"):
        out.append(Ratio(f"time to first chunk {mine} / naive",
                         _ratio(ttfc_median(r, mine), ttfc_median(r, "naive")), 1.1, False))
    for mine in ("upstage_text", "asyncclient"):  # per-request cost against the pooled floor (batch jobs pay it)
        out.append(Ratio(f"time to first chunk {mine} / pooled raw loop",
                         _ratio(ttfc_median(r, mine), ttfc_median(r, "pooled")), 1.0, False))
    imports = r.get("imports", {})
    for mine, theirs in (("import solarstream", "import openai"),
                         ("from solarstream import Upstage", "from openai import AsyncOpenAI"),
                         ("from solarstream import AsyncClient", "from openai import AsyncOpenAI")):
        out.append(Ratio(f"`{mine}` / `{theirs}`", _ratio(imports.get(mine), imports.get(theirs)), 0.3, False))
    return out


def _fmt(value: float | None, scale: float = 1.0, digits: int = 0) -> str:
    return "—" if value is None else f"{value * scale:,.{digits}f}"


def figures_table(r: Results) -> str:
    cfg = r["config"]
    lines = [
        f"| client | single stream, chunks/s (median / best of {cfg['rounds'] * cfg['repeats']}) "
        f"| TTFC median, ms | {cfg['streams']} concurrent, aggregate chunks/s (median) "
        "| peak RSS, MB (before streams) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, label in LABELS.items():
        v = r["variants"].get(name)
        if v is None:
            continue
        if "skipped" in v or "failed" in v:
            lines.append(f"| {label} | {v.get('skipped') or 'FAILED: ' + v['failed']} | | | |")
            continue
        best = max(v["single_rates"]) if v.get("single_rates") else None
        peak = max(v["peak_rss_mb"]) if v.get("peak_rss_mb") else None
        rss = f"{_fmt(peak, digits=1)} ({_fmt(_median(v.get('rss_before_mb')), digits=1)})"
        lines.append(
            f"| {label} | {_fmt(single_median(r, name))} / {_fmt(best)} | {_fmt(ttfc_median(r, name), 1e3, 3)} "
            f"| {_fmt(concurrent_median(r, name))} | {rss} |"
        )
    return "\n".join(lines)


def imports_table(r: Results) -> str:
    lines = ["| statement | median ms |", "|---|---:|"]
    for stmt, seconds in r.get("imports", {}).items():
        lines.append(f"| `{stmt}` | {'not importable' if seconds is None else f'{seconds * 1e3:.1f}'} |")
    return "\n".join(lines)


def ratios_table(r: Results) -> str:
    lines = ["| ratio (same run) | measured | target | |", "|---|---:|---:|---|"]
    for ratio in ratios(r):
        value = "—" if ratio.value is None else f"{ratio.value:.2f}x"
        lines.append(f"| {ratio.what} | {value} | {ratio.target_text} | {ratio.mark} |")
    return "\n".join(lines)


def render_results(r: Results, command: str, notes: list[str]) -> str:
    cfg = r["config"]
    machine = "\n".join(f"- {line}" for line in r["machine"])
    extra = "\n".join(f"- {note}" for note in notes) or "- none"
    return f"""# solarstream benchmark results

Command (from the repository root; about {cfg['estimate']}):

```
{command}
```

`python bench/run.py --quick` is a smoke run (under a minute) that prints the table and writes nothing.

## Figures

{figures_table(r)}

- Variants run interleaved in rounds (a, b, c, d, e, then again), each round in fresh processes, so a
  disturbance hits all of them alike; ratios compare medians.
- Single stream: one answer of {cfg['single']:,} text chunks, from the call to the last piece;
  {cfg['rounds']} rounds of {cfg['repeats']} after a warm-up request.
- TTFC: {cfg['ttfc']} sequential requests of {cfg['ttfc_chunks']} chunks each, from the call to the first text
  piece; the rest of each answer is read too. The naive loop opens a new connection every time (as the seed
  did); the others reuse pooled connections.
- Concurrent: {cfg['streams']} answers of {cfg['chunks']} chunks streamed at once, {cfg['concurrent_rounds']}
  rounds; aggregate text chunks per second. Peak RSS is `ru_maxrss` of the variant's own process (the
  highest of the rounds); the number in brackets is its RSS after imports and one warm-up request, before
  the concurrent streams.
- Every answer is checked: the exact number of pieces and the exact text, or the run fails.

## Ratios

{ratios_table(r)}

## Import time (fresh interpreter each, median of {cfg['import_runs']})

{imports_table(r)}

`import solarstream` alone is lazy (names load on first use), so the honest comparison is what a user imports:
`from solarstream import Upstage` or `from solarstream import AsyncClient` against `from openai import AsyncOpenAI`.

## Setup and machine

{machine}

## Notes

{extra}

![results](results.png)
"""


def write_chart(r: Results, path: Path) -> None:
    """Four horizontal bar charts: single stream, concurrent, TTFC, imports."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in LABELS if n in r["variants"] and "single_rates" in r["variants"][n]]
    labels = [LABELS[n] for n in names]
    panels: list[tuple[str, list[str], list[float]]] = [
        ("single stream: chunks/s (median)", labels, [single_median(r, n) or 0.0 for n in names]),
        (f"{r['config']['streams']} concurrent streams: aggregate chunks/s", labels,
         [concurrent_median(r, n) or 0.0 for n in names]),
        ("time to first chunk: ms (median, lower is better)", labels,
         [(ttfc_median(r, n) or 0.0) * 1e3 for n in names]),
        ("import time: ms (lower is better)", [s for s, t in r["imports"].items() if t is not None],
         [t * 1e3 for t in r["imports"].values() if t is not None]),
    ]
    fig, axes = plt.subplots(4, 1, figsize=(10, 13))
    for ax, (title, ylabels, values) in zip(axes, panels, strict=True):
        colors = ["#3b7dd8" if "solarstream" in y or "Upstage" in y else "#9a9a9a" for y in ylabels]
        bars = ax.barh(ylabels, values, color=colors)
        ax.invert_yaxis()
        ax.set_title(title, loc="left", fontsize=11)
        ax.bar_label(bars, labels=[f"{v:,.0f}" if v >= 100 else f"{v:.2f}" for v in values], padding=3,
                     fontsize=9)
        ax.margins(x=0.15)
        ax.tick_params(axis="y", labelsize=9)
    fig.suptitle("solarstream vs alternatives (local pre-encoded server; higher is better unless noted)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
