"""``-o KEY VALUE``: any request parameter from the command line.

VALUE is JSON when it parses as JSON (``0.9``, ``true``, ``["\\n"]``, ``{"type": "json_object"}``),
otherwise the string as typed (``-o reasoning_effort high``); to send a string that looks like JSON,
quote it (``-o prompt_cache_key '"123"'``). The values are checked where every request is checked,
before anything is sent; an error about one of them names ``-o KEY``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import click

from ..errors import InvalidRequestError

__all__ = ["merge", "name_the_option", "parse_options"]

#: keys that are not request parameters, or that have their own option -> what to use instead
_NOT_PARAMETERS = {
    "model": "use -m/--model",
    "messages": "the messages come from PROMPT, stdin and the conversation",
    "stream": "use --no-stream",
    "api_key": "use --api-key or $UPSTAGE_API_KEY",
    "base_url": "use --base-url",
    "proxy": "use --proxy",
    "max_retries": "use --max-retries",
    "timeout": "not a request parameter",
    "extra_headers": "headers cannot be set from the command line",
}


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)  # NaN and Infinity are not JSON: keep them as strings


def parse_value(raw: str) -> Any:
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except ValueError:
        return raw


def parse_options(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, raw in pairs:
        if not key or key.startswith("-"):
            raise click.BadParameter(f"{key!r} is not a parameter name", param_hint="-o")
        hint = _NOT_PARAMETERS.get(key)
        if hint is not None:
            raise click.BadParameter(f"{key}: {hint}", param_hint="-o")
        if key in options:
            raise click.BadParameter(f"{key} is given twice", param_hint="-o")
        options[key] = parse_value(raw)
    return options


def merge(named: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The named options (``--temperature``) and ``-o`` ones; one parameter may come from one only."""
    for key in options:
        if key in named:
            flag = "--" + key.replace("_", "-")
            raise click.UsageError(f"{key} is given twice: {flag} and -o {key}; keep one")
    return {**named, **options}


def name_the_option(exc: InvalidRequestError, option_keys: frozenset[str]) -> InvalidRequestError:
    """The same error, with its message saying ``-o KEY`` when KEY came from ``-o``."""
    param = exc.param or ""
    root = param.split("[", 1)[0].split(".", 1)[0]
    message = exc.message.replace("extra_body={...}", "-o extra_body '{...}'")
    if root in option_keys and message.startswith(f"{param}:"):
        message = f"-o {message}"
    if message == exc.message:
        return exc
    return type(exc)(message, status_code=exc.status_code, code=exc.code, param=exc.param,
                     request_id=exc.request_id, body=exc.body, retry_after=exc.retry_after)
