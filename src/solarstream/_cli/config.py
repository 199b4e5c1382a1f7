"""Where the command line keeps the user's files, and the small settings file.

* The conversation log: ``$SOLARSTREAM_LOGS_PATH``, else ``logs.db`` in ``$SOLARSTREAM_DATA_DIR``,
  else in the platform's user data directory (``$XDG_DATA_HOME/solarstream``, by default
  ``~/.local/share/solarstream`` on Linux).
* The settings (the saved default model, whether logging is on): ``config.json`` in
  ``$SOLARSTREAM_CONFIG_DIR``, else the user config directory (``~/.config/solarstream``).

The settings file is written whole to a temporary file and renamed over the old one, so a reader
never sees half of it. Nothing secret is ever stored in it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .failures import fail

__all__ = [
    "config_dir",
    "config_path",
    "data_dir",
    "load",
    "logging_enabled",
    "logs_path",
    "saved_default_model",
    "set_logging",
    "set_saved_default_model",
]

APP = "solarstream"


def data_dir() -> Path:
    explicit = os.environ.get("SOLARSTREAM_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def config_dir() -> Path:
    explicit = os.environ.get("SOLARSTREAM_CONFIG_DIR")
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def logs_path() -> Path:
    explicit = os.environ.get("SOLARSTREAM_LOGS_PATH")
    return Path(explicit).expanduser() if explicit else data_dir() / "logs.db"


def config_path() -> Path:
    return config_dir() / "config.json"


def load() -> dict[str, Any]:
    """The settings; an absent file means none are set."""
    path = config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        fail(f"cannot read the settings file {path}: {exc.strerror}", 2)
    try:
        settings = json.loads(text)
    except ValueError as exc:
        fail(f"the settings file {path} is not valid JSON ({exc}); fix it or delete it", 2)
    if not isinstance(settings, dict):
        fail(f"the settings file {path} should hold a JSON object; fix it or delete it", 2)
    return settings


def _save(settings: dict[str, Any]) -> None:
    path = config_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(settings, f, ensure_ascii=False, indent=2, sort_keys=True)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        fail(f"cannot write the settings file {path}: {exc.strerror}", 2)


def _update(key: str, value: Any) -> None:
    settings = load()
    if value is None:
        settings.pop(key, None)
    else:
        settings[key] = value
    _save(settings)


def saved_default_model() -> str | None:
    value = load().get("default_model")
    return value if isinstance(value, str) and value else None


def set_saved_default_model(name: str | None) -> None:
    """Save ``name`` as the default model; ``None`` forgets it."""
    _update("default_model", name)


def logging_enabled() -> bool:
    return load().get("log", True) is not False


def set_logging(on: bool) -> None:
    _update("log", None if on else False)
