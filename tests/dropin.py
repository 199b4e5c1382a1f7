"""What the drop-in tests (tests/test_dropin_*.py) share: a loopback-only guard, the tool, the prompts.

Third-party clients like to phone home (LiteLLM fetches a model cost map at import, tiktoken its
encodings, LangSmith traces), and a test that quietly reached the internet would pass here and hang
in CI. ``loopback_only()`` turns every name lookup or connection to anything but loopback into an
immediate ``ConnectionRefusedError`` (so a library that falls back on failure does so at once) and
records it, so the test can assert that nothing tried. It is a ``sys.addaudithook`` hook: it sees
every thread, the gateway's too, and every library, whatever HTTP stack it uses.
"""

from __future__ import annotations

import ipaddress
import json
import struct
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from solarstream.emulator import answers

__all__ = [
    "WEATHER_RESULT",
    "WEATHER_TOOL",
    "float32",
    "loopback_only",
    "weather_arguments",
]

_EVENTS = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex")
_lock = threading.Lock()
_armed: list[list[str]] = []  # one list of attempts per active guard
_installed = False


def _is_loopback(host: Any) -> bool:
    if host is None:  # getaddrinfo(None, port): the local wildcard, used to bind
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return True
    name = host.strip("[]").lower()
    if name in ("", "localhost") or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a name other than localhost: resolving it is already reaching out


def _host(event: str, args: tuple[Any, ...]) -> Any:
    if event == "socket.connect":
        address = args[1]
        return address[0] if isinstance(address, tuple) else None  # AF_UNIX paths are local
    return args[0]


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _armed or event not in _EVENTS:
        return
    host = _host(event, args)
    if _is_loopback(host):
        return
    with _lock:
        for attempts in _armed:
            attempts.append(f"{event} {host}")
    raise ConnectionRefusedError(f"the drop-in tests reach loopback only, not {host!r} ({event})")


@contextmanager
def loopback_only() -> Iterator[list[str]]:
    """Refuse (and list) every lookup of or connection to a host that is not loopback."""
    global _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)  # cannot be removed: it stays idle while no guard is armed
            _installed = True
        attempts: list[str] = []
        _armed.append(attempts)
    try:
        yield attempts
    finally:
        with _lock:
            _armed.remove(attempts)


# --- the tool every client calls, and what the emulator answers -----------------------------------

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
WEATHER_RESULT = "Sunny, 21 °C"


def weather_arguments(schema: Any = None) -> dict[str, Any]:
    """The arguments the emulator gives a call of a tool with ``schema`` (the weather tool's by default)."""
    parameters = WEATHER_TOOL["function"]["parameters"] if schema is None else schema
    value: dict[str, Any] = json.loads(answers.json_answer_for(parameters))
    return value


def float32(values: list[float]) -> list[float]:
    """``values`` as they come back from base64 (little-endian float32, as the OpenAI API encodes)."""
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))
