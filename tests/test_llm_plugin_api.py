"""The llm plugin through llm's Python API: ``llm.get_model`` and ``llm.get_async_model``.

Answers come from the emulator (on a background thread) or, where the exact bytes matter, from the
raw fake upstream on the test's own loop (async model only: the sync model would block that loop).
"""

from __future__ import annotations

import json
from typing import Any

import llm
import pytest
from llm.parts import Message, ReasoningPart, StreamEvent, TextPart, ToolCallPart
from pydantic import ValidationError

from solarstream.emulator import Emulator, answers
from solarstream.errors import AuthenticationError, InvalidRequestError, StreamTruncatedError
from tests.helpers import ThreadedEmulator, completion_tokens, last_body
from tests.rawserver import RawServer, chunk, sse, sse_reply

pytestmark = pytest.mark.usefixtures("llm_home")


def weather(city: str) -> str:
    "The weather in a city."
    return f"Sunny in {city}"


def time_in(city: str) -> str:
    "The local time in a city."
    return f"Noon in {city}"


async def async_weather(city: str) -> str:
    "The weather in a city."
    return f"Rainy in {city}"


def events_of(response: llm.Response) -> list[StreamEvent]:
    return list(response.stream_events())  # type: ignore[no-untyped-call]


async def async_events_of(response: llm.AsyncResponse) -> list[StreamEvent]:
    return [event async for event in response.astream_events()]  # type: ignore[no-untyped-call]


# --- the sync model ----------------------------------------------------------------------------


def test_a_prompt_streams_in_the_emulators_pieces() -> None:
    response = llm.get_model("solar-mini").prompt("Привет! Как дела?")
    text = answers.answer_text("Привет! Как дела?")
    assert list(response) == answers.pieces(text)
    assert response.text() == text
    prompt_tokens = answers.prompt_tokens([{"role": "user", "content": "Привет! Как дела?"}])
    assert response.usage() == llm.Usage(input=prompt_tokens, output=completion_tokens(text), details=None)
    assert response.resolved_model == "solar-mini-250422"
    assert response.json()["choices"][0]["message"]["content"] == text  # type: ignore[index]


def test_stopping_early_closes_the_stream(emu_thread: ThreadedEmulator) -> None:
    response = llm.get_model("solar-mini").prompt("Hi [emulate:stall after=2]")
    pieces = iter(response)
    assert [next(pieces), next(pieces)] == answers.pieces(answers.answer_text("Hi"))[:2]
    seen = emu_thread.emulator.disconnects
    pieces.close()  # type: ignore[attr-defined]  # a generator: what Ctrl-C or a break leads to
    assert emu_thread.wait_for_disconnects(seen + 1) == seen + 1


def test_reasoning_and_text_are_separate_events_and_parts() -> None:
    response = llm.get_model("solar-pro3").prompt("Why?")
    events = events_of(response)
    reasoning = answers.reasoning_text("solar-pro3", None, "Why?")
    assert "".join(e.chunk for e in events if e.type == "reasoning") == reasoning
    assert "".join(e.chunk for e in events if e.type == "text") == answers.answer_text("Why?")
    assert {e.type for e in events} == {"reasoning", "text"}
    first_text = next(i for i, e in enumerate(events) if e.type == "text")
    assert all(e.type == "reasoning" for e in events[:first_text])
    parts = [ReasoningPart(reasoning), TextPart(answers.answer_text("Why?"))]
    assert response.messages() == [Message("assistant", parts)]
    tokens = completion_tokens("", reasoning)
    assert response.usage().details == {"completion_tokens_details": {"reasoning_tokens": tokens}}


def test_options_from_python_including_a_list_of_stops(threaded_emu: Emulator) -> None:
    model = llm.get_model("solar-pro4")
    text = model.prompt("Hi there", temperature=0.2, stop=["offline", "zzz"], reasoning_effort="minimal").text()
    assert text == answers.answer_text("Hi there")[: answers.answer_text("Hi there").find("offline")]
    body = last_body(threaded_emu)
    assert (body["temperature"], body["stop"], body["reasoning_effort"]) == (0.2, ["offline", "zzz"], "minimal")


def test_bad_options_raise_before_sending(threaded_emu: Emulator) -> None:
    before = len(threaded_emu.requests)
    with pytest.raises(ValidationError, match="less than or equal to 2"):
        llm.get_model("solar-mini").prompt("Hi", temperature=5)
    with pytest.raises(ValidationError, match="solar-mini does not reason"):
        llm.get_model("solar-mini").prompt("Hi", reasoning_effort="low")
    assert llm.get_model("solar-mini").prompt("Hi", reasoning_effort=None).text() == answers.answer_text("Hi")
    assert len(threaded_emu.requests) == before + 1


