"""The emulator's aiohttp application: routes, auth, scenario selection, rate limits.

``create_app`` serves ``/v1/chat/completions``, ``/v1/embeddings`` and ``/v1/models``, and the
same under the legacy base ``/v1/solar``. Every response carries the ``X-Upstage-RateLimit-*``
headers of its key and model, and a request id.
"""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from ..providers.upstage import models as _models
from .embeddings import embeddings_body, validate_embeddings
from .faults import HTTP_FAULTS, api_error, error_response, injected_error
from .plan import last_user_text, make_plan
from .ratelimit import RateLimiter, RequestTooLarge, key_id
from .respond import send_completion, send_json, send_stream
from .scenarios import Scenario, ScenarioError, merge, parse, parse_header, parse_text, strip_directives
from .state import DEFAULT_HISTORY, EmulatorState, RequestRecord
from .validation import ApiError, check_api_key, validate_chat
from .wire import dumps

__all__ = ["STATE", "create_app"]

STATE = web.AppKey("solarstream_emulator_state", EmulatorState)
#: (key id or None, model name): whose rate-limit headers a response carries
#: (``web.RequestKey`` where aiohttp has it, 3.12+; a string key before)
_BUCKET: Any = (web.RequestKey("solarstream_emulator_bucket", tuple) if hasattr(web, "RequestKey")
                else "solarstream_emulator_bucket")


async def _record(request: web.Request, state: EmulatorState) -> bytes:
    raw = await request.read()
    headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
    state.record(RequestRecord(request.method, request.path, headers, raw))
    return raw


def _authorize(request: web.Request) -> bytes:
    """The caller's key id (its budget); a missing or malformed key is a 401."""
    authorization = request.headers.get("Authorization")
    check_api_key(authorization)
    assert authorization is not None
    key = key_id(authorization.partition(" ")[2].strip())
    request[_BUCKET] = (key, "")
    return key


def _json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "invalid_request_body", f"Malformed JSON in the request body: {exc}.") from None


def _scenarios(parser: Callable[[str], list[Scenario]], text: str, where: str) -> list[Scenario]:
    try:
        return parser(text)
    except ScenarioError as exc:
        raise ApiError(400, "invalid_request_body", str(exc), where) from None


def _fault(state: EmulatorState, scenarios: dict[str, Scenario]) -> web.Response | None:
    """The injected HTTP error, if a fault scenario still has failures to give (``times=``)."""
    for name in HTTP_FAULTS:
        scenario = scenarios.get(name)
        if scenario is not None:
            times = scenario.number("times")
            if state.attempt(scenario) <= times or times == 0:
                return injected_error(scenario)
            del scenarios[name]  # enough failures: answer normally
    return None


def _admit(request: web.Request, state: EmulatorState, key: bytes, model: str, tokens: int) -> web.Response | None:
    """Charge the request to key+model, or the 429 (or, if it can never fit, the 400) that refuses it."""
    limiter = state.limiter
    request[_BUCKET] = (key, model)
    window = f"{limiter.window:g} s"
    try:
        refusal = limiter.admit(key, model, tokens)
    except RequestTooLarge as exc:
        return error_response(
            400, "request_too_large",
            f"This request needs {exc.tokens} tokens, more than the whole budget of {exc.tpm} tokens per {window} "
            f"for '{model}' on this API key, so it can never be admitted. Send a shorter request, or raise the "
            "emulator's tokens-per-window limit (--tpm).")
    if refusal is None:
        return None
    allowed = " and ".join(f"{n} {what}" for n, what in ((limiter.rpm, "requests"), (limiter.tpm, "tokens")) if n)
    wait = refusal.retry_at - refusal.now
    return error_response(
        429, "too_many_requests",
        f"Rate limit reached: too many {refusal.limit} for '{model}' on this API key (the limit is {allowed} per "
        f"{window}; this request needs {tokens} tokens). Retry in {wait:.1f} s.",
        headers=limiter.retry_headers(refusal))


def _today(state: EmulatorState) -> str:
    return datetime.datetime.fromtimestamp(state.clock(), datetime.timezone.utc).date().isoformat()


def _chat_model(model: Any) -> str:
    """The budget a chat request's model counts against: its current name (aliases share it)."""
    if not isinstance(model, str):
        return ""
    info = _models.lookup(model) or _models.lookup(_models.ALIASES.get(model, ""))
    return info.name if info is not None else model


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    raw = await _record(request, state)
    try:
        key = _authorize(request)
        header = _scenarios(parse_header, request.headers.get("X-Emulate", ""), "X-Emulate")
        body = _json_body(raw)
        if isinstance(body, dict):
            request[_BUCKET] = (key, _chat_model(body.get("model")))
        messages = body.get("messages") if isinstance(body, dict) else None
        in_message = _scenarios(parse_text, last_user_text(messages), "messages")
    except ApiError as exc:
        return api_error(exc)
    scenarios = merge(state.default_scenarios, header, in_message)
    failed = _fault(state, scenarios)
    if failed is not None:
        return failed
    try:
        params = validate_chat(body)
        cache_key = body.get("prompt_cache_key")
        cached = isinstance(cache_key, str) and state.knows_cache_key(cache_key)
        plan = make_plan(params, scenarios, reasoning_field=state.reasoning_field, cached=cached)
    except ApiError as exc:
        return api_error(exc)
    refused = _admit(request, state, key, params.info.name, plan.usage["total_tokens"])
    if refused is not None:
        return refused
    if isinstance(cache_key, str):
        state.remember_cache_key(cache_key)
    state.tokens_used += plan.usage["total_tokens"]
    if params.stream:
        return await send_stream(request, params, plan, scenarios, state)
    return await send_completion(request, params, plan, scenarios, state)


