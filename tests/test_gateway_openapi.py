"""schemathesis against /openapi.json on the in-process ASGI app (in front of the emulator).

Positive and negative examples for every operation; the checks: no 5xx, every status, content type,
header and body documented and conforming, schema-invalid requests rejected, auth enforced.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from solarstream.server import GatewayConfig, create_app
from solarstream.server.testing import GatewayThread, RunningGateway

KEY = "gw-schema-key-31"
EXAMPLES = 40
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
    openapi_checks.ignored_auth,
]


@pytest.fixture(scope="module")
def upstream() -> Iterator[RunningGateway]:
    """An emulator on a background loop (the ASGI app under test is driven by schemathesis' client)."""
    with GatewayThread() as running:
        yield running


@pytest.fixture(scope="module")
def api_schema(upstream: RunningGateway) -> Any:
    emulator = upstream.emulator
    app = create_app(GatewayConfig(upstream_api_key=emulator.api_key, upstream_base_url=emulator.base_url,
                                   api_key=KEY, max_body_bytes=64 * 1024))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _operations(api_schema: Any) -> list[Any]:
    return [result.ok() for result in api_schema.get_all_operations()]


# schemathesis' pytest plugin (schema.parametrize / from_fixture) does not run on pytest 9, so the
# operations are driven with hypothesis directly: one test per generation mode, every operation.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_gateway_conforms_to_its_openapi_document(
    api_schema: Any, upstream: RunningGateway, mode: GenerationMode
) -> None:
    operations = _operations(api_schema)
    assert {op.label for op in operations} == {
        "POST /v1/chat/completions", "GET /v1/models", "GET /v1/models/{model}", "GET /health"}
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.label == "GET /health":
            continue  # nothing to negate: no parameters, no body

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(deadline=None, max_examples=EXAMPLES, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=CHECKS)

        check()


@pytest.mark.parametrize("stream", [False, True])
def test_answers_from_the_upstream_conform(api_schema: Any, upstream: RunningGateway, stream: bool) -> None:
    """Generated requests may all be refused before reaching the upstream; these surely are not."""
    chat = next(op for op in _operations(api_schema) if op.label == "POST /v1/chat/completions")
    before = len(upstream.emulator.requests)
    body = {"model": "solar-pro3", "messages": [{"role": "system", "content": "Be brief."},
                                                {"role": "user", "content": "[emulate:reasoning] hi"}],
            "stream": stream, "temperature": 0.5, "max_tokens": 200}
    if stream:
        body["stream_options"] = {"include_usage": True}
    case = chat.Case(body=body, media_type="application/json")
    response = case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=CHECKS)
    assert response.status_code == 200
    assert response.headers["content-type"][0].startswith("text/event-stream" if stream else "application/json")
    assert len(upstream.emulator.requests) == before + 1
