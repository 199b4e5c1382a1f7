"""``solarstream chat -i``: a conversation at the terminal.

Line editing and history come from the stdlib ``readline`` (arrow keys, Ctrl-R). Ctrl-C while an
answer streams cancels that answer only: the stream is closed, the partial answer is kept in the
conversation, and the prompt comes back. At the prompt, Ctrl-C twice in a row or Ctrl-D leaves.

Waiting for a line blocks the event loop on purpose: nothing else runs meanwhile (the offline
emulator, on the same loop, has no request to serve until the line is sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import TYPE_CHECKING

import click

from ..errors import SolarstreamError
from .chat import ChatSettings, answer, first_messages
from .connection import Connection, open_client
from .render import Renderer, notice
from .runner import SigintCancels

if TYPE_CHECKING:
    from ..client import AsyncClient
    from ..types import Messages

__all__ = ["HELP", "PROMPT", "converse"]

PROMPT = "you> "
HELP = """\
/exit             leave (also Ctrl-D, or Ctrl-C twice at the prompt)
/reset            forget the conversation (the system prompt stays)
/model [NAME]     show or change the model
/system [TEXT]    set the system prompt (no TEXT: remove it)
/help             this list
Ctrl-C during an answer stops it; the partial answer stays in the conversation."""


def _enable_line_editing() -> None:
    with contextlib.suppress(ImportError):  # not on every platform; input() works without it
        import readline  # noqa: F401  (importing it gives input() line editing and history)


class Conversation:
    """The messages so far and the settings for the next answer."""

    def __init__(self, settings: ChatSettings) -> None:
        self.settings = settings
        self.turns: Messages = []

    def messages(self) -> Messages:
        return [*first_messages(self.settings), *self.turns]

    def command(self, line: str) -> bool:
        """Apply a /command; False means leave."""
        name, _, arg = line[1:].partition(" ")
        arg = arg.strip()
        if name in ("exit", "quit"):
            return False
        if name == "reset":
            self.turns = []
            notice("(conversation cleared)")
        elif name == "model":
            if arg:
                self.settings = self.settings.with_model(arg)
            notice(f"(model: {self.settings.model})")
        elif name == "system":
            self.settings = self.settings.with_system(arg or None)
            notice(f"(system prompt: {arg})" if arg else "(system prompt removed)")
        elif name == "help":
            click.echo(HELP)
        else:
            notice(f"unknown command /{name}; /help lists the commands")
        return True


async def converse(conn: Connection, settings: ChatSettings, first: str | None) -> None:
    _enable_line_editing()
    # at the prompt Ctrl-C must raise KeyboardInterrupt in input(), not cancel the task (the runner's
    # handler); each answer installs its own handler while it streams
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
    conversation = Conversation(settings)
    async with open_client(conn) as client:
        notice(f"solarstream chat with {settings.model}: /help for commands, Ctrl-D to leave")
        pending = first
        interrupts = 0
        while True:
            if pending is None:
                try:
                    line = input(PROMPT)  # noqa: ASYNC250  (blocking on purpose: see the module docstring)
                except EOFError:
                    click.echo()
                    return
                except KeyboardInterrupt:
                    interrupts += 1
                    click.echo()
                    if interrupts >= 2:
                        return
                    notice("(press Ctrl-C again or Ctrl-D to leave)")
                    continue
            else:
                line, pending = pending, None
            interrupts = 0
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                if not conversation.command(line):
                    return
                continue
            await _turn(client, conversation, line)


async def _turn(client: AsyncClient, conversation: Conversation, question: str) -> None:
    """One question and its answer; Ctrl-C cancels only this."""
    conversation.turns.append({"role": "user", "content": question})
    renderer = Renderer()
    task = asyncio.ensure_future(answer(client, conversation.messages(), conversation.settings, renderer))
    sigint = SigintCancels(asyncio.get_running_loop(), task)
    try:
        with sigint:  # afterwards Ctrl-C is KeyboardInterrupt again, for input()
            await asyncio.wait({task})
    finally:
        if not task.done():  # we were cancelled from outside: take the answer down with us
            task.cancel()
        renderer.finish()
    if task.cancelled():
        if not sigint.interrupted:
            raise asyncio.CancelledError
        notice("(answer stopped)")
        partial = renderer.content
        if partial:
            conversation.turns.append({"role": "assistant", "content": partial})
        else:
            conversation.turns.pop()
        return
    exc = task.exception()
    if exc is not None:
        conversation.turns.pop()
        if isinstance(exc, SolarstreamError):
            from ..cli import error_line

            click.echo(f"solarstream: error: {error_line(exc)}", err=True)
            return
        raise exc
    completion = task.result()
    message = completion.choices[0].message if completion.choices else None
    conversation.turns.append({"role": "assistant", "content": (message.content if message else None) or ""})
    sys.stdout.flush()
