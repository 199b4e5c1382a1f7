"""``solarstream emulate``: serve the offline Upstage API until Ctrl-C."""

from __future__ import annotations

import asyncio
import errno

import click

from .scenarios import CATALOG, ScenarioError, parse

__all__ = ["emulate"]


async def _serve(host: str, port: int, scenarios: list[str]) -> None:
    from .server import Emulator

    async with Emulator(host=host, port=port, scenario=scenarios) as emu:
        click.echo(
            f"solarstream emulator (offline, deterministic answers) listening on {emu.base_url}; "
            f"point a client at it: export UPSTAGE_BASE_URL={emu.base_url} UPSTAGE_API_KEY={emu.api_key}"
        )
        await asyncio.Event().wait()  # until Ctrl-C cancels us


@click.command("emulate")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--scenario", "scenarios", multiple=True, metavar="'NAME k=v ...'",
              help=f"Default scenario for every request (repeatable). Names: {', '.join(sorted(CATALOG))}.")
def emulate(host: str, port: int, scenarios: tuple[str, ...]) -> None:
    """Serve the Upstage API offline on loopback, with deterministic answers that say they come from
    the emulator. Requests choose failures and wire variants with [emulate:NAME k=v] in the last user
    message or an X-Emulate header (see docs/emulator.md)."""
    for spec in scenarios:
        try:
            parse(spec)
        except ScenarioError as exc:
            raise click.BadParameter(str(exc), param_hint="--scenario") from None
    try:
        asyncio.run(_serve(host, port, list(scenarios)))
    except KeyboardInterrupt:
        return
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise click.ClickException(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port or --host"
            ) from None
        raise
