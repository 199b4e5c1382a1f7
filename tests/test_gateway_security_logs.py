"""Log lines a client cannot forge: raw requests with newlines, escapes and separators in the path and
the model name, and the filter on every line the gateway's logger writes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator

import pytest

from solarstream.server.logsafe import escape, escape_field
from solarstream.server.testing import RunningGateway, running_gateway
from tests.rawclient import RawClients


@pytest.fixture
async def gw() -> AsyncIterator[RunningGateway]:
    async with running_gateway() as running:
        yield running


@pytest.fixture
async def raw() -> AsyncIterator[RawClients]:
    clients = RawClients()
    try:
        yield clients
    finally:
        await clients.aclose()


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "solarstream.server"]


FAKE = "2026-01-01 00:00:00,000 INFO solarstream.server: POST /v1/chat/completions 200 model=solar-pro4"


@pytest.mark.parametrize(("target", "logged"), [
    ("/v1/x%0A" + FAKE.replace(" ", "%20"), "/v1/x\\x0a" + FAKE.replace(" ", "\\x20")),
    ("/v1/x%0D%0Aforged", "/v1/x\\x0d\\x0aforged"),
    ("/v1/%1B[2J%1B[31mred", "/v1/\\x1b[2J\\x1b[31mred"),  # terminal escapes
    ("/v1/%E2%80%A8sep%E2%80%AEdlrow", "/v1/\\u2028sep\\u202edlrow"),  # line separator, right-to-left override
    ("/v1/a%20200%20model=solar-pro4", "/v1/a\\x20200\\x20model=solar-pro4"),  # a fake field in the line
    ("/v1/back%5Cx0aslash", "/v1/back\\\\x0aslash"),  # a literal backslash cannot fake an escape
    ("/v1/%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82", "/v1/привет"),  # printable text stays readable
])
async def test_a_forged_path_stays_on_its_own_line(
    gw: RunningGateway, raw: RawClients, caplog: pytest.LogCaptureFixture, target: str, logged: str
) -> None:
    caplog.set_level(logging.INFO, logger="solarstream.server")
    client = await raw.connect(int(gw.url.rsplit(":", 1)[1]))
    response = await client.request("GET", target)
    assert response.status == 404
    await client.request("GET", "/health")  # this line is logged after the first one
    lines = access_lines(caplog)
    assert lines[0].split(" duration_ms=")[0] == f"GET {logged} 404"
    assert all(line.isprintable() for line in lines)
    assert lines[1].startswith("GET /health 200 ")


@pytest.mark.parametrize(("model", "logged"), [
    ("x\nPOST /v1/chat/completions 200 model=solar-pro4",
     "x\\x0aPOST\\x20/v1/chat/completions\\x20200\\x20model=solar-pro4"),
    ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),
    ("a\u2029b\u200bc", "a\\u2029b\\u200bc"),
    ("\U000e0041tag", "\\U000e0041tag"),
])
async def test_a_forged_model_name_is_escaped(
    gw: RunningGateway, raw: RawClients, caplog: pytest.LogCaptureFixture, model: str, logged: str
) -> None:
    caplog.set_level(logging.INFO, logger="solarstream.server")
    client = await raw.connect(int(gw.url.rsplit(":", 1)[1]))
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    response = await client.request("POST", "/v1/chat/completions", {"Content-Type": "application/json"}, body)
    assert response.status == 404
    [line] = access_lines(caplog)
    assert line.startswith(f"POST /v1/chat/completions 404 model={logged} stream=false duration_ms=")
    assert line.endswith(" tokens=- error=model_not_found")
    assert line.isprintable()


async def test_a_long_client_value_is_cut(gw: RunningGateway, raw: RawClients,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="solarstream.server")
    client = await raw.connect(int(gw.url.rsplit(":", 1)[1]))
    await client.request("GET", "/v1/" + "a" * 2000)
    [line] = access_lines(caplog)
    assert line.startswith("GET /v1/" + "a" * 396 + "...(+1604) 404 ")


def test_every_line_of_the_gateways_logger_is_escaped_and_tracebacks_are_indented() -> None:
    """Warnings that quote upstream or client text go through the same filter (installed on the logger)."""
    logger = logging.getLogger("solarstream.server")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    try:
        logger.warning("upstream stream failed after it started: %s", "bad\nINFO forged line")
        try:
            raise ValueError("client said \nINFO forged from a traceback")
        except ValueError:
            logger.exception("internal error")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "WARNING upstream stream failed after it started: bad\\x0aINFO forged line"
    assert lines[1] == "ERROR internal error"
    assert all(line.startswith("  ") for line in lines[2:])  # nothing the traceback adds looks like a record
    assert lines[-2:] == ["  ValueError: client said ", "  INFO forged from a traceback"]


def test_escape_functions() -> None:
    assert escape("plain ascii, and ünïcödé") == "plain ascii, and ünïcödé"
    assert escape("tab\there\x00\x7f\x85\xa0") == "tab\\x09here\\x00\\x7f\\x85\\xa0"
    assert escape_field("a b\\c") == "a\\x20b\\\\c"
    assert escape_field("x" * 10, limit=4) == "xxxx...(+6)"
