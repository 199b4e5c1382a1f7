"""Keeps the benchmark harness from rotting: every variant, tiny, against the real bench server.

No timing is asserted; what must hold is that each client variant gets exactly the chunks and text
the server sent, and that the orchestration pieces (server process, worker process, report) work.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bench import measure, report, run
from bench.clients import VARIANTS, NaiveLoop, client_unavailable, make_variant
from bench.payload import PIECES, chunk_count_of, expected_text, messages_for, sse_body, sse_frames
from bench.server import BenchServer, start_server

_NAMES = [name for name in VARIANTS if name != "asyncclient" or client_unavailable() is None]


@pytest.fixture
async def server() -> AsyncIterator[BenchServer]:
    srv = await start_server()
    yield srv
    await srv.aclose()


def test_payload_round_trip() -> None:
    body = json.dumps({"messages": messages_for(200)}).encode()
    assert chunk_count_of(body) == 200
    frames = sse_frames(200)
    assert len(frames) == 200 + 3  # role chunk, text chunks, finish chunk, [DONE]
    text = "".join(json.loads(f[6:])["choices"][0]["delta"].get("content") or "" for f in frames[:-1])
    assert text == expected_text(200)
    assert expected_text(len(PIECES) + 1) == "".join(PIECES) + PIECES[0]
    assert sse_body(5, chunked=True).endswith(b"0\r\n\r\n")


@pytest.mark.parametrize("name", _NAMES)
async def test_variant_gets_every_chunk(server: BenchServer, name: str) -> None:
    variant = make_variant(name, server.base_url)
    try:
        received = await measure.consume(variant, 200)
        assert received.pieces == 200
        assert received.text == expected_text(200)
        rates = await measure.single_stream(variant, 200, repeats=1)
        assert len(rates) == 1
        assert rates[0] > 0
        assert await measure.concurrent(variant, 5, 50) > 0  # consume() checks each of the 5 answers
        ttfc = await measure.time_to_first_chunk(variant, 3, 16)
        assert len(ttfc) == 3
    finally:
        await variant.aclose()


async def test_consume_rejects_a_short_answer(server: BenchServer) -> None:
    class Short(NaiveLoop):
        async def pieces(self, chunks: int) -> AsyncIterator[str]:
            async for piece in super().pieces(chunks - 1):
                yield piece

    with pytest.raises(measure.IncompleteAnswer, match="got 9 pieces"):
        await measure.consume(Short(server.base_url), 10)


def test_rounds_of_worker_processes_against_the_server_process() -> None:
    cfg = {**run.QUICK, "single": 100, "rounds": 2, "repeats": 1, "ttfc": 3, "streams": 5, "chunks": 20,
           "concurrent_rounds": 1}
    with run.bench_server(None) as base_url:
        results = run.measure_all(["naive", "upstage_text"], base_url, cfg, None, progress=False)
    for name in ("naive", "upstage_text"):
        v = results[name]
        assert len(v["single_rates"]) == 2  # rounds x repeats
        assert len(v["ttfc"]) == 4  # 3 requests spread over 2 rounds, rounded up
        assert len(v["concurrent_rates"]) == 1
        assert v["peak_rss_mb"][0] >= v["rss_before_mb"][0] > 0


def test_report_renders_figures_ratios_and_chart(tmp_path: Path) -> None:
    cfg = dict(run.QUICK)
    variants: dict[str, dict[str, Any]] = {
        name: {"single_rates": [rate, rate * 1.1], "ttfc": [0.001, 0.002], "concurrent_rates": [rate / 2],
               "peak_rss_mb": [40.0], "rss_before_mb": [30.0]}
        for name, rate in (("upstage_text", 150_000.0), ("upstage_events", 140_000.0), ("naive", 100_000.0),
                           ("openai", 10_000.0))
    }
    variants["asyncclient"] = {"skipped": "skipped: not importable"}
    results = {"config": cfg, "variants": variants, "machine": ["a test machine"],
               "imports": {"import solarstream": 0.01, "import openai": 0.5,
                           "from solarstream import Upstage": 0.1, "from openai import AsyncOpenAI": 0.5,
                           "from solarstream import AsyncClient": None}}
    marks = {r.what: r.mark for r in report.ratios(results)}
    assert marks["single-stream upstage_text / naive"] == "PASS"  # 1.5x >= 1.2x
    assert marks["single-stream upstage_events / openai"] == "PASS"  # 14x >= 10x
    assert marks["time to first chunk upstage_text / naive"] == "PASS"
    assert marks["single-stream asyncclient / openai"] == "n/a"
    assert marks["`from solarstream import Upstage` / `from openai import AsyncOpenAI`"] == "PASS"
    text = report.render_results(results, "python bench/run.py", ["a note"])
    assert "python bench/run.py" in text
    assert "skipped: not importable" in text
    assert "| (a) Upstage.create_async_generator | 157,500 / 165,000 |" in text  # median / best
    report.write_chart(results, tmp_path / "results.png")
    assert (tmp_path / "results.png").read_bytes().startswith(b"\x89PNG")
