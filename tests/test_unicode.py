"""Multi-byte text split inside characters at every byte, through the whole provider path."""

from __future__ import annotations

import json

from solarstream import Upstage
from tests.conftest import MESSAGES, kw
from tests.rawserver import RawServer, Reply, text_stream

PIECES = ["Привет, ", "как дела? ", "안녕하세요, ", "세계! ", "こんにちは、", "世界。", "👋🏽🇰🇷 ", "👨‍👩‍👧 done"]
ORIGINAL = "".join(PIECES)


async def _answer(server: RawServer) -> str:
    return "".join([p async for p in Upstage.create_async_generator("solar-pro4", MESSAGES, **kw(server))])


async def test_split_at_every_byte_of_a_multibyte_stream(server: RawServer) -> None:
    body = text_stream(PIECES)
    assert "👋".encode() in body  # sent as raw UTF-8, not \\u escapes
    inside = [i for i in range(1, len(body)) if body[i] & 0xC0 == 0x80]  # splits inside a character
    assert len(inside) > 60
    for i in range(1, len(body)):
        server.enqueue(Reply(pieces=[body[:i], body[i:]], turns=1))
    for i in range(1, len(body)):
        assert await _answer(server) == ORIGINAL, f"split at byte {i}"
    assert server.connections == 1


async def test_one_byte_per_write(server: RawServer) -> None:
    body = text_stream(PIECES)
    server.enqueue(Reply(pieces=[body[i : i + 1] for i in range(len(body))], turns=1, framing="length"))
    assert await _answer(server) == ORIGINAL


async def test_escaped_and_raw_utf8_give_the_same_text(server: RawServer) -> None:
    escaped = b"".join(
        b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": p}}]}, ensure_ascii=True).encode()
        + b"\r\n\r\n" for p in PIECES
    ) + b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\r\n\r\ndata: [DONE]\r\n\r\n'
    server.enqueue(Reply(pieces=[escaped[i : i + 7] for i in range(0, len(escaped), 7)]))
    assert await _answer(server) == ORIGINAL


async def test_unicode_in_the_request_is_sent_as_utf8(server: RawServer) -> None:
    server.enqueue(Reply(pieces=[text_stream(["ok"])]))
    messages = [{"role": "user", "content": "日本語で答えて 🙏"}]
    assert "".join([p async for p in Upstage.create_async_generator("syn-pro", messages, **kw(server))]) == "ok"
    assert server.requests[0].json()["messages"] == messages
    assert "日本語".encode() in server.requests[0].body
