"""The question of a one-shot chat, from PROMPT and stdin, joined as ``llm`` joins them.

* PROMPT only (stdin a terminal): PROMPT.
* stdin only (no PROMPT, or PROMPT ``-``): what stdin holds.
* Both (``cat notes.txt | solarstream chat "Summarise"``): stdin, a space, then PROMPT; this is
  ``llm``'s order (its ``read_prompt``: ``" ".join([stdin_prompt, prompt])``). Blank stdin is ignored.
* A PROMPT that is empty or only whitespace is refused (exit 2), as is empty stdin.
"""

from __future__ import annotations

from typing import TextIO

import click

__all__ = ["check_prompt", "read_prompt"]


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def check_prompt(prompt: str | None) -> None:
    if prompt is not None and prompt != "-" and not prompt.strip():
        raise click.UsageError("PROMPT is empty: give a question, pipe text on stdin, or use -i for a conversation")


def read_prompt(prompt: str | None, stdin: TextIO | None) -> str:
    check_prompt(prompt)
    piped = stdin is not None and not _isatty(stdin)
    if prompt is not None and prompt != "-":
        extra = stdin.read() if piped and stdin is not None else ""
        return f"{extra} {prompt}" if extra.strip() else prompt
    if stdin is None or (prompt is None and not piped):
        raise click.UsageError("no prompt: give PROMPT, pipe text on stdin, or use -i for a conversation")
    text = stdin.read()
    if not text.strip():
        raise click.UsageError("the prompt read from stdin is empty; pipe some text in or give PROMPT")
    return text