def _last_input(body: Any) -> str:
    """The text fault directives are read from: the last input string."""
    value = body.get("input") if isinstance(body, dict) else None
    if isinstance(value, list) and value:
        value = value[-1]
    return value if isinstance(value, str) else ""


async def embeddings(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    raw = await _record(request, state)
    try:
        key = _authorize(request)
        header = _scenarios(parse_header, request.headers.get("X-Emulate", ""), "X-Emulate")
        body = _json_body(raw)
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            request[_BUCKET] = (key, body["model"])
        in_input = _scenarios(parse_text, _last_input(body), "input")
    except ApiError as exc:
        return api_error(exc)
    scenarios = merge(state.default_scenarios, header, in_input)
    failed = _fault(state, scenarios)
    if failed is not None:
        return failed
    try:
        params = validate_embeddings(body, today=_today(state))
    except ApiError as exc:
        return api_error(exc)
    refused = _admit(request, state, key, params.info.name, params.prompt_tokens)
    if refused is not None:
        return refused
    state.tokens_used += params.prompt_tokens
    texts = [*params.inputs[:-1], strip_directives(params.inputs[-1])]
    return await send_json(request, embeddings_body(params, texts), scenarios, state)


async def models(request: web.Request) -> web.Response:
    state = request.app[STATE]
    await _record(request, state)
    try:
        _authorize(request)
    except ApiError as exc:
        return api_error(exc)
    data = []
    for info in _models.MODELS.values():
        for model_id in (info.name, info.dated_id):
            data.append({"id": model_id, "object": "model", "created": 0, "owned_by": "upstage"})
    today = _today(state)
    for embedding in _models.EMBEDDING_MODELS.values():
        if embedding.removal is None or today < embedding.removal:
            data.append({"id": embedding.name, "object": "model", "created": 0, "owned_by": "upstage"})
    return web.Response(body=dumps({"object": "list", "data": data}).encode(), content_type="application/json")


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    state = request.app[STATE]
    key, model = request.get(_BUCKET, (None, ""))
    response.headers.update(state.limiter.headers(key, model))
    response.headers.setdefault("X-Request-Id", str(uuid.uuid4()))


def create_app(
    *,
    scenario: str | Iterable[str] | None = None,
    reasoning_field: str = "reasoning",
    rpm: int | None = None,
    tpm: int | None = None,
    rate_window: float = 60.0,
    clock: Callable[[], float] | None = None,
    history: int = DEFAULT_HISTORY,
) -> web.Application:
    """The emulator as an aiohttp application.

    ``scenario``: default scenarios for every request (``"crlf"``, ``["slow delay_ms=5", "crlf"]``);
    a request's own ``X-Emulate`` header or ``[emulate:...]`` directive overrides one of the same name.
    ``reasoning_field``: ``reasoning`` (Upstage) or ``reasoning_content`` (some compatible servers).
    ``rpm``/``tpm``: requests and tokens allowed per key and model in any ``rate_window`` seconds
    (``None``: not enforced). ``clock``: Unix time in seconds (default ``time.time``), for the
    windows, the header timestamps and the embedding models' removal dates.
    ``history``: how many recent requests ``state.requests`` keeps.
    Serve it with ``handler_cancellation=True`` so a client that goes away is noticed at once.
    """
    specs = [scenario] if isinstance(scenario, str) else list(scenario or ())
    defaults = [parse(s) for s in specs]
    if reasoning_field not in ("reasoning", "reasoning_content"):
        raise ValueError(f"reasoning_field must be 'reasoning' or 'reasoning_content', not {reasoning_field!r}")
    limiter = RateLimiter(rpm=rpm, tpm=tpm, window=rate_window, clock=clock or time.time)
    app = web.Application()
    app[STATE] = EmulatorState(defaults, reasoning_field=reasoning_field, limiter=limiter, history=history)
    for base in ("/v1", "/v1/solar"):
        app.router.add_post(f"{base}/chat/completions", chat_completions)
        app.router.add_post(f"{base}/embeddings", embeddings)
        app.router.add_get(f"{base}/models", models)
    app.on_response_prepare.append(_add_headers)
    return app


