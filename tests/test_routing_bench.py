"""Keeps bench/routing.py from rotting: a tiny run of each measurement, every answer checked whole."""

from __future__ import annotations

from bench import routing


async def test_ttfc_measures_every_target() -> None:
    found = await routing.measure_ttfc(3)
    assert [len(found.direct), len(found.single), len(found.double)] == [3, 3, 3]
    assert all(t > 0 for t in found.direct + found.single + found.double)


async def test_throughput_counts_answers_and_failures() -> None:
    run = await routing.measure_throughput("smoke", learn=True, rpm=20, window=1.0, duration=0.3, concurrency=2)
    assert run.succeeded > 0
    assert run.failed == 0
    assert run.limit_per_second == 40
    text = routing.report(await routing.measure_ttfc(2), [run], routing.parse(["--quick"]))
    assert "| smoke |" in text
