"""What a stream offers besides iteration: the whole text or completion awaited, and an honest
``completion()`` on a stream that was never read (issue 9)."""

from __future__ import annotations

import pytest

from solarstream import Upstage
from solarstream.emulator import Emulator
from solarstream.emulator.answers import answer_text
from solarstream.errors import StreamError


def _provider(emu: Emulator) -> Upstage:
    return Upstage(emu.api_key, emu.base_url)


async def test_completion_of_an_unread_stream_is_an_error_not_an_empty_answer(emu: Emulator) -> None:
    stream = _provider(emu).stream("solar-mini", [{"role": "user", "content": "hi"}])
    with pytest.raises(StreamError, match="never read"):
        stream.completion()
    await stream.aclose()
    assert emu.requests == []  # nothing was sent for it


async def test_get_final_completion_reads_it_all(emu: Emulator) -> None:
    stream = _provider(emu).stream("solar-mini", [{"role": "user", "content": "hi"}],
                                   stream_options={"include_usage": True})
    completion = await stream.get_final_completion()
    assert completion.choices[0].message.content == answer_text("hi")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.request_id is not None
    assert len(completion.request_id) == 36  # the emulator's X-Request-Id, a UUID
    assert stream.done


async def test_the_whole_text_can_be_awaited(emu: Emulator) -> None:
    text = await _provider(emu).stream("solar-mini", [{"role": "user", "content": "Привет"}]).get_final_text()
    assert text == answer_text("Привет")


async def test_text_is_still_the_async_iterator_of_pieces(emu: Emulator) -> None:
    pieces = [p async for p in _provider(emu).stream("solar-mini", [{"role": "user", "content": "a b c"}]).text()]
    assert len(pieces) > 1
    assert "".join(pieces) == answer_text("a b c")


async def test_completion_after_a_partial_read_says_what_came(emu: Emulator) -> None:
    stream = _provider(emu).stream("solar-mini", [{"role": "user", "content": "one two three four"}])
    async with stream:
        first = await stream.__anext__()
        second = await stream.__anext__()
    got = (first.choices[0].delta.content or "") + (second.choices[0].delta.content or "")
    assert stream.completion().choices[0].message.content == got
    assert stream.completion().choices[0].finish_reason is None  # not passed off as complete


async def test_the_openai_tool_loop_runs_on_solarstreams_own_client(emu: Emulator) -> None:
    """``messages.append(message.model_dump())``, then the tool's answer, then ask again."""
    from solarstream import AsyncClient

    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    messages: list[dict[str, object]] = [{"role": "user", "content": "[emulate:tools] weather?"}]
    async with AsyncClient(api_key=emu.api_key, base_url=emu.base_url) as client:
        first = await client.chat.completions.create(model="solar-mini", messages=messages, tools=tools)
        assert first._request_id == first.request_id is not None
        message = first.choices[0].message
        assert message.tool_calls
        messages.append(message.model_dump())
        messages.append({"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "sunny"})
        second = await client.chat.completions.create(model="solar-mini", messages=messages, tools=tools)
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content
    assert emu.requests[-1].json["messages"][1] == {
        "role": "assistant", "content": None, "tool_calls": [call.to_dict() for call in message.tool_calls]}
    assert first.model_dump_json(exclude_none=True).startswith('{"id":')
