"""``solarstream emulate``: serve the offline Upstage API until Ctrl-C."""

from __future__ import annotations

import asyncio
import errno
import math

import click

from .scenarios import CATALOG, ScenarioError, parse
from .state import DEFAULT_HISTORY

__all__ = ["emulate"]


async def _serve(host: str, port: int, scenarios: list[str], rpm: int | None, tpm: int | None,
                 rate_window: float, history: int) -> None:
    from .server import Emulator

    async with Emulator(host=host, port=port, scenario=scenarios, rpm=rpm, tpm=tpm, rate_window=rate_window,
                        history=history) as emu:
        click.echo(
            f"solarstream emulator (offline, deterministic answers) listening on {emu.base_url}; "
            f"point a client at it: export UPSTAGE_BASE_URL={emu.base_url} UPSTAGE_API_KEY={emu.api_key}"
        )
        if rpm is not None or tpm is not None:
            limits = ", ".join(f"{n} {what}" for n, what in ((rpm, "requests"), (tpm, "tokens")) if n is not None)
            click.echo(f"rate limits enforced per API key and model: {limits} per {rate_window:g} s window")
        await asyncio.Event().wait()  # until Ctrl-C cancels us


def _finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number of seconds.")
    return value


@click.command("emulate")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--scenario", "scenarios", multiple=True, metavar="'NAME k=v ...'",
              help=f"Default scenario for every request (repeatable). Names: {', '.join(sorted(CATALOG))}.")
@click.option("--rpm", type=click.IntRange(min=1), default=None, metavar="N",
              help="Enforce N requests per API key and model in any window (429 beyond it).")
@click.option("--tpm", type=click.IntRange(min=1), default=None, metavar="N",
              help="Enforce N tokens (usage.total_tokens) per API key and model in any window.")
@click.option("--rate-window", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              metavar="SECONDS", callback=_finite, help="Length of the sliding window that --rpm and --tpm count over.")
@click.option("--history", type=click.IntRange(min=0), default=DEFAULT_HISTORY, show_default=True, metavar="N",
              help="Recent requests kept in memory (older ones are forgotten; memory stays flat).")
def emulate(host: str, port: int, scenarios: tuple[str, ...], rpm: int | None, tpm: int | None,
            rate_window: float, history: int) -> None:
    """Serve the Upstage API offline on loopback, with deterministic answers that say they come from
    the emulator. Requests choose failures and wire variants with [emulate:NAME k=v] in the last user
    message or an X-Emulate header (see docs/emulator.md)."""
    for spec in scenarios:
        try:
            parse(spec)
        except ScenarioError as exc:
            raise click.BadParameter(str(exc), param_hint="--scenario") from None
    try:
        asyncio.run(_serve(host, port, list(scenarios), rpm, tpm, rate_window, history))
    except KeyboardInterrupt:
        return
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise click.ClickException(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port or --host"
            ) from None
        raise
