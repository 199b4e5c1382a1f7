"""A router from a TOML file (``serve --config gateway.toml``, ``chat --config FILE``).

The file declares deployments, fallbacks and the strategy (docs/routing.md has a worked example).
Everything is checked when it is loaded, and every error names the file and line it is about:
``gateway.toml:12: deployments[1].weight: must be a positive number, not -1``. Keys may come from
environment variables named in the file (``api_key_env = "UPSTAGE_KEY_A"``); a variable that is
not set is an error at load time, not at the first request.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import errors as _errors
from ..errors import MissingAuthError, SolarstreamError
from ..providers import OpenAICompatibleProvider
from .deployment import Deployment
from .router import Router
from .strategies import STRATEGIES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ConfigError", "load_router", "router_from_toml"]

_TOP = {"router", "deployments", "fallbacks", "context_window_fallbacks"}
_ROUTER_KEYS = {"strategy", "cooldown", "removal_cooldown", "max_wait", "max_attempts", "timeout", "retry_on",
                "default_fallbacks", "learn_limits", "name"}
_DEPLOYMENT_KEYS = {"model_name", "model", "provider", "api_key", "api_key_env", "base_url", "weight", "rpm", "tpm",
                    "name", "timeout", "proxy", "verify", "strict_params"}
#: deployment keys that configure the provider built for it
_OPTIONS = ("timeout", "proxy", "verify", "strict_params")
_SYNTAX_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


class ConfigError(SolarstreamError):
    """The routing configuration is wrong; the message names the file, the line and the fix."""

    def __init__(self, message: str, *, path: str, line: int | None) -> None:
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")
        self.path = path
        self.line = line


class _Lines:
    """Where tables and keys are in the file (tomllib keeps no positions): ``("deployments", 1,
    "weight") -> 12``. Best effort: a key not found falls back to its table's line."""

    def __init__(self, text: str) -> None:
        self.at: dict[tuple[Any, ...], int] = {}
        table: tuple[Any, ...] = ()
        arrays: dict[str, int] = {}
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if line.startswith("[["):
                name = line[2:].split("]]", 1)[0].strip()
                arrays[name] = arrays.get(name, -1) + 1
                table = (name, arrays[name])
                self.at.setdefault(table, number)
            elif line.startswith("["):
                table = (line[1:].split("]", 1)[0].strip(),)
                self.at.setdefault(table, number)
            elif "=" in line and not line.startswith("#"):
                key = line.split("=", 1)[0].strip().strip("\"'")
                self.at.setdefault((*table, key), number)

    def line(self, *where: Any) -> int | None:
        while where:
            if where in self.at:
                return self.at[where]
            where = where[:-1]
        return None


