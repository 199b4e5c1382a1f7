"""``Upstage``: the seed's provider, on Upstage's documented API.

Seed-compatible names and attributes; the request goes to ``{base}/chat/completions`` with the
whole message history, authenticated with ``UPSTAGE_API_KEY``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ...errors import InvalidRequestError
from ...types import Messages
from ..base import _content_text
from ..openai_compatible import PARAMETER_CHECKS, EndpointConfig, OpenAICompatibleProvider
from . import models as _models

__all__ = ["UPSTAGE", "Upstage"]

UPSTAGE = EndpointConfig(
    name="Upstage",
    base_url="https://api.upstage.ai/v1",
    api_key_env=("UPSTAGE_API_KEY",),
    base_url_env=("UPSTAGE_BASE_URL", "UPSTAGE_API_BASE"),
    key_help="get one at https://console.upstage.ai/api-keys",
    parameters=frozenset(PARAMETER_CHECKS),
    rejected_parameters={
        "store": "is rejected by Upstage (HTTP 400); remove it",
        "n": "is not supported by Upstage; send one request per answer",
        "logprobs": "is not supported by Upstage",
        "top_logprobs": "is not supported by Upstage",
        "parallel_tool_calls": "is not supported by Upstage",
        "modalities": "is not supported by Upstage",
        "audio": "is not supported by Upstage",
    },
)


class Upstage(OpenAICompatibleProvider):
    """Upstage's Solar chat models, streaming over aiohttp."""

    config: ClassVar[EndpointConfig] = UPSTAGE
    url: ClassVar[str | None] = "https://console.upstage.ai/playground"
    api_endpoint: ClassVar[str] = UPSTAGE.base_url + UPSTAGE.chat_path
    working: ClassVar[bool] = True
    needs_auth: ClassVar[bool] = True
    supports_stream: ClassVar[bool] = True
    supports_system_message: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True

    default_model: ClassVar[str] = _models.DEFAULT_MODEL
    models: ClassVar[list[str]] = list(_models.CURRENT_MODELS)
    model_aliases: ClassVar[dict[str, str]] = dict(_models.ALIASES)
    retired_models: ClassVar[Mapping[str, str]] = {name: r.successor for name, r in _models.RETIRED.items()}

    @classmethod
    def is_model_id(cls, model: str) -> bool:
        return _models.lookup(model) is not None

    @classmethod
    def check_model_parameters(cls, model: str, messages: Messages, params: Mapping[str, Any]) -> None:
        info = _models.lookup(model)
        if info is None:
            return  # a name we do not know (passthrough): the API is the judge
        effort = params.get("reasoning_effort")
        if effort is not None:
            if not info.reasons:
                raise InvalidRequestError(
                    f"reasoning_effort: {info.name} does not reason and Upstage rejects the parameter for it; "
                    "remove it or use solar-pro4 or solar-pro3", param="reasoning_effort")
            if effort not in info.reasoning_efforts:
                raise InvalidRequestError(
                    f"reasoning_effort: {info.name} accepts {', '.join(info.reasoning_efforts)}, not {effort!r}",
                    param="reasoning_effort")
        if params.get("tools") and not info.tools:
            raise InvalidRequestError(f"tools: {info.name} does not support tool calling", param="tools")
        fmt = params.get("response_format")
        wants_json = isinstance(fmt, Mapping) and fmt.get("type") == "json_object"
        if wants_json and not any("JSON" in _content_text(m.get("content")) for m in messages):
            raise InvalidRequestError(
                'response_format: {"type": "json_object"} needs the word "JSON" in the prompt '
                "(Upstage answers 400 otherwise); say what JSON you want", param="response_format")
        for name in ("max_tokens", "max_completion_tokens"):
            limit = info.max_output
            value = params.get(name)
            if limit is not None and isinstance(value, int) and value > limit:
                raise InvalidRequestError(f"{name}: {info.name} writes at most {limit} tokens, not {value}",
                                          param=name)
