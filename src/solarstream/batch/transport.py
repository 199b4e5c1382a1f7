"""One request of a job, from its ``Work`` to its ``BatchResult``, through the core's retry and limit layer.

A request is prepared by the provider's own ``prepare_chat`` (the parameter policy is written once),
then every attempt — sending, reading the whole answer, parsing it — runs inside
``call_with_retries`` with the job's ``Limiter`` and ``RetryPolicy``:

* 429 ``too_many_requests``: the limiter pauses the whole job once; the request is retried without
  counting an attempt (``rate_limit_retries``);
* 5xx, 408, connection errors, timeouts and answers that break off: retried with backoff up to
  ``max_attempts`` (a broken answer is simply sent again: nothing was recorded for it), then
  recorded as the request's error;
* other 4xx: recorded at once;
* 401, 403, 429 ``usage_limit_exceeded``, a 429 asking for a longer wait than a job takes, and
  TLS or proxy failures stop the job (``JobStopped``): every other request would fail the same
  way. The request that hit it gets no record, so a rerun sends it again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._http import Response, parse_json_body
from .._retry import Grant, Limiter, RetryPolicy, call_with_retries
from .._stream import ChatStream
from ..errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    InvalidRequestError,
    QuotaExceededError,
    RateLimitError,
    SolarstreamError,
    StreamError,
    StreamTruncatedError,
)
from .formats import BatchResult, Work

if TYPE_CHECKING:
    from ..providers.openai_compatible import ChatRequest, OpenAICompatibleProvider

__all__ = ["Executor", "JobStopped", "RunStats", "TokenEstimator", "batch_retry_policy", "prepare"]

#: the longest wait a 429 may ask for before the job stops instead (rerun it later)
MAX_RATE_LIMIT_WAIT = 900.0
#: 429 retries never run out (each waits as long as the API says, at most MAX_RATE_LIMIT_WAIT)
_FREE_RATE_LIMIT_RETRIES = 1 << 40


def batch_retry_policy(max_attempts: int) -> RetryPolicy:
    """The job's retry rules: ``max_attempts`` in all for server and connection trouble, 429s free."""
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise InvalidRequestError(f"max_attempts must be a whole number, 1 or more, not {max_attempts!r}",
                                  param="max_attempts")
    return RetryPolicy(max_retries=max_attempts - 1, backoff=0.5, backoff_max=30.0,
                       max_retry_after=MAX_RATE_LIMIT_WAIT, rate_limit_retries=_FREE_RATE_LIMIT_RETRIES)


