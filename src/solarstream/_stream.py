"""A streamed chat completion: SSE events → chunks → typed events → text.

``ChatStream`` is the one streaming implementation. It yields ``ChatCompletionChunk`` objects
(what the OpenAI-style client hands out), keeps the answer's state as it goes (tool calls
assembled from their deltas, finish reason, usage), and offers the typed event view
(``events()``) and the plain text view (``text()``) on top. It always releases its connection:
back to the pool after ``[DONE]``, closed at once on error, cancellation or early ``aclose()``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any

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
)

__all__ = ["ChatStream", "ToolCallAssembler"]


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
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        loads: Callable[[str], Any] = json.loads,
    ) -> None:
        self._opener = opener
        self._max_event_size = max_event_size
        self._loads = loads
        self._response: Response | None = None
        self._chunks: AsyncIterator[ChatCompletionChunk] | None = None
        self._closed = False
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

    # --- the chunk iterator -------------------------------------------------------------

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        if self._chunks is None:
            if self._closed:
                raise StopAsyncIteration
            self._chunks = self._iterate()
        return await self._chunks.__anext__()

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop early and release the connection (it is closed, not reused, unless the stream ended)."""
        self._closed = True
        if self._chunks is not None:
            await self._chunks.aclose()  # type: ignore[attr-defined]
        elif self._response is not None:
            self._response.close()

    async def start(self) -> None:
        """Send the request now, so an HTTP error raises here rather than at the first chunk
        (the OpenAI SDK's ``create(stream=True)`` behaves so). Optional; iteration starts it too."""
        if self._response is None and self._chunks is None and not self._closed:
            self._response = await self._opener()

    async def _iterate(self) -> AsyncIterator[ChatCompletionChunk]:
        response = self._response = self._response or await self._opener()
        decoder = SSEDecoder(self._max_event_size)
        loads = self._loads
        released = False
        try:
            while data := await response.read_chunk():
                for event in decoder.feed(data):
                    payload = event.data
                    if payload == "[DONE]":
                        self.done = True
                        await response.finish()
                        released = True
                        return
                    try:
                        obj = loads(payload)
                    except ValueError as exc:
                        raise StreamError(
                            f"the stream sent data that is not JSON: {excerpt(payload)}", body=excerpt(payload)
                        ) from exc
                    if not isinstance(obj, dict):
                        raise StreamError(f"the stream sent a JSON value that is not an object: {excerpt(payload)}")
                    if "error" in obj or event.event == "error":
                        raise _stream_error(obj)
                    chunk = ChatCompletionChunk.from_dict(obj)
                    self._track(chunk)
                    yield chunk
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

    def _track(self, chunk: ChatCompletionChunk) -> None:
        if not self.id:
            self.id, self.model, self.created = chunk.id, chunk.model, chunk.created
        for choice in chunk.choices:
            delta = choice.delta
            if choice.index == 0:
                if delta.content:
                    self._content.append(delta.content)
                if delta.reasoning:
                    self._reasoning.append(delta.reasoning)
            if delta.tool_calls:
                for call in delta.tool_calls:
                    fn = call.function
                    if fn is None:
                        self.tool_calls.add(call.index, call.id, None, None)
                    else:
                        self.tool_calls.add(call.index, call.id, fn.name, fn.arguments)
            if choice.finish_reason:
                reason = choice.finish_reason
                if reason == "stop" and self.tool_calls:
                    reason = "tool_calls"  # the API has said "stop" for forced tool calls
                self.finish_reason = reason
        if chunk.usage is not None:
            self.usage = chunk.usage

    # --- views built on the chunks -------------------------------------------------------

    async def events(self) -> AsyncIterator[StreamEvent]:
        """The typed events: text, reasoning, tool-call deltas, assembled tool calls, finish, usage."""
        try:
            async for chunk in self:
                for event in self._events_of(chunk):
                    yield event
        finally:
            await self.aclose()

    def _events_of(self, chunk: ChatCompletionChunk) -> Iterator[StreamEvent]:
        for choice in chunk.choices:
            delta = choice.delta
            if delta.reasoning:
                yield ReasoningDelta(delta.reasoning, choice.index)
            if delta.content:
                yield TextDelta(delta.content, choice.index)
            if delta.tool_calls:
                for call in delta.tool_calls:
                    fn = call.function
                    if fn is None:
                        yield ToolCallDelta(call.index, call.id, None, "")
                    else:
                        yield ToolCallDelta(call.index, call.id, fn.name, fn.arguments or "")
            if choice.finish_reason:
                if self.tool_calls:
                    yield ToolCalls(tuple(self.tool_calls.calls()))
                yield Finish(self.finish_reason or choice.finish_reason, choice.index)
        if chunk.usage is not None:
            yield UsageReport(chunk.usage)

    async def text(self) -> AsyncIterator[str]:
        """Only the answer's text pieces, in order (the ``TextDelta`` events, without the objects)."""
        try:
            async for chunk in self:
                for choice in chunk.choices:
                    if choice.delta.content:
                        yield choice.delta.content
        finally:
            await self.aclose()

    @property
    def content(self) -> str:
        return "".join(self._content)

    @property
    def reasoning(self) -> str | None:
        return "".join(self._reasoning) if self._reasoning else None

    def completion(self) -> ChatCompletion:
        """What the stream said so far, as one completion (after iteration: the whole answer)."""
        calls = self.tool_calls.calls() or None
        message = ChatCompletionMessage(self.content if self._content or not calls else None,
                                        reasoning=self.reasoning, tool_calls=calls)
        return ChatCompletion(self.id, self.model, self.created,
                              [Choice(0, message, self.finish_reason)], self.usage)


def _stream_error(obj: dict[str, Any]) -> StreamError:
    error = obj.get("error", obj)
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        message = error.get("message") or excerpt(json.dumps(error, ensure_ascii=False))
    else:
        code, message = None, str(error)
    prefix = f"the stream reported an error ({code})" if code else "the stream reported an error"
    return StreamError(f"{prefix}: {excerpt(str(message), 300)}", code=str(code) if code else None, body=obj)
