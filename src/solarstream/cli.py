"""The ``solarstream`` command: a lazy click group (``chat``, ``batch``, ``logs``, ``models``, ``emulate``,
``serve``).

Only click is imported at start-up; each subcommand's module (and aiohttp, the emulator, the
gateway) is imported when that subcommand runs, so ``solarstream --help`` is fast. Errors are
handled here, once, for every subcommand: one line on stderr, no traceback, and the exit status
of the contract (0 ok, 1 API or network error, 2 bad usage, 130 interrupted).

Arguments that do not start with a command name are a question for ``chat``, as with ``llm``:
``solarstream "question"`` and ``solarstream --offline -m solar-mini "question"`` are
``solarstream chat ...``; so is a bare ``solarstream`` with text piped to it. A single word close to
a command name (``solarstream modles``) is taken for a typo and answered with "did you mean".
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
from typing import Any, NoReturn

import click

from ._cli.failures import error_line, exit_code, fail
from ._version import __version__
from .errors import SolarstreamError

__all__ = ["COMMANDS", "cli", "exit_code", "main"]

#: subcommand -> (import path "module:attribute", one-line help shown by ``--help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "batch": ("solarstream._cli.batch:batch", "Run a JSONL file of requests at the rate limit, resumably."),
    "chat": ("solarstream._cli.chat:chat", "Ask a Solar model; the answer streams to stdout."),
    "logs": ("solarstream._cli.logs:logs", "Show the logged prompts and answers; logs off|on|path."),
    "models": ("solarstream._cli.models:models", "List the Solar models; 'models default NAME' sets the default."),
    "emulate": ("solarstream.emulator.command:emulate", "Serve the offline Upstage API emulator on loopback."),
    "serve": ("solarstream.server.command:serve", "Serve the OpenAI-compatible gateway (extra 'server')."),
}

#: the command that arguments without a command name go to
DEFAULT_COMMAND = "chat"

#: modules whose absence means an optional extra is not installed -> the extra to install
_EXTRAS = {"fastapi": "server", "uvicorn": "server", "aiohttp_socks": "socks", "python_socks": "socks"}

#: what a mistyped command name looks like (a question has spaces, capitals or punctuation)
_WORD = re.compile(r"[a-z][a-z-]{2,}")


def _missing_extra(exc: ModuleNotFoundError, command: str) -> NoReturn:
    extra = _EXTRAS.get((exc.name or "").partition(".")[0])
    if extra is None:
        raise exc
    fail(f"'solarstream {command}' needs the '{extra}' extra: pip install 'solarstream[{extra}]'", 2)


def _stdin_is_piped() -> bool:
    try:
        return sys.stdin is not None and not sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, with one error policy for all, and
    ``chat`` for arguments that name no command."""

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

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args and _stdin_is_piped() and not ctx.resilient_parsing:
            args = [DEFAULT_COMMAND]  # `cat notes.txt | solarstream`
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                              list[str]]:
        first = args[0]
        if first in COMMANDS:
            return super().resolve_command(ctx, args)
        if _WORD.fullmatch(first):
            from ._cli.groups import closest

            guess = closest(first, list(COMMANDS), cutoff=0.75)
            if guess is not None and not ctx.resilient_parsing:
                raise click.UsageError(f"no command {first!r}; did you mean {guess!r}? (to ask it as a question: "
                                       f"solarstream chat {first})", ctx=ctx)
        return DEFAULT_COMMAND, self.get_command(ctx, DEFAULT_COMMAND), args

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # from the table, without importing every subcommand just to show its help line
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        # command names from the table too: importing `serve` without its extra must not break completion
        from click.shell_completion import CompletionItem

        items = [CompletionItem(name, help=COMMANDS[name][1]) for name in self.list_commands(ctx)
                 if name.startswith(incomplete)]
        return items + click.Command.shell_complete(self, ctx, incomplete)

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


@click.group(cls=LazyGroup, subcommand_metavar="COMMAND [ARGS]... | PROMPT",
             context_settings={"help_option_names": ["-h", "--help"], "ignore_unknown_options": True})
@click.version_option(__version__, "-V", "--version", prog_name="solarstream")
def cli() -> None:
    """solarstream: fast, correct streaming for Upstage's Solar models.

    A PROMPT without a command is a question for 'chat': solarstream "Hello!" is
    solarstream chat "Hello!" (chat's options work too: solarstream --offline "Hello!").

    \b
    Examples:
      solarstream "Hello!"                        stream an answer (needs UPSTAGE_API_KEY)
      solarstream chat --offline "Hello!"         answered by the built-in emulator, no key or network
      cat notes.txt | solarstream "Summarise"     stdin, then the prompt
      solarstream chat -c "And then?"             continue the last conversation
      solarstream chat -i                         a conversation
      solarstream logs                            the last prompts and answers
      solarstream models default solar-pro3       the model to use without -m

    Shell completion: eval "$(_SOLARSTREAM_COMPLETE=bash_source solarstream)" (zsh_source, fish_source).
    """


def main(argv: list[str] | None = None) -> None:
    """The console-script entry point (also ``python -m solarstream``)."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="solarstream")


if __name__ == "__main__":
    main()
