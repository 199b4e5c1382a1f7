"""The ``solarstream`` command: a lazy click group (``chat``, ``models``, ``emulate``, ``serve``).

Only click is imported at start-up; each subcommand's module (and aiohttp, the emulator, the
gateway) is imported when that subcommand runs, so ``solarstream --help`` is fast. Errors are
handled here, once, for every subcommand: one line on stderr, no traceback, and the exit status
of the contract (0 ok, 1 API or network error, 2 bad usage, 130 interrupted).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import Any, NoReturn

import click

from ._version import __version__
from .errors import InvalidRequestError, MissingAuthError, SolarstreamError

__all__ = ["cli", "exit_code", "main"]

#: subcommand -> (import path "module:attribute", one-line help shown by ``--help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "chat": ("solarstream._cli.chat:chat", "Ask a Solar model; the answer streams to stdout."),
    "models": ("solarstream._cli.models:models", "List the Solar models (current, retired -> successor)."),
    "emulate": ("solarstream.emulator.command:emulate", "Serve the offline Upstage API emulator on loopback."),
    "serve": ("solarstream.server.command:serve", "Serve the OpenAI-compatible gateway (extra 'server')."),
}

#: modules whose absence means an optional extra is not installed -> the extra to install
_EXTRAS = {"fastapi": "server", "uvicorn": "server", "aiohttp_socks": "socks", "python_socks": "socks"}


def exit_code(exc: SolarstreamError) -> int:
    """2 for problems found before anything was sent (no key, a request we know is invalid);
    1 for what the API or the network answered."""
    if isinstance(exc, MissingAuthError):
        return 2
    if isinstance(exc, InvalidRequestError) and exc.status_code is None:
        return 2
    return 1


def error_line(exc: SolarstreamError) -> str:
    """The one line shown for an error, with the fix in command-line terms."""
    if isinstance(exc, MissingAuthError):
        return ("no API key: set UPSTAGE_API_KEY or pass --api-key (get one at "
                "https://console.upstage.ai/api-keys), or try --offline")
    message = exc.message.replace("pass api_key=...", "pass --api-key").replace("pass api_key=", "pass --api-key")
    return " ".join(message.split())


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"solarstream: error: {message}", err=True)
    raise click.exceptions.Exit(code)


def _missing_extra(exc: ModuleNotFoundError, command: str) -> NoReturn:
    extra = _EXTRAS.get((exc.name or "").partition(".")[0])
    if extra is None:
        raise exc
    fail(f"'solarstream {command}' needs the '{extra}' extra: pip install 'solarstream[{extra}]'", 2)


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, with one error policy for all."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, _, attribute = entry[0].partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            _missing_extra(exc, cmd_name)
        command = getattr(module, attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # from the table, without importing every subcommand just to show its help line
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SolarstreamError as exc:
            fail(error_line(exc), exit_code(exc))
        except ModuleNotFoundError as exc:  # an optional dependency imported when the command runs
            _missing_extra(exc, ctx.invoked_subcommand or "")
        except KeyboardInterrupt:
            click.echo("solarstream: interrupted", err=True)
            raise click.exceptions.Exit(130) from None
        except BrokenPipeError:
            # the reader left (``| head``): stop quietly; point stdout at /dev/null so the
            # interpreter's final flush does not complain again
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            raise click.exceptions.Exit(1) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="solarstream")
def cli() -> None:
    """solarstream: fast, correct streaming for Upstage's Solar models.

    \b
    Examples:
      solarstream chat "Hello!"                   stream an answer (needs UPSTAGE_API_KEY)
      solarstream chat --offline "Hello!"         answered by the built-in emulator, no key or network
      cat notes.txt | solarstream chat -s "Summarise"
      solarstream chat -i                         a conversation
      solarstream models                          models and their status
    """


def main(argv: list[str] | None = None) -> None:
    """The console-script entry point."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="solarstream")


if __name__ == "__main__":
    main()
