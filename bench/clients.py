"""The client variants under test, each reduced to one thing: the text pieces of one streamed answer.

Every variant is used the way its documentation shows; none gets help it would not get in real use.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from .payload import messages_for

__all__ = ["VARIANTS", "Variant", "client_unavailable", "make_variant"]

API_KEY = "bench-key"
MODEL = "solar-pro4"


class Variant:
    """One way of streaming an answer. ``pieces`` yields the answer's non-empty text pieces."""

    name = ""
    label = ""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def pieces(self, chunks: int) -> AsyncIterator[str]:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the variant holds across requests (pools, clients)."""


class UpstageText(Variant):
    """(a) The seed-compatible provider: ``Upstage.create_async_generator``."""

    name, label = "upstage_text", "Upstage.create_async_generator"

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        from solarstream import Upstage

        self._upstage = Upstage

    async def pieces(self, chunks: int) -> AsyncIterator[str]:
        async for piece in self._upstage.create_async_generator(
            model=MODEL, messages=messages_for(chunks), base_url=self.base_url, api_key=API_KEY
        ):
            yield piece

    async def aclose(self) -> None:
        await self._upstage.aclose()  # the default instance that class-level calls use


class UpstageEvents(UpstageText):
    """(b) The typed event stream: ``Upstage.stream_events``, keeping the ``TextDelta`` events."""

    name, label = "upstage_events", "Upstage.stream_events"

    async def pieces(self, chunks: int) -> AsyncIterator[str]:
        from solarstream.types import TextDelta

        async for event in self._upstage.stream_events(
            model=MODEL, messages=messages_for(chunks), base_url=self.base_url, api_key=API_KEY
        ):
            if isinstance(event, TextDelta):
                yield event.text


class NaiveLoop(Variant):
    """(c) The seed's original provider loop: a new ``ClientSession`` per request, ``async for line in
    response.content``, ``startswith(b"data: ")``, ``json.loads``, ``choices[0]["delta"].get("content")``."""

    name, label = "naive", "seed's naive aiohttp loop"

    async def pieces(self, chunks: int) -> AsyncIterator[str]:
        headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
        data = {"model": MODEL, "messages": messages_for(chunks), "stream": True}
        async with aiohttp.ClientSession(headers=headers) as session, session.post(
            self.base_url + "/chat/completions", json=data
        ) as response:
            response.raise_for_status()
            async for line in response.content:
                if line.startswith(b"data: "):
                    payload = line[6:].strip()
                    if payload == b"[DONE]":
                        break
                    try:
                        chunk = json.loads(payload)
                    except json.JSONDecodeError:
                        continue
                    content = chunk["choices"][0]["delta"].get("content")
                    if content:
                        yield content


class PooledLoop(Variant):
    """(f) A minimal hand-written aiohttp loop that keeps one ``ClientSession`` (so its connection is
    reused, as solarstream's is): the floor for per-request cost. It parses SSE lines as the naive loop
    does and checks nothing (no validation, no error mapping, no truncation detection)."""

    name, label = "pooled", "raw aiohttp loop, one pooled session"

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self._session: aiohttp.ClientSession | None = None
        self._headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}

    async def pieces(self, chunks: int) -> AsyncIterator[str]:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers)
        data = json.dumps({"model": MODEL, "messages": messages_for(chunks), "stream": True})
        async with self._session.post(self.base_url + "/chat/completions", data=data) as response:
            response.raise_for_status()
            async for line in response.content:
                if line.startswith(b"data: "):
                    payload = line[6:].strip()
                    if payload == b"[DONE]":
                        break
                    content = json.loads(payload)["choices"][0]["delta"].get("content")
                    if content:
                        yield content

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class OpenAISDK(Variant):
    """(d) The official ``openai`` SDK: one ``AsyncOpenAI`` client, ``stream=True``."""

    name, label = "openai", "openai SDK AsyncOpenAI"

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        from openai import AsyncOpenAI

        self._client = AsyncOpenAI(base_url=base_url, api_key=API_KEY)

    async def pieces(self, chunks: int) -> AsyncIterator[str]:
        messages: Any = messages_for(chunks)  # the SDK's TypedDict message types
        stream = await self._client.chat.completions.create(model=MODEL, messages=messages, stream=True)
        async with stream:
            async for chunk in stream:
                if chunk.choices:
                    content = chunk.choices[0].delta.content
                    if content:
                        yield content

    async def aclose(self) -> None:
        await self._client.close()


class SolarClient(Variant):
    """(e) ``solarstream.AsyncClient``: ``client.chat.completions.create(..., stream=True)``."""

    name, label = "asyncclient", "solarstream.AsyncClient"

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        module: Any = importlib.import_module("solarstream.client")
        self._client: Any = module.AsyncClient(base_url=base_url, api_key=API_KEY)

    async def pieces(self, chunks: int) -> AsyncIterator[str]:
        stream = await self._client.chat.completions.create(
            model=MODEL, messages=messages_for(chunks), stream=True
        )
        async with stream:
            async for chunk in stream:
                if chunk.choices:
                    content = chunk.choices[0].delta.content
                    if content:
                        yield content

    async def aclose(self) -> None:
        close = getattr(self._client, "aclose", None) or getattr(self._client, "close", None)
        if close is not None:
            result = close()
            if hasattr(result, "__await__"):
                await result


VARIANTS: dict[str, Callable[[str], Variant]] = {
    cls.name: cls for cls in (UpstageText, UpstageEvents, NaiveLoop, OpenAISDK, SolarClient, PooledLoop)
}


def make_variant(name: str, base_url: str) -> Variant:
    return VARIANTS[name](base_url)


def client_unavailable() -> str | None:
    """Why ``solarstream.AsyncClient`` cannot be benchmarked yet, or None when it can."""
    try:
        module = importlib.import_module("solarstream.client")
    except ImportError as exc:
        return f"solarstream.client is not importable yet ({type(exc).__name__}: {exc})"
    if not hasattr(module, "AsyncClient"):
        return "solarstream.client has no AsyncClient yet"
    return None