def test_a_conversation_sends_its_history(threaded_emu: Emulator) -> None:
    conversation = llm.get_model("solar-mini").conversation()
    assert conversation.prompt("one", system="Short answers.").text() == answers.answer_text("one")
    assert conversation.prompt("two").text() == answers.answer_text("two")
    assert last_body(threaded_emu)["messages"] == [
        {"role": "system", "content": "Short answers."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": answers.answer_text("one")},
        {"role": "user", "content": "two"},
    ]


@pytest.mark.parametrize("stream", [True, False])
def test_tool_calls_are_recorded_for_llms_tool_loop(stream: bool) -> None:
    response = llm.get_model("solar-mini").prompt("Weather?", tools=[weather], stream=stream)
    assert response.text() == ""
    (call,) = response.tool_calls()
    assert (call.name, call.arguments) == ("weather", {"city": "emulated city"})
    assert call.tool_call_id is not None
    assert call.tool_call_id.startswith("call_")
    (message,) = response.messages()
    assert message.parts == [ToolCallPart("weather", {"city": "emulated city"}, call.tool_call_id)]
    events = events_of(response)
    assert [e.type for e in events][:2] == ["tool_call_name", "tool_call_args"]
    assert "".join(e.chunk for e in events if e.type == "tool_call_args") == '{"city": "emulated city"}'


def test_several_tool_calls_in_one_answer_keep_their_ids() -> None:
    response = llm.get_model("solar-mini").prompt("Both [emulate:tools count=2]", tools=[weather, time_in])
    calls = response.tool_calls()
    assert [(c.name, c.arguments) for c in calls] == [("weather", {"city": "emulated city"}),
                                                      ("time_in", {"city": "emulated city"})]
    ids = [c.tool_call_id for c in calls]
    assert len(set(ids)) == 2
    (message,) = response.messages()
    assert [p.tool_call_id for p in message.parts if isinstance(p, ToolCallPart)] == ids


def test_a_forced_call_finished_with_stop_is_still_a_tool_call() -> None:
    response = llm.get_model("solar-mini").prompt("Hi [emulate:tools finish=stop]", tools=[weather])
    assert [c.name for c in response.tool_calls()] == ["weather"]


def test_a_chain_runs_the_tool_and_answers_with_its_result(threaded_emu: Emulator) -> None:
    chain = llm.get_model("solar-pro4").chain("Weather in Seoul?", tools=[weather])
    assert chain.text() == answers.tool_result_text("weather", "Sunny in emulated city")
    assert last_body(threaded_emu)["messages"][-1]["content"] == "Sunny in emulated city"


def test_a_schema_from_a_pydantic_model() -> None:
    from pydantic import BaseModel

    class Dog(BaseModel):
        name: str
        age: int

    text = llm.get_model("solar-pro3").prompt("Invent a dog", schema=Dog).text()
    assert json.loads(text) == {"name": "emulated name", "age": 1}


@pytest.mark.parametrize(
    ("prompt", "cause", "message"),
    [
        ("Hi [emulate:error status=401]", AuthenticationError,
         "HTTP 401 invalid_api_key: Emulated error 401 invalid_api_key, requested by [emulate:error]. (check "
         "UPSTAGE_API_KEY (keys start with 'up_') or run 'llm keys set upstage') [request id "),
        ("Hi [emulate:truncate after=1]", StreamTruncatedError, "the stream ended after "),
        ("No such word here", InvalidRequestError,
         'response_format: {"type": "json_object"} needs the word "JSON" in the prompt'),
    ],
)
def test_solarstream_errors_are_model_errors(prompt: str, cause: type[Exception], message: str) -> None:
    with pytest.raises(llm.ModelError) as caught:
        llm.get_model("solar-mini").prompt(prompt, json_object=prompt.startswith("No")).text()
    assert str(caught.value).startswith(message)
    assert type(caught.value.__cause__) is cause


# --- the async model -------------------------------------------------------------------------------


async def test_the_async_model_streams_text_reasoning_and_usage() -> None:
    model = llm.get_async_model("solar-pro3")
    response = model.prompt("Hello async", reasoning_effort="high")
    events = await async_events_of(response)
    reasoning = answers.reasoning_text("solar-pro3", "high", "Hello async")
    text = answers.answer_text("Hello async")
    assert "".join(e.chunk for e in events if e.type == "reasoning") == reasoning
    assert [e.chunk for e in events if e.type == "text"] == answers.pieces(text)
    assert await response.text() == text
    usage = await response.usage()
    assert (usage.input, usage.output) == (answers.prompt_tokens([{"role": "user", "content": "Hello async"}]),
                                           completion_tokens(text, reasoning))


async def test_the_async_model_without_streaming() -> None:
    response = llm.get_async_model("solar-mini").prompt("Whole", stream=False)
    assert await response.text() == answers.answer_text("Whole")
    assert response.resolved_model == "solar-mini-250422"


async def test_an_async_chain_awaits_an_async_tool() -> None:
    chain = llm.get_async_model("solar-mini").chain("Weather?", tools=[async_weather])
    assert await chain.text() == answers.tool_result_text("async_weather", "Rainy in emulated city")


async def test_an_async_conversation_sends_its_history(threaded_emu: Emulator) -> None:
    conversation = llm.get_async_model("solar-mini").conversation()
    await conversation.prompt("one").text()
    await conversation.prompt("two").text()
    assert [m["role"] for m in last_body(threaded_emu)["messages"]] == ["user", "assistant", "user"]


async def test_async_errors_are_model_errors() -> None:
    with pytest.raises(llm.ModelError, match=r"^HTTP 429 usage_limit_exceeded: ") as caught:
        await llm.get_async_model("solar-mini").prompt("Hi [emulate:rate-limit code=usage_limit_exceeded]").text()
    assert caught.value.__cause__ is not None


# --- exact bytes from the raw upstream (async model) ------------------------------------------------


@pytest.fixture
def raw_env(server: RawServer, monkeypatch: pytest.MonkeyPatch) -> RawServer:
    monkeypatch.setenv("UPSTAGE_BASE_URL", server.base_url)
    return server


def _events(events: list[StreamEvent]) -> list[tuple[str, str, Any]]:
    return [(e.type, e.chunk, e.redacted) for e in events]


async def test_reasoning_tokens_without_reasoning_text_leave_a_redacted_marker(raw_env: RawServer) -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12,
             "completion_tokens_details": {"reasoning_tokens": 7}}
    raw_env.enqueue(sse_reply(sse(chunk("", role="assistant"), chunk("ok"), chunk(finish="stop", usage=usage),
                                  "[DONE]")))
    response = llm.get_async_model("solar-pro4").prompt("Hi")
    events = await async_events_of(response)
    assert _events(events) == [("text", "ok", False), ("reasoning", "", True)]
    assert await response.messages() == [Message("assistant", [ReasoningPart("", redacted=True), TextPart("ok")])]
    assert (await response.usage()).details == {"completion_tokens_details": {"reasoning_tokens": 7}}


