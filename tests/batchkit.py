"""Helpers for the batch tests: INPUT files, reading OUTPUT, the real command as a child process,
an emulator on its own thread (for the in-process CLI, which runs its own event loop), and a
pre-encoded completion for the raw server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from solarstream.emulator import Emulator, answers
from tests.helpers import ThreadedEmulator
from tests.rawserver import Reply, json_reply

MODEL = "solar-mini"

#: limits so high they never bind: an emulator without enforced limits advertises Upstage's tier-0
#: limits (100 requests a minute) in its headers, which a job would learn and keep to
UNBOUND: dict[str, Any] = {"rpm": 1_000_000, "tpm": 1_000_000_000}


def short_line(custom_id: str | None, prompt: str, **params: Any) -> dict[str, Any]:
    line: dict[str, Any] = {"messages": [{"role": "user", "content": prompt}], "model": MODEL, **params}
    if custom_id is not None:
        line["custom_id"] = custom_id
    return line


def batch_line(custom_id: str, prompt: str, **params: Any) -> dict[str, Any]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}], **params}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def write_jsonl(path: Path, lines: Iterable[Mapping[str, Any] | str]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n")
    return path


def prompts_file(path: Path, count: int, prefix: str = "prompt") -> tuple[Path, dict[str, str]]:
    """INPUT of ``count`` short lines with ids ``id-0`` ...; returns the path and id -> prompt."""
    prompts = {f"id-{i}": f"{prefix} number {i}" for i in range(count)}
    write_jsonl(path, (short_line(cid, text) for cid, text in prompts.items()))
    return path, prompts


def records(path: Path) -> list[dict[str, Any]]:
    """OUTPUT's whole records (a torn last line is not one)."""
    out = []
    with open(path, "rb") as f:
        for raw in f:
            if raw.endswith(b"\n") and raw.strip():
                out.append(json.loads(raw))
    return out


def by_id(path: Path) -> dict[str, dict[str, Any]]:
    """OUTPUT's records by custom_id; fails if an id has two."""
    found: dict[str, dict[str, Any]] = {}
    for record in records(path):
        assert record["custom_id"] not in found, f"two records for {record['custom_id']}"
        found[record["custom_id"]] = record
    return found


def content(record: Mapping[str, Any]) -> str:
    return str(record["response"]["body"]["choices"][0]["message"]["content"])


def expected_answer(prompt: str) -> str:
    return answers.answer_text(prompt)


def sent_prompts(emu: Emulator, since: int = 0) -> list[str]:
    """The last user message of each chat request the emulator received after the first ``since``."""
    out = []
    for record in emu.requests[since:]:
        body = record.json
        if isinstance(body, dict) and record.path.endswith("/chat/completions"):
            out.append(str(body["messages"][-1]["content"]))
    return out


def child_env(**extra: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "NETRC", "SYSTEMROOT", "TMPDIR")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, "PYTHONUNBUFFERED": "1", **extra}


async def spawn_batch(*args: str, env: Mapping[str, str] | None = None) -> asyncio.subprocess.Process:
    """``python -m solarstream batch ARGS`` as a child process (stderr captured)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "solarstream", "batch", *args, env=dict(env or child_env()),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def run_batch(*args: str, timeout: float = 120) -> tuple[int, str]:
    """Run the real command to its end: (exit status, stderr)."""
    proc = await spawn_batch(*args)
    _, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


def against(emu: Emulator) -> list[str]:
    return ["--base-url", emu.base_url, "--api-key", emu.api_key]


def completion_body(text: str = "ok", *, prompt_tokens: int = 5, completion_tokens: int = 2) -> dict[str, Any]:
    return {"id": "cmpl-1", "object": "chat.completion", "created": 1707269210, "model": "solar-mini-250422",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def completion_reply(text: str = "ok", headers: Iterable[tuple[str, str]] = ()) -> Reply:
    return json_reply(200, completion_body(text), headers=(("x-request-id", "req-raw-1"), *headers))


def error_reply(status: int, code: str, message: str = "it failed", headers: Iterable[tuple[str, str]] = ()) -> Reply:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return json_reply(status, body, headers=(("x-request-id", f"req-{status}"), *headers))


class EmulatorThread(ThreadedEmulator):
    """An ``Emulator`` on a background loop with the batch tests' unbounded limits: for the in-process
    command (CliRunner), which runs an event loop of its own on the test's thread."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**{**UNBOUND, **options})
