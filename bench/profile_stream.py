"""Where the time of one streamed chunk goes on solarstream's path: ``python -m bench.profile_stream``.

Three views, printed as Markdown (the numbers in bench/PROFILE.md come from here):

1. layers in memory: each step of the pipeline alone on the realistic payload, ns per chunk;
2. layers end to end: the same stream from the bench server (its own process), adding one layer
   at a time, so the difference between two rows is that layer's cost with real reads;
3. cProfile of ``Upstage.create_async_generator`` on one long stream, top functions by own time;
4. per-request costs before the first byte is sent, and a cProfile of many short answers (TTFC path).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from bench.clients import API_KEY, MODEL
from bench.payload import messages_for, sse_body, sse_frames
from bench.run import bench_server, cpus
from solarstream import Upstage
from solarstream._http import HTTPClient, Response
from solarstream._sse import SSEDecoder
from solarstream._stream import ChatStream
from solarstream.types import ChatCompletionChunk

READ = 64 * 1024  # about what one aiohttp readany() returns when the body comes faster than it is read


def _best_ns_per(fn: Callable[[], int], runs: int = 7) -> float:
    """Best (least disturbed) of ``runs`` timings of ``fn``, in ns per item it reports."""
    results = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        items = fn()
        results.append((time.perf_counter_ns() - start) / items)
    return min(results)


def memory_layers(chunks: int) -> list[tuple[str, float]]:
    body = sse_body(chunks, chunked=False)
    reads = [body[i : i + READ] for i in range(0, len(body), READ)]
    payloads = [f[6:-2].decode() for f in sse_frames(chunks)[:-1]]
    dicts = [json.loads(p) for p in payloads]

    def decode() -> int:
        decoder = SSEDecoder()
        return sum(len(decoder.feed(r)) for r in reads)

    def json_loads() -> int:
        loads = json.loads
        for p in payloads:
            loads(p)
        return len(payloads)

    def scan_once() -> int:
        scan = _SCAN
        for p in payloads:
            scan(p, 0)
        return len(payloads)

    def orjson_loads() -> int:
        loads = orjson.loads
        for p in payloads:
            loads(p)
        return len(payloads)

    def from_dict() -> int:
        build = ChatCompletionChunk.from_dict
        for d in dicts:
            build(d)
        return len(dicts)

    def track() -> int:
        stream = ChatStream(_never)
        for d in dicts:
            stream._track(d)
        return len(dicts)

    def events() -> int:
        stream = ChatStream(_never)
        for d in dicts:
            for _ in stream._events_of(d):
                pass
        return len(dicts)

    return [
        ("SSE decode (SSEDecoder.feed, 64 KiB reads)", _best_ns_per(decode)),
        ("json.loads of the event data", _best_ns_per(json_loads)),
        ("json's C scanner called directly (JSONDecoder().scan_once)", _best_ns_per(scan_once)),
        ("orjson.loads of the event data", _best_ns_per(orjson_loads)),
        ("ChatCompletionChunk.from_dict (chunk iteration / AsyncClient only)", _best_ns_per(from_dict)),
        ("ChatStream._track (state: text, tool calls, finish)", _best_ns_per(track)),
        ("ChatStream._events_of (typed events)", _best_ns_per(events)),
        ("one async-generator layer (yield + async for)", asyncio.run(_async_gen_layer(chunks))),
    ]


async def _never() -> Response:
    raise AssertionError("not used: the stream is fed by hand")


async def _async_gen_layer(n: int) -> float:
    async def source() -> AsyncIterator[int]:
        for i in range(n):
            yield i

    async def layer(inner: AsyncIterator[int]) -> AsyncIterator[int]:
        async for item in inner:
            yield item

    async def drain(it: AsyncIterator[int]) -> None:
        async for _ in it:
            pass

    direct, layered = [], []
    for _ in range(7):
        start = time.perf_counter_ns()
        await drain(source())
        direct.append(time.perf_counter_ns() - start)
        start = time.perf_counter_ns()
        await drain(layer(source()))
        layered.append(time.perf_counter_ns() - start)
    return (min(layered) - min(direct)) / n


_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def scanner_loads(text: str) -> Any:
    """``json.loads`` without its Python wrappers (two regex matches, three calls): a stdlib-only
    candidate for ChatStream's ``loads``; anything unusual goes to the full parser."""
    try:
        obj, end = _SCAN(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):
        return json.loads(text)  # whitespace, extra data or not JSON: json.loads decides (and raises)
    return obj


# --- end to end, one layer at a time -----------------------------------------------------------------


_PROVIDER = Upstage(api_key=API_KEY)


def _request(base_url: str, chunks: int) -> Any:
    return _PROVIDER.prepare_chat(MODEL, messages_for(chunks), stream=True, base_url=base_url)


async def _open(http: HTTPClient, base_url: str, chunks: int) -> Response:
    req = _request(base_url, chunks)
    return await http.send("POST", req.url, headers=req.headers, body=req.body)


