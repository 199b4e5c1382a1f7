"""Helpers shared by the test modules, one per job (fixtures that use them are in conftest.py).

* ``BackgroundLoop`` / ``ThreadedEmulator`` / ``ThreadServer``: a server on an event loop of its
  own in a daemon thread, for code under test that runs its own loop (the CLI, ``Client``, llm).
* ``collect``: what an async iterator yielded before it ended or raised, and what it raised.
* ``reference_parse`` / ``sse_data`` / ``sse_chunks`` / ``sse_text``: read raw SSE bytes with a
  direct reading of the WHATWG algorithm (not solarstream's decoder, which is under test).
* ``chunk_text``: the text of ``ChatCompletionChunk`` objects.
* ``LogWatch``: wait for a log line another thread writes.
* ``post_json`` / ``emu_post`` and ``error_envelope``: raw HTTP for the emulator and the gateway.
* ``expected_usage``: the emulator's token counts for a plain answer, from its public rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any, TypeVar

import aiohttp

from solarstream._retry import RetryPolicy
from solarstream._sse import ServerSentEvent
from solarstream.emulator import Emulator, answers
from solarstream.types import ChatCompletionChunk
from tests.rawserver import RawServer

T = TypeVar("T")

#: retries that take no noticeable time (tests of what is retried, not of how long it waits)
FAST_RETRY = RetryPolicy(max_retries=2, backoff=0.001, backoff_max=0.002)


def ask(text: str) -> list[dict[str, Any]]:
    """One user message."""
    return [{"role": "user", "content": text}]


async def collect(source: AsyncIterator[T]) -> tuple[list[T], BaseException | None]:
    """Everything the iterator yielded before it ended or raised, and what it raised (or None)."""
    items: list[T] = []
    try:
        async for item in source:
            items.append(item)
    except Exception as exc:
        return items, exc
    return items, None


# --- servers on a loop of their own ---------------------------------------------------------------


class BackgroundLoop:
    """An event loop running in a daemon thread; ``call`` runs a coroutine there and waits for it."""

    def __init__(self, name: str = "background-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run ``coro`` on the background loop; the timeout is a hang guard, not a timing assertion."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.call(self.loop.shutdown_asyncgens())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class ThreadedEmulator(BackgroundLoop):
    """``with ThreadedEmulator() as emulator:`` an ``Emulator`` on a background loop (also ``.emulator``)."""

    def __init__(self, **options: Any) -> None:
        super().__init__("emulator")
        self._options = options
        self._emulator: Emulator | None = None

    @property
    def emulator(self) -> Emulator:
        assert self._emulator is not None, "the emulator is not running"
        return self._emulator

    async def _start(self) -> Emulator:
        return await Emulator(**self._options).__aenter__()

    def __enter__(self) -> Emulator:
        self._emulator = self.call(self._start())
        return self._emulator

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.call(self.emulator.__aexit__(None, None, None))
        finally:
            self.close()

    def wait_for_disconnects(self, count: int) -> int:
        """Block until the emulator has seen ``count`` clients leave mid-answer (an event, no polling)."""
        return self.call(self.emulator.wait_for_disconnects(count))


class ThreadServer(BackgroundLoop):
    """``with ThreadServer() as running:`` a ``RawServer`` (``running.server``) on a background loop."""

    def __init__(self) -> None:
        super().__init__("raw-server")
        self._server: RawServer | None = None

    @property
    def server(self) -> RawServer:
        assert self._server is not None, "the server is not running"
        return self._server

    async def _start(self) -> RawServer:
        return await RawServer().__aenter__()

    def __enter__(self) -> ThreadServer:
        self._server = self.call(self._start())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.call(self.server.aclose())
        finally:
            self.close()


class LogWatch(logging.Handler):
    """``with LogWatch("solarstream.server") as watch:`` the logger's messages, from any thread;
    ``watch.wait_for(predicate)`` blocks until one matches (a condition variable, not a sleep), for
    lines a server on another thread writes after its client already has the answer."""

    def __init__(self, logger: str, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._logger = logging.getLogger(logger)
        self._level = level
        self._saved_level = self._logger.level
        self._changed = threading.Condition()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.messages.append(record.getMessage())
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 10.0) -> str:
        """The first message that matches; the timeout is a hang guard, not a timing assertion."""
        with self._changed:
            found = self._changed.wait_for(lambda: next((m for m in self.messages if predicate(m)), None), timeout)
        assert found is not None, f"no matching log line in {self.messages}"
        return found

    def __enter__(self) -> LogWatch:
        self._logger.addHandler(self)
        if self._logger.getEffectiveLevel() > self._level:
            self._logger.setLevel(self._level)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._saved_level)


async def from_child(proc: asyncio.subprocess.Process, waiting: Awaitable[T], what: str, timeout: float = 30.0) -> T:
    """Await something a child process should do; if it hangs, fail with where it hangs: the child
    must run with PYTHONFAULTHANDLER=1 (``CHILD_ENV``), and SIGABRT makes it print every thread's stack."""
    try:
        return await asyncio.wait_for(waiting, timeout)
    except asyncio.TimeoutError:
        state = _process_state(proc.pid)  # "Z (zombie)": it exited, and its exit went unnoticed
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGABRT)
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(), 10)
        except asyncio.TimeoutError:
            stderr = b"(and no exit was noticed in 10 s more)"
        raise AssertionError(f"the child did not {what} within {timeout:g}s (its state then: {state}); it printed:\n"
                             f"{(stderr or b'').decode(errors='replace')}") from None


