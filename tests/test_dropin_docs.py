"""docs/compatibility.md names every rule of the Upstage parameter and message tables, so it cannot drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from solarstream.providers.upstage.provider import CHAT_PARAMS, EMBEDDING_PARAMS, MESSAGES

DOC = (Path(__file__).parent.parent / "docs" / "compatibility.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted({*CHAT_PARAMS, *EMBEDDING_PARAMS, *MESSAGES.dropped_keys,
                                          *MESSAGES.renamed_roles}))
def test_every_rule_is_documented(name: str) -> None:
    assert f"`{name}`" in DOC


def test_the_dropped_and_refused_tables_match_the_code() -> None:
    dropped = {n for n, rule in CHAT_PARAMS.items() if rule.noop is not None}
    refused = {n for n, rule in CHAT_PARAMS.items() if rule.refuse is not None}
    dropped_section = DOC.split("## Dropped", 1)[1].split("\n## ", 1)[0]
    refused_section = DOC.split("## Refused", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in dropped_section.splitlines() if line.startswith("| `")]
    assert {cell.strip().strip("`") for cell in rows} == dropped
    refused_rows = " ".join(line.split("|")[1] for line in refused_section.splitlines() if line.startswith("| `"))
    assert all(f"`{name}`" in refused_rows for name in refused)
