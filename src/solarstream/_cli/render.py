"""Where each part of an answer goes: the answer to stdout, reasoning apart, notices to stderr.

* The answer's text always goes to stdout, written as it arrives.
* Reasoning: when stdout is a terminal it comes first on stdout, dimmed; when stdout is piped,
  only the answer goes there, and reasoning goes to stderr if that is a terminal (else nowhere;
  ``--json`` keeps it in the chunks).
* ``--json``: one JSON object per line (``chunk.to_dict()``), nothing else on stdout.
* Colour only on terminals, and never when ``NO_COLOR`` is set or ``TERM=dumb``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from ..types import ChatCompletion, ChatCompletionChunk

__all__ = ["Renderer", "notice", "use_color"]

DIM = "\x1b[2m"
RESET = "\x1b[0m"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def use_color(stream: TextIO) -> bool:
    return _isatty(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def notice(text: str) -> None:
    """A side remark for the person at the terminal (stderr, dimmed when colour is allowed)."""
    err = sys.stderr
    err.write(f"{DIM}{text}{RESET}\n" if use_color(err) else f"{text}\n")
    err.flush()


class Renderer:
    """Writes one answer (streamed chunks or a whole completion) according to the rules above."""

    def __init__(self, *, json_lines: bool = False) -> None:
        self.out: TextIO = sys.stdout
        self.json_lines = json_lines
        self._reasoning_to: TextIO | None
        if _isatty(self.out):
            self._reasoning_to = self.out
        elif _isatty(sys.stderr):
            self._reasoning_to = sys.stderr
        else:
            self._reasoning_to = None
        self._dim = self._reasoning_to is not None and use_color(self._reasoning_to)
        self._in_reasoning = False
        self._reasoning_shown = False
        self._answer_started = False
        self._last = "\n"
        self._content: list[str] = []

    @property
    def content(self) -> str:
        """The answer's text written so far."""
        return "".join(self._content)

    # --- input -----------------------------------------------------------------------------

    def chunk(self, chunk: ChatCompletionChunk) -> None:
        if self.json_lines:
            self._json(chunk.to_dict())
            return
        for choice in chunk.choices:
            if choice.index:
                continue
            delta = choice.delta
            if delta.reasoning:
                self.reasoning(delta.reasoning)
            if delta.content:
                self.answer(delta.content)

    def completion(self, completion: ChatCompletion) -> None:
        if self.json_lines:
            self._json(completion.to_dict())
            return
        if completion.choices:
            message = completion.choices[0].message
            if message.reasoning:
                self.reasoning(message.reasoning)
            if message.content:
                self.answer(message.content)

    def reasoning(self, text: str) -> None:
        target = self._reasoning_to
        if target is None or self._answer_started:
            return
        if not self._in_reasoning:
            self._in_reasoning = self._reasoning_shown = True
            if self._dim:
                target.write(DIM)
        target.write(text)
        target.flush()
        if target is self.out:
            self._last = text[-1:]

    def answer(self, text: str) -> None:
        self._end_reasoning(gap=True)
        self._answer_started = True
        self._content.append(text)
        self.out.write(text)
        self.out.flush()
        self._last = text[-1:]

    # --- the end -----------------------------------------------------------------------------

    def finish(self) -> None:
        """Close any dim section and end the last line (also after an error or Ctrl-C)."""
        self._end_reasoning(gap=False)
        if not self.json_lines and self._last != "\n":
            self.out.write("\n")
            self._last = "\n"
        self.out.flush()

    def _end_reasoning(self, *, gap: bool) -> None:
        if not self._in_reasoning:
            return
        self._in_reasoning = False
        target = self._reasoning_to
        assert target is not None
        if self._dim:
            target.write(RESET)
        target.write("\n\n" if gap and target is self.out else "\n")
        target.flush()
        if target is self.out:
            self._last = "\n"

    def _json(self, obj: dict[str, Any]) -> None:
        self.out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.out.flush()
