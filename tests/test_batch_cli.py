"""``solarstream batch`` as a command: the engine options, what it prints on a terminal (a live bar),
in a pipe (plain lines) and with ``--quiet``, ``--offline``, the README's example, the help text
in docs/batch.md, and a fast ``--help``."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from click.testing import CliRunner, Result

from solarstream.cli import cli
from tests.batchkit import EmulatorThread, by_id, content, expected_answer, prompts_file, short_line, write_jsonl

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "batch.md"


@pytest.fixture(autouse=True)
def _no_default_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOLARSTREAM_MODEL", raising=False)


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["batch", *map(str, args)], prog_name="solarstream")


@pytest.mark.parametrize("args", [["--ray"], ["--ray=ray://10.0.0.1:10001"], ["--ray", "--ray-workers", "4"]])
def test_without_ray_installed_ray_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        args: list[str]) -> None:
    for name in ("ray", "solarstream.ray"):  # as on a machine without the 'ray' extra
        monkeypatch.setitem(sys.modules, name, None)
    source, _ = prompts_file(tmp_path / "in.jsonl", 1)
    result = invoke(source, "--offline", *args)
    assert result.exit_code == 2
    assert result.stderr.strip() == ("solarstream: error: the Ray engine is not available: Ray is not installed; "
                                     "pip install 'solarstream[ray]' (or run without --ray to use the local engine)")
    assert not (tmp_path / "in.results.jsonl").exists()


def test_ray_workers_need_ray(tmp_path: Path) -> None:
    source, _ = prompts_file(tmp_path / "in.jsonl", 1)
    result = invoke(source, "--offline", "--ray-workers", "2")
    assert result.exit_code == 2
    assert "--ray-workers needs --ray" in result.stderr


def test_offline_runs_against_the_builtin_emulator(tmp_path: Path) -> None:
    source = tmp_path / "prompts.txt"
    source.write_text("Hello\nWorld\n")
    result = invoke(source, "--offline", "--prompts", "-m", "solar-mini")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0].startswith("offline: answers come from solarstream's built-in emulator")
    records = by_id(tmp_path / "prompts.txt.results.jsonl")
    assert {c: content(r) for c, r in records.items()} == {"line-1": expected_answer("Hello"),
                                                            "line-2": expected_answer("World")}


def test_offline_takes_no_base_url(tmp_path: Path) -> None:
    source, _ = prompts_file(tmp_path / "in.jsonl", 1)
    result = invoke(source, "--offline", "--base-url", "http://127.0.0.1:9/v1")
    assert result.exit_code == 2
    assert "--offline talks to the built-in emulator" in result.stderr


def test_output_may_not_be_input(tmp_path: Path) -> None:
    source, _ = prompts_file(tmp_path / "in.jsonl", 1)
    result = invoke(source, "--offline", "-o", source)
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(f"{source} is INPUT itself; choose another -o/--output")


def test_quiet_prints_nothing_on_success_and_piped_progress_is_plain(tmp_path: Path) -> None:
    source, _ = prompts_file(tmp_path / "in.jsonl", 3)
    with EmulatorThread() as emu:
        connection = ["--base-url", emu.base_url, "--api-key", emu.api_key]
        quiet = invoke(source, "-o", tmp_path / "quiet.jsonl", "--quiet", *connection)
        loud = invoke(source, "-o", tmp_path / "loud.jsonl", *connection)
    assert quiet.exit_code == 0
    assert quiet.stderr == ""
    assert loud.exit_code == 0
    assert "\r" not in loud.stderr
    assert "\x1b" not in loud.stderr
    assert loud.stderr.splitlines()[0] == "batch: 3 succeeded, 0 failed, 0 already done before this run; 3 of 3 " \
                                          "have a record"


def test_a_terminal_gets_a_live_bar_and_the_summary(tmp_path: Path) -> None:
    source, _ = prompts_file(tmp_path / "in.jsonl", 40)
    child = pexpect.spawn(sys.executable, ["-m", "solarstream", "batch", str(source), "--offline"],
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm",
                               "HOME": str(tmp_path)}, encoding="utf-8", timeout=60, dimensions=(30, 160))
    child.logfile_read = io.StringIO()
    child.expect("batch: 40 succeeded")
    child.expect(pexpect.EOF)
    child.close()
    shown = child.logfile_read.getvalue()
    assert child.exitstatus == 0, shown
    assert re.search(r"batch: 100%\|[^\r\n]*\| 40/40 \[", shown), shown  # tqdm's bar, done/total
    assert "req/s" in shown
    assert "0 failed" in shown
    assert "rate-limit pauses" in shown


def test_help_is_fast_and_imports_no_http_stack() -> None:
    code = ("import sys\nfrom click.testing import CliRunner\nfrom solarstream.cli import cli\n"
            "result = CliRunner().invoke(cli, ['batch', '--help'])\nassert result.exit_code == 0, result.output\n"
            "print(sorted(m for m in ('aiohttp', 'tqdm', 'orjson', 'solarstream.batch.api') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == "[]"


def help_text() -> str:
    result = CliRunner().invoke(cli, ["batch", "--help"], prog_name="solarstream", terminal_width=100)
    assert result.exit_code == 0
    return result.stdout


def test_the_help_in_docs_is_current() -> None:
    """docs/batch.md holds ``solarstream batch --help`` verbatim; regenerate: python -m tests.test_batch_cli"""
    text = DOC.read_text(encoding="utf-8")
    start = text.index("<!-- help -->\n```\n") + len("<!-- help -->\n```\n")
    assert text[start:text.index("```\n<!-- /help -->")] == help_text()


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Batch jobs"):]
    return section[section.index("```sh\n") + len("```sh\n"):section.index("```\n")]


def test_the_readme_example_runs_offline(tmp_path: Path) -> None:
    venv_bin = str(Path(sys.executable).parent)
    env = {"PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(tmp_path)}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_example()], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    records = by_id(tmp_path / "requests.results.jsonl")
    assert set(records) == {"greet", "line-2"}
    assert all(r["error"] is None for r in records.values())


def test_a_line_of_another_shape_in_a_prompts_file_is_just_text(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "p.txt", [short_line("x", "json-looking text")])
    result = invoke(source, "--offline", "--prompts", "-m", "solar-mini")
    assert result.exit_code == 0, result.stderr
    [record] = by_id(tmp_path / "p.txt.results.jsonl").values()
    assert record["custom_id"] == "line-1"


if __name__ == "__main__":
    text = DOC.read_text(encoding="utf-8")
    start = text.index("<!-- help -->\n```\n") + len("<!-- help -->\n```\n")
    DOC.write_text(text[:start] + help_text() + text[text.index("```\n<!-- /help -->"):], encoding="utf-8")
