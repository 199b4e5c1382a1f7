"""``solarstream chat``: one question (argument or stdin), or a conversation with ``-i``."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import click

from ..providers.upstage.models import DEFAULT_MODEL
from .connection import Connection, connection_options, open_client
from .render import Renderer
from .runner import run

if TYPE_CHECKING:
    from ..client import AsyncClient
    from ..types import ChatCompletion, Messages

__all__ = ["ChatSettings", "answer", "chat"]


@dataclass(frozen=True)
class ChatSettings:
    model: str = DEFAULT_MODEL
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    stream: bool = True
    json_lines: bool = False

    def with_model(self, model: str) -> ChatSettings:
        return replace(self, model=model)

    def with_system(self, system: str | None) -> ChatSettings:
        return replace(self, system=system)


async def answer(client: AsyncClient, messages: Messages, settings: ChatSettings, renderer: Renderer) -> ChatCompletion:
    """Ask once and render the answer as it comes; returns what was received (complete or not).

    On error or cancellation the stream is closed (``async with``) and the exception propagates;
    ``renderer.content`` then holds the answer shown so far.
    """
    params = dict(settings.params)
    if settings.stream:
        if settings.json_lines:
            params.setdefault("stream_options", {"include_usage": True})
        stream = await client.chat.completions.create(model=settings.model, messages=messages, stream=True,
                                                      **params)
        async with stream:
            async for chunk in stream:
                renderer.chunk(chunk)
        return stream.completion()
    completion = await client.chat.completions.create(model=settings.model, messages=messages, stream=False,
                                                      **params)
    renderer.completion(completion)
    return completion


def read_stdin() -> str:
    text = sys.stdin.read()
    if not text.strip():
        raise click.UsageError("the prompt read from stdin is empty; pipe some text in or give PROMPT")
    return text


@click.command()
@click.argument("prompt", required=False)
@click.option("-m", "--model", default=DEFAULT_MODEL, show_default=True,
              help="Model name, alias or dated id (see 'solarstream models').")
@click.option("-s", "--system", metavar="TEXT", help="System prompt.")
@click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature, 0 to 2.")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Longest answer, in tokens (reasoning counts).")
@click.option("--reasoning-effort", metavar="LEVEL",
              help="solar-pro4: none, minimal, low, medium, high, xhigh, max; solar-pro3: low, medium, high.")
@click.option("--no-stream", is_flag=True, help="Wait for the whole answer instead of streaming it.")
@click.option("--json", "json_lines", is_flag=True,
              help="Print one JSON chunk per line (with --no-stream: the completion), reasoning and usage included.")
@click.option("-i", "--interactive", is_flag=True,
              help="A conversation: /exit, /reset, /model NAME, /system TEXT, /help. Ctrl-C stops an answer "
                   "(the partial answer is kept in the conversation); Ctrl-C twice or Ctrl-D leaves.")
@connection_options
def chat(
    prompt: str | None,
    model: str,
    system: str | None,
    temperature: float | None,
    max_tokens: int | None,
    reasoning_effort: str | None,
    no_stream: bool,
    json_lines: bool,
    interactive: bool,
    api_key: str | None,
    base_url: str | None,
    proxy: str | None,
    offline: bool,
    max_retries: int,
) -> None:
    """Ask a Solar model; the answer streams to stdout.

    PROMPT is the question; without it (or with '-') the question is read from stdin, so
    `cat notes.txt | solarstream chat -s "Summarise"` works. Reasoning, when the model gives it,
    is shown dimmed before the answer on a terminal; when stdout is piped only the answer goes
    there (reasoning goes to stderr if that is a terminal).

    Exit status: 0 ok, 1 API or network error, 2 bad usage (also: no API key, or a request that
    is known to be invalid, found before sending), 130 interrupted.
    """
    conn = Connection(api_key=api_key, base_url=base_url, proxy=proxy, offline=offline,
                      max_retries=max_retries)
    conn.check()
    params = {k: v for k, v in (("temperature", temperature), ("max_tokens", max_tokens),
                                ("reasoning_effort", reasoning_effort)) if v is not None}
    settings = ChatSettings(model=model, system=system, params=params, stream=not no_stream, json_lines=json_lines)
    if interactive:
        if json_lines:
            raise click.UsageError("--json is for scripts; it cannot be combined with --interactive")
        if prompt == "-":
            raise click.UsageError("--interactive reads your questions from the terminal; give PROMPT as text or "
                                   "leave it out")
        from .interactive import converse

        run(converse(conn, settings, prompt))
        return
    if prompt is None or prompt == "-":
        if prompt is None and sys.stdin.isatty():
            raise click.UsageError("no prompt: give PROMPT, pipe text on stdin, or use -i for a conversation")
        prompt = read_stdin()
    run(_ask_once(conn, settings, prompt))


def first_messages(settings: ChatSettings) -> Messages:
    return [{"role": "system", "content": settings.system}] if settings.system else []


async def _ask_once(conn: Connection, settings: ChatSettings, prompt: str) -> None:
    messages = [*first_messages(settings), {"role": "user", "content": prompt}]
    renderer = Renderer(json_lines=settings.json_lines)
    async with open_client(conn) as client:
        try:
            await answer(client, messages, settings, renderer)
        finally:
            renderer.finish()
