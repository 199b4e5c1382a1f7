"""The public names of shared/CONTRACT.md exist, behave as written, and stay put."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import solarstream
from solarstream import errors
from solarstream.providers import AsyncGeneratorProvider, ProviderModelMixin, Upstage, format_prompt
from solarstream.providers.upstage import models as _models
from solarstream.types import AsyncResult, CreateResult, Messages


def test_all_is_sorted_and_importable() -> None:
    assert list(solarstream.__all__) == sorted(solarstream.__all__)
    for name in solarstream.__all__:
        assert getattr(solarstream, name) is not None


def test_import_is_lazy() -> None:
    """`import solarstream` must not pull in the HTTP stack (CLI start-up, import time)."""
    code = "import sys, solarstream; print('aiohttp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_seed_import_paths() -> None:
    from solarstream import Upstage as top_level

    assert top_level is Upstage
    assert issubclass(Upstage, AsyncGeneratorProvider)
    assert issubclass(Upstage, ProviderModelMixin)
    assert Messages == list[dict[str, Any]]
    assert AsyncResult == AsyncIterator[str]
    assert CreateResult == Iterator[str]


def test_upstage_class_attributes() -> None:
    assert Upstage.api_endpoint == "https://api.upstage.ai/v1/chat/completions"
    assert Upstage.url
    assert Upstage.url.startswith("https://console.upstage.ai")
    for flag in ("working", "needs_auth", "supports_stream", "supports_system_message", "supports_message_history"):
        assert getattr(Upstage, flag) is True, flag
    assert Upstage.default_model in Upstage.models
    assert set(Upstage.models) == {"solar-pro4", "solar-pro3", "solar-mini", "syn-pro"}


def test_every_alias_targets_a_current_model() -> None:
    for alias, target in Upstage.model_aliases.items():
        assert target in Upstage.models, (alias, target)
    for name in _models.RETIRED:
        assert name in Upstage.model_aliases


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        ("solar-pro4", "solar-pro4"),
        ("solar-mini", "solar-mini"),
        ("solar-pro4-260806", "solar-pro4-260806"),
        ("solar-mini-250422", "solar-mini-250422"),
        ("", "solar-pro4"),
    ],
)
def test_get_model_exact_names_and_dated_ids(asked: str, expected: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="solarstream"):
        assert Upstage.get_model(asked) == expected
    assert caplog.records == []


@pytest.mark.parametrize(
    ("retired", "successor"),
    [
        ("solar-pro", "solar-pro4"),
        ("solar-pro2", "solar-pro3"),
        ("solar-1-mini-chat", "solar-mini"),
        ("upstage/solar-1-mini-chat", "solar-mini"),
        ("solar-1-mini-chat-ja", "syn-pro"),
        ("solar-mini-ja", "syn-pro"),
        ("upstage/solar-1-mini-chat-ja", "syn-pro"),
        ("solar-pro-preview-240910", "solar-pro4"),
    ],
)
def test_get_model_retired_names_warn_once_naming_the_successor(
    retired: str, successor: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="solarstream"):
        assert Upstage.get_model(retired) == successor
    assert len(caplog.records) == 1
    assert successor in caplog.records[0].getMessage()


def test_get_model_unknown_falls_back_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="solarstream"):
        assert Upstage.get_model("gpt-4o") == Upstage.default_model
    assert len(caplog.records) == 1
    assert "gpt-4o" in caplog.records[0].getMessage()


def test_get_model_unknown_strict_raises() -> None:
    with pytest.raises(errors.ModelNotSupportedError, match="gpt-4o"):
        Upstage.get_model("gpt-4o", strict=True)


def test_format_prompt() -> None:
    assert format_prompt([{"role": "user", "content": "Привет"}]) == "Привет"
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    assert format_prompt(conversation) == "System: Be brief.\nUser: Hi\nAssistant: Hello\nAssistant:"


def test_error_hierarchy() -> None:
    base = errors.SolarstreamError
    for name in (
        "AuthenticationError", "QuotaExceededError", "RateLimitError", "InvalidRequestError",
        "ModelNotSupportedError", "ServerError", "APIConnectionError", "APITimeoutError", "StreamError",
        "StreamTruncatedError", "MissingAuthError",
    ):
        cls = getattr(errors, name)
        assert issubclass(cls, base), name
        assert getattr(solarstream, name) is cls
    assert issubclass(errors.ModelNotSupportedError, errors.InvalidRequestError)
    assert issubclass(errors.StreamTruncatedError, errors.StreamError)
    assert issubclass(errors.APITimeoutError, errors.APIConnectionError)
