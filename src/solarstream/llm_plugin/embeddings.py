"""``llm embed`` with Solar's embedding models, on ``solarstream.Client``'s embeddings.

Queries and passages use different models on purpose (asymmetric retrieval): embed what you search
with ``solar-embedding-2-query`` and what you store with ``solar-embedding-2-passage``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import click
import llm
from llm.models import EmbeddingModel

from ..client import Client
from ..errors import SolarstreamError
from ..providers.upstage.models import EmbeddingModelInfo
from .models import model_error

__all__ = ["EmbeddingError", "SolarEmbedding"]

#: texts sent per request (llm splits larger collections into batches of this size)
BATCH_SIZE = 100


class EmbeddingError(llm.ModelError, click.ClickException):
    """An ``llm.ModelError`` that ``llm embed`` prints as one ``Error:`` line (it catches only click's
    exceptions there, unlike ``llm prompt``)."""

    def __init__(self, message: str) -> None:
        click.ClickException.__init__(self, message)


class SolarEmbedding(EmbeddingModel):
    """One Solar embedding model; vectors of ``info.dimensions`` floats."""

    needs_key = "upstage"
    key_env_var = "UPSTAGE_API_KEY"
    batch_size = BATCH_SIZE

    def __init__(self, info: EmbeddingModelInfo) -> None:
        self.model_id = info.name
        self.info = info

    def embed_batch(self, items: Iterable[str | bytes], *, key: str | None = None) -> Iterator[list[float]]:
        texts = [item.decode("utf-8") if isinstance(item, bytes) else item for item in items]
        if not texts:
            return
        try:
            with Client(api_key=key or self.get_key()) as client:
                result = client.embeddings.create(model=self.model_id, input=texts)
        except SolarstreamError as exc:
            raise EmbeddingError(str(model_error(exc))) from exc
        for entry in sorted(result.data, key=lambda e: e.index):
            assert isinstance(entry.embedding, list)
            yield entry.embedding