async def test_reasoning_content_and_tool_calls_without_ids(raw_env: RawServer) -> None:
    """``reasoning_content`` (other servers' name) is reasoning; a call with no id gets the core's ``call_0``."""
    pieces = [{"index": 0, "type": "function", "function": {"name": "weather", "arguments": ""}},
              {"index": 0, "function": {"arguments": '{"city": '}}, {"index": 0, "function": {"arguments": '"Seoul"}'}}]
    raw_env.enqueue(sse_reply(sse(chunk(reasoning="hmm", reasoning_key="reasoning_content"),
                                  *(chunk(tool_calls=[p]) for p in pieces), chunk(finish="tool_calls"), "[DONE]")))
    response = llm.get_async_model("solar-mini").prompt("Hi", tools=[weather])
    await response.text()
    assert [(c.name, c.arguments, c.tool_call_id) for c in await response.tool_calls()] == \
        [("weather", {"city": "Seoul"}, "call_0")]
    assert await response.messages() == [Message("assistant", [
        ReasoningPart("hmm"), ToolCallPart("weather", {"city": "Seoul"}, "call_0")])]


async def test_an_async_consumer_that_stops_early_closes_the_stream(raw_env: RawServer) -> None:
    raw_env.enqueue(sse_reply(sse(chunk("", role="assistant"), chunk("one "), chunk("two ")), end="hang"))
    events = llm.get_async_model("solar-mini").prompt("Hi").astream_events()  # type: ignore[no-untyped-call]
    assert (await anext(events)).chunk == "one "
    await events.aclose()
    await raw_env.wait_client_disconnects(1)


async def test_tool_arguments_that_are_not_json_are_kept_raw(raw_env: RawServer) -> None:
    call = {"index": 0, "id": "call_x", "type": "function", "function": {"name": "weather", "arguments": "{oops"}}
    raw_env.enqueue(sse_reply(sse(chunk(tool_calls=[call]), chunk(finish="tool_calls"), "[DONE]")))
    response = llm.get_async_model("solar-mini").prompt("Hi", tools=[weather])
    assert [(c.name, c.arguments) for c in await response.tool_calls()] == [("weather", {"_raw": "{oops"})]
    assert json.loads(raw_env.requests[-1].body)["tools"][0]["function"]["name"] == "weather"
