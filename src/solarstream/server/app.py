"""The gateway's ASGI app: OpenAI Chat Completions and Embeddings in front of a provider, plus the chat page.

Data flows one way: request bytes -> ``parse_chat_body`` -> the provider (Upstage by default, any
registered provider, or a router: its parameter policy, retries and limits, its one connection
pool) -> chunks -> SSE frames. Streams wait for their first upstream chunk that carries output
before answering, so every error before the first token gets a real status and the OpenAI
envelope; later errors are sent in-band. The upstream's request id and rate-limit headers are
forwarded; a request without an upstream id gets one of the gateway's.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from importlib import resources
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._http import Timeout
from .._stream import ChatStream, carries_output
from .._version import __version__
from ..providers import Provider, create_provider
from ..providers.spec import ModelEntry
from ..types import Model
from .accesslog import AccessLogMiddleware, log_info
from .config import GatewayConfig
from .errors import GatewayError, from_exception
from .openapi import openapi_document
from .request import parse_chat_body, parse_embeddings_body, read_body
from .streaming import ClientGone, EventStreamResponse, race_disconnect
from .webguard import WebGuardMiddleware

__all__ = ["Gateway", "create_app"]

log = logging.getLogger("solarstream.server")

_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".ico": "image/x-icon"}


class Gateway:
    """The state one app owns: config, the upstream HTTP client, the concurrency count, the drain flag."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.provider: Provider = config.upstream or create_provider(
            config.provider,
            api_key=config.upstream_api_key or None,
            base_url=config.upstream_base_url,
            timeout=Timeout(connect=10.0, first_byte=config.upstream_timeout, read=config.upstream_timeout),
            max_retries=config.upstream_max_retries,
            strict_params=config.strict_params,
        )
        self.in_flight = 0
        self.draining = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._expected = f"Bearer {config.api_key}".encode() if config.api_key else None

    def drain(self) -> None:
        """Shutdown begins: refuse new requests, end running streams with an in-band error."""
        self.draining.set()

    def check_auth(self, request: Request) -> None:
        if self._expected is None:
            return
        given = request.headers.get("authorization", "").encode("latin-1", "replace")
        if not hmac.compare_digest(given, self._expected):
            why = "is missing" if not given else "is wrong"
            raise GatewayError(
                401,
                f"the gateway key {why}: send the header 'Authorization: Bearer <key>' with the key this "
                "gateway was started with (--api-key or SOLARSTREAM_API_KEY)",
                type="authentication_error",
                code="invalid_api_key",
            )

    def acquire(self) -> None:
        """Take an upstream slot or refuse at once (429): a cap, not a queue."""
        if self.draining.is_set():
            raise GatewayError(503, "the gateway is shutting down; retry in a moment", type="server_error",
                               code="server_shutting_down", headers={"Retry-After": "1"})
        if self.in_flight >= self.config.max_concurrency:
            raise GatewayError(
                429,
                f"the gateway is busy: {self.config.max_concurrency} requests are already in flight "
                "(its --max-concurrency); retry shortly",
                type="rate_limit_error",
                code="gateway_busy",
                headers={"Retry-After": "1"},
            )
        self.in_flight += 1
        self._idle.clear()

    def release(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no upstream request is in flight (tests, orderly shutdown)."""
        await self._idle.wait()


def _static_files() -> dict[str, tuple[bytes, str]]:
    """The page's files by path under static/ ("app.js", "vendor/marked.umd.js"), read once."""
    files = {}
    folders = [("", resources.files("solarstream.server").joinpath("static"))]
    while folders:
        prefix, folder = folders.pop()
        for entry in folder.iterdir():
            suffix = "." + entry.name.rsplit(".", 1)[-1]
            if entry.is_dir():
                folders.append((f"{prefix}{entry.name}/", entry))
            elif entry.is_file() and suffix in _STATIC_TYPES:
                files[prefix + entry.name] = (entry.read_bytes(), _STATIC_TYPES[suffix])
    return files


def _created(model_id: str) -> int:
    """A dated id's date as a timestamp (``solar-pro4-260806``), else 0."""
    stamp = model_id.rsplit("-", 1)[-1]
    if len(stamp) != 6 or not stamp.isdigit():
        return 0
    try:
        day = datetime.strptime(stamp, "%y%m%d").replace(tzinfo=timezone.utc)
    except ValueError:
        return 0
    return int(day.timestamp())


#: upstream response headers passed on to the client (besides the request id)
def _forwarded(headers: Mapping[str, str], request_id: str | None) -> dict[str, str]:
    out = {name: value for name, value in headers.items() if "ratelimit" in name.lower()}
    out["x-request-id"] = request_id or f"req_{uuid.uuid4().hex}"
    return out


def _error_response(error: GatewayError) -> Response:
    return Response(error.body(), status_code=error.status, headers=error.headers, media_type="application/json")


def create_app(config: GatewayConfig) -> FastAPI:
    """Build the app; its lifespan closes the upstream client at shutdown."""
    gateway = Gateway(config)
    static = _static_files()
    document = openapi_document(auth_required=config.auth_required)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await gateway.provider.aclose()

    app = FastAPI(title="solarstream gateway", version=__version__, lifespan=lifespan,
                  openapi_url=None, docs_url=None, redoc_url=None)
    app.state.gateway = gateway
    app.add_middleware(WebGuardMiddleware, config=config)  # Host, Origin, Content-Type, CORS
    app.add_middleware(AccessLogMiddleware)  # added last: outermost, so it logs the guard's refusals too

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = {404: f"no such endpoint: {request.url.path} (see /openapi.json)",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, str(exc.detail))
        error = GatewayError(exc.status_code, message, code=code, headers=dict(exc.headers or {}))
        return _error_response(error)

    app.add_exception_handler(StarletteHTTPException, http_error)

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        body, media_type = static["index.html"]
        return Response(body, media_type=media_type, headers=_PAGE_HEADERS)

    @app.get("/static/{name:path}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        found = static.get(name)
        if found is None:
            raise StarletteHTTPException(404)
        return Response(found[0], media_type=found[1], headers=_PAGE_HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return await static_file("favicon.ico")

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(document)

    @app.get("/health")
    async def health() -> JSONResponse:
        draining = gateway.draining.is_set()
        return JSONResponse(
            {"status": "shutting_down" if draining else "ok", "version": __version__,
             "upstream": config.upstream_label, "in_flight": gateway.in_flight,
             "max_concurrency": config.max_concurrency},
            status_code=503 if draining else 200,
        )

    async def model_entries() -> list[ModelEntry]:
        known = gateway.provider.known_models()
        if known is not None:
            return known
        return [ModelEntry(m.id) for m in await gateway.provider.list_models()]

    def model_object(entry: ModelEntry) -> dict[str, Any]:
        """The OpenAI model object, plus what the chat page needs to pick chat models (extra fields,
        which OpenAI clients ignore): ``kind`` and, for aliases and dated ids, ``maps_to``."""
        data = Model(entry.id, _created(entry.id), owned_by()).to_dict()
        data["kind"] = entry.kind
        if entry.maps_to:
            data["maps_to"] = entry.maps_to
        return data

    def owned_by() -> str:
        return str(getattr(gateway.provider, "owned_by", "solarstream"))

    @app.get("/v1/router/status")
    async def router_status(request: Request) -> Response:
        """The router's live state (``serve --config``): per deployment its cooldown, calls in flight,
        successes, failures and last error. Behind the gateway key, like the API."""
        try:
            gateway.check_auth(request)
        except GatewayError as exc:
            return _error_response(exc)
        status = getattr(gateway.provider, "status", None)
        if not callable(status):
            return _error_response(GatewayError(
                404, "this gateway has no router: start it with 'solarstream serve --config FILE'",
                code="no_router"))
        return JSONResponse(status(), headers={"Cache-Control": "no-store"})

    @app.get("/v1/models")
    async def list_models(request: Request) -> Response:
        try:
            gateway.check_auth(request)
            entries = await model_entries()
        except Exception as exc:
            return _error_response(from_exception(exc))
        return JSONResponse({"object": "list", "data": [model_object(entry) for entry in entries]})

    @app.get("/v1/models/{model:path}")
    async def retrieve_model(request: Request, model: str) -> Response:
        try:
            gateway.check_auth(request)
            entries = {entry.id: entry for entry in await model_entries()}
            known = entries.get(model) or (ModelEntry(model) if _catalog_knows(gateway.provider, model) else None)
        except Exception as exc:
            return _error_response(from_exception(exc))
        if known is None:
            return _error_response(GatewayError(
                404, f"unknown model {model!r}; GET /v1/models lists the models", code="model_not_found",
                param="model"))
        return JSONResponse(model_object(known))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await _guarded(request, "a chat completion", _chat)

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        return await _guarded(request, "embeddings", _embeddings)

    async def _guarded(request: Request, what: str, handler: Any) -> Response:
        info = log_info(request.scope)
        try:
            response: Response = await handler(gateway, request, info)
            return response
        except ClientGone:
            info["status"] = 499
            info["outcome"] = "client_disconnected"
            return Response(status_code=499)
        except Exception as exc:
            error = from_exception(exc)
            if error.status == 500:
                log.exception("internal error while serving %s", what)
            info["error"] = error.code
            # the upstream's id, else one of the gateway's (as for answers): the SDKs show it on errors
            request_id = getattr(exc, "request_id", None)
            error.headers.setdefault("x-request-id", request_id or f"req_{uuid.uuid4().hex}")
            return _error_response(error)

    return app


#: leading chunks without output (the role announcement) held back before answering, at most
_MAX_HELD = 16


async def _leading_payloads(stream: ChatStream) -> list[dict[str, Any]]:
    """The chunks up to the first that carries output (a token, reasoning, a tool call, a finish).

    Upstream errors before it (a stall after the role chunk, a reset) then still get a real status.
    """
    held: list[dict[str, Any]] = []
    async for payload in stream.payloads():
        held.append(payload)
        if carries_output(payload) or len(held) >= _MAX_HELD:
            break
    return held


def _catalog_knows(provider: Any, model: str) -> bool:
    catalog = getattr(getattr(provider, "spec", None), "catalog", None)
    return catalog is not None and (catalog.knows(model) or model in catalog.embedding_models)


async def _chat(gateway: Gateway, request: Request, info: dict[str, Any]) -> Response:
    config = gateway.config
    gateway.check_auth(request)
    body = parse_chat_body(await read_body(request, config.max_body_bytes))
    info["model"] = body.model
    info["stream"] = body.stream
    provider = gateway.provider
    stream = provider.stream(body.model, body.messages, **body.params) if body.stream else None
    gateway.acquire()
    handed_over = False
    try:
        if stream is None:
            completion = await race_disconnect(request.receive,
                                               provider.complete(body.model, body.messages, **body.params))
            info["model"] = completion.model or body.model
            info["usage"] = completion.usage
            return JSONResponse(completion.to_dict(),
                                headers=_forwarded(completion.response_headers or {}, completion.request_id))
        info["model"] = stream.requested_model or body.model
        try:
            first = await race_disconnect(request.receive, _leading_payloads(stream))
        except BaseException:
            await stream.aclose()
            raise

        def on_close(done: ChatStream, outcome: str) -> None:
            gateway.release()
            info["model"] = done.model or info["model"]  # the model the upstream says answered
            info["usage"] = done.usage
            info["outcome"] = outcome

        handed_over = True
        return EventStreamResponse(stream, first, draining=gateway.draining, on_close=on_close,
                                   headers=_forwarded(stream.response_headers, stream.request_id))
    finally:
        if not handed_over:
            gateway.release()


async def _embeddings(gateway: Gateway, request: Request, info: dict[str, Any]) -> Response:
    gateway.check_auth(request)
    body = parse_embeddings_body(await read_body(request, gateway.config.max_body_bytes))
    info["model"] = body.model
    gateway.acquire()
    try:
        result = await race_disconnect(request.receive, gateway.provider.embed(body.model, body.input, **body.params))
    finally:
        gateway.release()
    info["usage"] = result.usage
    return JSONResponse(result.to_dict(), headers=_forwarded({}, result.request_id))
