"""HTTP error answers: the API's JSON envelope, and the errors fault scenarios ask for.

``error``, ``html-error`` and ``rate-limit`` answer before any byte of a body, on every endpoint
(chat, embeddings); ``injected_error`` builds that answer from the scenario's options.
"""

from __future__ import annotations

import http
import math
import time
from collections.abc import Mapping

from aiohttp import web

from .scenarios import Scenario
from .validation import ApiError
from .wire import dumps, error_body

__all__ = ["HTTP_FAULTS", "api_error", "error_response", "injected_error", "reason"]

_CODES = {400: "invalid_request_body", 401: "invalid_api_key", 403: "forbidden", 404: "not_found",
          408: "request_timeout", 429: "too_many_requests", 499: "client_closed_request",
          500: "internal_server_error", 502: "bad_gateway", 503: "service_unavailable", 504: "gateway_timeout"}
#: faults that answer with an HTTP error instead of a completion
HTTP_FAULTS = ("error", "html-error", "rate-limit")


def reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Client Closed Request" if status == 499 else "Error"


def error_response(status: int, code: str, message: str, param: str = "",
                   headers: Mapping[str, str] | None = None) -> web.Response:
    type_ = "server_error" if status >= 500 else "invalid_request_error"
    return web.Response(status=status, reason=reason(status), headers=headers,
                        body=dumps(error_body(message, code, type_=type_, param=param)).encode(),
                        content_type="application/json")


def api_error(exc: ApiError) -> web.Response:
    return error_response(exc.status, exc.code, exc.message, exc.param)


def _html_page(status: int) -> str:
    title = f"{status} {reason(status)}"
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


def injected_error(scenario: Scenario) -> web.Response:
    """The HTTP error a fault scenario asked for."""
    name = scenario.name
    if name == "html-error":
        status = scenario.number("status")
        return web.Response(status=status, reason=reason(status), text=_html_page(status), content_type="text/html")
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
        return error_response(429, code, message, headers=headers)
    status = scenario.number("status")
    code = scenario.word("code") or _CODES.get(status, "error")
    body = scenario.word("body")
    if body == "html":
        return web.Response(status=status, reason=reason(status), text=_html_page(status), content_type="text/html")
    if body == "legacy":
        return web.Response(status=status, reason=reason(status), content_type="application/json",
                            body=dumps({"message": reason(status)}).encode())
    if body == "empty":
        return web.Response(status=status, reason=reason(status))
    return error_response(status, code, f"Emulated error {status} {code}, requested by [emulate:error].")