class _Reader:
    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.lines = _Lines(text)

    def error(self, where: tuple[Any, ...], message: str) -> ConfigError:
        shown = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in where).replace(".[", "[")
        return ConfigError(f"{shown}: {message}" if shown else message, path=self.path, line=self.lines.line(*where))

    def number(self, where: tuple[Any, ...], value: Any, *, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or \
                (value <= 0 if positive else value < 0):
            raise self.error(where, f"must be a {'positive number' if positive else 'number, 0 or more'}, "
                                    f"not {value!r}")
        return float(value)

    def string(self, where: tuple[Any, ...], value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(where, f"must be a non-empty string, not {value!r}")
        return value

    def names(self, where: tuple[Any, ...], value: Any) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(where, f"must be a list of model names, not {value!r}")
        return list(value)

    def unknown(self, where: tuple[Any, ...], table: Mapping[str, Any], known: set[str]) -> None:
        for key in table:
            if key not in known:
                raise self.error((*where, key), f"unknown key; expected one of: {', '.join(sorted(known))}")


def router_from_toml(text: str, path: str = "<config>") -> Router:
    """Parse, check and build; ``ConfigError`` names the line of the first problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _SYNTAX_AT.search(message)
        line = int(found[1]) if found else None
        raise ConfigError(f"not valid TOML: {_SYNTAX_AT.sub('', message)}", path=path, line=line) from None
    reader = _Reader(text, path)
    reader.unknown((), data, _TOP)
    options = _router_options(reader, data.get("router", {}))
    for table in ("fallbacks", "context_window_fallbacks"):
        value = data.get(table, {})
        if not isinstance(value, dict):
            raise reader.error((table,), "must be a table of model name = [fallback model names]")
        options[table] = {name: reader.names((table, name), targets) for name, targets in value.items()}
    raw = data.get("deployments")
    if not isinstance(raw, list) or not raw:
        raise ConfigError("no deployments: add at least one [[deployments]] table with model_name = \"...\"",
                          path=path, line=reader.lines.line("deployments"))
    deployments = [_deployment(reader, i, entry) for i, entry in enumerate(raw)]
    try:
        router = Router(deployments, **options)
    except SolarstreamError as exc:
        where = ("fallbacks",) if getattr(exc, "param", None) == "fallbacks" else ("router",)
        raise reader.error(where, exc.message) from None
    for i, state in enumerate(router.deployments):
        _check_reachable(reader, i, state.provider)
    return router


def load_router(path: str | os.PathLike[str]) -> Router:
    """A router from a TOML file; ``ConfigError`` says what is wrong and where."""
    shown = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the routing configuration: {exc.strerror or exc}", path=shown,
                          line=None) from None
    except UnicodeDecodeError:
        raise ConfigError("the routing configuration is not UTF-8 text", path=shown, line=None) from None
    return router_from_toml(text, shown)


def _router_options(reader: _Reader, table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise reader.error(("router",), "must be a table")
    reader.unknown(("router",), table, _ROUTER_KEYS)
    options: dict[str, Any] = {}
    if "strategy" in table:
        strategy = reader.string(("router", "strategy"), table["strategy"])
        if strategy not in STRATEGIES:
            raise reader.error(("router", "strategy"), f"unknown strategy {strategy!r}; choose one of: "
                                                       f"{', '.join(STRATEGIES)}")
        options["strategy"] = strategy
    for key in ("cooldown", "removal_cooldown", "max_wait"):
        if key in table:
            options[key] = reader.number(("router", key), table[key])
    if "timeout" in table:
        options["timeout"] = reader.number(("router", "timeout"), table["timeout"], positive=True)
    if "max_attempts" in table:
        value = table["max_attempts"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise reader.error(("router", "max_attempts"), f"must be a whole number, 1 or more, not {value!r}")
        options["max_attempts"] = value
    if "retry_on" in table:
        options["retry_on"] = tuple(_error_class(reader, name) for name in reader.names(("router", "retry_on"),
                                                                                         table["retry_on"]))
    if "default_fallbacks" in table:
        options["default_fallbacks"] = reader.names(("router", "default_fallbacks"), table["default_fallbacks"])
    if "learn_limits" in table:
        if not isinstance(table["learn_limits"], bool):
            raise reader.error(("router", "learn_limits"), f"must be true or false, not {table['learn_limits']!r}")
        options["learn_limits"] = table["learn_limits"]
    if "name" in table:
        options["name"] = reader.string(("router", "name"), table["name"])
    return options


def _error_class(reader: _Reader, name: str) -> type[BaseException]:
    found = getattr(_errors, name, None)
    if not (isinstance(found, type) and issubclass(found, SolarstreamError)):
        choices = sorted(n for n in _errors.__all__ if n[0].isupper())
        raise reader.error(("router", "retry_on"), f"{name!r} is not an error class of solarstream.errors; "
                                                   f"choose from: {', '.join(choices)}")
    return found


def _deployment(reader: _Reader, index: int, entry: Any) -> Deployment:
    where: tuple[Any, ...] = ("deployments", index)
    if not isinstance(entry, dict):
        raise reader.error(where, "must be a table")
    reader.unknown(where, entry, _DEPLOYMENT_KEYS)
    if "model_name" not in entry:
        raise reader.error(where, 'needs model_name = "..." (the name callers ask for)')
    fields: dict[str, Any] = {"model_name": reader.string((*where, "model_name"), entry["model_name"])}
    for key in ("model", "provider", "base_url", "name"):
        if key in entry:
            fields[key] = reader.string((*where, key), entry[key])
    for key in ("rpm", "tpm", "weight"):
        if key in entry:
            fields[key] = reader.number((*where, key), entry[key], positive=True)
    if "api_key" in entry and "api_key_env" in entry:
        raise reader.error((*where, "api_key_env"), "give api_key_env or api_key, not both")
    if "api_key_env" in entry:
        variable = reader.string((*where, "api_key_env"), entry["api_key_env"])
        secret = os.environ.get(variable)
        if not secret:
            raise reader.error((*where, "api_key_env"), f"the environment variable {variable} is not set; export "
                                                        "it with the deployment's API key")
        fields["api_key"] = secret
    elif "api_key" in entry:
        fields["api_key"] = reader.string((*where, "api_key"), entry["api_key"])
    options: dict[str, Any] = {}
    for key in _OPTIONS:
        if key in entry:
            value = entry[key]
            if key == "timeout":
                value = reader.number((*where, key), value, positive=True)
            elif key == "strict_params" and not isinstance(value, bool):
                raise reader.error((*where, key), f"must be true or false, not {value!r}")
            options[key] = value
    fields["options"] = options
    try:
        deployment = Deployment(**fields)
        deployment.build()  # an unknown provider, a bad proxy or timeout: said here, with the line
    except SolarstreamError as exc:
        param = getattr(exc, "param", None)
        raise reader.error((*where, param if param in entry else "provider"), exc.message) from None
    return deployment


def _check_reachable(reader: _Reader, index: int, provider: Any) -> None:
    """A key and a base URL now, not at the first request."""
    if not isinstance(provider, OpenAICompatibleProvider):
        return
    where: tuple[Any, ...] = ("deployments", index)
    try:
        provider.resolve_base_url()
    except SolarstreamError as exc:
        raise reader.error((*where, "base_url"), exc.message) from None
    try:
        provider.resolve_api_key()
    except MissingAuthError as exc:
        raise reader.error((*where, "api_key_env"), f"{exc.message} (or set api_key_env in this deployment)") \
            from None
