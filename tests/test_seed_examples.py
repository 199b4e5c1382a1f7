"""The three examples of the seed documents (shared/seeds/), verbatim but for their import lines,
run against the emulator: the whole answer must arrive.

``solar-pro`` is retired: the provider maps it to solar-pro4 and logs one warning naming the
replacement, as the contract says.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import os
import sys
from typing import Any

import pytest

from solarstream.emulator import Emulator
from solarstream.emulator.answers import answer_text, pieces

IMPORTS = "from solarstream import Upstage\nfrom solarstream.types import Messages\n"

# shared/seeds/000_ff3c59b66d3e6a6b.txt
SEED_0 = IMPORTS + '''
async def main():
    # Создание экземпляра Upstage
    upstage = Upstage()

    # Сообщения для отправки модели
    messages: Messages = [
        {"role": "user", "content": "Привет! Как дела?"}
    ]

    # Создание асинхронного генератора
    async for response_part in upstage.create_async_generator(model='solar-pro', messages=messages):
        print(response_part, end='')

if __name__ == "__main__":
    import asyncio
    asyncio.run(main())
'''

# shared/seeds/001_7f193a7a3710386e.txt
SEED_1 = IMPORTS + '''import asyncio

async def main():
    messages: Messages = [{"role": "user", "content": "Напиши короткий рассказ о космосе."}]
    model = "solar-pro"  # Или другая поддерживаемая модель
    async for content in Upstage.create_async_generator(model=model, messages=messages):
        print(content, end="")

if __name__ == "__main__":
    asyncio.run(main())
'''

# shared/seeds/002_966e19344f70beb7.txt (top-level ``async for``, as in a notebook or ``python -m asyncio``)
SEED_2 = IMPORTS + '''
messages: Messages = [
    {"role": "user", "content": "Привет!"},
]

provider = Upstage()

async for response in provider.create_async_generator(model="solar-pro", messages=messages):
    print(response)
'''

EXPECTED = {
    "seed0": answer_text("Привет! Как дела?"),
    "seed1": answer_text("Напиши короткий рассказ о космосе."),
    "seed2": answer_text("Привет!"),
}


def _retired_warning(caplog: pytest.LogCaptureFixture) -> None:
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'solar-pro'" in m and "solar-pro4" in m for m in warnings), warnings


@pytest.mark.parametrize(("name", "source"), [("seed0", SEED_0), ("seed1", SEED_1)])
async def test_seed_main_examples(
    emu_env: Emulator, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, name: str, source: str
) -> None:
    namespace: dict[str, Any] = {"__name__": f"seed_example_{name}"}
    exec(compile(source, f"<{name}>", "exec"), namespace)
    await namespace["main"]()
    assert capsys.readouterr().out == EXPECTED[name]
    _retired_warning(caplog)
    [request] = emu_env.requests
    assert request.json["model"] == "solar-pro4"
    assert request.json["stream"] is True


async def test_seed_top_level_async_for(
    emu_env: Emulator, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    code = compile(SEED_2, "<seed2>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, {"__name__": "seed_example_seed2"})
    assert asyncio.iscoroutine(result)
    await result
    out = capsys.readouterr().out
    assert out == "".join(f"{piece}\n" for piece in pieces(EXPECTED["seed2"]))  # one print() per streamed piece
    _retired_warning(caplog)


@pytest.mark.parametrize(("name", "source"), [("seed0", SEED_0), ("seed1", SEED_1)])
async def test_seed_examples_as_scripts(emu_env: Emulator, name: str, source: str) -> None:
    """Run as ``python script.py`` would: ``asyncio.run(main())`` in a fresh process, clean exit."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", source, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, stderr.decode()
    assert stdout.decode() == EXPECTED[name]
    # the only thing on stderr is the provider's warning about the retired model
    assert "'solar-pro'" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert "Unclosed" not in stderr.decode()
