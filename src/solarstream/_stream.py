"""A streamed chat completion: bytes → SSE events → chunk payloads → (chunks | typed events | text).

``ChatStream`` is the one streaming implementation. One async generator turns the body into
parsed chunk payloads and keeps the answer's state as it goes (tool calls assembled from their
deltas, finish reason, usage). Three views sit on it: iterating the stream gives
``ChatCompletionChunk`` objects (what the OpenAI-style client hands out), ``events()`` the typed
events, ``text()`` the plain text pieces. Only the chunk view builds wire objects, so the text
path pays for none. It always releases its connection:
back to the pool after ``[DONE]``, closed at once on error, cancellation or early ``aclose()``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any

from . import _json
from ._http import Response
from ._sse import DEFAULT_MAX_EVENT_SIZE, SSEDecoder
from .errors import StreamError, StreamTruncatedError, excerpt
from .types import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    Choice,
    Finish,
    FunctionCall,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCalls,
    Usage,
    UsageReport,
    finish_reason,
    reasoning_of,
)

__all__ = ["ChatStream", "ToolCallAssembler", "carries_output"]


def carries_output(payload: Mapping[str, Any]) -> bool:
    """Whether a chunk says something a caller must see: text, reasoning, a tool call, a finish or
    usage (not the role announcement). Before the first such chunk a failure may still be hidden by
    sending the request elsewhere (a router) or answered with a real status (the gateway)."""
    if payload.get("usage"):
        return True
    for choice in payload.get("choices") or ():
        delta = choice.get("delta") or {}
        if (delta.get("content") or delta.get("reasoning") or delta.get("reasoning_content")
                or delta.get("tool_calls") or choice.get("finish_reason")):
            return True
    return False


class ToolCallAssembler:
    """Joins streamed tool-call pieces by index: first id and name win, arguments concatenate."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, list[Any]] = {}  # index -> [id, name, [argument pieces]]

    def add(self, index: int, id: str | None, name: str | None, arguments: str | None) -> None:
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = [None, None, []]
        if id and not call[0]:
            call[0] = id
        if name and not call[1]:
            call[1] = name
        if arguments:
            call[2].append(arguments)

    def __bool__(self) -> bool:
        return bool(self._calls)

    def calls(self) -> list[ToolCall]:
        return [
            ToolCall(call[0] or f"call_{index}", FunctionCall(call[1] or "", "".join(call[2])))
            for index, call in sorted(self._calls.items())
        ]


