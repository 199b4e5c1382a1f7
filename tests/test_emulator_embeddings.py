"""The emulator's ``POST /v1/embeddings``: shapes, deterministic unit vectors, the API's errors, faults.

Driven with plain aiohttp and with the real ``openai`` SDK, as users will point it at the emulator.
"""

from __future__ import annotations

import datetime
import json
import math
import time
from typing import Any

import aiohttp
import openai
import pytest

from solarstream.emulator import Emulator
from solarstream.emulator.answers import count_tokens
from tests.helpers import emu_post, error_envelope

EMBED = "/embeddings"
QUERY = "solar-embedding-2-query"
PASSAGE = "solar-embedding-2-passage"


def unix(day: str) -> float:
    """Noon UTC of an ISO day."""
    return datetime.datetime.fromisoformat(f"{day}T12:00:00+00:00").timestamp()


async def post(session: aiohttp.ClientSession, emu: Emulator, body: Any, *, key: str | None = None,
               path: str = EMBED, emulate: str | None = None, raw: bytes | None = None) -> tuple[int, Any, Any]:
    """``emu_post`` to the embeddings endpoint, with a JSON answer parsed."""
    status, headers, content = await emu_post(session, emu, body, key=key, path=path, emulate=emulate, raw=raw)
    return status, headers, json.loads(content) if headers.get("Content-Type", "").startswith("application/json") \
        else content


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


# --- shapes and vectors -------------------------------------------------------------------------


async def test_one_string_gives_one_unit_vector(emu: Emulator, session: aiohttp.ClientSession) -> None:
    text = "Привет! Как дела?"
    status, headers, body = await post(session, emu, {"model": QUERY, "input": text})
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert set(body) == {"object", "data", "model", "usage"}
    assert body["object"] == "list"
    assert body["model"] == QUERY
    tokens = count_tokens(text)
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    [item] = body["data"]
    assert set(item) == {"object", "index", "embedding"}
    assert item["object"] == "embedding"
    assert item["index"] == 0
    vector = item["embedding"]
    assert len(vector) == 1024
    assert all(isinstance(x, float) for x in vector)
    assert abs(norm(vector) - 1) < 1e-9


async def test_vectors_are_deterministic_and_distinct(emu: Emulator, session: aiohttp.ClientSession) -> None:
    texts = ["alpha", "beta", "alpha", "gamma"]
    _, _, first = await post(session, emu, {"model": PASSAGE, "input": texts})
    _, _, again = await post(session, emu, {"model": PASSAGE, "input": texts, "encoding_format": "float"})
    vectors = [d["embedding"] for d in first["data"]]
    assert [d["index"] for d in first["data"]] == [0, 1, 2, 3]
    assert vectors == [d["embedding"] for d in again["data"]]
    assert vectors[0] == vectors[2]
    assert len({tuple(v) for v in vectors}) == 3
    assert abs(dot(vectors[0], vectors[1])) < 0.2  # unrelated texts: nearly orthogonal
    assert first["usage"]["prompt_tokens"] == sum(count_tokens(t) for t in texts)
    # one string alone or in a list: the same vector
    _, _, single = await post(session, emu, {"model": PASSAGE, "input": "beta"})
    assert single["data"][0]["embedding"] == vectors[1]


