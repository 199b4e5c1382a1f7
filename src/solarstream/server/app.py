"""The gateway's ASGI app: OpenAI Chat Completions in front of Upstage, plus the chat page.

Data flows one way: request bytes -> ``parse_chat_body`` -> ``Upstage.prepare_chat`` (the core's
validation) -> ``open_stream`` / ``send_completion`` on the app's one ``HTTPClient`` -> chunks ->
SSE frames. Streams wait for their first upstream chunk before answering, so every error before the
first token gets a real status and the OpenAI envelope; later errors are sent in-band.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from importlib import resources
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._http import HTTPClient, RetryPolicy, Timeout
from .._stream import ChatStream
from .._version import __version__
from ..providers import Upstage
from ..providers.upstage import models as _models
from ..types import Model
from .accesslog import AccessLogMiddleware, log_info
from .config import GatewayConfig
from .errors import GatewayError, from_exception
from .openapi import openapi_document
from .request import parse_chat_body, read_body
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
                 ".html": "text/html; charset=utf-8"}


class Gateway:
    """The state one app owns: config, the upstream HTTP client, the concurrency count, the drain flag."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.http = HTTPClient(
            timeout=Timeout(connect=10.0, first_byte=config.upstream_timeout, read=config.upstream_timeout),
            retry=RetryPolicy(max_retries=config.upstream_max_retries),
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
    root = resources.files("solarstream.server").joinpath("static")
    files = {}
    for entry in root.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _STATIC_TYPES:
            files[entry.name] = (entry.read_bytes(), _STATIC_TYPES[suffix])
    return files


def _created(info: _models.ModelInfo) -> int:
    stamp = info.dated_id.rsplit("-", 1)[-1]
    try:
        day = datetime.strptime(stamp, "%y%m%d").replace(tzinfo=timezone.utc)
    except ValueError:
        return 0
    return int(day.timestamp())


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
            await gateway.http.aclose()

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

    @app.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        found = static.get(name)
        if found is None:
            raise StarletteHTTPException(404)
        return Response(found[0], media_type=found[1], headers=_PAGE_HEADERS)

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

    @app.get("/v1/models")
    async def list_models(request: Request) -> Response:
        try:
            gateway.check_auth(request)
        except GatewayError as error:
            return _error_response(error)
        data = [Model(info.name, _created(info)).to_dict() for info in _models.MODELS.values()]
        return JSONResponse({"object": "list", "data": data})

    @app.get("/v1/models/{model:path}")
    async def retrieve_model(request: Request, model: str) -> Response:
        try:
            gateway.check_auth(request)
        except GatewayError as error:
            return _error_response(error)
        info = _models.lookup(model)
        if info is None:
            return _error_response(GatewayError(
                404, f"unknown model {model!r}; GET /v1/models lists the models", code="model_not_found",
                param="model"))
        return JSONResponse(Model(model, _created(info)).to_dict())

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        info = log_info(request.scope)
        try:
            return await _chat(gateway, request, info)
        except ClientGone:
            info["status"] = 499
            info["outcome"] = "client_disconnected"
            return Response(status_code=499)
        except Exception as exc:
            error = from_exception(exc)
            if error.status == 500:
                log.exception("internal error while serving a chat completion")
            info["error"] = error.code
            return _error_response(error)

    return app


#: leading chunks without output (the role announcement) held back before answering, at most
_MAX_HELD = 16


def _carries_output(payload: dict[str, Any]) -> bool:
    if payload.get("usage"):
        return True
    for choice in payload.get("choices") or ():
        delta = choice.get("delta") or {}
        if (delta.get("content") or delta.get("reasoning") or delta.get("reasoning_content")
                or delta.get("tool_calls") or choice.get("finish_reason")):
            return True
    return False


async def _leading_payloads(stream: ChatStream) -> list[dict[str, Any]]:
    """The chunks up to the first that carries output (a token, reasoning, a tool call, a finish).

    Upstream errors before it (a stall after the role chunk, a reset) then still get a real status.
    """
    held: list[dict[str, Any]] = []
    async for payload in stream.payloads():
        held.append(payload)
        if _carries_output(payload) or len(held) >= _MAX_HELD:
            break
    return held


async def _chat(gateway: Gateway, request: Request, info: dict[str, Any]) -> Response:
    config = gateway.config
    gateway.check_auth(request)
    body = parse_chat_body(await read_body(request, config.max_body_bytes))
    info["model"] = body.model
    info["stream"] = body.stream
    chat = Upstage.prepare_chat(
        body.model, body.messages, stream=body.stream, model_policy="strict",
        api_key=config.upstream_api_key, base_url=config.upstream_base_url, **body.params,
    )
    info["model"] = chat.model
    gateway.acquire()
    handed_over = False
    try:
        if not body.stream:
            completion = await race_disconnect(request.receive, Upstage.send_completion(gateway.http, chat))
            info["usage"] = completion.usage
            return JSONResponse(completion.to_dict())
        stream = Upstage.open_stream(gateway.http, chat)
        try:
            first = await race_disconnect(request.receive, _leading_payloads(stream))
        except BaseException:
            await stream.aclose()
            raise

        def on_close(done: ChatStream, outcome: str) -> None:
            gateway.release()
            info["usage"] = done.usage
            info["outcome"] = outcome

        handed_over = True
        return EventStreamResponse(stream, first, draining=gateway.draining, on_close=on_close)
    finally:
        if not handed_over:
            gateway.release()