class JobStopped(Exception):
    """An answer that every other request would get too: the job stops (``error`` says why)."""

    def __init__(self, error: SolarstreamError, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


@dataclass
class RunStats:
    """Counts across a run's requests (the limiter keeps the rate-limit ones)."""

    attempts: int = 0
    retries: int = 0


class TokenEstimator:
    """Token estimates for the limiter: prompt size plus ``max_tokens`` before any answer came;
    then the prompt size scaled by what answers reported, and the average answer length (at most
    ``max_tokens``), so that a ``tpm`` limit is paced at what requests really use."""

    __slots__ = ("_answers", "_completion_used", "_prompt_estimated", "_prompt_used")

    def __init__(self) -> None:
        self._prompt_estimated = 0
        self._prompt_used = 0
        self._completion_used = 0
        self._answers = 0

    @staticmethod
    def _prompt(request: ChatRequest) -> int:
        return len(request.body) // 4

    def estimate(self, request: ChatRequest) -> int:
        prompt = self._prompt(request)
        limit = max(request.tokens - prompt, 0)  # the request's max_tokens (0: none)
        if not self._answers:
            return prompt + limit
        if self._prompt_estimated:
            prompt = prompt * self._prompt_used // self._prompt_estimated
        completion = self._completion_used // self._answers
        return prompt + (min(completion, limit) if limit else completion)

    def observe(self, request: ChatRequest, prompt_tokens: int, completion_tokens: int) -> None:
        if prompt_tokens <= 0 and completion_tokens <= 0:
            return  # the answer reported no usage: nothing learned
        self._prompt_estimated += self._prompt(request)
        self._prompt_used += prompt_tokens
        self._completion_used += completion_tokens
        self._answers += 1


def prepare(provider: OpenAICompatibleProvider, work: Work, stream: bool) -> ChatRequest:
    """The provider's request for ``work``; raises ``InvalidRequestError`` as ``Upstage`` does
    before sending. Streamed requests ask for usage (unless the line says otherwise)."""
    params = work.params
    if stream and params.get("stream_options") is None:
        params = {**params, "stream_options": {"include_usage": True}}
    return provider.prepare_chat(work.model, work.messages, stream=stream, **params)


async def _ready(response: Response) -> Response:
    return response


async def _read_json(response: Response) -> Any:
    try:
        raw = await response.read_all()
    except BaseException:
        response.close()
        raise
    await response.finish()
    data = parse_json_body(raw, response)
    if not isinstance(data, dict):
        raise StreamError(f"the API answered HTTP {response.status} with JSON that is not a completion object")
    return data


def _usage(body: Any) -> tuple[int, int, int | None]:
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return 0, 0, None
    try:
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        total = int(usage.get("total_tokens") or prompt + completion)
    except (TypeError, ValueError):
        return 0, 0, None
    return prompt, completion, total


class Executor:
    """Sends one ``Work`` and gives its ``BatchResult``; shared by every request of a run."""

    def __init__(
        self,
        provider: OpenAICompatibleProvider,
        *,
        limiter: Limiter,
        policy: RetryPolicy,
        stream: bool = False,
        stats: RunStats | None = None,
    ) -> None:
        self.provider = provider
        self.limiter = limiter
        self.policy = policy
        self.stream = stream
        self.stats = stats or RunStats()
        self.estimator = TokenEstimator()

    async def __call__(self, work: Work) -> BatchResult:
        try:
            request = prepare(self.provider, work, self.stream)
        except InvalidRequestError as exc:
            return BatchResult.failure(work.custom_id, "invalid_request", exc.message)
        return await self.send(work.custom_id, request)

    async def send(self, custom_id: str, request: ChatRequest) -> BatchResult:
        provider, stats = self.provider, self.stats
        http, quirks = provider.http, provider.spec.quirks
        deadline = request.timeout.deadline()
        attempts = 0
        grants: list[Grant] = []
        read: Callable[[Response], Awaitable[Any]] = self._read_stream if request.stream else _read_json

        async def attempt() -> tuple[Response, Any]:
            nonlocal attempts
            attempts += 1
            stats.attempts += 1
            if attempts > 1:
                stats.retries += 1
            try:
                response = await http.send("POST", request.url, headers=request.headers, body=request.body,
                                           proxy=request.proxy, timeout=request.timeout, deadline=deadline,
                                           errors=quirks.error, request_id=quirks.request_id)
            except APITimeoutError as exc:
                exc.retryable = True  # the server may be slow or gone; a job sends again
                raise
            try:
                return response, await read(response)
            except (APIConnectionError, StreamError) as exc:
                exc.retryable = True  # the answer broke off: nothing is recorded for it, send it again
                raise

        try:
            response, body = await call_with_retries(
                attempt, policy=self.policy, limiter=self.limiter, deadline=deadline,
                tokens=self.estimator.estimate(request),
                facts=lambda result: quirks.rate_limits(result[0].headers), on_grant=grants.append)
        except SolarstreamError as exc:
            return _failure(custom_id, exc, attempts)
        prompt, completion, total = _usage(body)
        if grants:
            self.limiter.settle(grants[0], total)
        self.estimator.observe(request, prompt, completion)
        return BatchResult(custom_id, True, response.status, response.request_id, body, None, prompt, completion,
                           attempts)

    async def _read_stream(self, response: Response) -> Any:
        quirks = self.provider.spec.quirks
        stream = ChatStream(lambda: _ready(response), stop_with_tool_calls=quirks.stop_with_tool_calls)
        completion = await stream.get_final_completion()
        return completion.to_dict()


def _failure(custom_id: str, exc: SolarstreamError, attempts: int) -> BatchResult:
    """The error record for ``exc``, or ``JobStopped`` when no request could get past it."""
    if isinstance(exc, APIStatusError):
        status = exc.status_code
        if (isinstance(exc, (AuthenticationError, QuotaExceededError)) or status in (401, 403)
                or status is None):
            raise JobStopped(exc, exc.message)
        if isinstance(exc, RateLimitError):
            wait = f" for {exc.retry_after:.0f}s" if exc.retry_after is not None else ""
            raise JobStopped(exc, f"{exc.message}; the API asks to wait{wait}, longer than a job waits "
                                  f"({MAX_RATE_LIMIT_WAIT:.0f}s): rerun the same command later")
        code = exc.code or ("server_error" if status >= 500 else f"http_{status}")
        return BatchResult.failure(custom_id, code, exc.message, status_code=status, request_id=exc.request_id,
                                   body=exc.body, attempts=attempts)
    if isinstance(exc, APITimeoutError):
        code = "timeout"
    elif isinstance(exc, APIConnectionError):
        if not exc.retryable:  # TLS, proxy: a setting, not this request
            raise JobStopped(exc, exc.message)
        code = "connection_error"
    elif isinstance(exc, StreamTruncatedError):
        code = "incomplete_response"
    elif isinstance(exc, StreamError):
        code = exc.code or "invalid_response"
    else:
        code = "error"
    return BatchResult.failure(custom_id, code, exc.message, attempts=attempts)
