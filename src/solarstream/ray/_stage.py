"""``ChatStage``: the Ray Data stage — chat completions for the rows of a ``ray.data.Dataset``.

::

    ds = ray.data.read_parquet("questions.parquet")          # a "prompt" or a "messages" column
    ds = ds.map_batches(solarstream.ray.ChatStage, fn_constructor_kwargs={"model": "solar-mini", "rpm": 600},
                        concurrency=4, batch_size=64, num_cpus=0.25)
    ds.write_parquet("answers/")                              # + answer, usage, finish_reason, error

Each request goes through the batch runner's ``Executor`` (the provider's own checks, the retry
rules of ``solarstream batch``) and the cluster's ``SharedLimiter``: every instance of the stage
that uses one key, base URL and model draws from one named limiter actor, so the account's limits
hold however many instances Ray Data starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ray
from ray.exceptions import RayActorError

from .. import _sync
from .._retry import Limiter
from ..batch.defaults import DEFAULT_MAX_ATTEMPTS
from ..batch.formats import BatchResult, Work
from ..batch.transport import Executor, JobStopped, batch_retry_policy, prepare
from ..errors import APIStatusError, InvalidRequestError, SolarstreamError, StreamError
from ._limiter import LimiterConfig, SharedLimiter, limiter_actor, limiter_name

if TYPE_CHECKING:
    from ..providers.openai_compatible import OpenAICompatibleProvider

__all__ = ["ChatStage"]

#: the columns the stage adds to every row
COLUMNS = ("answer", "usage", "finish_reason", "error")
#: a shared limiter no stage has called for this long ends itself (it is detached: no driver owns it)
LIMITER_IDLE_EXIT = 300.0

_NO_INPUT = ("the row has neither a 'messages' column (a list of message dicts) nor a 'prompt' column "
             "(a string)")


def _plain(value: Any) -> Any:
    """A cell as plain Python: Ray Data gives lists as numpy arrays and fills the struct fields a
    row lacks with ``None`` (dropped here, as the provider drops them)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if tolist is not None and type(value).__module__ == "numpy":
        return _plain(tolist())
    return value


def _error_code(error: SolarstreamError) -> str:
    if isinstance(error, (APIStatusError, StreamError)) and error.code:
        return error.code
    if isinstance(error, APIStatusError) and error.status_code is not None:
        return f"http_{error.status_code}"
    return type(error).__name__


