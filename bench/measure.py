"""The three streaming measurements. Each checks that every answer arrived whole before it counts it."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

from .clients import Variant
from .payload import expected_text

__all__ = ["Received", "concurrent", "consume", "single_stream", "time_to_first_chunk"]


class IncompleteAnswer(AssertionError):
    """A variant lost or invented text: its figures would be meaningless."""


@dataclass(frozen=True)
class Received:
    pieces: int
    text: str


async def consume(variant: Variant, chunks: int) -> Received:
    """One whole answer; raises unless it is exactly the ``chunks`` pieces the server sent."""
    parts = [piece async for piece in variant.pieces(chunks)]
    received = Received(len(parts), "".join(parts))
    if received.pieces != chunks or received.text != expected_text(chunks):
        raise IncompleteAnswer(
            f"{variant.name}: got {received.pieces} pieces ({len(received.text)} chars), expected {chunks}"
        )
    return received


async def single_stream(variant: Variant, chunks: int, repeats: int) -> list[float]:
    """Chunks per second of one long stream, from the call to the end of the answer, per repeat."""
    await consume(variant, 10)  # warm up: connection pool, imports done on first use
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        await consume(variant, chunks)
        rates.append(chunks / (time.perf_counter() - start))
    return rates


async def time_to_first_chunk(variant: Variant, requests: int, chunks: int) -> list[float]:
    """Seconds from the call to the first text piece, for ``requests`` sequential requests."""
    await consume(variant, chunks)
    expected = expected_text(chunks)
    results = []
    for _ in range(requests):
        start = time.perf_counter()
        pieces = variant.pieces(chunks)
        first = await pieces.__anext__()
        results.append(time.perf_counter() - start)
        rest = [piece async for piece in pieces]
        if first + "".join(rest) != expected:
            raise IncompleteAnswer(f"{variant.name}: a time-to-first-chunk answer was incomplete")
    return results


async def concurrent(variant: Variant, streams: int, chunks: int) -> float:
    """Aggregate chunks per second of ``streams`` answers streamed at once."""
    start = time.perf_counter()
    results = await asyncio.gather(*(consume(variant, chunks) for _ in range(streams)))
    elapsed = time.perf_counter() - start
    return sum(r.pieces for r in results) / elapsed


def median(values: list[float]) -> float:
    return statistics.median(values)
