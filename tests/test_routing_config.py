"""Routing from a TOML file, the gateway's router and status endpoint, and the CLI's --fallback/--config."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from solarstream.cli import cli
from solarstream.emulator import Emulator
from solarstream.emulator.answers import answer_text
from solarstream.errors import ServerError
from solarstream.routing import ConfigError, Router, load_router, router_from_toml
from solarstream.routing.deployment import Deployment
from solarstream.server.command import serve
from solarstream.server.config import GatewayConfig
from solarstream.server.testing import running_gateway
from tests.helpers import ThreadedEmulator
from tests.test_cli import isolate_user_dirs

ROOT = Path(__file__).resolve().parent.parent
MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "Hello"}]
ANSWER = answer_text("Hello")


def docs_example() -> str:
    """The worked gateway.toml of docs/routing.md."""
    text = (ROOT / "docs" / "routing.md").read_text(encoding="utf-8")
    found = re.search(r"```toml\n(# gateway\.toml.*?)```", text, re.S)
    assert found
    return found[1]


@pytest.fixture(autouse=True)
def _user_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_user_dirs(monkeypatch, tmp_path)


# --- the file ------------------------------------------------------------------------------------


def test_the_worked_example_of_the_docs_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTAGE_KEY_A", "up_keyA")
    monkeypatch.setenv("UPSTAGE_KEY_B", "up_keyB")
    router = router_from_toml(docs_example(), "gateway.toml")
    status = router.status()
    assert status["strategy"] == "usage-based"
    assert status["models"] == {"solar-pro4": ["pro4-a", "pro4-b", "vllm"], "solar-pro3": ["pro3-a"],
                                "solar-mini": ["mini-a"]}
    assert status["fallbacks"] == {"solar-pro4": ["solar-pro3"]}
    assert status["context_window_fallbacks"] == {"solar-mini": ["solar-pro4"]}
    deployments = {d["name"]: d for d in status["deployments"]}
    assert (deployments["pro4-a"]["rpm"], deployments["pro4-a"]["tpm"]) == (100, 50000)
    assert deployments["pro4-b"]["weight"] == 2
    assert deployments["vllm"]["model"] == "upstage/solar-pro"
    assert deployments["vllm"]["base_url"] == "http://127.0.0.1:8001/v1"
    assert (router.cooldown, router.removal_cooldown, router.max_wait) == (5, 300, 30)
    assert router.timeout is not None
    assert router.timeout.total == 600
    assert [p.api_key for p in (router.deployments[0].provider, router.deployments[1].provider)] == \
        ["up_keyA", "up_keyB"]
    assert "up_key" not in json.dumps(status) + repr(router)


def test_the_documented_error_is_the_one_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTAGE_KEY_A", "up_keyA")
    with pytest.raises(ConfigError) as caught:
        router_from_toml(docs_example(), "gateway.toml")
    docs = (ROOT / "docs" / "routing.md").read_text(encoding="utf-8")
    assert f"Error: {caught.value.message}\n" in docs
    line = docs_example().splitlines()[(caught.value.line or 0) - 1]
    assert line.startswith('api_key_env = "UPSTAGE_KEY_B"')


BASE = '[[deployments]]\nmodel_name = "solar-mini"\napi_key = "up_x"\n'


@pytest.mark.parametrize(("text", "line", "words"), [
    ('[router]\nstrategy = "fastest"\n' + BASE, 2, "router.strategy: unknown strategy 'fastest'; choose one of: "
                                                  "ordered, weighted, least-in-flight, usage-based"),
    (BASE + "weight = -1\n", 4, "deployments[0].weight: must be a positive number, not -1"),
    (BASE + BASE + "colour = 'red'\n", 7, "deployments[1].colour: unknown key; expected one of:"),
    (BASE + 'api_key_env = "X"\n', 4, "give api_key_env or api_key, not both"),
    ('[[deployments]]\nmodel_name = "m"\napi_key_env = "NOT_SET_ANYWHERE"\n', 3,
     "deployments[0].api_key_env: the environment variable NOT_SET_ANYWHERE is not set"),
    (BASE + 'provider = "nonesuch"\n', 4, "deployments[0].provider: unknown provider 'nonesuch'"),
    (BASE + 'base_url = "ftp://x"\n', 4, "deployments[0].base_url: base URL must start with http://"),
    ('[[deployments]]\nmodel_name = "solar-mini"\n', 1, "deployments[0].api_key_env: no API key for Upstage"),
    (BASE + '[fallbacks]\n"solar-mini" = ["solar-pro9"]\n', 4, "fallback 'solar-mini' -> 'solar-pro9': no "
                                                              "deployment serves 'solar-pro9'"),
    (BASE + '[fallbacks]\n"solar-mini" = [1]\n', 5, "fallbacks.solar-mini: must be a list of model names, not [1]"),
    ('[router]\nretry_on = ["Nope"]\n' + BASE, 2, "'Nope' is not an error class of solarstream.errors"),
    ('[router]\ncooldown = "soon"\n' + BASE, 2, "router.cooldown: must be a number, 0 or more, not 'soon'"),
    ("[router]\nstrategy = \n", 2, "not valid TOML:"),
    ('[router]\nstrategy = "ordered"\n', None, "no deployments: add at least one [[deployments]] table"),
    (BASE.replace('model_name = "solar-mini"\n', ""), 1, "deployments[0]: needs model_name"),
    ('[extra]\n' + BASE, 1, "extra: unknown key; expected one of: context_window_fallbacks, deployments"),
])
def test_errors_name_the_line(text: str, line: int | None, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        router_from_toml(text, "gateway.toml")
    assert caught.value.line == line
    assert caught.value.message.startswith(f"gateway.toml:{line}: " if line else "gateway.toml: ")
    assert words in caught.value.message
    assert "up_x" not in caught.value.message


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nothere\.toml: cannot read the routing configuration"):
        load_router(tmp_path / "nothere.toml")


# --- the gateway ---------------------------------------------------------------------------------


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[Emulator, Emulator]]:
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(Emulator(scenario="error status=503"))
        b = await stack.enter_async_context(Emulator())
        yield a, b


async def test_the_gateway_routes_and_shows_its_status(upstreams: tuple[Emulator, Emulator]) -> None:
    a, b = upstreams
    router = Router([Deployment("solar-mini", api_key="up_a", base_url=a.base_url, name="a"),
                     Deployment("solar-mini", api_key="up_b", base_url=b.base_url, name="b")])
    config = GatewayConfig(upstream_api_key="", api_key="gw-key", upstream=router, upstream_label="router")
    auth = {"Authorization": "Bearer gw-key"}
    async with running_gateway(config, emulator=False) as gw, aiohttp.ClientSession() as http:
        body = {"model": "solar-mini", "messages": MESSAGES, "stream": True}
        async with http.post(f"{gw.base_url}/chat/completions", json=body, headers=auth) as resp:
            assert resp.status == 200
            raw = (await resp.read()).decode()
        frames = [json.loads(line[6:]) for line in raw.split("\n") if line.startswith("data: {")]
        assert "".join(f["choices"][0]["delta"].get("content") or "" for f in frames if f["choices"]) == ANSWER
        assert raw.endswith("data: [DONE]\n\n")
        async with http.get(f"{gw.base_url}/router/status") as resp:
            assert resp.status == 401
        async with http.get(f"{gw.base_url}/router/status", headers=auth) as resp:
            assert resp.status == 200
            status = await resp.json()
        async with http.get(f"{gw.base_url}/models", headers=auth) as resp:
            models = [m["id"] for m in (await resp.json())["data"]]
    assert models == ["solar-mini"]
    deployments = {d["name"]: d for d in status["deployments"]}
    assert deployments["a"]["cooling"] is True
    assert deployments["a"]["last_error"]["status_code"] == 503
    assert (deployments["b"]["successes"], deployments["b"]["in_flight"]) == (1, 0)
    assert (a.request_count, b.request_count) == (1, 1)


async def test_the_status_endpoint_without_a_router_is_404() -> None:
    async with running_gateway() as gw, aiohttp.ClientSession() as http, \
            http.get(f"{gw.base_url}/router/status") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "no_router"


def test_serve_config_errors_are_usage_errors(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(BASE + "rpm = 0\n", encoding="utf-8")
    result = CliRunner().invoke(serve, ["--config", str(path)])
    assert result.exit_code == 2
    assert f"{path}:4: deployments[0].rpm: must be a positive number, not 0" in result.output
    result = CliRunner().invoke(serve, ["--config", str(path), "--offline"])
    assert result.exit_code == 2
    assert "--config declares the upstreams itself" in result.output


@contextmanager
def upstream_pair(first: str | None = None, rpm: int | None = None) -> Iterator[tuple[Emulator, Emulator]]:
    """Two emulators on background loops (for processes and the CLI, which run their own loops)."""
    with ThreadedEmulator(scenario=first, rpm=rpm) as a, ThreadedEmulator() as b:
        yield a, b


def two_deployments(a: Emulator, b: Emulator) -> str:
    return (f'[[deployments]]\nmodel_name = "solar-mini"\nname = "a"\nbase_url = "{a.base_url}"\n'
            f'api_key_env = "ROUTE_KEY_A"\n\n'
            f'[[deployments]]\nmodel_name = "solar-mini"\nname = "b"\nbase_url = "{b.base_url}"\n'
            f'api_key_env = "ROUTE_KEY_B"\n')


def test_serve_config_end_to_end(tmp_path: Path) -> None:
    """A real process: the banner says it routes, it fails over, and the status shows why; no key leaks."""
    with upstream_pair("error status=503") as (a, b):
        path = tmp_path / "gateway.toml"
        path.write_text(two_deployments(a, b), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTAGE_", "SOLARSTREAM_"))}
        env.update(ROUTE_KEY_A="up_routeKeyAlpha", ROUTE_KEY_B="up_routeKeyBeta")
        proc = subprocess.Popen([sys.executable, "-m", "solarstream", "serve", "--config", str(path), "--port", "0",
                                 "--api-key", "gw-route-key"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                env=env, text=True)
        try:
            assert proc.stderr is not None
            seen = []
            match = None
            for line in proc.stderr:
                seen.append(line)
                match = re.search(r"OpenAI base URL (http://127\.0\.0\.1:\d+/v1)", line)
                if match:
                    break
            assert match, seen
            assert "a router of 2 deployments for solar-mini" in proc.stderr.readline()
            base = match[1]
            headers = {"Authorization": "Bearer gw-route-key", "Content-Type": "application/json"}
            request = urllib.request.Request(f"{base}/chat/completions", headers=headers,
                                             data=json.dumps({"model": "solar-mini", "messages": MESSAGES}).encode())
            with urllib.request.urlopen(request, timeout=10) as resp:
                assert json.loads(resp.read())["choices"][0]["message"]["content"] == ANSWER
            with urllib.request.urlopen(urllib.request.Request(f"{base}/router/status", headers=headers),
                                        timeout=10) as resp:
                status = json.loads(resp.read())
            assert [d["failures"] for d in status["deployments"]] == [1, 0]
            assert [d["successes"] for d in status["deployments"]] == [0, 1]
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{base}/router/status", timeout=10)
            assert refused.value.code == 401
            refused.value.close()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0
        assert "failed over from a to b after ServerError 503" in err
        assert "up_routeKey" not in err
        assert (a.request_count, b.request_count) == (1, 1)


# --- the command line ----------------------------------------------------------------------------


def test_chat_fallback_uses_the_next_model(tmp_path: Path) -> None:
    with upstream_pair(rpm=1) as (a, _):
        args = ["chat", "--base-url", a.base_url, "--api-key", "up_cliKey", "-m", "solar-mini"]
        first = CliRunner().invoke(cli, [*args, "Hello"], catch_exceptions=False)
        assert first.exit_code == 0, first.stderr
        second = CliRunner().invoke(cli, [*args, "--fallback", "solar-pro3", "Hello"], catch_exceptions=False)
        assert second.exit_code == 0, second.stderr
        assert second.stdout == ANSWER + "\n"
        assert [r.json["model"] for r in a.requests if r.json] == ["solar-mini", "solar-mini", "solar-pro3"]
        assert "failed over from cli:solar-mini to cli:solar-pro3 after RateLimitError 429" in second.stderr


def test_chat_config_routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTE_KEY_A", "up_keyA")
    monkeypatch.setenv("ROUTE_KEY_B", "up_keyB")
    with upstream_pair("error status=500") as (a, b):
        path = tmp_path / "route.toml"
        path.write_text(two_deployments(a, b), encoding="utf-8")
        result = CliRunner().invoke(cli, ["chat", "--config", str(path), "-m", "solar-mini", "Hello"],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        assert result.stdout == ANSWER + "\n"
        assert (a.request_count, b.request_count) == (1, 1)
        bad = CliRunner().invoke(cli, ["chat", "--config", str(path), "--offline", "Hello"])
        assert bad.exit_code == 2
        assert "--config declares the upstreams and fallbacks itself" in bad.stderr
    monkeypatch.delenv("ROUTE_KEY_B")
    result = CliRunner().invoke(cli, ["chat", "--config", str(path), "Hello"])
    assert result.exit_code == 2
    assert f"{path}:11: deployments[1].api_key_env: the environment variable ROUTE_KEY_B is not set" in result.stderr


def test_error_classes_by_name_fail_over() -> None:
    router = router_from_toml('[router]\nretry_on = ["ServerError"]\n' + BASE)
    assert router.retry_on == (ServerError,)
