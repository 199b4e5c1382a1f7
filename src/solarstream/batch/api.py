"""The batch runner from Python: a file job (``run``/``arun``) and results for any iterable (``aresults``/``results``).

Both use the same pieces as ``solarstream batch``: the provider's own request checks, one job-wide
``Limiter`` (paced at ``rpm``/``tpm``, learning the account's limits from the rate-limit headers
when they are not given, one pause for everyone on a 429) and the job's retry rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _sync
from .._retry import Limiter
from ..errors import InvalidRequestError
from .defaults import DEFAULT_CONCURRENCY, DEFAULT_MAX_ATTEMPTS
from .engine import LocalEngine, WorkSource
from .formats import BatchResult, ParseOptions, Problem, Work, parse_object
from .ids import IN_INPUT, IdTable
from .job import BatchJob, JobSettings, default_output, learns_limits
from .logs import once_per_job
from .progress import make_display
from .summary import BatchSummary
from .transport import Executor, JobStopped, batch_retry_policy

if TYPE_CHECKING:
    from ..providers.openai_compatible import OpenAICompatibleProvider

__all__ = ["aresults", "arun", "results", "run"]

#: what ``aresults`` takes: request objects (either line shape) or prompts
Request = Mapping[str, Any] | str


def _limiter(limiter: Limiter | None, rpm: float | None, tpm: float | None) -> Limiter:
    if limiter is not None:
        if rpm is not None or tpm is not None:
            raise InvalidRequestError("give rpm=/tpm= or limiter=, not both (a Limiter has its own rpm and tpm)")
        return limiter
    return Limiter(rpm, tpm, learn=True)


@contextlib.asynccontextmanager
async def _provider(provider: OpenAICompatibleProvider | None, api_key: str | None,
                    base_url: str | None) -> AsyncIterator[OpenAICompatibleProvider]:
    from ..providers.openai_compatible import OpenAICompatibleProvider

    if provider is not None:
        if api_key is not None or base_url is not None:
            raise InvalidRequestError("give provider= or api_key=/base_url=, not both (the provider has its own)")
        if not isinstance(provider, OpenAICompatibleProvider):
            raise InvalidRequestError(f"batch jobs need an OpenAICompatibleProvider (Upstage or another), not "
                                      f"{type(provider).__name__}", param="provider")
        yield provider
        return
    from ..providers import Upstage

    async with Upstage(api_key=api_key, base_url=base_url) as own:
        yield own


async def arun(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    model: str | None = None,
    system: str | None = None,
    prompts: bool = False,
    stream: bool = False,
    rpm: float | None = None,
    tpm: float | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    skip_invalid: bool = False,
    retry_failed: bool = False,
    provider: OpenAICompatibleProvider | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    limiter: Limiter | None = None,
    progress: bool | str = False,
) -> BatchSummary:
    """Run the JSONL (or, with ``prompts``, plain-text) file ``input`` into ``output`` (default:
    ``input`` with ``.results.jsonl`` for ``.jsonl``), resuming what an earlier run left.

    Raises ``BatchInputError`` (bad lines, duplicates, an empty file) or ``OutputError`` (``output``
    is another job's) before anything is sent. An answer that stops the job (invalid key, quota) is
    not raised: it is ``summary.stopped_by``; ``summary.ok`` says whether every line succeeded.
    ``progress``: False (default), True or ``"auto"`` (a bar on a terminal, else a line every 10 s),
    ``"bar"``, ``"plain"``.
    """
    source = Path(input)
    target = Path(output) if output is not None else default_output(source)
    settings = JobSettings(source, target, ParseOptions(model, system, prompts), stream=stream,
                           concurrency=concurrency, max_attempts=max_attempts, skip_invalid=skip_invalid,
                           retry_failed=retry_failed)
    job_limiter = _limiter(limiter, rpm, tpm)
    display = make_display(progress)
    async with _provider(provider, api_key, base_url) as chosen:
        return await BatchJob(settings, chosen, job_limiter, display=display).run()


def run(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    model: str | None = None,
    system: str | None = None,
    prompts: bool = False,
    stream: bool = False,
    rpm: float | None = None,
    tpm: float | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    skip_invalid: bool = False,
    retry_failed: bool = False,
    provider: OpenAICompatibleProvider | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    limiter: Limiter | None = None,
    progress: bool | str = False,
) -> BatchSummary:
    """``arun``, synchronously (on solarstream's background loop, so it also works inside Jupyter)."""
    return _sync.run(arun(input, output, model=model, system=system, prompts=prompts, stream=stream, rpm=rpm,
                          tpm=tpm, concurrency=concurrency, max_attempts=max_attempts, skip_invalid=skip_invalid,
                          retry_failed=retry_failed, provider=provider, api_key=api_key, base_url=base_url,
                          limiter=limiter, progress=progress))


async def _works(requests: Iterable[Request] | AsyncIterable[Request], options: ParseOptions,
                 problems: asyncio.Queue[BatchResult | None]) -> AsyncGenerator[Work, None]:
    """The caller's requests as ``Work``; the ones that cannot be sent become failures at once."""
    seen = IdTable()
    number = 0

    async def items() -> AsyncIterator[Request]:
        if isinstance(requests, AsyncIterable):
            async for item in requests:
                yield item
        else:
            for item in requests:
                yield item

    async for item in items():
        number += 1
        parsed: Work | Problem = parse_object(item, number, options, prompts=True)
        if seen.add(parsed.custom_id, IN_INPUT):
            parsed = Problem(number, f"duplicate custom_id {parsed.custom_id!r}", parsed.custom_id)
        if isinstance(parsed, Problem):
            await problems.put(BatchResult.failure(parsed.custom_id, "invalid_request", parsed.message))
            continue
        yield parsed


async def aresults(
    requests: Iterable[Request] | AsyncIterable[Request],
    *,
    model: str | None = None,
    system: str | None = None,
    stream: bool = False,
    rpm: float | None = None,
    tpm: float | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    provider: OpenAICompatibleProvider | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    limiter: Limiter | None = None,
) -> AsyncIterator[BatchResult]:
    """A ``BatchResult`` for each request, in completion order, without files.

    ``requests``: any iterable or async iterable (a generator, DataFrame rows as dicts) of request
    objects in either INPUT line shape, or of prompt strings. Items are read as workers free up,
    so memory stays flat however many there are. A request that cannot be sent gives a failure
    result (``invalid_request``); an answer that stops the job (invalid key, quota) is raised
    after the results already finished.
    """
    options = ParseOptions(model, system)
    job_limiter = _limiter(limiter, rpm, tpm)
    policy = batch_retry_policy(max_attempts)
    queue: asyncio.Queue[BatchResult | None] = asyncio.Queue(maxsize=max(concurrency, 1) * 2)
    failure: list[BaseException] = []
    async with _provider(provider, api_key, base_url) as chosen:
        engine = LocalEngine(Executor(chosen, limiter=job_limiter, policy=policy, stream=stream),
                             concurrency=concurrency, probe_first=learns_limits(job_limiter))

        async def drive() -> None:
            works = _works(requests, options, queue)
            try:
                await engine.run(WorkSource(works), queue.put)
            except asyncio.CancelledError:
                raise  # the consumer left: nobody waits for the end mark
            except BaseException as exc:  # raised to the consumer once the finished results are out
                failure.append(exc)
            finally:
                await works.aclose()
            await queue.put(None)

        with once_per_job():
            task = asyncio.ensure_future(drive())
            try:
                while (result := await queue.get()) is not None:
                    yield result
                await task
            finally:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
    if failure:
        error = failure[0]
        raise error.error if isinstance(error, JobStopped) else error


def results(
    requests: Iterable[Request] | AsyncIterable[Request],
    *,
    model: str | None = None,
    system: str | None = None,
    stream: bool = False,
    rpm: float | None = None,
    tpm: float | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    provider: OpenAICompatibleProvider | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    limiter: Limiter | None = None,
) -> Iterator[BatchResult]:
    """``aresults``, synchronously: iterate it in a plain ``for`` loop."""
    return _sync.iterate(aresults(requests, model=model, system=system, stream=stream, rpm=rpm, tpm=tpm,
                                  concurrency=concurrency, max_attempts=max_attempts, provider=provider,
                                  api_key=api_key, base_url=base_url, limiter=limiter))
