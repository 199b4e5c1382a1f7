"""Public data types: the seed's aliases, the typed stream events, and OpenAI-shaped objects.

Chunk and completion objects are small ``__slots__`` classes built straight from the wire dict
(no validation framework): they are built once per streamed chunk, so they must be cheap.
``to_dict()`` gives back the JSON-ready OpenAI wire form.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AsyncResult",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "Choice",
    "ChoiceDelta",
    "ChoiceDeltaToolCall",
    "ChunkChoice",
    "CreateEmbeddingResponse",
    "CreateResult",
    "Embedding",
    "EmbeddingUsage",
    "Finish",
    "FunctionCall",
    "Messages",
    "Model",
    "ReasoningDelta",
    "StreamEvent",
    "TextDelta",
    "ToolCall",
    "ToolCallDelta",
    "ToolCalls",
    "Usage",
    "UsageReport",
]

Messages = list[dict[str, Any]]
AsyncResult = AsyncIterator[str]
CreateResult = Iterator[str]


class _Record:
    """Shared behaviour of the wire objects: equality, repr, ``to_dict`` and the openai SDK's
    ``model_dump`` / ``model_dump_json`` (so ``messages.append(message.model_dump())`` works)."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def model_dump(self, *, exclude_none: bool = False, **_: Any) -> dict[str, Any]:
        """The wire dict, as pydantic's ``model_dump`` names it (other pydantic options are ignored)."""
        data = self.to_dict()
        return _without_none(data) if exclude_none else data

    def model_dump_json(self, *, exclude_none: bool = False, **_: Any) -> str:
        import json

        return json.dumps(self.model_dump(exclude_none=exclude_none), ensure_ascii=False, separators=(",", ":"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Record) and type(other) is type(self) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"{type(self).__name__}({fields})"


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def _opt_dict(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, Mapping) else None


def reasoning_of(d: Mapping[str, Any]) -> str | None:
    """A delta's or message's reasoning: Upstage says ``reasoning``; some OpenAI-compatible servers
    say ``reasoning_content``. The one place that chooses."""
    reasoning = d.get("reasoning")
    return reasoning if reasoning is not None else d.get("reasoning_content")


def finish_reason(reason: str | None, has_tool_calls: bool, stop_with_tool_calls: bool) -> str | None:
    """``stop`` is reported as ``tool_calls`` when calls came and the provider is known to say
    ``stop`` for forced tool calls (``Quirks.stop_with_tool_calls``)."""
    if reason == "stop" and has_tool_calls and stop_with_tool_calls:
        return "tool_calls"
    return reason


class Usage(_Record):
    __slots__ = (
        "completion_tokens",
        "completion_tokens_details",
        "prompt_tokens",
        "prompt_tokens_details",
        "total_tokens",
    )

    def __init__(
        self,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        total_tokens: int = 0,
        completion_tokens_details: dict[str, Any] | None = None,
        prompt_tokens_details: dict[str, Any] | None = None,
    ) -> None:
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.total_tokens = total_tokens
        self.completion_tokens_details = completion_tokens_details
        self.prompt_tokens_details = prompt_tokens_details

    @property
    def reasoning_tokens(self) -> int:
        details = self.completion_tokens_details or {}
        return int(details.get("reasoning_tokens") or 0)

    @property
    def cached_tokens(self) -> int:
        details = self.prompt_tokens_details or {}
        return int(details.get("cached_tokens") or 0)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Usage:
        return cls(
            int(d.get("prompt_tokens") or 0),
            int(d.get("completion_tokens") or 0),
            int(d.get("total_tokens") or 0),
            _opt_dict(d.get("completion_tokens_details")),
            _opt_dict(d.get("prompt_tokens_details")),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.completion_tokens_details is not None:
            out["completion_tokens_details"] = self.completion_tokens_details
        if self.prompt_tokens_details is not None:
            out["prompt_tokens_details"] = self.prompt_tokens_details
        return out


class FunctionCall(_Record):
    __slots__ = ("arguments", "name")

    def __init__(self, name: str | None = None, arguments: str | None = None) -> None:
        self.name = name
        self.arguments = arguments

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.name is not None:
            out["name"] = self.name
        if self.arguments is not None:
            out["arguments"] = self.arguments
        return out


class ToolCall(_Record):
    """A complete tool call: ``function.arguments`` is the whole JSON text."""

    __slots__ = ("function", "id", "type")

    def __init__(self, id: str, function: FunctionCall, type: str = "function") -> None:
        self.id = id
        self.type = type
        self.function = function

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ToolCall:
        fn = d.get("function") or {}
        return cls(str(d.get("id") or ""), FunctionCall(fn.get("name"), fn.get("arguments") or ""),
                   d.get("type") or "function")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "function": self.function.to_dict()}


class ChoiceDeltaToolCall(_Record):
    """A piece of a streamed tool call; pieces with the same ``index`` belong together."""

    __slots__ = ("function", "id", "index", "type")

    def __init__(
        self, index: int, id: str | None = None, function: FunctionCall | None = None,
        type: str | None = None,
    ) -> None:
        self.index = index
        self.id = id
        self.type = type
        self.function = function

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ChoiceDeltaToolCall:
        fn = d.get("function")
        return cls(
            int(d.get("index") or 0),
            d.get("id"),
            FunctionCall(fn.get("name"), fn.get("arguments")) if isinstance(fn, Mapping) else None,
            d.get("type"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index}
        if self.id is not None:
            out["id"] = self.id
        if self.type is not None:
            out["type"] = self.type
        if self.function is not None:
            out["function"] = self.function.to_dict()
        return out


class ChoiceDelta(_Record):
    __slots__ = ("content", "reasoning", "role", "tool_calls")

    def __init__(
        self,
        role: str | None = None,
        content: str | None = None,
        reasoning: str | None = None,
        tool_calls: list[ChoiceDeltaToolCall] | None = None,
    ) -> None:
        self.role = role
        self.content = content
        self.reasoning = reasoning
        self.tool_calls = tool_calls

    @property
    def reasoning_content(self) -> str | None:
        """The name some OpenAI-compatible servers use for ``reasoning``."""
        return self.reasoning

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.role is not None:
            out["role"] = self.role
        if self.content is not None:
            out["content"] = self.content
        if self.reasoning is not None:
            out["reasoning"] = self.reasoning
        if self.tool_calls is not None:
            out["tool_calls"] = [t.to_dict() for t in self.tool_calls]
        return out


class ChunkChoice(_Record):
    __slots__ = ("delta", "finish_reason", "index", "logprobs")

    def __init__(
        self, index: int, delta: ChoiceDelta, finish_reason: str | None = None, logprobs: Any = None
    ) -> None:
        self.index = index
        self.delta = delta
        self.finish_reason = finish_reason
        self.logprobs = logprobs

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "delta": self.delta.to_dict(),
            "logprobs": self.logprobs,
            "finish_reason": self.finish_reason,
        }


def _chunk_choice(c: Mapping[str, Any]) -> ChunkChoice:
    d = c.get("delta") or {}
    calls = d.get("tool_calls")
    delta = ChoiceDelta(
        d.get("role"),
        d.get("content"),
        reasoning_of(d),
        [ChoiceDeltaToolCall.from_dict(t) for t in calls] if calls else None,
    )
    return ChunkChoice(c.get("index") or 0, delta, c.get("finish_reason"), c.get("logprobs"))


class ChatCompletionChunk(_Record):
    """One streamed chunk, in the OpenAI SDK's attribute shape."""

    __slots__ = ("choices", "created", "id", "model", "object", "system_fingerprint", "usage")

    def __init__(
        self,
        id: str,
        model: str,
        created: int,
        choices: list[ChunkChoice],
        usage: Usage | None = None,
        system_fingerprint: str | None = None,
        object: str = "chat.completion.chunk",
    ) -> None:
        self.id = id
        self.object = object
        self.created = created
        self.model = model
        self.choices = choices
        self.usage = usage
        self.system_fingerprint = system_fingerprint

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ChatCompletionChunk:
        usage = d.get("usage")
        return cls(
            d.get("id") or "",
            d.get("model") or "",
            d.get("created") or 0,
            [_chunk_choice(c) for c in d.get("choices") or ()],
            Usage.from_dict(usage) if usage else None,
            d.get("system_fingerprint"),
            d.get("object") or "chat.completion.chunk",
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.system_fingerprint,
            "choices": [c.to_dict() for c in self.choices],
        }
        if self.usage is not None:
            out["usage"] = self.usage.to_dict()
        return out


class ChatCompletionMessage(_Record):
    __slots__ = ("content", "reasoning", "role", "tool_calls")

    def __init__(
        self,
        content: str | None,
        role: str = "assistant",
        reasoning: str | None = None,
        tool_calls: list[ToolCall] | None = None,
    ) -> None:
        self.role = role
        self.content = content
        self.reasoning = reasoning
        self.tool_calls = tool_calls

    @property
    def reasoning_content(self) -> str | None:
        return self.reasoning

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.reasoning is not None:
            out["reasoning"] = self.reasoning
        if self.tool_calls:
            out["tool_calls"] = [t.to_dict() for t in self.tool_calls]
        return out


class Choice(_Record):
    __slots__ = ("finish_reason", "index", "logprobs", "message")

    def __init__(
        self, index: int, message: ChatCompletionMessage, finish_reason: str | None, logprobs: Any = None
    ) -> None:
        self.index = index
        self.message = message
        self.finish_reason = finish_reason
        self.logprobs = logprobs

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "message": self.message.to_dict(),
            "logprobs": self.logprobs,
            "finish_reason": self.finish_reason,
        }


