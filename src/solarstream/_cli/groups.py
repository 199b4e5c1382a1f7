"""A click group with a default subcommand, as ``llm``'s ``logs`` and ``models`` have.

``solarstream logs -n 5`` runs ``logs list -n 5``; ``solarstream models --live`` runs
``models list --live``; the bare group runs the default too. A word that is not a subcommand
is an error that suggests the closest name (``logs pth`` -> did you mean 'path'?).
"""

from __future__ import annotations

import difflib
from typing import Any

import click

__all__ = ["DefaultGroup", "closest", "no_such_command"]


def closest(word: str, names: list[str], cutoff: float = 0.6) -> str | None:
    matches = difflib.get_close_matches(word, names, n=1, cutoff=cutoff)
    return matches[0] if matches else None


def no_such_command(ctx: click.Context, word: str, names: list[str]) -> click.UsageError:
    guess = closest(word, names)
    message = f"no command {word!r} in '{ctx.command_path}'"
    if guess is not None:
        message += f"; did you mean {guess!r}?"
    elif names:
        message += f"; the commands are {', '.join(sorted(names))}"
    return click.UsageError(message, ctx=ctx)


class DefaultGroup(click.Group):
    """Runs ``default`` when the arguments start with an option, or there are none."""

    def __init__(self, *args: Any, default: str = "list", **attrs: Any) -> None:
        context = dict(attrs.pop("context_settings", None) or {})
        context.setdefault("ignore_unknown_options", True)  # the default command's options pass through
        attrs["no_args_is_help"] = False
        super().__init__(*args, context_settings=context, **attrs)
        self.default = default

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args and not ctx.resilient_parsing:  # (completion parses resiliently: offer the commands)
            args = [self.default]
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                              list[str]]:
        first = args[0]
        if first.startswith("-") and first not in ("-h", "--help"):
            command = self.get_command(ctx, self.default)
            return self.default, command, args
        if self.get_command(ctx, first) is None and not ctx.resilient_parsing:
            raise no_such_command(ctx, first, self.list_commands(ctx))
        return super().resolve_command(ctx, args)