async def test_query_and_passage_of_a_family_match_on_the_same_text(
        emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, _, query = await post(session, emu, {"model": QUERY, "input": "the same text"})
    _, _, passage = await post(session, emu, {"model": PASSAGE, "input": ["other", "the same text"]})
    assert query["data"][0]["embedding"] == passage["data"][1]["embedding"]
    _, _, old = await post(session, emu, {"model": "embedding-query", "input": "the same text"})
    assert len(old["data"][0]["embedding"]) == 4096
    assert abs(norm(old["data"][0]["embedding"]) - 1) < 1e-9


async def test_legacy_base_serves_embeddings(emu: Emulator, session: aiohttp.ClientSession) -> None:
    status, _, body = await post(session, emu, {"model": QUERY, "input": "hi"}, path="/solar/embeddings")
    assert status == 200
    assert len(body["data"][0]["embedding"]) == 1024
    assert [r.path for r in emu.requests] == ["/v1/solar/embeddings"]


async def test_thousands_of_inputs_are_fast(emu: Emulator, session: aiohttp.ClientSession) -> None:
    texts = [f"passage number {i}" for i in range(2000)]
    start = time.perf_counter()
    status, _, body = await post(session, emu, {"model": PASSAGE, "input": texts})
    elapsed = time.perf_counter() - start
    assert status == 200
    assert len(body["data"]) == 2000
    assert len({d["embedding"][0] for d in body["data"]}) > 1990
    assert elapsed < 30  # generous: about a second on a laptop


async def test_models_list_includes_embedding_models(emu: Emulator, session: aiohttp.ClientSession) -> None:
    async with session.get(emu.base_url + "/models", headers={"Authorization": f"Bearer {emu.api_key}"}) as r:
        ids = {m["id"] for m in (await r.json())["data"]}
    assert {QUERY, PASSAGE, "embedding-query", "embedding-passage", "solar-mini"} <= ids


# --- errors -------------------------------------------------------------------------------------


async def test_missing_or_bad_key_is_401(emu: Emulator, session: aiohttp.ClientSession) -> None:
    async with session.post(emu.base_url + EMBED, json={"model": QUERY, "input": "hi"}) as r:
        assert r.status == 401
        assert error_envelope(await r.json())["code"] == "invalid_api_key"
    status, _, body = await post(session, emu, {"model": QUERY, "input": "hi"}, key="sk-nope")
    assert status == 401
    assert error_envelope(body)["code"] == "invalid_api_key"


@pytest.mark.parametrize(("body", "param", "message"), [
    ({"input": "hi"}, "model", "'model' is required."),
    ({"model": 3, "input": "hi"}, "model", "'model' must be a string."),
    ({"model": QUERY}, "input", "'input' is required."),
    ({"model": QUERY, "input": ""}, "input", "'input' must not be an empty string."),
    ({"model": QUERY, "input": []}, "input", "'input' must be a non-empty list of strings."),
    ({"model": QUERY, "input": ["a", ""]}, "input[1]", "'input[1]' must not be an empty string."),
    ({"model": QUERY, "input": [1, 2, 3]}, "input[0]", "'input[0]' must be a string (token arrays are not supported)."),
    ({"model": QUERY, "input": {"text": "hi"}}, "input", "'input' must be a string or a list of strings."),
    ({"model": QUERY, "input": None}, "input", "'input' must be a string or a list of strings."),
    ({"model": QUERY, "input": "hi", "dimensions": 256}, "dimensions",
     "Unknown key 'dimensions'; the embeddings endpoint takes model, input, encoding_format."),
    ({"model": QUERY, "input": "hi", "encoding_format": "base64"}, "encoding_format",
     "'encoding_format' must be 'float' (base64 is not known to be supported)."),
    ({"model": "nope", "input": "hi"}, "model",
     "Invalid model 'nope'. Available embedding models: solar-embedding-2-query, solar-embedding-2-passage, "
     "embedding-query, embedding-passage."),
    ({"model": "solar-mini", "input": "hi"}, "model",
     "Invalid model 'solar-mini' for embeddings: it is a chat model. Embedding models: solar-embedding-2-query, "
     "solar-embedding-2-passage, embedding-query, embedding-passage."),
    ({"model": "solar-pro", "input": "hi"}, "model",
     "Invalid model 'solar-pro' for embeddings: it is a chat model. Embedding models: solar-embedding-2-query, "
     "solar-embedding-2-passage, embedding-query, embedding-passage."),
    ([{"model": QUERY}], "", "The request body must be a JSON object."),
])
async def test_invalid_requests_are_400(emu: Emulator, session: aiohttp.ClientSession, body: Any, param: str,
                                        message: str) -> None:
    status, _, answer = await post(session, emu, body)
    assert status == 400
    assert error_envelope(answer) == {"message": message, "type": "invalid_request_error", "param": param,
                             "code": "invalid_request_body"}


async def test_malformed_json_is_400(emu: Emulator, session: aiohttp.ClientSession) -> None:
    status, _, body = await post(session, emu, None, raw=b'{"model": ')
    assert status == 400
    assert error_envelope(body)["code"] == "invalid_request_body"
    assert error_envelope(body)["message"].startswith("Malformed JSON in the request body")


async def test_an_input_over_the_context_is_context_length_exceeded(
        emu: Emulator, session: aiohttp.ClientSession) -> None:
    fits, over = "x" * (8192 * 4), "x" * (8192 * 4 + 1)  # four ASCII bytes a token
    assert (await post(session, emu, {"model": QUERY, "input": fits}))[0] == 200
    status, _, body = await post(session, emu, {"model": QUERY, "input": ["short", over]})
    assert status == 400
    assert error_envelope(body) == {
        "message": "'input[1]' has 8193 tokens; 'solar-embedding-2-query' takes at most 8192 tokens per input. "
                   "Split the text into smaller pieces.",
        "type": "invalid_request_error", "param": "input[1]", "code": "context_length_exceeded"}
    status, _, body = await post(session, emu, {"model": "embedding-passage", "input": "y" * (4096 * 4 + 1)})
    assert status == 400
    assert error_envelope(body)["param"] == "input"
    assert "at most 4096 tokens" in error_envelope(body)["message"]


@pytest.mark.parametrize(("day", "works"), [("2026-12-30", True), ("2026-12-31", False), ("2027-03-01", False)])
async def test_solar_embedding_1_stops_on_its_removal_day(session: aiohttp.ClientSession, day: str,
                                                          works: bool) -> None:
    async with Emulator(clock=lambda: unix(day)) as emu:
        status, _, body = await post(session, emu, {"model": "embedding-query", "input": "hi"})
        async with session.get(emu.base_url + "/models", headers={"Authorization": f"Bearer {emu.api_key}"}) as r:
            ids = {m["id"] for m in (await r.json())["data"]}
        assert (await post(session, emu, {"model": QUERY, "input": "hi"}))[0] == 200
    if works:
        assert status == 200
        assert "embedding-query" in ids
    else:
        assert status == 400
        assert error_envelope(body) == {
            "message": "The model 'embedding-query' is retired (removed on 2026-12-31); use "
                       "'solar-embedding-2-query' instead.",
            "type": "invalid_request_error", "param": "model", "code": "invalid_request_body"}
        assert "embedding-query" not in ids
        assert QUERY in ids


# --- faults and rate limits ---------------------------------------------------------------------


async def test_http_faults_by_header(emu: Emulator, session: aiohttp.ClientSession) -> None:
    body = {"model": QUERY, "input": "hi"}
    statuses = [(await post(session, emu, body, emulate="error status=503 times=2"))[0] for _ in range(3)]
    assert statuses == [503, 503, 200]
    status, headers, answer = await post(session, emu, body, emulate="rate-limit header=upstage delay_ms=3000")
    assert status == 429
    assert error_envelope(answer)["code"] == "too_many_requests"
    assert float(headers["X-Upstage-RateLimit-Retry-After-Requests"]) > time.time()
    status, headers, answer = await post(session, emu, body, emulate="html-error status=502")
    assert status == 502
    assert b"<html>" in answer


async def test_directive_in_the_last_input(emu: Emulator, session: aiohttp.ClientSession) -> None:
    status, _, body = await post(session, emu, {"model": QUERY, "input": ["a", "b [emulate:error status=500]"]})
    assert status == 500
    assert error_envelope(body)["code"] == "internal_server_error"
    # once the fault is spent the directive is not part of what is embedded
    directive = "[emulate:error status=502 times=1]"
    assert (await post(session, emu, {"model": QUERY, "input": f"b {directive}"}))[0] == 502
    _, _, faulted = await post(session, emu, {"model": QUERY, "input": f"b {directive}"})
    _, _, plain = await post(session, emu, {"model": QUERY, "input": "b"})
    assert faulted["data"][0]["embedding"] == plain["data"][0]["embedding"]
    status, _, body = await post(session, emu, {"model": QUERY, "input": "[emulate:teleport]"})
    assert status == 400
    assert error_envelope(body)["param"] == "input"
    assert "unknown emulator scenario 'teleport'" in error_envelope(body)["message"]


async def test_connection_faults_apply(emu: Emulator, session: aiohttp.ClientSession) -> None:
    with pytest.raises(aiohttp.ClientError):
        await post(session, emu, {"model": QUERY, "input": "hi"}, emulate="reset")
    with pytest.raises(aiohttp.ClientPayloadError):
        await post(session, emu, {"model": QUERY, "input": "hi"}, emulate="truncate")


async def test_embeddings_are_rate_limited_by_prompt_tokens(session: aiohttp.ClientSession) -> None:
    text = "x" * 400  # 100 tokens
    async with Emulator(tpm=250, rpm=10, clock=lambda: 1_790_000_000.0) as emu:
        first = await post(session, emu, {"model": PASSAGE, "input": [text, text]})
        assert first[0] == 200
        assert first[1]["X-Upstage-RateLimit-Remaining-Tokens"] == "50"
        status, headers, body = await post(session, emu, {"model": PASSAGE, "input": text})
        assert status == 429
        assert error_envelope(body)["code"] == "too_many_requests"
        assert headers["Retry-After"] == "60"
        assert (await post(session, emu, {"model": QUERY, "input": text}))[0] == 200  # another model
        status, _, body = await post(session, emu, {"model": QUERY, "input": [text, text, text]})
        assert status == 400
        assert error_envelope(body)["code"] == "request_too_large"
    assert emu.rate_stats(PASSAGE).tokens_in_window == 200
    assert emu.rate_limited == 1


# --- the openai SDK ------------------------------------------------------------------------------


async def test_openai_sdk_reads_the_answer(emu: Emulator) -> None:
    client = openai.AsyncOpenAI(base_url=emu.base_url, api_key=emu.api_key, max_retries=0)
    try:
        result = await client.embeddings.create(model=QUERY, input=["one", "two"], encoding_format="float")
        assert [d.index for d in result.data] == [0, 1]
        assert len(result.data[0].embedding) == 1024
        assert result.usage.prompt_tokens == count_tokens("one") + count_tokens("two")
        # the SDK asks for base64 unless told otherwise: the emulator refuses it, as documented
        with pytest.raises(openai.BadRequestError) as caught:
            await client.embeddings.create(model=QUERY, input="one")
        assert "encoding_format" in str(caught.value)
    finally:
        await client.close()