class ChatStage:
    """The Ray Data stage: for ``ds.map_batches(ChatStage, fn_constructor_kwargs={...})``.

    Rows carry a ``messages`` column (a list of ``{"role", "content"}`` dicts) or a ``prompt``
    column (a string, sent as the user message, after ``system`` if given). Each row gets
    ``answer`` (the text, ``None`` on failure), ``usage`` (``prompt_tokens``, ``completion_tokens``,
    ``total_tokens``; zeros on failure), ``finish_reason`` and ``error`` (``None``, or
    ``{"code", "message"}`` as in ``solarstream batch``'s records). A row that fails — a bad
    message, a parameter the API rejects, an answer that never came after the retries — carries
    its error; the dataset goes on.

    ``model`` (required); ``api_key``, ``base_url`` (else ``UPSTAGE_API_KEY``, ``UPSTAGE_BASE_URL``
    as seen by the Ray worker — pass them, or set them in the job's ``runtime_env``); ``rpm``,
    ``tpm`` (else learned from the API's rate-limit headers); ``provider`` (a registered name:
    ``upstage``, ``openai-compatible``, or ``module:attribute``); ``concurrency`` (requests in
    flight per stage instance); ``max_attempts``, ``stream``, ``timeout``; any other keyword is a
    request parameter (``temperature``, ``max_tokens``, ...), checked now: a bad one fails the
    stage before any row is sent.

    Every instance with the same key, base URL and model in one Ray job shares one limiter (a
    named actor; the first instance's ``rpm``/``tpm`` hold for all).
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        rpm: float | None = None,
        tpm: float | None = None,
        system: str | None = None,
        provider: str = "upstage",
        concurrency: int = 16,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        stream: bool = False,
        timeout: float | None = None,
        **params: Any,
    ) -> None:
        from ..providers.registry import create_provider

        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidRequestError(f"concurrency must be a whole number, 1 or more, not {concurrency!r}",
                                      param="concurrency")
        self.model = model
        self.system = system
        self.params = params
        self.stream = stream
        self.concurrency = concurrency
        self._provider: OpenAICompatibleProvider = create_provider(provider, api_key=api_key, base_url=base_url,
                                                                   timeout=timeout)
        prepare(self._provider, Work("check", 0, model, [{"role": "user", "content": "check"}], dict(params)),
                stream)  # a bad parameter or no key: one error now, not one per row
        self._policy = batch_retry_policy(max_attempts)
        # one budget per key, base URL and model (Upstage's limits are per key and model), per Ray job
        key = self._provider.resolve_api_key() or ""
        self._limiter_name = limiter_name(ray.get_runtime_context().get_job_id(),
                                          self._provider.resolve_base_url(), key, model)
        self._config = LimiterConfig.of(Limiter(rpm, tpm, learn=True))
        self._executor = self._new_executor()
        self._stopped: JobStopped | None = None

    def __repr__(self) -> str:
        return f"ChatStage(model={self.model!r}, provider={self._provider!r})"

    def _new_executor(self) -> Executor:
        actor = limiter_actor(self._config, self._limiter_name, detached=True, idle_exit=LIMITER_IDLE_EXIT)
        return Executor(self._provider, limiter=SharedLimiter(actor, self._config), policy=self._policy,
                        stream=self.stream)

    # --- rows ----------------------------------------------------------------------------------

    def _messages(self, message_cells: Sequence[Any] | None, prompt_cells: Sequence[Any] | None,
                  count: int) -> list[Any]:
        out: list[Any] = []
        for i in range(count):
            messages = _plain(message_cells[i]) if message_cells is not None else None
            if messages is None and prompt_cells is not None:
                prompt = _plain(prompt_cells[i])
                if isinstance(prompt, str):
                    messages = [{"role": "user", "content": prompt}]
                elif prompt is not None:
                    messages = InvalidRequestError(f"prompt must be a string, not {type(prompt).__name__}",
                                                   param="prompt")
            if messages is None:
                messages = InvalidRequestError(_NO_INPUT, param="messages")
            elif self.system and isinstance(messages, list) and not (
                    messages and isinstance(messages[0], Mapping) and messages[0].get("role") == "system"):
                messages = [{"role": "system", "content": self.system}, *messages]
            out.append(messages)
        return out

    async def _one(self, index: int, messages: Any, gate: asyncio.Semaphore) -> BatchResult:
        if isinstance(messages, InvalidRequestError):
            return BatchResult.failure(str(index), "invalid_request", messages.message)
        if self._stopped is not None:  # the key is refused, the quota spent: no row can get past it
            return BatchResult.failure(str(index), _error_code(self._stopped.error), self._stopped.message)
        work = Work(str(index), index + 1, self.model, messages, dict(self.params))
        async with gate:
            for _ in range(2):
                try:
                    return await self._executor(work)
                except JobStopped as stop:
                    self._stopped = stop
                    return BatchResult.failure(work.custom_id, _error_code(stop.error), stop.message)
                except RayActorError:  # the shared limiter went away (idle, killed): find or start it again
                    self._executor = self._new_executor()
        return BatchResult.failure(work.custom_id, "limiter_unavailable",
                                   "the shared limiter actor could not be reached")

    async def _all(self, cells: list[Any]) -> list[BatchResult]:
        gate = asyncio.Semaphore(self.concurrency)
        return list(await asyncio.gather(*(self._one(i, m, gate) for i, m in enumerate(cells))))

    @staticmethod
    def _columns(results: list[BatchResult]) -> dict[str, list[Any]]:
        columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
        for result in results:
            body = result.body if result.ok and isinstance(result.body, Mapping) else {}
            choices = body.get("choices")
            first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], Mapping) else {}
            finish = first.get("finish_reason")
            columns["answer"].append(result.content)
            columns["usage"].append({"prompt_tokens": result.prompt_tokens,
                                     "completion_tokens": result.completion_tokens,
                                     "total_tokens": result.prompt_tokens + result.completion_tokens})
            columns["finish_reason"].append(finish if isinstance(finish, str) else None)
            columns["error"].append(dict(result.error) if result.error is not None else None)
        return columns

    def __call__(self, batch: Any) -> Any:
        """One batch in Ray Data's numpy (dict of arrays), pandas or pyarrow format, with the four
        columns added, typed (so every block has one schema, even one where every row failed):
        a ``pyarrow.Table`` for pyarrow and numpy batches, a ``DataFrame`` for pandas."""
        kind = type(batch).__module__.split(".")[0]
        if kind == "pyarrow":
            names = batch.column_names
            count = batch.num_rows
            cells = self._messages(batch.column("messages").to_pylist() if "messages" in names else None,
                                   batch.column("prompt").to_pylist() if "prompt" in names else None, count)
        else:  # a dict of numpy arrays, or a pandas DataFrame
            count = len(batch) if kind == "pandas" else len(next(iter(batch.values()), ()))
            cells = self._messages(list(batch["messages"]) if "messages" in batch else None,
                                   list(batch["prompt"]) if "prompt" in batch else None, count)
        columns = _typed(self._columns(_sync.run(self._all(cells))))
        if kind == "pandas":
            return self._with_pandas(batch, columns)
        if kind != "pyarrow":
            from ray.data.block import BlockAccessor

            batch = BlockAccessor.batch_to_block(dict(batch))  # Ray Data's own conversion of the row's columns
            if type(batch).__module__.split(".")[0] == "pandas":  # (its fallback for what Arrow cannot hold)
                return self._with_pandas(batch, columns)
        for name, array in columns.items():
            if name in batch.column_names:
                batch = batch.drop_columns([name])
            batch = batch.append_column(name, array)
        return batch

    @staticmethod
    def _with_pandas(frame: Any, columns: dict[str, Any]) -> Any:
        import pandas as pd

        frame = frame.copy()
        for name, array in columns.items():
            frame[name] = pd.Series(array, dtype=pd.ArrowDtype(array.type), index=frame.index)
        return frame


def _typed(columns: dict[str, list[Any]]) -> dict[str, Any]:
    """The added columns as Arrow arrays of fixed types (a column of ``None`` would be typeless)."""
    import pyarrow as pa

    tokens = pa.int64()
    types = {
        "answer": pa.string(),
        "usage": pa.struct([("prompt_tokens", tokens), ("completion_tokens", tokens), ("total_tokens", tokens)]),
        "finish_reason": pa.string(),
        "error": pa.struct([("code", pa.string()), ("message", pa.string())]),
    }
    return {name: pa.array(values, type=types[name]) for name, values in columns.items()}
