"""Providers as objects (issue 10): instances, the registry, a vendor defined only as configuration,
the generic OpenAI-compatible provider, the model-name policy, and the layout's own rules."""

from __future__ import annotations

import ast
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from solarstream import AsyncClient, Upstage
from solarstream.emulator import Emulator
from solarstream.emulator.answers import answer_text
from solarstream.errors import InvalidRequestError, MissingAuthError, ModelNotSupportedError
from solarstream.providers import (
    ModelPolicy,
    OpenAICompatibleProvider,
    ProviderSpec,
    available,
    create_provider,
    register,
)
from solarstream.server import GatewayConfig
from solarstream.server.testing import running_gateway
from tests.conftest import API_KEY, MESSAGES, kw
from tests.rawserver import RawServer, sse_reply, text_stream

SRC = Path(__file__).resolve().parent.parent / "src" / "solarstream"

# --- instances ---------------------------------------------------------------------------------------


async def test_two_upstage_instances_hold_their_own_key_and_pool(server: RawServer) -> None:
    server.enqueue(sse_reply(text_stream(["one"])), sse_reply(text_stream(["two"])))
    first = Upstage(api_key="up_first_key_1234", base_url=server.base_url)
    second = Upstage(api_key="up_second_key_5678", base_url=server.base_url)
    assert await first.create_async("solar-pro4", MESSAGES) == "one"
    assert await second.create_async("solar-pro4", MESSAGES) == "two"
    assert [r.headers["authorization"] for r in server.requests] == [
        "Bearer up_first_key_1234", "Bearer up_second_key_5678"]
    assert server.connections == 2  # one pool each
    assert first.http is not second.http
    await first.aclose()
    await second.aclose()


async def test_an_instance_reads_the_environment_per_request(
    server: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = Upstage()
    with pytest.raises(MissingAuthError):
        provider.stream("solar-pro4", MESSAGES)
    monkeypatch.setenv("UPSTAGE_API_KEY", API_KEY)
    monkeypatch.setenv("UPSTAGE_BASE_URL", server.base_url)
    server.enqueue(sse_reply(text_stream(["late key"])))
    assert await provider.create_async("solar-pro4", MESSAGES) == "late key"
    await provider.aclose()


def test_the_seed_class_attributes_are_kept() -> None:
    assert Upstage.api_endpoint == "https://api.upstage.ai/v1/chat/completions"
    assert (Upstage.working, Upstage.needs_auth, Upstage.supports_stream) == (True, True, True)
    assert Upstage.default_model == "solar-pro4"
    assert Upstage.get_model("solar-pro") == "solar-pro4"
    assert Upstage().get_model("") == "solar-pro4"


# --- the model-name policy ------------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "base_url", "sent"), [
    (ModelPolicy.AUTO, "https://api.upstage.ai/v1", "solar-pro4"),  # Upstage's own API: the seed's fallback
    (ModelPolicy.AUTO, "https://api.upstage.ai/v1/solar", "solar-pro4"),
    (ModelPolicy.AUTO, "http://127.0.0.1:1/v1", "mock-gpt"),  # any other server: passed through
    (ModelPolicy.FALLBACK, "http://127.0.0.1:1/v1", "solar-pro4"),
    (ModelPolicy.PASSTHROUGH, "https://api.upstage.ai/v1", "mock-gpt"),
])
def test_unknown_names_follow_the_policy(policy: ModelPolicy, base_url: str, sent: str,
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "solarstream")
    request = Upstage(API_KEY, base_url, model_policy=policy).prepare_chat("mock-gpt", MESSAGES, stream=True)
    assert json.loads(request.body)["model"] == sent
    warned = [r.getMessage() for r in caplog.records]
    assert warned == (["unknown model 'mock-gpt'; using the default model 'solar-pro4'"] if sent != "mock-gpt" else [])


@pytest.mark.parametrize("base_url", ["https://api.upstage.ai/v1", "http://127.0.0.1:1/v1"])
@pytest.mark.parametrize(("asked", "sent"), [
    ("solar-pro", "solar-pro4"), ("solar-pro2", "solar-pro3"), ("solar-1-mini-chat", "solar-mini"),
    ("solar-pro4-260806", "solar-pro4-260806"), ("solar-mini", "solar-mini"), ("", "solar-pro4"),
])
def test_known_names_map_through_the_table_wherever_the_request_goes(base_url: str, asked: str, sent: str) -> None:
    request = Upstage(API_KEY, base_url).prepare_chat(asked, MESSAGES, stream=False)
    assert json.loads(request.body)["model"] == sent


