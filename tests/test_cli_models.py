"""The default model: ``solarstream models default [NAME]``, ``$SOLARSTREAM_MODEL``, and the order
in which ``chat`` picks its model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from solarstream.emulator import Emulator
from tests.conftest import UserDirs
from tests.helpers import last_body
from tests.test_cli import run

pytestmark = pytest.mark.usefixtures("user_dirs")


def model_sent(threaded_emu: Emulator, *args: str, **env: str) -> str:
    result = run(["chat", *args, "Hi"], threaded_emu, **env)
    assert result.exit_code == 0, result.stderr
    model = last_body(threaded_emu)["model"]
    assert isinstance(model, str)
    return model


def test_models_default_shows_sets_and_clears(user_dirs: UserDirs) -> None:
    assert run(["models", "default"]).stdout == "solar-pro4\n"
    result = run(["models", "default", "solar-mini"])
    assert result.exit_code == 0, result.stderr
    assert json.loads((user_dirs.config / "config.json").read_text()) == {"default_model": "solar-mini"}
    assert run(["models", "default"]).stdout == "solar-mini\n"
    lines = {line.split()[0]: line for line in run(["models"]).stdout.splitlines()[1:]}
    assert "current, default" in lines["solar-mini"]
    assert "default" not in lines["solar-pro4"]
    result = run(["models", "default", "--clear"])
    assert result.exit_code == 0
    assert run(["models", "default"]).stdout == "solar-pro4\n"
    assert json.loads((user_dirs.config / "config.json").read_text()) == {}


def test_a_dated_id_can_be_the_default() -> None:
    assert run(["models", "default", "solar-pro3-260323"]).exit_code == 0
    assert run(["models", "default"]).stdout == "solar-pro3-260323\n"


@pytest.mark.parametrize(("name", "message"), [
    ("solar-pro2", "Invalid value for NAME: 'solar-pro2' is retired (since 2026-10-30); its successor is "
                   "'solar-pro3': solarstream models default solar-pro3"),
    ("solar-mnii", "Invalid value for NAME: 'solar-mnii' is not a Solar chat model; did you mean 'solar-mini'? "
                   "the current ones are solar-pro4, solar-pro3, solar-mini, syn-pro ('solarstream models' shows "
                   "them all)"),
    ("gpt-4o", "Invalid value for NAME: 'gpt-4o' is not a Solar chat model; the current ones are solar-pro4, "
               "solar-pro3, solar-mini, syn-pro"),
    ("solar-embedding-2-query", "Invalid value for NAME: 'solar-embedding-2-query' is an embedding model; chat "
                                "needs one of solar-pro4, solar-pro3, solar-mini, syn-pro"),
])
def test_models_default_refuses_what_is_not_a_chat_model(user_dirs: UserDirs, name: str, message: str) -> None:
    result = run(["models", "default", name])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert not (user_dirs.config / "config.json").exists()


def test_models_default_says_when_the_environment_overrides_it() -> None:
    run(["models", "default", "solar-mini"])
    result = run(["models", "default"], SOLARSTREAM_MODEL="syn-pro")
    assert result.stdout == "solar-mini\n"
    assert result.stderr == "(SOLARSTREAM_MODEL=syn-pro is set and comes first)\n"


def test_precedence_m_then_env_then_saved_then_builtin(threaded_emu: Emulator) -> None:
    assert model_sent(threaded_emu) == "solar-pro4"
    run(["models", "default", "solar-mini"])
    assert model_sent(threaded_emu) == "solar-mini"
    assert model_sent(threaded_emu, SOLARSTREAM_MODEL="syn-pro") == "syn-pro"
    assert model_sent(threaded_emu, "-m", "solar-pro3", SOLARSTREAM_MODEL="syn-pro") == "solar-pro3"


def test_a_continued_conversation_keeps_its_model_over_the_saved_default(threaded_emu: Emulator) -> None:
    assert model_sent(threaded_emu, "-m", "solar-pro3") == "solar-pro3"
    run(["models", "default", "solar-mini"])
    assert model_sent(threaded_emu, "-c") == "solar-pro3"
    assert model_sent(threaded_emu, "-c", SOLARSTREAM_MODEL="syn-pro") == "syn-pro"  # the variable acts as -m


def test_a_broken_settings_file_is_named(user_dirs: UserDirs) -> None:
    user_dirs.config.mkdir(parents=True)
    (user_dirs.config / "config.json").write_text("{not json")
    result = run(["chat", "--offline", "Hi"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"solarstream: error: the settings file {user_dirs.config / 'config.json'} "
                                    "is not valid JSON (")
    assert result.stderr.rstrip().endswith("); fix it or delete it")


def test_the_settings_live_in_the_xdg_config_dir_unless_told(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.delenv("SOLARSTREAM_CONFIG_DIR")
    assert run(["models", "default", "syn-pro"]).exit_code == 0
    assert json.loads((tmp_path / "xdg-config" / "solarstream" / "config.json").read_text()) == \
        {"default_model": "syn-pro"}


def test_the_table_says_which_models_are_chat_and_which_embedding() -> None:
    result = run(["models", "--json"])
    assert result.exit_code == 0
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["solar-pro4"]["kind"] == "chat"
    assert rows["solar-pro"]["kind"] == "chat"
    assert rows["solar-embedding-2-query"]["kind"] == "embedding"
    assert rows["solar-embedding-2-query"]["dimensions"] == 1024
    assert rows["embedding-passage"]["dimensions"] == 4096
    assert rows["embedding-passage"]["status"].endswith("2026-12-31 -> solar-embedding-2-passage")
    table = run(["models"]).stdout.splitlines()
    assert table[0].split() == ["NAME", "KIND", "STATUS", "DATED", "ID", "CONTEXT", "NOTES"]
    assert table[5].split()[:3] == ["solar-embedding-2-query", "embedding", "current"]
