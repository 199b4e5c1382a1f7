"""The emulator's aiohttp application: routes, auth, scenario selection, injected HTTP errors.

``create_app`` serves ``/v1/chat/completions`` and ``/v1/models``, and the same under the legacy
base ``/v1/solar``. Every response carries ``X-Upstage-RateLimit-*`` headers and a request id.
"""

from __future__ import annotations

import http
import json
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from ..providers.upstage import models as _models
from .plan import last_user_text, make_plan
from .respond import send_completion, send_stream
from .scenarios import Scenario, ScenarioError, merge, parse, parse_header, parse_text
from .state import EmulatorState, RequestRecord
from .validation import ApiError, check_api_key, validate_chat
from .wire import dumps, error_body

__all__ = ["STATE", "create_app"]

STATE = web.AppKey("solarstream_emulator_state", EmulatorState)

_CODES = {400: "invalid_request_body", 401: "invalid_api_key", 403: "forbidden", 404: "not_found",
          408: "request_timeout", 429: "too_many_requests", 499: "client_closed_request",
          500: "internal_server_error", 502: "bad_gateway", 503: "service_unavailable", 504: "gateway_timeout"}
#: faults that answer with an HTTP error instead of a completion
_HTTP_FAULTS = ("error", "html-error", "rate-limit")


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Client Closed Request" if status == 499 else "Error"


def _error_response(status: int, code: str, message: str, param: str = "",
                    headers: Mapping[str, str] | None = None) -> web.Response:
    type_ = "server_error" if status >= 500 else "invalid_request_error"
    return web.Response(status=status, reason=_reason(status), headers=headers,
                        body=dumps(error_body(message, code, type_=type_, param=param)).encode(),
                        content_type="application/json")


def _api_error(exc: ApiError) -> web.Response:
    return _error_response(exc.status, exc.code, exc.message, exc.param)


def _html_page(status: int) -> str:
    title = f"{status} {_reason(status)}"
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


def _injected_error(scenario: Scenario) -> web.Response:
    """The HTTP error a fault scenario asked for."""
    name = scenario.name
    if name == "html-error":
        status = scenario.number("status")
        return web.Response(status=status, reason=_reason(status), text=_html_page(status), content_type="text/html")
    if name == "rate-limit":
        code = scenario.word("code")
        delay_ms = scenario.number("delay_ms")
        which = scenario.word("header")
        headers: dict[str, str] = {}
        if which in ("retry-after", "all"):
            headers["Retry-After"] = str(math.ceil(delay_ms / 1000))
        if which in ("retry-after-ms", "all"):
            headers["retry-after-ms"] = str(delay_ms)
        if which in ("upstage", "all"):
            stamp = str(int(time.time() + delay_ms / 1000))
            headers["X-Upstage-RateLimit-Retry-After-Requests"] = stamp
            headers["X-Upstage-RateLimit-Retry-After-Tokens"] = stamp
        message = ("Emulated usage limit: the account's cap is reached (requested by [emulate:rate-limit])."
                   if code == "usage_limit_exceeded"
                   else "Emulated rate limit: too many requests (requested by [emulate:rate-limit]).")
        return _error_response(429, code, message, headers=headers)
    status = scenario.number("status")
    code = scenario.word("code") or _CODES.get(status, "error")
    body = scenario.word("body")
    if body == "html":
        return web.Response(status=status, reason=_reason(status), text=_html_page(status), content_type="text/html")
    if body == "legacy":
        return web.Response(status=status, reason=_reason(status), content_type="application/json",
                            body=dumps({"message": _reason(status)}).encode())
    if body == "empty":
        return web.Response(status=status, reason=_reason(status))
    return _error_response(status, code, f"Emulated error {status} {code}, requested by [emulate:error].")


async def _record(request: web.Request, state: EmulatorState) -> bytes:
    raw = await request.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
    state.record(RequestRecord(request.method, request.path, headers, raw, parsed))
    return raw


def _scenarios(parser: Callable[[str], list[Scenario]], text: str, where: str) -> list[Scenario]:
    try:
        return parser(text)
    except ScenarioError as exc:
        raise ApiError(400, "invalid_request_body", str(exc), where) from None


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    raw = await _record(request, state)
    try:
        check_api_key(request.headers.get("Authorization"))
        header = _scenarios(parse_header, request.headers.get("X-Emulate", ""), "X-Emulate")
        try:
            body: Any = json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, "invalid_request_body", f"Malformed JSON in the request body: {exc}.") from None
        messages = body.get("messages") if isinstance(body, dict) else None
        in_message = _scenarios(parse_text, last_user_text(messages), "messages")
    except ApiError as exc:
        return _api_error(exc)
    scenarios = merge(state.default_scenarios, header, in_message)
    for name in _HTTP_FAULTS:
        scenario = scenarios.get(name)
        if scenario is not None:
            times = scenario.number("times")
            if state.attempt(scenario) <= times or times == 0:
                return _injected_error(scenario)
            del scenarios[name]  # enough failures: answer normally
    try:
        params = validate_chat(body)
        cache_key = body.get("prompt_cache_key")
        cached = isinstance(cache_key, str) and cache_key in state.cache_keys
        if isinstance(cache_key, str):
            state.cache_keys.add(cache_key)
        plan = make_plan(params, scenarios, reasoning_field=state.reasoning_field, cached=cached)
    except ApiError as exc:
        return _api_error(exc)
    state.tokens_used += plan.usage["total_tokens"]
    if params.stream:
        return await send_stream(request, params, plan, scenarios, state)
    return await send_completion(request, params, plan, scenarios, state)


async def models(request: web.Request) -> web.Response:
    state = request.app[STATE]
    await _record(request, state)
    try:
        check_api_key(request.headers.get("Authorization"))
    except ApiError as exc:
        return _api_error(exc)
    data = []
    for info in _models.MODELS.values():
        for model_id in (info.name, info.dated_id):
            data.append({"id": model_id, "object": "model", "created": 0, "owned_by": "upstage"})
    return web.Response(body=dumps({"object": "list", "data": data}).encode(), content_type="application/json")


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    state = request.app[STATE]
    response.headers.update(state.rate_limit_headers())
    response.headers.setdefault("X-Request-Id", str(uuid.uuid4()))


def create_app(*, scenario: str | Iterable[str] | None = None, reasoning_field: str = "reasoning") -> web.Application:
    """The emulator as an aiohttp application.

    ``scenario``: default scenarios for every request (``"crlf"``, ``["slow delay_ms=5", "crlf"]``);
    a request's own ``X-Emulate`` header or ``[emulate:...]`` directive overrides one of the same name.
    ``reasoning_field``: ``reasoning`` (Upstage) or ``reasoning_content`` (some compatible servers).
    Serve it with ``handler_cancellation=True`` so a client that goes away is noticed at once.
    """
    specs = [scenario] if isinstance(scenario, str) else list(scenario or ())
    defaults = [parse(s) for s in specs]
    if reasoning_field not in ("reasoning", "reasoning_content"):
        raise ValueError(f"reasoning_field must be 'reasoning' or 'reasoning_content', not {reasoning_field!r}")
    app = web.Application()
    app[STATE] = EmulatorState(defaults, reasoning_field=reasoning_field)
    for base in ("/v1", "/v1/solar"):
        app.router.add_post(f"{base}/chat/completions", chat_completions)
        app.router.add_get(f"{base}/models", models)
    app.on_response_prepare.append(_add_headers)
    return app
