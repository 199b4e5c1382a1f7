"""``solarstream chat -i``: a conversation at the terminal.

Line editing and history come from the stdlib ``readline`` (arrow keys, Ctrl-R). A message of
several lines can be pasted at once: GNU readline 8.1 and later turn bracketed paste on by default,
so a paste arrives as one message, newlines included (``set enable-bracketed-paste off`` in
``~/.inputrc`` turns that off). Or type ``!multi`` (as in ``llm``), the lines, and ``!end``;
``!multi TOKEN`` ends with ``!end TOKEN`` instead, for text that contains ``!end``.

Ctrl-C while an answer streams cancels that answer only: the stream is closed, the partial answer
is kept in the conversation (and logged as interrupted), and the prompt comes back. At the
prompt, Ctrl-C twice in a row or Ctrl-D leaves.

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
from .connection import Connection, endpoint_label, open_client
from .exchange import Exchange, usage_line
from .failures import error_line
from .render import Renderer, notice
from .runner import SigintCancels

if TYPE_CHECKING:
    from ..client import AsyncClient
    from .session import Session
    from .settings import ChatSettings

__all__ = ["CONTINUATION", "HELP", "PROMPT", "converse"]

PROMPT = "you> "
#: the prompt for the lines between !multi and !end
CONTINUATION = "...> "
HELP = """\
/exit             leave (also exit, quit, Ctrl-D, or Ctrl-C twice at the prompt)
/reset            start a new conversation (the system prompt stays)
/model [NAME]     show or change the model
/system [TEXT]    set the system prompt (no TEXT: remove it)
/help             this list
!multi ... !end   a message of several lines (a pasted block is one message too)
Ctrl-C during an answer stops it; the partial answer stays in the conversation."""


def _enable_line_editing() -> None:
    with contextlib.suppress(ImportError):  # not on every platform; input() works without it
        import readline  # noqa: F401  (importing it gives input() line editing and history)


class Reader:
    """Reads the next message: a typed line, a pasted block, or the lines between !multi and !end."""

    def __init__(self) -> None:
        self._lines: list[str] | None = None  # inside !multi: the lines so far
        self._end = "!end"

    @property
    def in_multi(self) -> bool:
        return self._lines is not None

    def drop(self) -> None:
        """Forget a !multi message being typed (after Ctrl-C)."""
        self._lines = None

    def read(self) -> tuple[str, bool] | None:
        """``(text, typed)``: ``typed`` is False for a !multi message (never a /command); None at EOF."""
        while True:
            try:
                line = input(PROMPT if self._lines is None else CONTINUATION)  # blocks the loop: see the docstring
            except EOFError:
                return None
            if self._lines is not None:
                if line.strip() == self._end:
                    text, self._lines = "\n".join(self._lines), None
                    return text, False
                self._lines.append(line)
                continue
            word, _, token = line.strip().partition(" ")
            if word == "!multi" and "\n" not in line:
                self._lines = []
                self._end = f"!end {token.strip()}" if token.strip() else "!end"
                continue
            return line, True


class Conversation:
    """The settings for the next answer and the session (turns so far, the log)."""

    def __init__(self, settings: ChatSettings, session: Session) -> None:
        self.settings = settings
        self.session = session

    def command(self, line: str) -> bool:
        """Apply a /command; False means leave."""
        name, _, arg = line[1:].partition(" ")
        arg = arg.strip()
        if name in ("exit", "quit"):
            return False
        if name == "reset":
            self.session.reset()
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


async def converse(conn: Connection, settings: ChatSettings, session: Session, first: str | None) -> None:
    _enable_line_editing()
    # at the prompt Ctrl-C must raise KeyboardInterrupt in input(), not cancel the task (the runner's
    # handler); each answer installs its own handler while it streams
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
    conversation = Conversation(settings, session)
    reader = Reader()
    async with open_client(conn) as client:
        session.endpoint = endpoint_label(conn, client)
        if session.conversation_id is not None:
            notice(f"continuing conversation {session.conversation_id} ({len(session.turns) // 2} earlier turns)")
        notice(f"solarstream chat with {settings.model}: /help for commands, !multi for several lines, "
               "Ctrl-D to leave")
        pending: tuple[str, bool] | None = (first, True) if first is not None else None
        interrupts = 0
        while True:
            if pending is None:
                try:
                    message = reader.read()
                except KeyboardInterrupt:
                    click.echo()
                    if reader.in_multi:
                        reader.drop()
                        notice("(multi-line message dropped)")
                        continue
                    interrupts += 1
                    if interrupts >= 2:
                        return
                    notice("(press Ctrl-C again or Ctrl-D to leave)")
                    continue
                if message is None:
                    click.echo()
                    return
            else:
                message, pending = pending, None
            interrupts = 0
            text, typed = message
            text = text.strip()
            if not text:
                continue
            if typed and "\n" not in text:
                if text.startswith("/"):
                    if not conversation.command(text):
                        return
                    continue
                if text in ("exit", "quit"):  # as in llm
                    return
            await _turn(client, conversation, text)


async def _turn(client: AsyncClient, conversation: Conversation, question: str) -> None:
    """One question and its answer; Ctrl-C cancels only this."""
    settings, session = conversation.settings, conversation.session
    exchange = Exchange(question, settings, session.messages(settings, question))
    renderer = Renderer()
    task = asyncio.ensure_future(exchange.run(client, renderer))
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
        session.record(exchange)
        return
    session.record(exchange)
    exc = task.exception()
    if exc is not None:
        if isinstance(exc, SolarstreamError):
            click.echo(f"solarstream: error: {error_line(exc)}", err=True)
            return
        raise exc
    if settings.show_usage:
        completion = exchange.received()
        notice(usage_line(completion.usage if completion is not None else None))
    sys.stdout.flush()
