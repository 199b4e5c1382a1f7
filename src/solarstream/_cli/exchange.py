"""One question and its answer, whatever happens to it: the record that the log keeps.

``Exchange.run`` asks once and renders the answer as it arrives. Afterwards the exchange says how
it ended (``complete``; ``interrupted`` by Ctrl-C or by a reader of stdout that left; ``failed``,
with the error line) and holds what arrived, so a partial answer is kept and logged as partial,
never as complete.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequestError, SolarstreamError
from .failures import error_line, was_sent
from .params import name_the_option

if TYPE_CHECKING:
    from ..client import AsyncChatCompletionStream, AsyncClient
    from ..types import ChatCompletion, Messages, Usage
    from .render import Renderer
    from .settings import ChatSettings

__all__ = ["Exchange", "usage_line"]


class Exchange:
    def __init__(self, prompt: str, settings: ChatSettings, messages: Messages) -> None:
        self.prompt = prompt
        self.settings = settings
        self.messages = messages
        #: the request parameters as sent (the stream asks for usage unless told otherwise)
        self.params: dict[str, Any] = dict(settings.params)
        if settings.stream:
            self.params.setdefault("stream_options", {"include_usage": True})
        self.started = time.time()
        self.duration = 0.0
        self.status = "complete"
        self.error: str | None = None
        #: False when the request was refused before sending (no key, a known-invalid parameter)
        self.sent = True
        self._stream: AsyncChatCompletionStream | None = None
        self._completion: ChatCompletion | None = None

    async def run(self, client: AsyncClient, renderer: Renderer) -> ChatCompletion:
        """Ask and render; exceptions propagate after the outcome is noted."""
        clock = time.monotonic()
        try:
            return await self._ask(client, renderer)
        except (asyncio.CancelledError, KeyboardInterrupt, BrokenPipeError):  # Ctrl-C, or the reader left
            self.status = "interrupted"
            raise
        except InvalidRequestError as exc:
            self._failed(exc)
            renamed = name_the_option(exc, self.settings.option_keys)
            if renamed is exc:
                raise
            raise renamed from exc
        except SolarstreamError as exc:
            self._failed(exc)
            raise
        except BaseException as exc:
            self.status, self.error = "failed", type(exc).__name__
            raise
        finally:
            self.duration = time.monotonic() - clock

    def _failed(self, exc: SolarstreamError) -> None:
        self.status, self.sent = "failed", was_sent(exc)
        self.error = error_line(name_the_option(exc, self.settings.option_keys)
                                if isinstance(exc, InvalidRequestError) else exc)

    async def _ask(self, client: AsyncClient, renderer: Renderer) -> ChatCompletion:
        settings = self.settings
        if not settings.stream:
            self._completion = await client.chat.completions.create(
                model=settings.model, messages=self.messages, stream=False, **self.params)
            renderer.completion(self._completion)
            return self._completion
        self._stream = await client.chat.completions.create(
            model=settings.model, messages=self.messages, stream=True, **self.params)
        async with self._stream as stream:
            async for chunk in stream:
                renderer.chunk(chunk)
        self._completion = self._stream.completion()
        return self._completion

    def received(self) -> ChatCompletion | None:
        """What arrived: the whole answer, the part that streamed before a failure, or None."""
        if self._completion is not None:
            return self._completion
        return self._stream.completion() if self._stream is not None else None

    @property
    def answer(self) -> str:
        completion = self.received()
        message = completion.choices[0].message if completion and completion.choices else None
        return (message.content if message else None) or ""


def usage_line(usage: Usage | None) -> str:
    """``-u/--usage``: the tokens an answer cost, as one line."""
    if usage is None:
        return "Token usage: not reported by the API"
    prompt = f"{usage.prompt_tokens} input"
    if usage.cached_tokens:
        prompt += f" ({usage.cached_tokens} cached)"
    output = f"{usage.completion_tokens} output"
    if usage.reasoning_tokens:
        output += f" ({usage.reasoning_tokens} reasoning)"
    return f"Token usage: {prompt}, {output}, {usage.total_tokens} total"