def _pipelines(http: HTTPClient, base_url: str) -> dict[str, Callable[[int], Awaitable[int]]]:
    async def reads_only(n: int) -> int:
        response = await _open(http, base_url, n)
        while await response.read_chunk():
            pass
        await response.finish()
        return n

    async def reads_decode(n: int, loads: Callable[[str], Any] | None = None) -> int:
        response = await _open(http, base_url, n)
        decoder = SSEDecoder()
        count = 0
        while data := await response.read_chunk():
            for event in decoder.feed(data):
                if event.data != "[DONE]":
                    count += 1
                    if loads is not None:
                        loads(event.data)
        await response.finish()
        return count

    async def reads_decode_json(n: int) -> int:
        return await reads_decode(n, json.loads)

    def stream(n: int, loads: Callable[[str], Any] = json.loads) -> ChatStream:
        req = _request(base_url, n)
        return ChatStream(lambda: http.send("POST", req.url, headers=req.headers, body=req.body), loads=loads)

    async def chunks_iter(n: int) -> int:
        return sum([1 async for _ in stream(n)])

    async def text(n: int) -> int:
        return sum([1 async for _ in stream(n).text()])

    async def events(n: int) -> int:
        return sum([1 async for _ in stream(n).events()])

    async def text_orjson(n: int) -> int:
        return sum([1 async for _ in stream(n, orjson.loads).text()])

    async def text_scanner(n: int) -> int:
        return sum([1 async for _ in stream(n, scanner_loads).text()])

    async def create_async_generator(n: int) -> int:
        gen = Upstage.create_async_generator(MODEL, messages_for(n), base_url=base_url, api_key=API_KEY)
        return sum([1 async for _ in gen])

    return {
        "HTTPClient reads only (Response.read_chunk)": reads_only,
        "+ SSEDecoder": reads_decode,
        "+ json.loads": reads_decode_json,
        "ChatStream chunks (async for chunk in stream: + _track, from_dict)": chunks_iter,
        "ChatStream.text()": text,
        "ChatStream.events()": events,
        "ChatStream.text() with loads=orjson.loads": text_orjson,
        "ChatStream.text() with loads=scanner_loads (stdlib C scanner, no wrappers)": text_scanner,
        "Upstage.create_async_generator (= prepare + text())": create_async_generator,
    }


async def end_to_end(base_url: str, chunks: int, repeats: int) -> list[tuple[str, float, float]]:
    """(layer, median chunks/s, median ns per chunk) for each pipeline, interleaved over repeats."""
    http = HTTPClient()
    try:
        pipelines = _pipelines(http, base_url)
        for run in pipelines.values():
            await run(100)  # warm up the pool and first-use paths
        rates: dict[str, list[float]] = {name: [] for name in pipelines}
        for _ in range(repeats):
            for name, run in pipelines.items():
                start = time.perf_counter()
                await run(chunks)
                rates[name].append(chunks / (time.perf_counter() - start))
    finally:
        await http.aclose()
    out = []
    for name, values in rates.items():
        rate = statistics.median(values)
        out.append((name, rate, 1e9 / rate))
    return out


async def profile_text(base_url: str, chunks: int) -> str:
    gen = Upstage.create_async_generator(MODEL, messages_for(100), base_url=base_url, api_key=API_KEY)
    async for _ in gen:
        pass
    profiler = cProfile.Profile()
    profiler.enable()
    async for _ in Upstage.create_async_generator(MODEL, messages_for(chunks), base_url=base_url,
                                                  api_key=API_KEY):
        pass
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(16)
    return out.getvalue()


def request_costs() -> list[tuple[str, float]]:
    """Microseconds of the per-request steps before any byte is sent (they add to time to first chunk)."""
    import timeit
    import urllib.request

    import aiohttp

    messages = messages_for(16)
    steps: dict[str, Callable[[], object]] = {
        "Upstage.prepare_chat (validation, body JSON, headers)": lambda: _PROVIDER.prepare_chat(
            MODEL, messages, stream=True, base_url="http://127.0.0.1:1/v1"),
        "Upstage.create_async_generator call (prepare + ChatStream)": lambda: Upstage.create_async_generator(
            MODEL, messages, base_url="http://127.0.0.1:1/v1", api_key=API_KEY),
        "urllib.request.getproxies_environment() (_http._env_proxy, every request)":
            urllib.request.getproxies_environment,
        "aiohttp.ClientTimeout(...) (every request)": lambda: aiohttp.ClientTimeout(
            total=None, sock_connect=10.0, sock_read=600.0),
    }
    out = []
    for name, fn in steps.items():
        number = 2000
        out.append((name, min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6))
    return out


async def profile_requests(base_url: str, requests: int) -> str:
    """cProfile of ``requests`` short (16-chunk) answers: the per-request overhead."""
    async def one() -> None:
        async for _ in Upstage.create_async_generator(MODEL, messages_for(16), base_url=base_url,
                                                      api_key=API_KEY):
            pass

    await one()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        await one()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--chunks", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    server_cpu, client_cpu = cpus()
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    print(f"## 1. Layers in memory ({args.chunks:,} realistic chunks; best of 7; ns per chunk)\n")
    print("| step | ns/chunk |\n|---|---:|")
    for name, ns in memory_layers(args.chunks):
        print(f"| {name} | {ns:,.0f} |")
    with bench_server(server_cpu) as base_url:
        print(f"\n## 2. End to end, one layer at a time ({args.chunks:,} chunks, median of {args.repeats})\n")
        print("| pipeline | chunks/s | ns/chunk |\n|---|---:|---:|")
        for name, rate, ns in asyncio.run(end_to_end(base_url, args.chunks, args.repeats)):
            print(f"| {name} | {rate:,.0f} | {ns:,.0f} |")
        print("\n## 3. cProfile of Upstage.create_async_generator (top 16 by own time)\n\n```")
        print(asyncio.run(profile_text(base_url, args.chunks)).strip())
        print("```")
        print("\n## 4. Per request, before the first byte is sent (best of 5, microseconds)\n")
        print("| step | us |\n|---|---:|")
        for name, us in request_costs():
            print(f"| {name} | {us:,.1f} |")
        print("\n## 5. cProfile of 500 short answers (16 chunks) through create_async_generator, by own time\n")
        print("```")
        print(asyncio.run(profile_requests(base_url, 500)).strip())
        print("```")


if __name__ == "__main__":
    main()
