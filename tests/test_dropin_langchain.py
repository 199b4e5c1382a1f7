"""LangChain's ``langchain-openai`` through the gateway: ``ChatOpenAI(base_url=gateway, model="solar-mini")``.

``invoke``, ``stream``, tools (``bind_tools`` with ``parallel_tool_calls=False``, the loop with
``ToolMessage``), ``with_structured_output`` with each method, and ``OpenAIEmbeddings`` — the
calls LangChain users make, with no Upstage-specific settings, against ``serve`` in front of the
emulator. Answers are the emulator's, exactly; what reached the upstream is read from the emulator.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import openai
import pydantic
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from solarstream.emulator import answers
from solarstream.emulator.embeddings import vector
from solarstream.providers.upstage import models as _models
from solarstream.server.testing import GatewayThread, RunningGateway
from tests.dropin import WEATHER_RESULT, float32, loopback_only, weather_arguments

KEY = "gw-langchain-key-3141"
PROMPT = "What is the weather in Seoul?"


class Weather(pydantic.BaseModel):
    """The weather in a city."""

    city: str
    degrees: int


class EmulatorNote(pydantic.BaseModel):
    """The object the emulator answers for ``{"type": "json_object"}`` (answers.json_answer)."""

    emulator: str
    note: str
    you_wrote: str


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return WEATHER_RESULT


@pytest.fixture(autouse=True)
def _loopback_only(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_API_KEY", "OPENAI_API_KEY",
                 "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    with loopback_only() as attempts:
        yield
    assert attempts == [], f"LangChain tried to reach beyond loopback: {attempts}"
    assert [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR] == []


@pytest.fixture(scope="module")
def gw() -> Iterator[RunningGateway]:
    with GatewayThread(api_key=KEY) as running:
        yield running


def chat(gw: RunningGateway, model: str = "solar-mini", **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(base_url=gw.base_url, api_key=KEY, model=model, max_retries=0, timeout=30, **kwargs)  # type: ignore[arg-type]


def sent(gw: RunningGateway) -> dict[str, Any]:
    body: dict[str, Any] = gw.emulator.requests[-1].json
    return body


# --- chat ---------------------------------------------------------------------------------------------------


def test_invoke(gw: RunningGateway) -> None:
    answer = chat(gw).invoke("hello from LangChain")
    assert answer.content == answers.answer_text("hello from LangChain")
    assert answer.response_metadata["model_name"] == "solar-mini-250422"
    assert answer.response_metadata["finish_reason"] == "stop"
    usage = answer.usage_metadata
    assert usage is not None
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert sent(gw) == {"model": "solar-mini", "messages": [{"role": "user", "content": "hello from LangChain"}],
                        "stream": False}


def test_stream(gw: RunningGateway) -> None:
    chunks = list(chat(gw, stream_usage=True).stream("hello, streamed"))
    text = "".join(str(c.content) for c in chunks)
    assert text == answers.answer_text("hello, streamed")
    assert len([c for c in chunks if c.content]) > 3  # it really streamed, piece by piece
    usage = [c.usage_metadata for c in chunks if isinstance(c, AIMessageChunk) and c.usage_metadata]
    assert len(usage) == 1
    assert usage[0]["output_tokens"] > 0
    assert sent(gw)["stream_options"] == {"include_usage": True}


async def test_ainvoke_and_astream(gw: RunningGateway) -> None:
    model = chat(gw)
    answer = await model.ainvoke("hello, async")
    assert answer.content == answers.answer_text("hello, async")
    pieces = [str(c.content) async for c in model.astream("hello, async stream")]
    assert "".join(pieces) == answers.answer_text("hello, async stream")


def test_history_with_a_reasoning_model(gw: RunningGateway) -> None:
    model = chat(gw, model="solar-pro3")
    history: list[BaseMessage] = [HumanMessage("hi")]
    history.append(model.invoke(history))
    history.append(HumanMessage("and again"))
    assert model.invoke(history).content == answers.answer_text("and again")
    assert [m["role"] for m in sent(gw)["messages"]] == ["user", "assistant", "user"]


# --- tools ----------------------------------------------------------------------------------------------------


def sent_tool_arguments(gw: RunningGateway) -> dict[str, Any]:
    """The arguments the emulator builds for the schema LangChain sent for the tool."""
    return weather_arguments(sent(gw)["tools"][0]["function"]["parameters"])


@pytest.mark.parametrize("parallel", [False, True])
def test_bind_tools_with_parallel_tool_calls(gw: RunningGateway, parallel: bool) -> None:
    answer = chat(gw).bind_tools([get_weather], parallel_tool_calls=parallel).invoke(PROMPT)
    assert isinstance(answer, AIMessage)
    assert [(c["name"], c["args"]) for c in answer.tool_calls] == [("get_weather", sent_tool_arguments(gw))]
    assert "parallel_tool_calls" not in sent(gw)  # Upstage has no such switch: dropped, not refused


def test_tool_calls_stream(gw: RunningGateway) -> None:
    chunks = [c for c in chat(gw).bind_tools([get_weather]).stream(PROMPT) if isinstance(c, AIMessageChunk)]
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    assert [(c["name"], c["args"]) for c in whole.tool_calls] == [("get_weather", sent_tool_arguments(gw))]
    assert len([c for c in chunks if c.tool_call_chunks]) > 1  # the arguments came in pieces


def test_tool_loop(gw: RunningGateway) -> None:
    model = chat(gw).bind_tools([get_weather])
    messages: list[BaseMessage] = [HumanMessage(PROMPT)]
    answer = model.invoke(messages)
    assert isinstance(answer, AIMessage)
    messages.append(answer)
    for call in answer.tool_calls:
        messages.append(ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"]))
    final = model.invoke(messages)
    assert final.content == answers.tool_result_text("get_weather", WEATHER_RESULT)
    assert [m["role"] for m in sent(gw)["messages"]] == ["user", "assistant", "tool"]


def test_strict_tools_are_refused_with_the_reason(gw: RunningGateway) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        chat(gw).bind_tools([get_weather], strict=True).invoke(PROMPT)
    assert info.value.param == "tools[0].function.strict"
    assert "strict tools are rejected by Upstage" in info.value.message


# --- structured output ---------------------------------------------------------------------------------------------


def test_structured_output_function_calling(gw: RunningGateway) -> None:
    result = chat(gw).with_structured_output(Weather, method="function_calling").invoke(PROMPT)
    assert result == Weather.model_validate(sent_tool_arguments(gw)) == Weather(city="emulated city", degrees=1)
    body = sent(gw)
    assert body["tool_choice"] == {"type": "function", "function": {"name": "Weather"}}
    assert "parallel_tool_calls" not in body  # LangChain sent parallel_tool_calls=False


def test_structured_output_json_schema(gw: RunningGateway) -> None:
    for method in ("json_schema", None):  # None: LangChain's default method
        runnable = chat(gw).with_structured_output(Weather, method=method) if method else \
            chat(gw).with_structured_output(Weather)
        result = runnable.invoke(PROMPT)
        schema = sent(gw)["response_format"]["json_schema"]["schema"]
        assert result == Weather.model_validate_json(answers.json_answer_for(schema))


def test_structured_output_json_mode(gw: RunningGateway) -> None:
    prompt = "Describe yourself as JSON"  # Upstage needs the word JSON in the prompt for json_object
    result = chat(gw).with_structured_output(EmulatorNote, method="json_mode").invoke(prompt)
    assert result == EmulatorNote.model_validate_json(answers.json_answer(prompt))
    assert sent(gw)["response_format"] == {"type": "json_object"}


def test_structured_output_json_mode_without_the_word_json(gw: RunningGateway) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        chat(gw).with_structured_output(EmulatorNote, method="json_mode").invoke("describe yourself")
    assert info.value.param == "response_format"
    assert 'needs the word "JSON" in the prompt' in info.value.message


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_structured_output_include_raw(gw: RunningGateway, method: str) -> None:
    result = chat(gw).with_structured_output(Weather, method=method, include_raw=True).invoke(PROMPT)  # type: ignore[arg-type]
    assert isinstance(result, dict)
    assert result["parsing_error"] is None
    assert result["parsed"] == Weather(city="emulated city", degrees=1)
    assert isinstance(result["raw"], AIMessage)


# --- embeddings ---------------------------------------------------------------------------------------------------


def test_openai_embeddings(gw: RunningGateway) -> None:
    # check_embedding_ctx_length=False: by default LangChain tokenises the input with tiktoken (which
    # downloads its tables) and sends token arrays, which Upstage does not take (docs/compatibility.md)
    embeddings = OpenAIEmbeddings(base_url=gw.base_url, api_key=KEY, model="solar-embedding-2-query",  # type: ignore[arg-type]
                                  max_retries=0, check_embedding_ctx_length=False)
    info = _models.EMBEDDING_MODELS["solar-embedding-2-query"]
    query = embeddings.embed_query("where is Seoul?")
    assert query == float32(vector(info, "where is Seoul?"))  # the SDK under it asked for base64
    documents = embeddings.embed_documents(["first", "second"])
    assert documents == [float32(vector(info, "first")), float32(vector(info, "second"))]
    assert sent(gw)["input"] == ["first", "second"]


def test_strict_structured_output(gw: RunningGateway) -> None:
    """``strict=True`` is fine for a json_schema answer, refused for tools (Upstage has no strict tools)."""
    result = chat(gw).with_structured_output(Weather, method="json_schema", strict=True).invoke(PROMPT)
    assert result == Weather(city="emulated city", degrees=1)
    assert sent(gw)["response_format"]["json_schema"]["strict"] is True
    with pytest.raises(openai.BadRequestError) as info:
        chat(gw).with_structured_output(Weather, method="function_calling", strict=True).invoke(PROMPT)
    assert info.value.param == "tools[0].function.strict"


def test_reasoning_dict_switches_to_the_responses_api(gw: RunningGateway) -> None:
    """``reasoning={...}`` makes ChatOpenAI use /v1/responses, which the gateway does not serve;
    ``reasoning_effort=`` is the Chat Completions spelling."""
    before = gw.emulator.request_count
    with pytest.raises(openai.NotFoundError) as info:
        chat(gw, model="solar-pro3", reasoning={"effort": "high"}).invoke("hi")
    assert "no such endpoint: /v1/responses" in info.value.message
    assert gw.emulator.request_count == before
    answer = chat(gw, model="solar-pro3", reasoning_effort="high").invoke("hi")
    assert answer.content == answers.answer_text("hi")
    assert sent(gw)["reasoning_effort"] == "high"
