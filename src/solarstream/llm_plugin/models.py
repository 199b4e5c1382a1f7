"""The llm model classes: ``SolarChat`` (sync, on ``solarstream.Client``) and ``AsyncSolarChat``.

The key comes from llm (``llm keys set upstage``, ``--key``, or ``UPSTAGE_API_KEY``); the base URL
from ``UPSTAGE_BASE_URL`` or ``UPSTAGE_API_BASE``, as everywhere in solarstream. solarstream's typed
errors reach llm as ``llm.ModelError`` with the same message (the typed error is its ``__cause__``),
so the CLI prints one ``Error:`` line instead of a traceback.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from types import TracebackType

import llm
from llm.parts import StreamEvent

from ..client import AsyncClient, Client
from ..errors import SolarstreamError
from ..providers.upstage.models import ModelInfo
from .events import Answer
from .options import options_for
from .request import request_params

__all__ = ["AsyncSolarChat", "SolarChat", "model_error"]


def model_error(exc: SolarstreamError) -> llm.ModelError:
    """The llm error for a solarstream error: its message, with the fix in llm's terms."""
    message = exc.message.replace("pass api_key=...", "run 'llm keys set upstage'")
    message = message.replace("pass api_key=", "run 'llm keys set upstage'")
    return llm.ModelError(" ".join(message.split()))


class _ModelErrors:
    """``with _ModelErrors():`` turns a solarstream error into ``llm.ModelError`` (chained)."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, SolarstreamError):
            raise model_error(exc) from exc


class _Solar:
    """What the sync and async models share: identity, key, options and capabilities."""

    needs_key: str | None = "upstage"
    key_env_var: str | None = "UPSTAGE_API_KEY"
    can_stream: bool = True
    supports_schema: bool = True

    def __init__(self, model_id: str, info: ModelInfo) -> None:
        self.model_id = model_id
        self.info = info
        self.supports_tools = info.tools
        self.Options = options_for(info)  # llm reads the options class from the instance

    def __str__(self) -> str:
        return f"Upstage Solar: {self.model_id}"


class SolarChat(_Solar, llm.KeyModel):
    """A Solar chat model for llm's sync API and CLI."""

    def execute(
        self,
        prompt: llm.Prompt,
        stream: bool,
        response: llm.Response,
        conversation: llm.Conversation | None,
        key: str | None = None,
    ) -> Iterator[str | StreamEvent]:
        answer = Answer()
        with _ModelErrors(), Client(api_key=key) as client:
            params = request_params(prompt, stream=stream)
            if stream:
                with client.chat.completions.create(model=self.model_id, stream=True, **params) as chunks:
                    for chunk in chunks:
                        yield from answer.feed(chunk)
                    completion = chunks.completion()
            else:
                completion = client.chat.completions.create(model=self.model_id, stream=False, **params)
                yield from answer.whole(completion)
            yield from answer.finish(response, completion)


class AsyncSolarChat(_Solar, llm.AsyncKeyModel):
    """The same model for llm's async API (``llm.get_async_model``, ``llm --async``)."""

    def __str__(self) -> str:
        return f"Upstage Solar (async): {self.model_id}"

    async def execute(
        self,
        prompt: llm.Prompt,
        stream: bool,
        response: llm.AsyncResponse,
        conversation: llm.AsyncConversation | None,
        key: str | None = None,
    ) -> AsyncGenerator[str | StreamEvent, None]:
        answer = Answer()
        with _ModelErrors():
            async with AsyncClient(api_key=key) as client:
                params = request_params(prompt, stream=stream)
                if stream:
                    chunks = await client.chat.completions.create(model=self.model_id, stream=True, **params)
                    async with chunks:
                        async for chunk in chunks:
                            for event in answer.feed(chunk):
                                yield event
                    completion = chunks.completion()
                else:
                    completion = await client.chat.completions.create(model=self.model_id, stream=False, **params)
                    for event in answer.whole(completion):
                        yield event
                for event in answer.finish(response, completion):
                    yield event

