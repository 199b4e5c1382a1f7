"""``solarstream.ray.ChatStage``, the Ray Data stage, on the session's Ray against the emulator (on its
own thread here, so that this thread can wait for the dataset): the columns it adds, rows that
fail without failing the dataset, one limiter for every instance, and each batch format."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from solarstream.emulator import Emulator, answers
from solarstream.errors import InvalidRequestError, MissingAuthError
from tests.batchkit import MODEL, EmulatorThread, expected_answer


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with EmulatorThread(history=1000) as emulator:
        yield emulator


def stage_kwargs(emu: Emulator, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "api_key": emu.api_key, "base_url": emu.base_url, "rpm": 10**6, "tpm": 10**9, **extra}


def usage_of(prompt: str) -> dict[str, int]:
    prompt_tokens = answers.prompt_tokens([{"role": "user", "content": prompt}])
    completion = sum(answers.count_tokens(piece) for piece in answers.pieces(expected_answer(prompt)))
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion}


def run_stage(rows: list[dict[str, Any]], emu: Emulator, **extra: Any) -> list[dict[str, Any]]:
    import ray.data

    from solarstream.ray import ChatStage

    ds = ray.data.from_items(rows).map_batches(ChatStage, fn_constructor_kwargs=stage_kwargs(emu, **extra),
                                               concurrency=2, batch_size=4, num_cpus=0.25)
    return sorted(ds.take_all(), key=lambda row: int(row["n"]))


def test_prompts_and_messages_get_answer_usage_finish_reason_and_no_error(emu: Emulator, ray_address: str) -> None:
    rows = [{"n": i, "prompt": f"question {i}"} for i in range(6)]
    rows += [{"n": 6 + i, "messages": [{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": f"chat {i}"}]} for i in range(6)]
    out = run_stage(rows, emu)
    assert [row["n"] for row in out] == list(range(12))
    for row in out[:6]:
        prompt = f"question {row['n']}"
        assert row["answer"] == expected_answer(prompt)
        assert row["usage"] == usage_of(prompt)
        assert (row["finish_reason"], row["error"]) == ("stop", None)
    for i, row in enumerate(out[6:]):
        assert row["answer"] == expected_answer(f"chat {i}")
        assert row["error"] is None
    assert emu.request_count == 12


def test_a_bad_row_carries_its_error_and_the_dataset_goes_on(emu: Emulator, ray_address: str) -> None:
    rows = [{"n": i, "prompt": f"fine {i}"} for i in range(5)]
    rows[1] = {"n": 1, "prompt": "[emulate:error status=400 code=context_length_exceeded] too long"}
    rows[3] = {"n": 3, "prompt": None}  # neither messages nor a prompt
    out = run_stage([*rows, {"n": 5, "messages": [{"role": "robot", "content": "beep"}]}], emu)
    assert [row["error"]["code"] if row["error"] else None for row in out] == [
        None, "context_length_exceeded", None, "invalid_request", None, "invalid_request"]
    assert "neither a 'messages' column" in out[3]["error"]["message"]
    assert "robot" in out[5]["error"]["message"]
    assert out[1]["answer"] is None
    assert out[1]["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert [row["answer"] for row in out if row["n"] in (0, 2, 4)] == [expected_answer(f"fine {i}") for i in (0, 2, 4)]
    assert emu.request_count == 4  # the two rows that could not be sent were not


def test_every_instance_draws_from_one_limiter(ray_address: str) -> None:
    import ray

    limit, count = 10, 30
    with EmulatorThread(rpm=limit, tpm=10**9, rate_window=1.0, history=100) as emu:
        rows = [{"n": i, "prompt": f"paced {i}"} for i in range(count)]
        kwargs = {"rpm": None, "tpm": None}  # learned from the emulator's headers, once for all instances
        out = run_stage(rows, emu, **kwargs)
        limited = emu.rate_limited
        names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                 if a["name"].startswith("solarstream-limiter-")]
        from solarstream.ray._limiter import limiter_name

        name = limiter_name(ray.get_runtime_context().get_job_id(), emu.base_url, emu.api_key, MODEL)
        stats = ray.get(ray.get_actor(name, namespace="solarstream").stats.remote())
    assert all(row["error"] is None for row in out)
    assert name in names  # one named actor for the key, base URL and model; the key is not in its name
    assert emu.api_key not in " ".join(names)
    assert stats["learned"]["rpm"] == pytest.approx(limit * 60)  # learned: 10 a 1-second window
    assert limited <= 1  # two instances at 4 requests at once would have gone far past 10 a second


@pytest.mark.parametrize("kind", ["numpy", "pandas", "pyarrow"])
def test_each_batch_format_comes_back_in_its_format(emu: Emulator, ray_address: str, kind: str) -> None:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from solarstream.ray import ChatStage

    stage = ChatStage(**stage_kwargs(emu))
    columns = {"id": [7, 8], "prompt": ["first", "second"]}
    batch: Any = {"numpy": {k: np.array(v) for k, v in columns.items()}, "pandas": pd.DataFrame(columns),
                  "pyarrow": pa.table(columns)}[kind]
    out = stage(batch)
    rows = out.to_dict("records") if kind == "pandas" else out.to_pylist()
    assert type(out) is (pd.DataFrame if kind == "pandas" else pa.Table)  # numpy batches come back as Arrow
    assert [(int(r["id"]), r["answer"], r["finish_reason"], r["error"]) for r in rows] == [
        (7, expected_answer("first"), "stop", None), (8, expected_answer("second"), "stop", None)]


def test_bad_settings_fail_the_stage_before_any_row(emu: Emulator, ray_address: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from solarstream.ray import ChatStage

    with pytest.raises(InvalidRequestError, match="temperature"):
        ChatStage(**stage_kwargs(emu, temperature=7))
    with pytest.raises(MissingAuthError, match="UPSTAGE_API_KEY"):
        ChatStage(MODEL, base_url=emu.base_url)
    monkeypatch.setenv("UPSTAGE_API_KEY", emu.api_key)
    monkeypatch.setenv("UPSTAGE_BASE_URL", emu.base_url)
    stage = ChatStage(MODEL, temperature=0.2)  # the key and base URL from the environment
    assert emu.api_key not in repr(stage)
    assert emu.request_count == 0


@pytest.mark.parametrize("batch_format", ["default", "pandas", "pyarrow"])
def test_the_output_writes_to_parquet_with_one_schema(emu: Emulator, ray_address: str, tmp_path: Path,
                                                      batch_format: str) -> None:
    import pyarrow.parquet as pq
    import ray.data

    from solarstream.ray import ChatStage

    # batches of two: some have only successes (no error anywhere), some only failures
    rows = [{"n": i, "prompt": f"row {i}" if i < 4 else None} for i in range(6)]
    ds = ray.data.from_items(rows).map_batches(ChatStage, fn_constructor_kwargs=stage_kwargs(emu), concurrency=1,
                                               batch_size=2, num_cpus=0.25, batch_format=batch_format)
    ds.write_parquet(str(tmp_path / "answers"))
    table = pq.read_table(tmp_path / "answers")
    out = sorted(table.to_pylist(), key=lambda row: int(row["n"]))
    assert [row["answer"] for row in out] == [expected_answer(f"row {i}") for i in range(4)] + [None, None]
    assert [row["error"]["code"] if row["error"] else None for row in out] == [None] * 4 + ["invalid_request"] * 2
    assert [row["usage"]["total_tokens"] > 0 for row in out] == [True] * 4 + [False] * 2
