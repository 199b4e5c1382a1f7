"""``solarstream batch INPUT``: run a JSONL file of requests at the account's rate limit, resumably.

The job itself is ``solarstream.batch`` (docs/batch.md); this is the command around it: options,
the connection (``--offline`` starts the emulator, as for ``chat``), Ctrl-C and SIGTERM as a clean
interruption (exit 130), the problems of a refused INPUT as ``INPUT:LINE: ...`` lines (exit 2),
and the summary. Only click is imported until the command runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..batch.defaults import DEFAULT_CONCURRENCY, DEFAULT_MAX_ATTEMPTS
from .completion import complete_model
from .connection import OPTIONS, Connection, open_client
from .failures import error_line, fail

if TYPE_CHECKING:
    from .._retry import Limiter
    from ..batch.engine import Engine, EngineFactory
    from ..batch.job import BatchJob, JobSettings
    from ..batch.progress import Display
    from ..batch.summary import BatchSummary
    from ..batch.transport import RunStats
    from ..providers.openai_compatible import OpenAICompatibleProvider

__all__ = ["batch"]

F = TypeVar("F", bound=Callable[..., Any])


def _option_name(decorator: Callable[[F], F]) -> str | None:
    def probe() -> None: ...

    params = getattr(decorator(probe), "__click_params__", [])  # type: ignore[arg-type]
    return params[0].name if params else None


def _connection_options(fn: F) -> F:
    """The shared connection options, except ``--max-retries`` (``--max-attempts`` says it for jobs)."""
    for decorator in reversed(OPTIONS):
        if _option_name(decorator) != "max_retries":
            fn = decorator(fn)
    return fn


class _ToDisplay(logging.Handler):
    """Library warnings as one line each, written so that a live bar is not broken."""

    def __init__(self, display: Display) -> None:
        super().__init__(logging.WARNING)
        self.display = display

    def emit(self, record: logging.LogRecord) -> None:
        self.display.write(f"solarstream: {record.levelname.lower()}: {record.getMessage()}")


@contextlib.contextmanager
def _signals_interrupt(loop: asyncio.AbstractEventLoop, job: BatchJob, display: Display) -> Iterator[None]:
    """Ctrl-C and SIGTERM end the job cleanly; a second Ctrl-C stops at once."""
    installed: list[signal.Signals] = []

    def on_signal() -> None:
        display.write("solarstream: interrupting: cancelling the requests in flight (Ctrl-C again to quit now)")
        job.interrupt()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # Windows, not the main thread
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


@click.command()
@click.argument("input", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Results file (default: INPUT with .results.jsonl for .jsonl). An existing one is resumed.")
@click.option("-m", "--model", metavar="NAME", envvar="SOLARSTREAM_MODEL", show_envvar=True,
              shell_complete=complete_model, help="Model for requests that name none (a line's own model wins).")
@click.option("-s", "--system", metavar="TEXT",
              help="System prompt for --prompts, and for lines whose messages start without one.")
@click.option("--prompts", is_flag=True, help="INPUT is plain UTF-8 text: one user prompt per line.")
@click.option("--stream", is_flag=True,
              help="Send requests streamed (for reasoning models behind proxies that cut long silent requests).")
@click.option("--rpm", type=click.FloatRange(min=0, min_open=True), metavar="N",
              help="Requests per minute for the job (default: learned from the API's rate-limit headers).")
@click.option("--tpm", type=click.FloatRange(min=0, min_open=True), metavar="N",
              help="Tokens per minute for the job (default: learned from the API's rate-limit headers).")
@click.option("--concurrency", type=click.IntRange(min=1, max=10_000), default=DEFAULT_CONCURRENCY,
              show_default=True, metavar="N", help="Requests in flight at most.")
@click.option("--max-attempts", type=click.IntRange(min=1), default=DEFAULT_MAX_ATTEMPTS, show_default=True,
              metavar="N", help="Attempts per request on 5xx, 408, timeouts and connection errors (429s are free).")
@click.option("--skip-invalid", is_flag=True,
              help="Record invalid lines as errors (code invalid_request) and send the rest.")
@click.option("--retry-failed", is_flag=True, help="Send again the requests whose record is an error, replacing it.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary: only errors.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]",
              help="Send the requests from Ray workers (extra 'ray'): alone, $RAY_ADDRESS or a local Ray; or a "
                   "cluster's address (auto, ray://HOST:10001). OUTPUT stays on this machine.")
@click.option("--ray-workers", type=click.IntRange(min=1), metavar="N",
              help="Ray workers sending requests (with --ray; default: the cluster's CPUs).")
@_connection_options
def batch(
    input: Path,
    output: Path | None,
    model: str | None,
    system: str | None,
    prompts: bool,
    stream: bool,
    rpm: float | None,
    tpm: float | None,
    concurrency: int,
    max_attempts: int,
    skip_invalid: bool,
    retry_failed: bool,
    quiet: bool,
    ray_address: str | None,
    ray_workers: int | None,
    **connection: Any,
) -> None:
    """Run a JSONL file of chat requests at the account's rate limit, resumably.

    INPUT lines: OpenAI Batch request lines ({"custom_id", "method", "url": "/v1/chat/completions",
    "body"}), short lines ({"custom_id"?, "messages": [...], ...}), or with --prompts one prompt per
    line. Every line is checked before anything is sent. OUTPUT gets one record per request in
    the OpenAI Batch output shape; run the same command again to continue after a stop, a crash
    or Ctrl-C: requests that have a record are not sent again.

    \b
    Exit status: 0 every request succeeded, 1 some failed or the job stopped on an API error,
    2 bad usage or input (nothing sent), 130 interrupted.

    \b
    Examples:
      solarstream batch requests.jsonl -m solar-mini          -> requests.results.jsonl
      solarstream batch prompts.txt --prompts -m solar-mini -o answers.jsonl --rpm 100
      solarstream batch requests.jsonl --retry-failed         send the failed ones again
      solarstream batch --offline --prompts prompts.txt -m solar-mini    the built-in emulator
    """
    from ..batch.engine import EngineUnavailable, select_engine

    conn = Connection.from_options(connection)
    conn.check()
    if prompts and not model:
        raise click.UsageError("--prompts needs -m MODEL (or $SOLARSTREAM_MODEL): the lines name no model")
    try:
        factory = select_engine(ray_address, ray_workers)
    except EngineUnavailable as exc:
        fail(exc.message, 2)
    engine = _EngineChoice(factory, ray_address, ray_workers)
    from ..batch.formats import ParseOptions
    from ..batch.job import JobSettings, default_output

    target = output or default_output(input)
    settings = JobSettings(input, target, ParseOptions(model, system, prompts), stream=stream,
                           concurrency=concurrency, max_attempts=max_attempts, skip_invalid=skip_invalid,
                           retry_failed=retry_failed, input_label=str(input), output_label=str(target))
    from ..batch.journal import OutputError
    from ..batch.prepass import BatchInputError

    try:
        summary = _run(settings, conn, rpm, tpm, quiet, engine)
    except BatchInputError as exc:
        for line in exc.lines():
            click.echo(line, err=True)
        fail(exc.message, 2)
    except OutputError as exc:
        fail(exc.message, 2)
    _finish(summary, quiet)


class _EngineChoice:
    """The engine the options asked for, built once the provider and limiter exist (None: local)."""

    def __init__(self, factory: EngineFactory | None, address: str | None, workers: int | None) -> None:
        self.factory, self.address, self.workers = factory, address, workers

    def build(self, settings: JobSettings, provider: OpenAICompatibleProvider, limiter: Limiter,
              stats: RunStats) -> Engine | None:
        if self.factory is None:
            return None
        from ..batch.transport import batch_retry_policy

        return self.factory(address=self.address, workers=self.workers, provider=provider, limiter=limiter,
                            policy=batch_retry_policy(settings.max_attempts), stream=settings.stream,
                            concurrency=settings.concurrency, stats=stats)


def _run(settings: JobSettings, conn: Connection, rpm: float | None, tpm: float | None, quiet: bool,
         engine: _EngineChoice) -> BatchSummary:
    from .._retry import Limiter
    from ..batch.job import BatchJob
    from ..batch.progress import make_display
    from ..batch.transport import RunStats
    from ..providers.openai_compatible import OpenAICompatibleProvider

    display = make_display("none" if quiet else "auto")
    handler = _ToDisplay(display)
    log = logging.getLogger("solarstream")
    log.addHandler(handler)

    async def main() -> BatchSummary:
        # offline, the emulator's headers advertise limits it does not enforce: nothing to learn
        limiter = Limiter(rpm, tpm, learn=not conn.offline)
        async with open_client(conn) as client:
            provider = client.provider
            assert isinstance(provider, OpenAICompatibleProvider)
            stats = RunStats()
            job = BatchJob(settings, provider, limiter, display=display, stats=stats,
                           engine=engine.build(settings, provider, limiter, stats))
            with _signals_interrupt(asyncio.get_running_loop(), job, display):
                return await job.run()

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            log.removeHandler(handler)


def _finish(summary: BatchSummary, quiet: bool) -> None:
    if not quiet:
        for line in summary.lines():
            click.echo(line, err=True)
    if summary.stopped_by is not None and not summary.interrupted:
        message = (error_line(summary.stopped_by) if summary.stop_message == summary.stopped_by.message
                   else " ".join((summary.stop_message or "").split()))
        fail(message, 1)
    raise click.exceptions.Exit(summary.exit_status)
