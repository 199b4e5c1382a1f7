"""Put a planned answer on the wire: as one JSON body, or as an SSE stream with the requested
variants (CRLF, keep-alives, separate usage, delays) and faults (reset, stall, truncate,
mid-stream error)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from aiohttp import web

from .answers import split_arguments
from .plan import Plan
from .scenarios import Scenario
from .state import EmulatorState
from .validation import ChatParams
from .wire import Framer, dumps, error_body

__all__ = ["send_completion", "send_json", "send_stream"]

_BATCH_BYTES = 64 * 1024


class _Aborted(Exception):
    """We dropped the connection on purpose (a reset fault, or shutdown): not a client disconnect."""

#: faults that end the stream early, in the order they are looked for
_FAULTS = ("reset", "stall", "truncate", "midstream-error")


def _ids() -> tuple[str, int]:
    return str(uuid.uuid4()), int(time.time())


def _message(plan: Plan) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": plan.text}
    if plan.reasoning:
        message[plan.reasoning_field] = "".join(plan.reasoning)
    if plan.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in plan.tool_calls
        ]
    return message


async def send_completion(request: web.Request, params: ChatParams, plan: Plan,
                          scenarios: Mapping[str, Scenario], state: EmulatorState) -> web.StreamResponse:
    """The non-streamed answer; faults apply to it too (reset, stall, truncate)."""
    completion_id, created = _ids()
    body = dumps({
        "id": completion_id, "object": "chat.completion", "created": created, "model": params.info.dated_id,
        "choices": [{"index": 0, "message": _message(plan), "logprobs": None, "finish_reason": plan.finish_reason}],
        "usage": plan.usage, "system_fingerprint": None,
    }).encode()
    return await send_json(request, body, scenarios, state)


async def send_json(request: web.Request, body: bytes, scenarios: Mapping[str, Scenario],
                    state: EmulatorState) -> web.StreamResponse:
    """A JSON answer (a completion, embeddings) with the faults that apply to one body: reset
    (nothing, the connection drops), stall (nothing until the client leaves), truncate (half)."""
    if "reset" in scenarios:
        _abort(request)
        return web.Response(status=200)
    if "stall" in scenarios:
        try:
            await _stall(request, scenarios["stall"], state)
        except _Aborted:
            _abort(request)
            return web.Response(status=200)
        except asyncio.CancelledError:
            state.note_disconnect()
            raise
    if "truncate" in scenarios:
        # promise the whole body, send half, then drop the connection
        response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": str(len(body))})
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        _abort(request)
        return response
    return web.Response(body=body, content_type="application/json")


def _frames(plan: Plan, framer: Framer) -> Iterator[bytes]:
    """The answer's chunks after the role chunk and before the finish chunk."""
    for piece in plan.reasoning:
        yield framer.chunk({plan.reasoning_field: piece})
    for piece in plan.content or ():
        frame = framer.chunk({"content": piece})
        for _ in range(plan.repeat):
            yield frame
    for index, call in enumerate(plan.tool_calls):
        yield framer.chunk({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                                            "function": {"name": call.name, "arguments": ""}}]})
        for part in split_arguments(call.arguments):
            yield framer.chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})


async def send_stream(request: web.Request, params: ChatParams, plan: Plan,
                      scenarios: Mapping[str, Scenario], state: EmulatorState) -> web.StreamResponse:
    """The SSE answer. A client that leaves before the end is counted in ``state.disconnects``."""
    completion_id, created = _ids()
    framer = Framer(completion_id, created, params.info.dated_id, crlf="crlf" in scenarios)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                           "Cache-Control": "no-cache"})
    delay_ms = 0
    for name in ("slow", "speed"):
        if name in scenarios:
            delay_ms = scenarios[name].number("delay_ms")
    delay = delay_ms / 1000
    keepalive = scenarios["keepalive"].number("every") if "keepalive" in scenarios else 0
    fault = next((scenarios[name] for name in _FAULTS if name in scenarios), None)
    after = fault.number("after") if fault is not None else -1
    usage = plan.usage if params.include_usage else None
    separate = "usage-separate" in scenarios
    fragment = scenarios.get("fragment")
    piece_size = fragment.number("size") if fragment is not None else 0
    piece_pause = fragment.number("delay_ms") / 1000 if fragment is not None else 0.0
    # only an unpaced benchmark answer is written in large pieces (benchmarks measure the client);
    # everything else leaves frame by frame, as from a real server
    batching = "speed" in scenarios and not (delay or keepalive or fragment)
    batch: list[bytes] = []
    batched = 0
    finished = False

    async def write(frame: bytes) -> None:
        nonlocal batched
        if state.closing.is_set():
            raise _Aborted
        if batching:
            batch.append(frame)
            batched += len(frame)
            if batched >= _BATCH_BYTES:
                await flush()
            return
        if piece_size:
            for start in range(0, len(frame), piece_size):
                await response.write(frame[start : start + piece_size])
                await asyncio.sleep(piece_pause)  # let each piece leave on its own
        else:
            await response.write(frame)
        if delay:
            await asyncio.sleep(delay)

    async def flush() -> None:
        nonlocal batched
        if batch:
            data = b"".join(batch)
            batch.clear()
            batched = 0
            await response.write(data)

    try:
        await response.prepare(request)
        if keepalive:
            await response.write(framer.ping())
        await write(framer.chunk({"role": "assistant", "content": ""}))
        for sent, frame in enumerate(_frames(plan, framer)):
            if sent == after and fault is not None:
                await flush()
                return await _fault(request, response, fault, framer, state)
            if keepalive and sent and sent % keepalive == 0:
                await write(framer.ping())
            await write(frame)
        if fault is not None:
            await flush()
            return await _fault(request, response, fault, framer, state)
        if separate or usage is None:
            await write(framer.chunk({}, plan.finish_reason))
            if usage is not None:
                await write(framer.usage_only(usage))
        else:
            await write(framer.chunk({}, plan.finish_reason, usage))
        await write(framer.done())
        await flush()
        finished = True
        await response.write_eof()
    except _Aborted:
        _abort(request)
    except (ConnectionResetError, asyncio.CancelledError) as exc:
        if not finished:
            state.note_disconnect()
        if isinstance(exc, asyncio.CancelledError):
            raise
    return response


async def _fault(request: web.Request, response: web.StreamResponse, fault: Scenario, framer: Framer,
                 state: EmulatorState) -> web.StreamResponse:
    if fault.name == "reset":
        raise _Aborted
    if fault.name == "stall":
        await _stall(request, fault, state)
    elif fault.name == "midstream-error":
        code = fault.word("code")
        body = error_body(f"Emulated error inside the stream ({code}), requested by [emulate:midstream-error].",
                          code, type_="server_error")
        await response.write(framer.error(body, event=fault.flag("event")))
    await response.write_eof()  # truncate (and the end of a stall that ran out): a clean end, no [DONE]
    return response


async def _stall(request: web.Request, scenario: Scenario, state: EmulatorState) -> None:
    """Send nothing until the client leaves (the handler is cancelled), shutdown, or ``seconds``."""
    try:
        await asyncio.wait_for(state.closing.wait(), scenario.number("seconds"))
    except asyncio.TimeoutError:
        return
    raise _Aborted


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