class ChatCompletion(_Record):
    """A whole (non-streamed) answer, in the OpenAI SDK's attribute shape.

    ``request_id`` and ``response_headers`` say where it came from (not part of ``to_dict()``).
    """

    __slots__ = ("choices", "created", "id", "model", "object", "request_id", "response_headers",
                 "system_fingerprint", "usage")

    def __init__(
        self,
        id: str,
        model: str,
        created: int,
        choices: list[Choice],
        usage: Usage | None = None,
        system_fingerprint: str | None = None,
    ) -> None:
        self.id = id
        self.object = "chat.completion"
        self.created = created
        self.model = model
        self.choices = choices
        self.usage = usage
        self.system_fingerprint = system_fingerprint
        self.request_id: str | None = None
        self.response_headers: dict[str, str] | None = None

    @property
    def _request_id(self) -> str | None:
        """The openai SDK's name for ``request_id``."""
        return self.request_id

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, stop_with_tool_calls: bool = False) -> ChatCompletion:
        choices = []
        for c in d.get("choices") or ():
            m = c.get("message") or {}
            calls = [ToolCall.from_dict(t) for t in m.get("tool_calls") or ()]
            finish = finish_reason(c.get("finish_reason"), bool(calls), stop_with_tool_calls)
            message = ChatCompletionMessage(m.get("content"), m.get("role") or "assistant", reasoning_of(m),
                                            calls or None)
            choices.append(Choice(c.get("index") or 0, message, finish, c.get("logprobs")))
        usage = d.get("usage")
        return cls(
            d.get("id") or "",
            d.get("model") or "",
            d.get("created") or 0,
            choices,
            Usage.from_dict(usage) if usage else None,
            d.get("system_fingerprint"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.system_fingerprint,
            "choices": [c.to_dict() for c in self.choices],
        }
        if self.usage is not None:
            out["usage"] = self.usage.to_dict()
        return out


class EmbeddingUsage(_Record):
    __slots__ = ("prompt_tokens", "total_tokens")

    def __init__(self, prompt_tokens: int = 0, total_tokens: int = 0) -> None:
        self.prompt_tokens = prompt_tokens
        self.total_tokens = total_tokens

    def to_dict(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "total_tokens": self.total_tokens}


class Embedding(_Record):
    """One vector: floats, or (``encoding_format="base64"``) base64 of little-endian float32."""

    __slots__ = ("embedding", "index", "object")

    def __init__(self, embedding: list[float] | str, index: int = 0) -> None:
        self.object = "embedding"
        self.index = index
        self.embedding = embedding

    def to_dict(self) -> dict[str, Any]:
        return {"object": self.object, "index": self.index, "embedding": self.embedding}


class CreateEmbeddingResponse(_Record):
    """The answer of ``embeddings.create``, in the OpenAI SDK's shape."""

    __slots__ = ("data", "model", "object", "request_id", "usage")

    def __init__(self, data: list[Embedding], model: str, usage: EmbeddingUsage | None = None) -> None:
        self.object = "list"
        self.data = data
        self.model = model
        self.usage = usage
        self.request_id: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CreateEmbeddingResponse:
        data = [Embedding([float(x) for x in e.get("embedding") or ()], int(e.get("index") or i))
                for i, e in enumerate(d.get("data") or ()) if isinstance(e, Mapping)]
        usage = d.get("usage")
        return cls(data, str(d.get("model") or ""),
                   EmbeddingUsage(int(usage.get("prompt_tokens") or 0), int(usage.get("total_tokens") or 0))
                   if isinstance(usage, Mapping) else None)

    def encoded(self, encoding_format: str) -> CreateEmbeddingResponse:
        """The same vectors as base64 of little-endian float32 (what the OpenAI API sends for "base64")."""
        if encoding_format != "base64":
            return self
        import base64
        import struct

        data = []
        for e in self.data:
            floats = e.embedding if isinstance(e.embedding, list) else []
            data.append(Embedding(base64.b64encode(struct.pack(f"<{len(floats)}f", *floats)).decode(), e.index))
        out = CreateEmbeddingResponse(data, self.model, self.usage)
        out.request_id = self.request_id
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"object": self.object, "data": [e.to_dict() for e in self.data], "model": self.model}
        if self.usage is not None:
            out["usage"] = self.usage.to_dict()
        return out


class Model(_Record):
    """An entry of ``GET /models``."""

    __slots__ = ("created", "id", "object", "owned_by")

    def __init__(self, id: str, created: int = 0, owned_by: str = "upstage") -> None:
        self.id = id
        self.object = "model"
        self.created = created
        self.owned_by = owned_by

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "object": self.object, "created": self.created, "owned_by": self.owned_by}


# --- typed stream events -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer."""

    text: str
    index: int = 0


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning (from ``reasoning`` or ``reasoning_content``)."""

    text: str
    index: int = 0


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call as it streams; ``arguments`` is a fragment of JSON text."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCalls:
    """The complete tool calls, assembled from their deltas, sent once before ``Finish``."""

    calls: tuple[ToolCall, ...]


@dataclass(frozen=True, slots=True)
class UsageReport:
    usage: Usage


@dataclass(frozen=True, slots=True)
class Finish:
    """Why generation stopped: ``stop``, ``length``, ``tool_calls`` (decided by the calls present)."""

    reason: str
    index: int = 0


StreamEvent = TextDelta | ReasoningDelta | ToolCallDelta | ToolCalls | UsageReport | Finish
