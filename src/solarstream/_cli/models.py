"""``solarstream models``: the built-in model table, or (``--live``) what the API lists; and
``models default [NAME]``, the model ``chat`` uses when ``-m`` is not given."""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

import click

from ..providers.upstage import models as _models
from . import config
from .connection import Connection, connection_options, open_client
from .groups import DefaultGroup, closest
from .render import notice
from .runner import run

__all__ = ["check_chat_model", "describe", "models", "status_of"]


def _tokens(n: int | None) -> str:
    if n is None:
        return ""
    return f"{n // 1000}K" if n % 1000 == 0 else str(n)


def _capabilities(info: _models.ModelInfo) -> str:
    parts = []
    if info.tools:
        parts.append("tools")
    if info.reasons:
        default = ", on by default" if info.reasons_by_default else ""
        parts.append(f"reasoning_effort {'/'.join(info.reasoning_efforts)}{default}")
    if info.note:
        parts.append(info.note)
    return "; ".join(parts)


def status_of(model_id: str) -> str:
    """What solarstream knows about a model id the API listed."""
    info = _models.lookup(model_id)
    if info is not None:
        return "current" if model_id == info.name else f"current (dated id of {info.name})"
    retired = _models.RETIRED.get(model_id)
    if retired is not None:
        return f"retired -> {retired.successor}"
    return "not in solarstream's table (sent as written)"


def _default_model() -> str:
    """What ``chat`` uses without ``-m`` (and outside a continued conversation)."""
    return os.environ.get("SOLARSTREAM_MODEL") or config.saved_default_model() or _models.DEFAULT_MODEL


def describe() -> list[dict[str, Any]]:
    """The table as rows, current models first; ``default`` marks the one ``chat`` uses."""
    rows: list[dict[str, Any]] = []
    chosen = _models.lookup(_default_model())
    for info in _models.MODELS.values():
        default = ", default" if chosen is not None and info.name == chosen.name else ""
        rows.append({"name": info.name, "kind": "chat", "status": f"current{default}", "dated_id": info.dated_id,
                     "context_window": info.context_window, "max_output": info.max_output,
                     "notes": _capabilities(info)})
    today = datetime.date.today().isoformat()
    for embedding in _models.EMBEDDING_MODELS.values():
        removal = "current"
        if embedding.removal:
            removal = (f"removed {embedding.removal} -> {embedding.successor}" if today >= embedding.removal
                       else f"current until {embedding.removal} -> {embedding.successor}")
        side = {"query": "queries", "passage": "passages"}.get(embedding.side, embedding.side)
        note = f"{embedding.dimensions} dimensions; embeds {side}"
        rows.append({"name": embedding.name, "kind": "embedding", "status": removal,
                     "context_window": embedding.context_window, "dimensions": embedding.dimensions,
                     "notes": f"{note}; {embedding.note}" if embedding.note else note})
    for retired in _models.RETIRED.values():
        note = f"; {retired.note}" if retired.note else ""
        rows.append({"name": retired.name, "kind": "chat",
                     "status": f"retired {retired.retired} -> {retired.successor}", "successor": retired.successor,
                     "notes": f"requests go to {retired.successor}{note}"})
    return rows


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


@click.group(cls=DefaultGroup, default="list")
def models() -> None:
    """The Solar models, and the default one.

    \b
    solarstream models [--live] [--json]    the table (the 'list' command)
    solarstream models default [NAME]       show or set the model chat uses without -m
    """


@models.command(name="list", short_help="The model table (the default command); --live asks the API.")
@click.option("--live", is_flag=True, help="Ask the API (GET /models) instead of the built-in table.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@connection_options
def list_models(live: bool, as_json: bool, **connection: Any) -> None:
    """List the Solar models: chat and embedding models, current ones with their dated id, retired ones
    with their successor.

    Retired names and aliases still work in requests: they go to the successor (with a warning).
    """
    if live:
        conn = Connection.from_options(connection)
        conn.check()
        ids = run(_live(conn))
        if as_json:
            click.echo(json.dumps([{"id": i, "status": status_of(i)} for i in ids], ensure_ascii=False, indent=2))
        else:
            click.echo(_table([["ID", "STATUS"], *([i, status_of(i)] for i in ids)]))
        return
    rows = describe()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = [["NAME", "KIND", "STATUS", "DATED ID", "CONTEXT", "NOTES"]]
    for row in rows:
        context = _tokens(row.get("context_window"))
        if row.get("max_output"):
            context += f" ({_tokens(row['max_output'])} out)"
        table.append([row["name"], row["kind"], row["status"], row.get("dated_id", ""), context, row["notes"]])
    click.echo(_table(table))


async def _live(conn: Connection) -> list[str]:
    async with open_client(conn) as client:
        listed = await client.models.list()
    return [m.id for m in listed]


def check_chat_model(name: str) -> str:
    """The name to save as the default; a usage error that says what is wrong otherwise."""
    if _models.lookup(name) is not None:
        return name
    retired = _models.RETIRED.get(name)
    if retired is not None:
        raise click.BadParameter(f"{name!r} is retired (since {retired.retired}); its successor is "
                                 f"{retired.successor!r}: solarstream models default {retired.successor}",
                                 param_hint="NAME")
    if name in _models.EMBEDDING_MODELS:
        raise click.BadParameter(f"{name!r} is an embedding model; chat needs one of "
                                 f"{', '.join(_models.MODELS)}", param_hint="NAME")
    guess = closest(name, [*_models.MODELS, *(m.dated_id for m in _models.MODELS.values())])
    hint = f"did you mean {guess!r}? " if guess else ""
    raise click.BadParameter(f"{name!r} is not a Solar chat model; {hint}the current ones are "
                             f"{', '.join(_models.MODELS)} ('solarstream models' shows them all)",
                             param_hint="NAME")


@models.command(name="default", short_help="Show or set the model chat uses without -m.")
@click.argument("name", required=False)
@click.option("--clear", is_flag=True, help="Forget the saved default (chat then uses the built-in one).")
def default_model(name: str | None, clear: bool) -> None:
    """Show or set the model chat uses when -m is not given.

    Without NAME, print it. Precedence: -m, then $SOLARSTREAM_MODEL, then (for -c/--cid) the
    conversation's model, then the default saved here, then the built-in default.
    """
    if clear and name:
        raise click.UsageError("give NAME or --clear, not both")
    if clear:
        config.set_saved_default_model(None)
        notice(f"(default model: {_models.DEFAULT_MODEL}, the built-in one)")
        return
    if name is None:
        click.echo(config.saved_default_model() or _models.DEFAULT_MODEL)
        env = os.environ.get("SOLARSTREAM_MODEL")
        if env:
            notice(f"(SOLARSTREAM_MODEL={env} is set and comes first)")
        return
    config.set_saved_default_model(check_chat_model(name))
