"""HTTP errors map to typed errors; known-bad requests never leave the machine."""

from __future__ import annotations

from typing import Any

import pytest

from solarstream import Upstage
from solarstream.errors import (
    APIStatusError,
    AuthenticationError,
    InvalidRequestError,
    MissingAuthError,
    ModelNotSupportedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    SolarstreamError,
)
from solarstream.providers.upstage import UPSTAGE
from tests.conftest import MESSAGES, kw
from tests.rawserver import RawServer, Reply, json_reply


def envelope(code: str, message: str, type_: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": "", "code": code}}


#: (status, body, class): Upstage's status first, then the body's code, and the one rule that reads a message
MAPPING: list[tuple[int, bytes, type[APIStatusError]]] = [
    (400, b'{"error":{"message":"Unknown key \'foo\'","code":"invalid_request_body"}}', InvalidRequestError),
    (400, b'{"error":{"message":"prompt too long","code":"context_length_exceeded"}}', InvalidRequestError),
    (400, b'{"error":{"message":"The model \'solar-pro2\' is retired. Use solar-pro3.","code":"invalid_request_body"}}',
     ModelNotSupportedError),
    (400, b'{"error":{"message":"Invalid model: solar-foo","code":"invalid_request_body"}}', ModelNotSupportedError),
    (401, b'{"error":{"message":"Invalid API key","code":"invalid_api_key"}}', AuthenticationError),
    (401, b'{"error":{"message":"Your API key is blocked","code":"api_key_is_blocked"}}', QuotaExceededError),
    (401, b'{"message":"Unauthorized"}', AuthenticationError),
    (403, b'{"error":{"message":"no access","code":"forbidden"}}', InvalidRequestError),
    (403, b'{"error":{"message":"Insufficient credit"}}', QuotaExceededError),
    (404, b"404 page not found", InvalidRequestError),
    (408, b"", InvalidRequestError),
    (429, b'{"error":{"message":"Too many requests","code":"too_many_requests"}}', RateLimitError),
    (429, b'{"error":{"message":"Usage limit exceeded","code":"usage_limit_exceeded"}}', QuotaExceededError),
    (499, b'{"error":{"message":"client went away","code":"client_closed_request"}}', InvalidRequestError),
    (500, b'{"error":{"message":"oops","code":"internal_error"}}', ServerError),
    (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", ServerError),
    (503, b"", ServerError),
]


@pytest.mark.parametrize(("status", "body", "cls"), MAPPING)
def test_status_then_code_give_the_class(status: int, body: bytes, cls: type[APIStatusError]) -> None:
    """The one test of which class each error response gets (elsewhere tests check status and code)."""
    error = UPSTAGE.quirks.error(status, body, {"x-request-id": "req-1"})
    assert type(error) is cls
    assert (error.status_code, error.request_id) == (status, "req-1")
    assert str(error).startswith(f"HTTP {status}")
    assert "\n" not in str(error)


async def test_an_error_response_on_the_wire_carries_its_facts(server: RawServer) -> None:
    body = envelope("invalid_request_body", "Unknown key \'foo\' in the request body")
    server.enqueue(json_reply(400, body, [("x-request-id", "req-123")]))
    exc = await _fail(server)
    assert type(exc) is InvalidRequestError
    assert (exc.status_code, exc.code, exc.request_id, exc.body) == (400, "invalid_request_body", "req-123", body)
    assert str(exc) == "HTTP 400 invalid_request_body: Unknown key \'foo\' in the request body [request id req-123]"
    assert len(server.requests) == 1


async def _fail(server: RawServer, model: str = "solar-pro4", **extra: Any) -> SolarstreamError:
    with pytest.raises(SolarstreamError) as info:
        async for _ in Upstage.create_async_generator(model, MESSAGES, **kw(server, max_retries=0, **extra)):
            pass
    return info.value


async def test_non_streamed_completion_maps_errors_too(server: RawServer) -> None:
    server.enqueue(json_reply(401, envelope("invalid_api_key", "bad key")))
    with pytest.raises(AuthenticationError):
        await Upstage.complete("solar-mini", MESSAGES, **kw(server, max_retries=0))


@pytest.mark.parametrize(
    ("status", "content_type", "raw", "cls", "shown"),
    [
        (502, "text/html", b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>"
         b"<hr><center>nginx</center></body></html>", ServerError, "502 Bad Gateway"),
        (401, "application/json", b'{"message":"Unauthorized"}', AuthenticationError, "Unauthorized"),
        (401, "text/plain", b"", AuthenticationError, "empty body"),
        (404, "text/plain", b"404 page not found", InvalidRequestError, "404 page not found"),
        (400, "text/html", b"<html>" + b"x" * 5000 + b"</html>", InvalidRequestError, "<html>xxx"),
    ],
)
async def test_non_envelope_bodies_are_quoted_short(
    server: RawServer, status: int, content_type: str, raw: bytes, cls: type[APIStatusError], shown: str
) -> None:
    server.enqueue(Reply(status, (("Content-Type", content_type),), [raw], framing="length"))
    exc = await _fail(server)
    assert isinstance(exc, cls)
    assert exc.status_code == status
    message = str(exc)
    assert f"HTTP {status}" in message
    assert shown in message
    assert len(message) < 700  # a short excerpt, not the whole page
    assert "\n" not in message


async def test_error_body_with_chunked_framing(server: RawServer) -> None:
    server.enqueue(Reply(429, (("Content-Type", "application/json"),),
                         [b'{"error":{"message":"slow', b' down","code":"usage_limit_exceeded"}}'], framing="chunked"))
    exc = await _fail(server)
    assert type(exc) is QuotaExceededError
    assert exc.code == "usage_limit_exceeded"


# --- validation before sending -----------------------------------------------------------------

#: (id, model, messages, params, the parameter named, words the message must contain)
BAD_REQUESTS: list[tuple[str, str, list[dict[str, Any]], dict[str, Any], str, str]] = [
    ("store", "solar-pro4", MESSAGES, {"store": True}, "store", "store=true is rejected by Upstage"),
    ("n-3", "solar-pro4", MESSAGES, {"n": 3}, "n", "send n separate requests"),
    ("logprobs", "solar-pro4", MESSAGES, {"logprobs": True}, "logprobs", "no log probabilities; remove logprobs"),
    ("unknown-role", "solar-pro4", [{"role": "wizard", "content": "x"}], {}, "messages[0].role",
     "must be one of system, user, assistant, tool, not 'wizard'"),
    ("strict-tools", "solar-pro4", MESSAGES,
     {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}, "strict": True}}]},
     "tools[0].function.strict", "strict tools are rejected by Upstage"),
    ("image-part", "solar-pro4",
     [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}], {},
     "messages[0].content[0]", "image input is not supported"),
    ("effort-solar-mini", "solar-mini", MESSAGES, {"reasoning_effort": "high"}, "reasoning_effort",
     "solar-mini does not reason"),
    ("effort-syn-pro", "syn-pro", MESSAGES, {"reasoning_effort": "low"}, "reasoning_effort", "syn-pro does not reason"),
    ("effort-unknown-value", "solar-pro3", MESSAGES, {"reasoning_effort": "xhigh"}, "reasoning_effort",
     "solar-pro3 accepts low, medium, high, not 'xhigh'"),
    ("unknown-keyword", "solar-pro4", MESSAGES, {"temprature": 0.5}, "temprature",
     "unknown parameter for Upstage; known: frequency_penalty,"),
    ("temperature-type", "solar-pro4", MESSAGES, {"temperature": "hot"}, "temperature", "a number, not a string"),
    ("temperature-range", "solar-pro4", MESSAGES, {"temperature": 3}, "temperature", "between 0 and 2, not 3"),
    ("max-tokens-type", "solar-pro4", MESSAGES, {"max_tokens": 1.5}, "max_tokens", "positive integer, not 1.5"),
    ("max-tokens-bool", "solar-pro4", MESSAGES, {"max_tokens": True}, "max_tokens", "positive integer, not True"),
    ("stop-type", "solar-pro4", MESSAGES, {"stop": 5}, "stop", "a string or a list of strings"),
    ("json-object-without-JSON", "solar-pro4", MESSAGES, {"response_format": {"type": "json_object"}},
     "response_format", 'needs the word "JSON" in the prompt'),
    ("tools-on-syn-pro", "syn-pro", MESSAGES, {"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools",
     "syn-pro does not support tool calling"),
    ("empty-messages", "solar-pro4", [], {}, "messages", "must be a non-empty list"),
    ("content-type", "solar-pro4", [{"role": "user", "content": 5}], {}, "messages[0].content",
     "a string or a list of text parts, not a number"),
    ("tool-without-id", "solar-pro4", [{"role": "tool", "content": "x"}], {}, "messages[0].tool_call_id",
     "is required on tool messages"),
    ("n", "solar-pro4", MESSAGES, {"n": 2}, "n", "one answer per request"),
    ("timeout-negative", "solar-pro4", MESSAGES, {"timeout": -1}, "timeout", "a positive number of seconds"),
]


