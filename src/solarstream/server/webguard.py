"""What a web page cannot do to a gateway: the Host, Origin and Content-Type checks, and CORS.

Without ``--api-key`` a gateway on loopback trusts whoever can reach it, and every page the operator
visits can: a ``text/plain`` POST is a CORS "simple request", sent without a preflight, so any site
could spend the operator's credits; with DNS rebinding (the attacker's name made to resolve to
127.0.0.1) it could read answers too. So, for every request, in this order:

1. ``Host`` must name this gateway (``hosts.HostPolicy``): otherwise 421. Rebinding carries the
   attacker's name here.
2. A CORS preflight (``OPTIONS`` with ``Access-Control-Request-Method``) is answered for a
   ``--cors-origin`` and refused (403) for anyone else.
3. A state-changing request (anything but GET, HEAD, OPTIONS, TRACE) that carries an ``Origin``
   must come from the gateway's own pages or a ``--cors-origin``: otherwise 403. SDKs and curl
   send no ``Origin`` and pass.
4. A body sent with POST, PUT or PATCH must be JSON (``application/json``, any UTF-8 charset):
   otherwise 415. Browsers cannot send JSON cross-origin without a preflight, so this alone closes
   the simple-request hole, for every JSON endpoint present and future.

Responses to a ``--cors-origin`` get ``Access-Control-Allow-Origin`` (that origin, never ``*``).
A pure ASGI middleware: ``BaseHTTPMiddleware`` would buffer streams and hide disconnects.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .accesslog import log_info
from .config import GatewayConfig
from .errors import GatewayError
from .hosts import HostPolicy, canonical_origin, parse_origin

__all__ = ["ALLOWED_HEADERS", "EXPOSED_HEADERS", "PREFLIGHT_MAX_AGE", "WebGuardMiddleware"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
ALLOWED_METHODS = "GET, POST"
#: request headers a ``--cors-origin`` page may send; any ``x-stainless-*`` it asks for (the openai
#: SDK's) is allowed too
ALLOWED_HEADERS = (
    "authorization", "content-type", "accept", "openai-organization", "openai-project", "openai-beta",
    "idempotency-key", "x-request-id", "x-stainless-arch", "x-stainless-lang", "x-stainless-os",
    "x-stainless-package-version", "x-stainless-retry-count", "x-stainless-runtime",
    "x-stainless-runtime-version", "x-stainless-timeout",
)
#: response headers such a page may read
EXPOSED_HEADERS = (
    "x-request-id", "retry-after", "retry-after-ms", "x-should-retry",
    "x-ratelimit-limit-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens",
)
#: seconds a browser may cache a preflight answer
PREFLIGHT_MAX_AGE = 600
_TOKEN = re.compile(r"[a-z0-9-]+")
_PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


def _shown(value: str, limit: int = 100) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


class WebGuardMiddleware:
    """Checks Host, Origin and Content-Type before the app sees a request; adds CORS headers.

    ``raw_body_paths``: endpoints that take a body other than JSON (none today; a future upload).
    """

    def __init__(self, app: ASGIApp, config: GatewayConfig, raw_body_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.hosts = HostPolicy(config.allowed_hosts)
        self.cors_origins = frozenset(config.cors_origins)
        self.raw_body_paths = raw_body_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        error = self._check_host(scope, headers)
        if error is not None:
            await _refuse(error, scope, receive, send)
            return
        origins = headers.getlist("origin")
        origin = canonical_origin(origins[0]) if len(origins) == 1 else None
        cors = origin if origin in self.cors_origins else None
        if cors is not None or self.cors_origins:
            send = self._cors_send(send, cors)
        method = scope["method"]
        if method == "OPTIONS" and origins and "access-control-request-method" in headers:
            await self._preflight(cors, origins, headers, scope, receive, send)
            return
        if origins and method not in SAFE_METHODS and cors is None and not self._own_page(origin, scope):
            await _refuse(_origin_refused(origins), scope, receive, send)
            return
        if method in BODY_METHODS and scope["path"] not in self.raw_body_paths:
            error = _check_json(headers)
            if error is not None:
                await _refuse(error, scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _check_host(self, scope: Scope, headers: Headers) -> GatewayError | None:
        values = headers.getlist("host")
        if not values:  # HTTP/1.0 without Host; every browser sends one
            return None
        if len(values) > 1:
            return GatewayError(400, "the request has more than one Host header; send one", code="invalid_host")
        if self.hosts.allows_host_header(values[0], scope.get("scheme", "http"), scope.get("server")):
            return None
        name = values[0].rsplit(":", 1)[0] if not values[0].endswith("]") else values[0]
        return GatewayError(
            421,
            f"this gateway does not answer for the name {_shown(values[0])}; it answers for "
            f"{self.hosts.describe(scope.get('server'))}. If you reach it under that name on purpose, start it "
            f"with --allowed-host {_shown(name)}",
            code="host_not_allowed",
        )

    def _own_page(self, origin: str | None, scope: Scope) -> bool:
        """Whether ``origin`` is this gateway under a name it answers for (its chat page)."""
        parsed = parse_origin(origin) if origin is not None else None
        return parsed is not None and self.hosts.allows(parsed[1], parsed[2], scope.get("server"))

    def _cors_send(self, send: Send, origin: str | None) -> Send:
        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                vary = headers.get("vary", "")
                if "origin" not in (token.strip().lower() for token in vary.split(",")):
                    headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
                if origin is not None and "access-control-allow-origin" not in headers:
                    headers["Access-Control-Allow-Origin"] = origin
                    headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
            await send(message)

        return send_with_cors

    async def _preflight(self, origin: str | None, origins: list[str], headers: Headers, scope: Scope,
                         receive: Receive, send: Send) -> None:
        if origin is None:
            error = _origin_refused(origins, preflight=True)
            await _refuse(error, scope, receive, send)
            return
        asked = [h.strip().lower() for h in headers.get("access-control-request-headers", "").split(",")]
        extra = [h for h in asked if h.startswith("x-stainless-") and _TOKEN.fullmatch(h) and h not in ALLOWED_HEADERS]
        answer = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ", ".join([*ALLOWED_HEADERS, *dict.fromkeys(extra)]),
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE),
            "Vary": _PREFLIGHT_VARY,
        }
        if headers.get("access-control-request-private-network", "").lower() == "true":
            answer["Access-Control-Allow-Private-Network"] = "true"  # Chrome, from a public site to loopback
        await Response(status_code=204, headers=answer)(scope, receive, send)


def _origin_refused(origins: list[str], *, preflight: bool = False) -> GatewayError:
    if len(origins) > 1:
        return GatewayError(403, "the request has more than one Origin header", code="origin_not_allowed")
    origin = origins[0]
    what = "cross-origin requests" if preflight else "requests that change state"
    if canonical_origin(origin) is None:
        message = (f"{what} from a page with an opaque origin ({_shown(origin)}: a sandboxed frame, a file:// "
                   "page or a redirect) are refused")
    else:
        message = (f"{what} from the web page origin {_shown(origin)} are refused: this gateway takes them from its "
                   "own chat page, from clients that send no Origin (SDKs, curl) and from the sites given with "
                   f"--cors-origin; start it with --cors-origin {_shown(canonical_origin(origin) or origin)} to "
                   "allow that site")
    return GatewayError(403, message, code="origin_not_allowed")


def _check_json(headers: Headers) -> GatewayError | None:
    """None if the request has no body or a JSON one; a 415 otherwise."""
    if "transfer-encoding" not in headers and headers.get("content-length", "0") == "0":
        return None
    values = headers.getlist("content-type")
    value = values[0] if len(values) == 1 else ""
    media, _, params = value.partition(";")
    media = media.strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        for param in params.split(";"):
            key, _, val = param.partition("=")
            if key.strip().lower() == "charset" and val.strip().strip('"').lower() not in ("utf-8", "utf8"):
                return GatewayError(415, f"JSON bodies must be UTF-8, not {_shown(val.strip())}; send "
                                         "'Content-Type: application/json'", code="unsupported_media_type")
        return None
    sent = "none" if not values else "more than one" if len(values) > 1 else _shown(value)
    return GatewayError(
        415,
        f"this endpoint takes a JSON body: send the header 'Content-Type: application/json' (this request sent "
        f"{sent}); with curl, use --json or -H 'Content-Type: application/json'",
        code="unsupported_media_type",
    )


async def _refuse(error: GatewayError, scope: Scope, receive: Receive, send: Send) -> None:
    log_info(scope)["error"] = error.code
    response = Response(error.body(), status_code=error.status, headers=error.headers, media_type="application/json")
    await response(scope, receive, send)