def _process_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((line.split(":", 1)[1].strip() for line in status if line.startswith("State:")), "?")
    except OSError:
        return "gone"


#: the environment for a child Python whose hangs should be diagnosable (``from_child``)
CHILD_ENV = {"PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}


# --- raw SSE -----------------------------------------------------------------------------------


def reference_parse(stream: bytes) -> list[ServerSentEvent]:
    """A direct, unoptimised reading of the WHATWG event-stream algorithm over the whole text."""
    text = stream.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    parts = re.split(r"\r\n|\r|\n", text)
    lines = parts[:-1]  # the last part has no line end: discarded at EOF
    events: list[ServerSentEvent] = []
    data = ""
    event_type = ""
    last_id = ""
    retry: int | None = None
    for line in lines:
        if line == "":
            if data == "":
                event_type = ""
                continue
            events.append(ServerSentEvent(data[:-1] if data.endswith("\n") else data, event_type or "message",
                                          last_id, retry))
            data, event_type = "", ""
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            name, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            name, value = line, ""
        if name == "data":
            data += value + "\n"
        elif name == "event":
            event_type = value
        elif name == "id":
            if "\0" not in value:
                last_id = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            retry = int(value)
    return events


def sse_data(raw: bytes, *, complete: bool = False) -> list[str]:
    """The data of every event in a raw SSE body (``[DONE]`` included); with ``complete``, the body
    must not end in the middle of an event."""
    if complete:
        assert raw.endswith((b"\n\n", b"\r\n\r\n", b"\r\r")), f"the stream ended inside an event: {raw[-80:]!r}"
    return [event.data for event in reference_parse(raw)]


def sse_chunks(raw: bytes) -> list[dict[str, Any]]:
    """The JSON chunks of a raw SSE body (without ``[DONE]``)."""
    return [json.loads(data) for data in sse_data(raw) if data != "[DONE]"]


def sse_text(raw: bytes, field: str = "content") -> str:
    """The streamed text (or another delta field, such as ``reasoning``) of a raw SSE body."""
    return "".join(c["choices"][0]["delta"].get(field) or "" for c in sse_chunks(raw) if c.get("choices"))


def chunk_text(chunks: list[ChatCompletionChunk]) -> str:
    """The text that ``ChatCompletionChunk`` objects carry."""
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# --- raw HTTP ----------------------------------------------------------------------------------


async def post_json(session: aiohttp.ClientSession, url: str, body: Any = None, *, key: str | None = None,
                    headers: Mapping[str, str] | None = None,
                    raw: bytes | str | AsyncIterator[bytes] | None = None) -> tuple[int, Any, bytes]:
    """POST ``body`` as JSON with ``Content-Type: application/json``, as OpenAI clients do (or ``raw``
    as it is: bytes, text, or an async iterator sent chunked); returns status, headers and body bytes."""
    sent = {"Content-Type": "application/json"}
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    sent.update(headers or {})
    data = raw if raw is not None else json.dumps(body).encode()
    async with session.post(url, data=data, headers=sent) as resp:
        return resp.status, resp.headers, await resp.read()


async def emu_post(session: aiohttp.ClientSession, emu: Emulator, body: Any = None, *, key: str | None = None,
                   path: str = "/chat/completions", emulate: str | None = None,
                   headers: Mapping[str, str] | None = None, raw: bytes | None = None) -> tuple[int, Any, bytes]:
    """POST to the emulator's ``path`` with its key (or ``key``) and an optional ``X-Emulate`` header."""
    extra = dict(headers or {})
    if emulate is not None:
        extra["X-Emulate"] = emulate
    return await post_json(session, emu.base_url + path, body, key=key or emu.api_key, headers=extra, raw=raw)


def error_envelope(raw: bytes | Mapping[str, Any]) -> dict[str, Any]:
    """The ``error`` object of an OpenAI-style error body, checked for its exact shape."""
    body = json.loads(raw) if isinstance(raw, (bytes, str)) else raw
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    return dict(body["error"])


# --- what the emulator answers -------------------------------------------------------------------


def last_body(emu: Emulator) -> dict[str, Any]:
    """The JSON body of the last request the emulator received."""
    body = emu.requests[-1].json
    assert isinstance(body, dict)
    return body


def completion_tokens(text: str, reasoning: str | None = None) -> int:
    """What the emulator counts for an answer: its pieces, reasoning first."""
    return sum(answers.count_tokens(p) for p in answers.pieces(reasoning or "") + answers.pieces(text))


def expected_usage(messages: list[dict[str, Any]], text: str) -> dict[str, int]:
    """The usage the emulator reports for a plain answer ``text`` to ``messages`` (no reasoning, no tools)."""
    prompt = answers.prompt_tokens(messages)
    completion = completion_tokens(text)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