class ChatStream:
    """An async iterator of chunks and an async context manager; see the module docstring."""

    def __init__(
        self,
        opener: Callable[[], Awaitable[Response]],
        *,
        model: str = "",
        stop_with_tool_calls: bool = False,
        on_close: Callable[[ChatStream], None] | None = None,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        loads: Callable[[str], Any] = _json.loads,
    ) -> None:
        self._opener = opener
        self._max_event_size = max_event_size
        self._loads = loads
        self._stop_with_tool_calls = stop_with_tool_calls
        self._on_close = on_close
        self._response: Response | None = None
        self._payloads: AsyncIterator[dict[str, Any]] | None = None
        self._closed = False
        #: the model asked for (as sent); ``model`` becomes what the server says it used
        self.requested_model = model
        #: whether output (text, reasoning or a tool-call piece) has been handed out: from then on a
        #: failure is the caller's to see, never hidden by sending the request elsewhere
        self.started = False
        # what the stream has said so far
        self.id = ""
        self.model = ""
        self.created = 0
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.tool_calls = ToolCallAssembler()
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self.done = False

    # --- the one generator: parsed chunk payloads ------------------------------------------

    def _open_payloads(self) -> AsyncIterator[dict[str, Any]]:
        if self._payloads is None:
            self._payloads = _nothing() if self._closed else self._iterate()
        return self._payloads

    async def start(self) -> None:
        """Send the request now, so an HTTP error raises here rather than at the first chunk
        (the OpenAI SDK's ``create(stream=True)`` behaves so). Optional: iterating starts it too."""
        if self._response is None and self._payloads is None and not self._closed:
            self._response = await self._open()

    async def _open(self) -> Response:
        response = await self._opener()
        if not _is_event_stream(response):
            await _refuse_non_stream(response)
        return response

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        response = self._response = self._response or await self._open()
        decoder = SSEDecoder(self._max_event_size)
        loads = self._loads
        track = self._track
        released = False
        try:
            while data := await response.read_chunk():
                for event in decoder.events(data):
                    payload = event.data
                    if payload == "[DONE]":
                        self.done = True
                        await response.finish()
                        released = True
                        return
                    try:
                        obj = loads(payload)
                    except ValueError as exc:
                        shown = excerpt(response.redact(payload))
                        raise StreamError(f"the stream sent data that is not JSON: {shown}", body=shown) from exc
                    if type(obj) is not dict:
                        shown = excerpt(response.redact(payload))
                        raise StreamError(f"the stream sent a JSON value that is not an object: {shown}")
                    if obj.get("error") is not None or event.event == "error":
                        raise _stream_error(loads(response.redact(payload)))
                    track(obj)
                    yield obj
            decoder.close()
            if self.finish_reason is None:
                raise StreamTruncatedError(
                    f"the stream ended after {response.received} bytes without [DONE] or a finish reason; "
                    "the answer is incomplete"
                )
            self.done = True
            await response.finish()
            released = True
        finally:
            self._closed = True
            if not released:
                response.close()
            self._closing()

    def _closing(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close(self)

    def _track(self, obj: dict[str, Any]) -> None:
        if not self.id:
            self.id, self.model, self.created = obj.get("id") or "", obj.get("model") or "", obj.get("created") or 0
        for choice in obj.get("choices") or ():
            delta = choice.get("delta")
            if delta:
                if not choice.get("index"):
                    content = delta.get("content")
                    if content:
                        self._content.append(content)
                        self.started = True
                    reasoning = reasoning_of(delta)
                    if reasoning:
                        self._reasoning.append(reasoning)
                        self.started = True
                calls = delta.get("tool_calls")
                if calls:
                    self.started = True
                    for call in calls:
                        fn = call.get("function") or {}
                        self.tool_calls.add(call.get("index") or 0, call.get("id"), fn.get("name"),
                                            fn.get("arguments"))
            reason = choice.get("finish_reason")
            if reason:
                # a provider that says "stop" for forced tool calls: every view (chunks, events,
                # forwarded payloads) reports what happened
                normalised = finish_reason(reason, bool(self.tool_calls), self._stop_with_tool_calls)
                if normalised != reason:
                    choice["finish_reason"] = normalised
                self.finish_reason = normalised
        usage = obj.get("usage")
        if usage:
            self.usage = Usage.from_dict(usage)

    # --- views --------------------------------------------------------------------------------

    def payloads(self) -> AsyncIterator[dict[str, Any]]:
        """The chunks as parsed wire dicts, tracked and checked like every view but with no objects
        built: what a gateway forwards. It is the stream's own generator (iterate it in several
        passes if you like); the caller closes the stream (``aclose()`` or ``async with``)."""
        return self._open_payloads()

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        """The next chunk, as an OpenAI-shaped object."""
        return ChatCompletionChunk.from_dict(await self._open_payloads().__anext__())

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop early and release the connection (it is closed, not reused, unless the stream ended)."""
        self._closed = True
        if self._payloads is not None:
            await self._payloads.aclose()  # type: ignore[attr-defined]
        elif self._response is not None:
            self._response.close()  # started (``start()``) but never iterated
        self._closing()

    @property
    def request_id(self) -> str | None:
        """The server's request id (``x-request-id``), once the response has arrived."""
        return self._response.request_id if self._response is not None else None

    @property
    def response_headers(self) -> Mapping[str, str]:
        """The response's headers (empty before it arrived): rate limits, request id, ..."""
        return self._response.headers if self._response is not None else {}

    async def events(self) -> AsyncIterator[StreamEvent]:
        """The typed events: text, reasoning, tool-call deltas, assembled tool calls, finish, usage."""
        try:
            async for obj in self._open_payloads():
                for event in self._events_of(obj):
                    yield event
        finally:
            await self.aclose()

    def _events_of(self, obj: dict[str, Any]) -> Iterator[StreamEvent]:
        for choice in obj.get("choices") or ():
            index = choice.get("index") or 0
            delta = choice.get("delta")
            if delta:
                reasoning = reasoning_of(delta)
                if reasoning:
                    yield ReasoningDelta(reasoning, index)
                content = delta.get("content")
                if content:
                    yield TextDelta(content, index)
                for call in delta.get("tool_calls") or ():
                    fn = call.get("function") or {}
                    yield ToolCallDelta(call.get("index") or 0, call.get("id"), fn.get("name"),
                                        fn.get("arguments") or "")
            if choice.get("finish_reason"):
                if self.tool_calls:
                    yield ToolCalls(tuple(self.tool_calls.calls()))
                yield Finish(choice["finish_reason"], index)  # as _track normalised it
        if obj.get("usage") and self.usage is not None:
            yield UsageReport(self.usage)

    async def text(self) -> AsyncIterator[str]:
        """Only the answer's text pieces, in order (what ``TextDelta`` events carry)."""
        try:
            async for obj in self._open_payloads():
                for choice in obj.get("choices") or ():
                    delta = choice.get("delta")
                    if delta:
                        content = delta.get("content")
                        if content:
                            yield content
        finally:
            await self.aclose()

    @property
    def content(self) -> str:
        return "".join(self._content)

    @property
    def reasoning(self) -> str | None:
        return "".join(self._reasoning) if self._reasoning else None

    def completion(self) -> ChatCompletion:
        """What the stream said so far, as one completion (after iteration: the whole answer).

        On a stream that was never read this raises ``StreamError``: there is nothing yet, and an
        empty completion would pass for an empty answer. ``await get_final_completion()`` reads it.
        """
        if self._payloads is None:
            raise StreamError("completion() on a stream that was never read: iterate it first, or use "
                              "'await stream.get_final_completion()', which reads it to the end")
        calls = self.tool_calls.calls() or None
        message = ChatCompletionMessage(self.content if self._content or not calls else None,
                                        reasoning=self.reasoning, tool_calls=calls)
        completion = ChatCompletion(self.id, self.model, self.created,
                                    [Choice(0, message, self.finish_reason)], self.usage)
        completion.request_id = self.request_id
        return completion

    async def get_final_completion(self) -> ChatCompletion:
        """Read the rest of the stream and return the whole answer as one completion."""
        try:
            async for _ in self._open_payloads():
                pass
        finally:
            await self.aclose()
        return self.completion()

    async def get_final_text(self) -> str:
        """Read the rest of the stream and return the answer's whole text (``await``-able, unlike
        ``text()``, which is the async iterator of its pieces)."""
        return (await self.get_final_completion()).choices[0].message.content or ""


def _is_event_stream(response: Response) -> bool:
    kind = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    return kind in ("text/event-stream", "")


async def _refuse_non_stream(response: Response) -> None:
    """A 2xx answer that is not an event stream: say what it was instead of a vague truncation."""
    kind = response.headers.get("Content-Type", "")
    try:
        raw = await response.read_all()
    finally:
        response.close()
    text = response.redact(raw.decode("utf-8", "replace"))
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict) and obj.get("error") is not None:
        raise _stream_error(obj)
    raise StreamError(
        f"expected an event stream but got HTTP {response.status} {kind or 'with no content type'}: "
        f"{excerpt(text) or '(empty body)'}; is the base URL an OpenAI-compatible API?",
        body=excerpt(text),
    )


async def _nothing() -> AsyncIterator[dict[str, Any]]:
    return
    yield  # an async generator that yields nothing: the stream was closed before it started


def _stream_error(obj: dict[str, Any]) -> StreamError:
    error = obj.get("error", obj)
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        message = error.get("message") or excerpt(json.dumps(error, ensure_ascii=False))
    else:
        code, message = None, str(error)
    prefix = f"the stream reported an error ({code})" if code else "the stream reported an error"
    return StreamError(f"{prefix}: {excerpt(str(message), 300)}", code=str(code) if code else None, body=obj)
