"""Log lines a client cannot forge: control and other non-printable characters are escaped.

A request path like ``/x%0A2025-01-01 INFO POST /v1/chat/completions 200`` decodes to a newline and a
fake line; a model name can carry ``\\x1b`` terminal escapes or U+2028. ``escape`` writes such
characters as ``\\xNN`` / ``\\uNNNN`` (and a backslash as ``\\\\``, so an escape cannot be faked
either). ``SafeLogFilter`` applies the same to every record of a logger or handler as a backstop, so
warnings that quote upstream or client text are safe too.
"""

from __future__ import annotations

import logging
import re
import textwrap

__all__ = ["SafeLogFilter", "escape", "escape_field", "install"]

#: anything ``str.isprintable`` rejects (controls, format characters such as U+202E, separators)
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
_DONE = "_solarstream_safe_traceback"


def _char(match: re.Match[str]) -> str:
    c = match.group()
    if c.isprintable():
        return c
    code = ord(c)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str) -> str:
    """``text`` with every non-printable character escaped; printable text (any script) unchanged."""
    if text.isascii() and text.isprintable():
        return text
    return _UNPRINTABLE.sub(_char, text)


def escape_field(text: str, limit: int = 200) -> str:
    """A client-controlled value for a space-separated log line: escaped, without spaces, cut at ``limit``.

    Backslashes are doubled first, so ``\\x0a`` in the output always stands for an escaped newline.
    """
    extra = len(text) - limit
    if extra > 0:
        text = text[:limit]
    safe = escape(text.replace("\\", "\\\\")).replace(" ", "\\x20")
    return f"{safe}...(+{extra})" if extra > 0 else safe


class SafeLogFilter(logging.Filter):
    """Escapes non-printable characters in each record's message; indents its traceback.

    The message is formatted once here (``record.args`` cleared), so whatever handler or formatter
    follows sees the escaped text. A traceback keeps its lines, each indented by two spaces, so no
    line it adds can pass for a log line of its own.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: logging reports it when the record is formatted
            return True
        safe = escape(message)
        if safe != message or record.args:
            record.msg, record.args = safe, None
        if record.exc_info and not getattr(record, _DONE, False):
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = textwrap.indent(escape_lines(text), "  ")
            setattr(record, _DONE, True)
        return True


def escape_lines(text: str) -> str:
    """Escapes each line of ``text`` and keeps the line breaks."""
    return "\n".join(escape(line) for line in text.split("\n"))


def install(*targets: logging.Logger | logging.Handler) -> None:
    """Adds one ``SafeLogFilter`` to each logger or handler that has none yet."""
    for target in targets:
        if not any(isinstance(f, SafeLogFilter) for f in target.filters):
            target.addFilter(SafeLogFilter())
