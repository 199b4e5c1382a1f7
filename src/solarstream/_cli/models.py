"""``solarstream models``: the built-in model table, or (``--live``) what the API lists."""

from __future__ import annotations

import json
from typing import Any

import click

from ..providers.upstage import models as _models
from .connection import Connection, connection_options, open_client
from .runner import run

__all__ = ["describe", "models", "status_of"]


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


def describe() -> list[dict[str, Any]]:
    """The table as rows, current models first."""
    rows: list[dict[str, Any]] = []
    for info in _models.MODELS.values():
        default = ", default" if info.name == _models.DEFAULT_MODEL else ""
        rows.append({"name": info.name, "status": f"current{default}", "dated_id": info.dated_id,
                     "context_window": info.context_window, "max_output": info.max_output,
                     "notes": _capabilities(info)})
    for retired in _models.RETIRED.values():
        note = f"; {retired.note}" if retired.note else ""
        rows.append({"name": retired.name, "status": f"retired {retired.retired} -> {retired.successor}",
                     "successor": retired.successor, "notes": f"requests go to {retired.successor}{note}"})
    return rows


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


@click.command()
@click.option("--live", is_flag=True, help="Ask the API (GET /models) instead of the built-in table.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@connection_options
def models(live: bool, as_json: bool, api_key: str | None, base_url: str | None, proxy: str | None,
           offline: bool, max_retries: int) -> None:
    """List the Solar models: current ones with their dated id, retired ones with their successor.

    Retired names and aliases still work in requests: they go to the successor (with a warning).
    """
    if live:
        conn = Connection(api_key=api_key, base_url=base_url, proxy=proxy, offline=offline,
                          max_retries=max_retries)
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
    table = [["NAME", "STATUS", "DATED ID", "CONTEXT", "NOTES"]]
    for row in rows:
        context = _tokens(row.get("context_window"))
        if row.get("max_output"):
            context += f" ({_tokens(row['max_output'])} out)"
        table.append([row["name"], row["status"], row.get("dated_id", ""), context, row["notes"]])
    click.echo(_table(table))


async def _live(conn: Connection) -> list[str]:
    async with open_client(conn) as client:
        listed = await client.models.list()
    return [m.id for m in listed]
