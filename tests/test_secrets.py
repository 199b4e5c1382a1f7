"""API keys and proxy passwords never show up in messages, reprs, causes or log records."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from solarstream import Upstage
from solarstream._http import HTTPClient
from solarstream.errors import SolarstreamError
from tests.conftest import API_KEY, MESSAGES, PROXY_PASSWORD
from tests.rawserver import RawServer, Reply, chunk, json_reply, sse

SECRETS = (API_KEY, PROXY_PASSWORD)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG, "solarstream")
    caplog.set_level(logging.DEBUG, "aiohttp")
    caplog.set_level(logging.DEBUG, "asyncio")
    yield caplog
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + str(record.exc_text or "")
        for secret in SECRETS:
            assert secret not in text, f"secret in log record {record.name}: {record.getMessage()!r}"


def assert_clean(exc: BaseException) -> None:
    seen = [str(exc), repr(exc)]
    cause: BaseException | None = exc
    while cause is not None:
        seen += [str(cause), repr(cause)]
        cause = cause.__cause__ or cause.__context__
    if hasattr(exc, "body"):
        seen.append(repr(exc.body))
    for text in seen:
        for secret in SECRETS:
            assert secret not in text, text


async def failure(call: Callable[[], Awaitable[Any]]) -> SolarstreamError:
    with pytest.raises(SolarstreamError) as info:
        await call()
    assert_clean(info.value)
    return info.value


def key_kw(server: RawServer, **extra: Any) -> dict[str, Any]:
    return {"base_url": server.base_url, "api_key": API_KEY, "max_retries": 0, **extra}


async def test_401_echoing_the_key(server: RawServer, logs: pytest.LogCaptureFixture) -> None:
    # some APIs quote the key they refused; the error must not repeat it
    body = {"error": {"message": f"Invalid API key: {API_KEY}", "code": "invalid_api_key"}}
    server.enqueue(json_reply(401, body), json_reply(401, {"message": f"Unauthorized {API_KEY}"}))
    exc = await failure(lambda: Upstage.create_async("solar-pro4", MESSAGES, **key_kw(server)))
    assert "HTTP 401" in str(exc)
    await failure(lambda: Upstage.complete("solar-pro4", MESSAGES, **key_kw(server)))


async def test_retried_failures_log_nothing_secret(server: RawServer, logs: pytest.LogCaptureFixture) -> None:
    body = {"error": {"message": f"overloaded for {API_KEY}", "code": "too_many_requests"}}
    server.enqueue(*[json_reply(429, body, [("retry-after-ms", "1")]) for _ in range(3)])
    await failure(lambda: Upstage.create_async("solar-pro4", MESSAGES, **key_kw(server, max_retries=2)))
    assert len(server.requests) == 3
    assert any("retrying" in r.getMessage() for r in logs.records)


async def test_proxy_407(server: RawServer, logs: pytest.LogCaptureFixture) -> None:
    from tests.test_proxy import ProxyProcess

    proxy = ProxyProcess()
    try:
        wrong = f"http://tuser:{PROXY_PASSWORD}x@127.0.0.1:{proxy.port}"
        await failure(lambda: Upstage.create_async("solar-pro4", MESSAGES, proxy=wrong, **key_kw(server)))
        wrong_socks = f"socks5://tuser:{PROXY_PASSWORD}x@127.0.0.1:{proxy.port}"
        await failure(lambda: Upstage.create_async("solar-pro4", MESSAGES, proxy=wrong_socks, **key_kw(server)))
    finally:
        proxy.close()


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_proxy_refused(server: RawServer, logs: pytest.LogCaptureFixture, scheme: str) -> None:
    async with RawServer() as gone:
        port = gone.port
    proxy = f"{scheme}://user:{PROXY_PASSWORD}@127.0.0.1:{port}"
    await failure(lambda: Upstage.create_async("solar-pro4", MESSAGES, proxy=proxy, **key_kw(server)))


async def test_connection_refused(logs: pytest.LogCaptureFixture) -> None:
    async with RawServer() as gone:
        base = gone.base_url
    await failure(lambda: Upstage.create_async("solar-pro4", MESSAGES, base_url=base, api_key=API_KEY,
                                               max_retries=1))


async def test_truncated_stream(server: RawServer, logs: pytest.LogCaptureFixture) -> None:
    server.enqueue(Reply(pieces=[sse(chunk("part"))], end="reset"))
    await failure(lambda: Upstage.create_async("solar-pro4", MESSAGES, **key_kw(server)))


async def test_stream_error_echoing_the_key(server: RawServer, logs: pytest.LogCaptureFixture) -> None:
    server.enqueue(Reply(pieces=[sse(chunk("part"), {"error": {"message": f"bad key {API_KEY}"}})]))
    await failure(lambda: Upstage.create_async("solar-pro4", MESSAGES, **key_kw(server)))


@pytest.mark.parametrize("params", [
    {"store": True},
    {"temprature": 1},
    {"max_tokens": -1},
    {"proxy": f"ftp://u:{PROXY_PASSWORD}@127.0.0.1:1"},
    {"proxy": f"socks9://u:{PROXY_PASSWORD}@127.0.0.1:1"},
    {"base_url": f"ftp://u:{PROXY_PASSWORD}@example.invalid/v1"},
])
async def test_validation_errors(server: RawServer, logs: pytest.LogCaptureFixture, params: dict[str, Any]) -> None:
    args = {"base_url": server.base_url, "api_key": API_KEY, **params}
    await failure(lambda: Upstage.create_async("solar-pro4", MESSAGES, **args))
    assert server.connections == 0


async def test_key_with_a_newline_is_refused_without_showing_it(server: RawServer) -> None:
    await failure(lambda: Upstage.create_async("solar-pro4", MESSAGES, base_url=server.base_url,
                                               api_key=API_KEY + "\n"))


def test_reprs_hide_secrets() -> None:
    http = HTTPClient(proxy=f"http://user:{PROXY_PASSWORD}@127.0.0.1:3128")
    assert PROXY_PASSWORD not in repr(http)
    assert "127.0.0.1:3128" in repr(http)
    provider = Upstage(api_key=API_KEY, proxy=f"http://user:{PROXY_PASSWORD}@127.0.0.1:3128")
    assert API_KEY not in repr(provider)
    assert PROXY_PASSWORD not in repr(provider)
    assert "127.0.0.1:3128" in repr(provider)
    request = provider.prepare_chat("solar-pro4", MESSAGES, stream=True,
                                    proxy=f"socks5://user:{PROXY_PASSWORD}@127.0.0.1:1080")
    assert API_KEY not in repr(request)
    assert PROXY_PASSWORD not in repr(request)
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"  # still there to send