@pytest.mark.parametrize(("model", "messages", "params", "param", "words"), [c[1:] for c in BAD_REQUESTS],
                         ids=[c[0] for c in BAD_REQUESTS])
async def test_known_bad_requests_raise_before_sending_naming_the_parameter(
    server: RawServer, model: str, messages: list[dict[str, Any]], params: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        async for _ in Upstage.create_async_generator(model, messages, **kw(server, **params)):
            pass
    assert info.value.param == param
    assert words in str(info.value)
    assert info.value.status_code is None  # ours, not the API's
    with pytest.raises(InvalidRequestError) as again:
        await Upstage.complete(model, messages, **kw(server, **params))
    assert (again.value.param, str(again.value)) == (param, str(info.value))
    assert server.requests == []
    assert server.connections == 0


async def test_json_object_with_json_in_prompt_is_sent(server: RawServer) -> None:
    from tests.rawserver import sse_reply, text_stream

    server.enqueue(sse_reply(text_stream(["{}"])))
    messages = [{"role": "user", "content": "Answer in JSON."}]
    out = [p async for p in Upstage.create_async_generator(
        "solar-pro4", messages, response_format={"type": "json_object"}, **kw(server))]
    assert out == ["{}"]
    assert server.requests[0].json()["response_format"] == {"type": "json_object"}


async def test_strict_model_policy_rejects_unknown_models(server: RawServer) -> None:
    with pytest.raises(ModelNotSupportedError):
        Upstage(model_policy="strict").stream("gpt-4o", MESSAGES, **kw(server))
    assert server.requests == []


async def test_missing_key_raises_before_sending(server: RawServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UPSTAGE_API_KEY", raising=False)
    with pytest.raises(MissingAuthError, match="UPSTAGE_API_KEY"):
        async for _ in Upstage.create_async_generator("solar-pro4", MESSAGES, base_url=server.base_url):
            pass
    with pytest.raises(MissingAuthError):
        await Upstage.create_async("solar-pro4", MESSAGES, base_url=server.base_url)
    assert server.connections == 0


async def test_key_and_base_url_from_the_environment(server: RawServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.rawserver import sse_reply, text_stream

    monkeypatch.setenv("UPSTAGE_API_KEY", "up_fromEnv123")
    monkeypatch.setenv("UPSTAGE_API_BASE", server.base_url)
    server.enqueue(sse_reply(text_stream(["env"])))
    assert await Upstage.create_async("solar-pro4", MESSAGES) == "env"
    assert server.requests[0].headers["authorization"] == "Bearer up_fromEnv123"
