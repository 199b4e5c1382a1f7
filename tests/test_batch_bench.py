"""Keeps bench/batch.py from rotting: its completion server, the minimal loop it is compared with, the
job runner and the report, tiny. No timing is asserted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bench import batch as bench
from bench.batch_server import COMPLETION, start
from solarstream import batch


async def test_the_server_answers_the_loop_and_the_job(tmp_path: Path) -> None:
    server = await start()
    port = server.sockets[0].getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        source = bench.write_input(tmp_path / "in.jsonl", 30)
        await bench.naive_loop(source, tmp_path / "naive.jsonl", f"{base_url}/chat/completions", 8)
        summary = await batch.arun(source, tmp_path / "job.jsonl", base_url=base_url, api_key=bench.KEY)
    finally:
        server.close()
        await server.wait_closed()
    assert bench.count_ok(tmp_path / "naive.jsonl") == (30, 30)
    assert bench.count_ok(tmp_path / "job.jsonl") == (30, 30)
    assert summary.ok
    record = json.loads((tmp_path / "job.jsonl").read_bytes().splitlines()[0])
    assert record["response"]["body"] == json.loads(COMPLETION)
    assert record["response"]["request_id"] == "bench-request"


async def test_the_server_answers_pipelined_requests_in_order() -> None:
    server = await start()
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b'{"messages":[]}'
        request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
        writer.write(request * 3 + b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        for _ in range(3):
            assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 200")
            await reader.readuntil(b"\r\n\r\n")
            assert await reader.readexactly(len(COMPLETION)) == COMPLETION
        assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 404")
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()


def test_the_report_renders_every_part() -> None:
    results = {
        "overhead": {"requests": 20000, "concurrency": 64, "rounds": 1, "rates": {"solarstream": [900.0],
                                                                                   "naive": [1000.0]},
                     "median": {"solarstream": 900.0, "naive": 1000.0}, "ratio": 0.9},
        "limits": [{"kind": "requests", "limit": 300, "window": 10.0, "requests": 900, "elapsed": 31.0,
                    "achieved_per_second": 29.0, "limit_per_second": 30.0, "fraction_of_limit": 0.967,
                    "answered_429": 0, "fraction_429": 0.0, "ok": True, "tokens": 1}],
        "memory": {"lines": 1000, "input_mb": 1.0, "output_mb": 2.0, "run_seconds": 3.0, "run_peak_rss_mb": 60.0,
                   "resume_left": 1, "resume_seconds": 1.0, "resume_peak_rss_mb": 55.0, "prepass_seconds": 0.1,
                   "scan_seconds": 0.1, "scan_records": 999},
        "fsync": {"records": 10, "record_bytes": 400, "us_per_record": {"never": 5.0, "every record": 4000.0}},
    }
    text = bench.report(results, "python bench/batch.py")
    assert "| overhead: batch / minimal loop | 0.90x | >= 0.8x | PASS |" in text
    assert "| limits (requests): achieved / limit (median of 1) | 96.7% | >= 95% | PASS |" in text
    assert "| memory: peak RSS, resume | 55 MB | <= 250 MB | PASS |" in text
    assert "| every record | 4000.0 |" in text
