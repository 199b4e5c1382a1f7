"""``llm embed`` with the plugin's embedding models, against the emulator (real llm, its CLI and API)."""

from __future__ import annotations

import json
import math

import llm
import pytest

from solarstream.emulator import Emulator
from solarstream.emulator.embeddings import vector
from solarstream.providers.upstage.models import EMBEDDING_MODELS
from tests.test_llm_plugin import emu, emu_thread, llm_home, ok, run  # noqa: F401 - shared fixtures


def test_every_embedding_model_is_registered() -> None:
    listed = ok("embed-models").stdout
    for name in EMBEDDING_MODELS:
        assert f"SolarEmbedding: {name}" in listed


@pytest.mark.parametrize("name", ["solar-embedding-2-query", "solar-embedding-2-passage"])
def test_llm_embed_gives_the_models_vector(emu: Emulator, name: str) -> None:  # noqa: F811
    before = emu.request_count
    got = json.loads(ok("embed", "-m", name, "-c", "the cat sat").stdout)
    info = EMBEDDING_MODELS[name]
    assert len(got) == info.dimensions == 1024
    assert got == pytest.approx(vector(info, "the cat sat"), abs=1e-9)
    assert math.isclose(math.fsum(x * x for x in got), 1.0, rel_tol=1e-6)
    assert emu.request_count == before + 1
    body = emu.requests[-1].json
    assert body == {"model": name, "input": ["the cat sat"]}  # floats asked for: no encoding_format sent


def test_embed_multi_sends_batches_and_keeps_the_order(emu: Emulator) -> None:  # noqa: F811
    model = llm.get_embedding_model("solar-embedding-2-passage")  # type: ignore[no-untyped-call]
    texts = [f"passage {i}" for i in range(250)]
    before = emu.request_count
    vectors = list(model.embed_multi(texts))
    assert len(vectors) == 250
    info = EMBEDDING_MODELS["solar-embedding-2-passage"]
    assert vectors[0] == pytest.approx(vector(info, "passage 0"), abs=1e-9)
    assert vectors[249] == pytest.approx(vector(info, "passage 249"), abs=1e-9)
    assert emu.request_count == before + 3  # batches of 100


def test_a_chat_model_is_not_an_embedding_model() -> None:
    result = run("embed", "-m", "solar-pro4", "-c", "x")
    assert result.exit_code != 0
    assert result.output == "Error: You need to specify an embedding model (no default model is set)\n"  # llm's


def test_an_embedding_error_is_one_llm_error_line(emu: Emulator) -> None:  # noqa: F811
    result = run("embed", "-m", "solar-embedding-2-query", "-c", "x" * 40_000)  # over the 8K context
    assert result.exit_code == 1
    assert result.output.startswith("Error: HTTP 400 context_length_exceeded: 'input[0]' has 10000 tokens")
    assert result.output.count("\n") == 1


def test_an_embedding_error_is_an_llm_model_error_from_python(emu: Emulator) -> None:  # noqa: F811
    model = llm.get_embedding_model("solar-embedding-2-query")  # type: ignore[no-untyped-call]
    with pytest.raises(llm.ModelError, match="context_length_exceeded"):
        model.embed("x" * 40_000)
