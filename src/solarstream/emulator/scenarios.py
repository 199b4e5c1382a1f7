"""Scenarios: how a request asks the emulator for a wire variant or a failure.

A scenario is a name and ``key=value`` options, written ``[emulate:NAME k=v ...]`` anywhere in the
last user message, or ``NAME k=v ...`` in an ``X-Emulate`` header (several separated by ``;``), or
given to the emulator as a default. The catalog below is the single list of names and options:
parsing, validation, the error for an unknown name and docs/emulator.md all follow it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "CATALOG",
    "DIRECTIVE",
    "MAX_WORD",
    "Option",
    "Scenario",
    "ScenarioError",
    "ScenarioSpec",
    "merge",
    "parse",
    "parse_header",
    "parse_text",
    "strip_directives",
]

#: the longest free-text option value (``code=``): the attempt counters keep these as keys
MAX_WORD = 64

#: ``[emulate:NAME k=v ...]``; the body is parsed by ``parse``.
DIRECTIVE = re.compile(r"\[emulate:([^\]]*)\]")


class ScenarioError(ValueError):
    """A scenario that does not exist or has a bad option; the message says what is valid."""


@dataclass(frozen=True)
class Option:
    """One option of a scenario: its default and, for words, the accepted values."""

    default: int | str | bool
    choices: tuple[str, ...] = ()
    minimum: int = 0
    maximum: int = 10**9


@dataclass(frozen=True)
class ScenarioSpec:
    summary: str
    options: Mapping[str, Option] = field(default_factory=dict)


_TIMES = Option(0)  # fail the first K requests with this scenario, then answer; 0: always fail
_AFTER = Option(2)  # content chunks sent before the fault

CATALOG: dict[str, ScenarioSpec] = {
    "crlf": ScenarioSpec("SSE lines end in CRLF instead of LF"),
    "keepalive": ScenarioSpec("': ping' comment lines before the first chunk and between chunks",
                              {"every": Option(1, minimum=1)}),
    "usage-separate": ScenarioSpec("usage on its own chunk with \"choices\": [] after the finish chunk"),
    "error": ScenarioSpec(
        "answer with an HTTP error before any byte of the body",
        {"status": Option(500, minimum=400, maximum=599), "code": Option(""),
         "body": Option("envelope", ("envelope", "html", "legacy", "empty")), "times": _TIMES},
    ),
    "html-error": ScenarioSpec("an HTML error page from a proxy (no JSON envelope)",
                               {"status": Option(502, minimum=400, maximum=599), "times": _TIMES}),
    "rate-limit": ScenarioSpec(
        "429 with a retry hint in a header",
        {"header": Option("retry-after", ("retry-after", "retry-after-ms", "upstage", "all", "none")),
         "delay_ms": Option(0), "code": Option("too_many_requests", ("too_many_requests", "usage_limit_exceeded")),
         "times": _TIMES},
    ),
    "reset": ScenarioSpec("abort the TCP connection after N content chunks", {"after": _AFTER}),
    "stall": ScenarioSpec("stop sending after N content chunks; keep the connection open until the "
                          "client leaves (or `seconds` pass)", {"after": _AFTER, "seconds": Option(300)}),
    "truncate": ScenarioSpec("end the body cleanly after N content chunks, without finish reason or [DONE]",
                             {"after": _AFTER}),
    "midstream-error": ScenarioSpec(
        "after N content chunks send data: {\"error\": {...}} and end the body",
        {"after": _AFTER, "code": Option("internal_server_error"), "event": Option(False)},
    ),
    "fragment": ScenarioSpec("write every frame in pieces of `size` bytes (splitting lines and UTF-8 "
                             "characters across writes), delay_ms apart",
                             {"size": Option(1, minimum=1), "delay_ms": Option(0)}),
    "slow": ScenarioSpec("wait delay_ms between chunks", {"delay_ms": Option(100)}),
    "speed": ScenarioSpec("a benchmark answer: `chunks` content chunks of `size` bytes, delay_ms apart",
                          {"chunks": Option(100, minimum=1, maximum=10_000_000),
                           "size": Option(16, minimum=1, maximum=1_000_000), "delay_ms": Option(0)}),
    "echo": ScenarioSpec("the answer is the last user message, verbatim (without the directive)"),
    "script": ScenarioSpec("an answer with an HTML <script> tag and markdown, to test safe rendering"),
    "reasoning": ScenarioSpec("send reasoning even where the model would not; field= picks the key",
                              {"field": Option("reasoning", ("reasoning", "reasoning_content"))}),
    "tools": ScenarioSpec(
        "call tools (a built-in get_weather tool if the request has none); finish=stop as the API once did",
        {"finish": Option("tool_calls", ("tool_calls", "stop")), "count": Option(1, minimum=1, maximum=16)},
    ),
}


@dataclass(frozen=True)
class Scenario:
    """A scenario with all its options resolved (defaults filled in)."""

    name: str
    options: Mapping[str, int | str | bool]

    @property
    def key(self) -> str:
        """A canonical spelling: equal for equal requests (the per-emulator attempt counters use it)."""
        opts = " ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.name} {opts}".strip()

    def number(self, name: str) -> int:
        value = self.options[name]
        return value if isinstance(value, int) else 0

    def word(self, name: str) -> str:
        return str(self.options[name])

    def flag(self, name: str) -> bool:
        return bool(self.options[name])


def _valid_names() -> str:
    return ", ".join(sorted(CATALOG))


def _convert(scenario: str, key: str, raw: str, option: Option) -> int | str | bool:
    where = f"scenario {scenario!r} option {key!r}"
    if isinstance(option.default, bool):
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ScenarioError(f"{where} must be 1 or 0, not {raw!r}")
    if isinstance(option.default, int):
        try:
            number = int(raw)
        except ValueError:
            raise ScenarioError(f"{where} must be a whole number, not {raw!r}") from None
        if not option.minimum <= number <= option.maximum:
            raise ScenarioError(f"{where} must be between {option.minimum} and {option.maximum}, not {number}")
        return number
    if option.choices and raw not in option.choices:
        raise ScenarioError(f"{where} must be one of {', '.join(option.choices)}, not {raw!r}")
    if len(raw) > MAX_WORD:
        raise ScenarioError(f"{where} must be at most {MAX_WORD} characters, not {len(raw)}")
    return raw


def parse(spec: str) -> Scenario:
    """``"NAME k=v k=v"`` -> a ``Scenario``; raises ``ScenarioError`` naming what is valid."""
    words = spec.split()
    if not words:
        raise ScenarioError(f"empty emulator scenario; valid scenarios: {_valid_names()}")
    name, *pairs = words
    name = name.lower()
    entry = CATALOG.get(name)
    if entry is None:
        raise ScenarioError(f"unknown emulator scenario {name!r}; valid scenarios: {_valid_names()}")
    options: dict[str, int | str | bool] = {k: o.default for k, o in entry.options.items()}
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        option = entry.options.get(key)
        if not eq or option is None:
            valid = ", ".join(f"{k}=" for k in entry.options) or "none"
            raise ScenarioError(f"scenario {name!r} has no option {pair!r}; its options: {valid}")
        options[key] = _convert(name, key, raw, option)
    return Scenario(name, options)


def parse_text(text: str) -> list[Scenario]:
    """Every ``[emulate:...]`` directive in a message, in order."""
    return [parse(m.group(1)) for m in DIRECTIVE.finditer(text)]


def parse_header(value: str) -> list[Scenario]:
    """An ``X-Emulate`` header: one or more ``NAME k=v`` separated by ``;``."""
    return [parse(part) for part in value.split(";") if part.strip()]


def strip_directives(text: str) -> str:
    """The message as the user meant it: each directive and the blanks around it become one space
    (none at the start or the end of the text)."""
    if "[emulate:" not in text:
        return text

    def gap(match: re.Match[str]) -> str:
        return "" if match.start() == 0 or match.end() == len(text) else " "

    return _DIRECTIVE_AND_BLANKS.sub(gap, text)


_DIRECTIVE_AND_BLANKS = re.compile(r"[ \t]*\[emulate:[^\]]*\][ \t]*")


def merge(*groups: Iterable[Scenario]) -> dict[str, Scenario]:
    """Name -> scenario; a later group (header, then message) overrides an earlier one (defaults)."""
    out: dict[str, Scenario] = {}
    for group in groups:
        for scenario in group:
            out[scenario.name] = scenario
    return out