def test_strict_refuses_unknown_names_before_sending() -> None:
    with pytest.raises(ModelNotSupportedError, match="unknown Upstage model 'mock-gpt'"):
        Upstage(API_KEY, model_policy="strict").prepare_chat("mock-gpt", MESSAGES, stream=True)
    with pytest.raises(InvalidRequestError, match="model_policy must be one of auto, fallback, strict"):
        Upstage(model_policy="sometimes")


async def test_the_seed_generator_passes_a_foreign_name_to_another_server(server: RawServer) -> None:
    """The issue's example: another OpenAI-compatible server at base_url gets the name as written."""
    server.enqueue(sse_reply(text_stream(["from the mock"])))
    parts = [p async for p in Upstage.create_async_generator(model="mock-gpt", messages=MESSAGES, **kw(server))]
    assert parts == ["from the mock"]
    assert server.requests[0].json()["model"] == "mock-gpt"


# --- the generic provider --------------------------------------------------------------------------


async def test_the_generic_provider_has_none_of_upstages_rules(server: RawServer) -> None:
    server.enqueue(sse_reply(text_stream(["vllm says hi"])))
    provider = OpenAICompatibleProvider(base_url=server.base_url, api_key_env="VLLM_API_KEY")
    text = await provider.create_async("meta-llama/Llama-3.1-8B-Instruct", [{"role": "developer", "content": "x"}],
                                       n=2, logprobs=True, store=True, parallel_tool_calls=False, min_p=0.1)
    assert text == "vllm says hi"
    body = server.requests[0].json()
    assert body["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert body["messages"] == [{"role": "developer", "content": "x"}]
    assert (body["n"], body["logprobs"], body["store"], body["parallel_tool_calls"]) == (2, True, True, False)
    assert "authorization" not in server.requests[0].headers  # no key needed, none sent
    await provider.aclose()


def test_the_generic_provider_needs_a_base_url() -> None:
    with pytest.raises(InvalidRequestError, match="no base URL for the OpenAI-compatible server"):
        OpenAICompatibleProvider().stream("m", MESSAGES)


# --- the registry and a vendor defined only as configuration --------------------------------------

VENDOR = textwrap.dedent('''
    """Acme AI: an OpenAI-compatible vendor, defined as one row and one quirk."""
    from solarstream.providers import ProviderSpec, Quirks

    class AcmeQuirks(Quirks):
        request_id_headers = ("x-acme-request",)
        owned_by = "acme"

    ACME = ProviderSpec(name="acme", title="Acme AI", base_url=None, api_key_env=("ACME_API_KEY",),
                        base_url_env=("ACME_BASE_URL",), quirks=AcmeQuirks())
''')


@pytest.fixture
def vendor_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed third-party package that registers a provider through the entry-point group only."""
    (tmp_path / "acme_vendor.py").write_text(VENDOR)
    info = tmp_path / "acme_vendor-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-vendor\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[solarstream.providers]\nacme = acme_vendor:ACME\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("acme_vendor", None)


def test_the_built_ins_are_registered_as_entry_points() -> None:
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="solarstream.providers")}
    assert names["upstage"] == "solarstream.providers.upstage:Upstage"
    assert names["openai-compatible"] == "solarstream.providers.openai_compatible:OpenAICompatibleProvider"
    assert isinstance(create_provider("upstage"), Upstage)


def test_an_unknown_provider_is_a_clear_error() -> None:
    with pytest.raises(InvalidRequestError, match=r"unknown provider 'nope'; available: .*upstage"):
        create_provider("nope")


def test_a_provider_registered_at_run_time() -> None:
    register("local-vllm", ProviderSpec(name="local-vllm", title="vLLM", base_url="http://127.0.0.1:9/v1",
                                        key_required=False))
    assert "local-vllm" in available()
    provider = create_provider("local-vllm")
    assert provider.base_url == "http://127.0.0.1:9/v1"


async def test_a_vendor_defined_only_as_config_works_through_the_client(
    vendor_path: Path, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "acme" in available()
    monkeypatch.setenv("ACME_API_KEY", "up_acme_key")
    monkeypatch.setenv("ACME_BASE_URL", emu.base_url)
    async with AsyncClient(provider=create_provider("acme")) as client:
        completion = await client.chat.completions.create(model="solar-mini", messages=[
            {"role": "user", "content": "hello acme"}])
    assert completion.choices[0].message.content == answer_text("hello acme")


async def test_a_vendor_defined_only_as_config_works_through_the_gateway(
    vendor_path: Path, emu: Emulator
) -> None:
    import aiohttp

    config = GatewayConfig(upstream_api_key="up_acme_key", upstream_base_url=emu.base_url, provider="acme")
    async with running_gateway(config, emulator=False) as gw, aiohttp.ClientSession() as session:
        async with session.post(f"{gw.base_url}/chat/completions", json={
                "model": "solar-mini", "messages": [{"role": "user", "content": "via gateway"}]}) as resp:
            body = await resp.json()
        assert resp.status == 200, body
        assert body["choices"][0]["message"]["content"] == answer_text("via gateway")
        async with session.get(f"{gw.base_url}/models") as resp:  # no table: the upstream's live list
            ids = [m["id"] for m in (await resp.json())["data"]]
        assert "solar-mini" in ids
    assert len(emu.requests) == 2


def test_a_vendor_defined_only_as_config_works_through_the_cli(vendor_path: Path, tmp_path: Path) -> None:
    from tests.test_cli import ThreadedEmulator

    with ThreadedEmulator() as emu:
        env = {**os.environ, "PYTHONPATH": f"{vendor_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               "ACME_API_KEY": "up_acme_key", "ACME_BASE_URL": emu.base_url,
               "SOLARSTREAM_DATA_DIR": str(tmp_path / "data")}
        result = subprocess.run([sys.executable, "-m", "solarstream", "chat", "--provider", "acme", "-m",
                                 "solar-mini", "from the cli"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == answer_text("from the cli")


# --- the layout's own rules ----------------------------------------------------------------------


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def test_upstage_knowledge_lives_in_its_package() -> None:
    """Outside providers/upstage/ and the emulator, "upstage" is only in defaults, help texts and docs:
    never in code that branches on it (no string comparisons, no header names, no error codes)."""
    offenders = []
    for path in _modules():
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(("providers/upstage/", "emulator/", "llm_plugin/")):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                offenders += [f"{rel}:{node.lineno}" for part in [node.left, *node.comparators]
                              if isinstance(part, ast.Constant) and "upstage" in str(part.value).lower()]
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lower().startswith(
                    ("x-upstage", "api_key_is_blocked", "usage_limit_exceeded")):
                offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []


def test_modules_stay_small() -> None:
    sizes = {p.relative_to(SRC).as_posix(): len(p.read_text().splitlines()) for p in _modules()}
    assert {name: n for name, n in sizes.items() if n > 600} == {}


def test_no_import_cycles_at_module_level() -> None:
    """Top-level imports form no cycle (imports inside functions are lazy on purpose)."""
    graph: dict[str, set[str]] = {}
    for path in _modules():
        name = "solarstream." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        edges = set()
        for node in tree.body:  # module level only, TYPE_CHECKING blocks skipped
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                ast.ClassDef)) else ():
                if isinstance(sub, ast.ImportFrom):
                    edges |= _resolve(name, path, sub)
        graph[name] = {e for e in edges if e != name}
    cycles = _cycles(graph)
    assert cycles == []


def _resolve(name: str, path: Path, node: ast.ImportFrom) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    if node.level:
        parts = package.split(".")
        root = ".".join(parts[: len(parts) - node.level + 1])
        module = f"{root}.{node.module}" if node.module else root
    else:
        module = node.module or ""
    if not module.startswith("solarstream"):
        return set()
    out = {module}
    for alias in node.names:  # "from . import models" imports a module
        out.add(f"{module}.{alias.name}")
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt):], nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    # a package importing its own submodules (``__init__`` re-exports) is not a cycle of concern
    return [c for c in found if not all(c[0].startswith(n) or n.startswith(c[0]) for n in c)]


def test_get_parameters_lists_request_and_transport_keywords() -> None:
    assert {"temperature", "reasoning_effort", "api_key", "timeout"} <= Upstage.get_parameters()
    assert "store" in Upstage.get_parameters()  # known (dropped when false, refused when true)
