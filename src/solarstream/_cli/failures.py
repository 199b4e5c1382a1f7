"""How a failure reaches the user: one line on stderr and the contract's exit status.

Shared by the group (which handles every subcommand's errors once) and the interactive mode
(which shows an error and goes on); importing it costs only click.
"""

from __future__ import annotations

from typing import NoReturn

import click

from ..errors import InvalidRequestError, MissingAuthError, SolarstreamError

__all__ = ["error_line", "exit_code", "fail", "warn", "was_sent"]


def was_sent(exc: BaseException) -> bool:
    """Whether a request went out before ``exc``: the checks made before sending raise
    ``MissingAuthError`` or an ``InvalidRequestError`` without a status."""
    if isinstance(exc, MissingAuthError):
        return False
    return not (isinstance(exc, InvalidRequestError) and exc.status_code is None)


def exit_code(exc: SolarstreamError) -> int:
    """2 for problems found before anything was sent (no key, a request we know is invalid);
    1 for what the API or the network answered."""
    return 1 if was_sent(exc) else 2


def error_line(exc: SolarstreamError) -> str:
    """The one line shown for an error, with the fix in command-line terms."""
    if isinstance(exc, MissingAuthError):
        return ("no API key: set UPSTAGE_API_KEY or pass --api-key (get one at "
                "https://console.upstage.ai/api-keys), or try --offline")
    message = exc.message.replace("pass api_key=...", "pass --api-key").replace("pass api_key=", "pass --api-key")
    return " ".join(message.split())


def fail(message: str, code: int) -> NoReturn:
    """Stop the command: ``solarstream: error: MESSAGE`` on stderr, exit status ``code``."""
    click.echo(f"solarstream: error: {message}", err=True)
    raise click.exceptions.Exit(code)


def warn(message: str) -> None:
    """Something went wrong on the side (the log could not be written) and the command goes on."""
    click.echo(f"solarstream: warning: {message}", err=True)
