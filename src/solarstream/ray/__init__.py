"""solarstream on Ray (extra ``ray``): ``solarstream batch --ray`` and a Ray Data stage.

* ``RayEngine`` — the engine of ``solarstream batch INPUT --ray [ADDRESS] [--ray-workers N]``: the
  same job (INPUT, pre-pass, OUTPUT, exactly-once resume, exit statuses, progress on the driver),
  its requests sent by Ray workers that share one cluster-wide limiter.
* ``ChatStage`` — the Ray Data stage: ``ds.map_batches(ChatStage, fn_constructor_kwargs={"model": ...})``
  adds ``answer``, ``usage``, ``finish_reason`` and ``error`` to rows with a ``messages`` or
  ``prompt`` column.
* ``SharedLimiter`` / ``LimiterActor`` — the one limiter of a cluster: the core ``Limiter`` in a
  Ray actor, and its stand-in in each worker.

See docs/scale.md.
"""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("ray") is None:  # pragma: no cover - the extra is installed for the tests
    raise ImportError("solarstream.ray needs Ray: pip install 'solarstream[ray]'")

from ._cluster import RayEngineError
from ._engine import RayEngine
from ._limiter import LimiterActor, LimiterConfig, SharedLimiter
from ._stage import ChatStage

__all__ = ["ChatStage", "LimiterActor", "LimiterConfig", "RayEngine", "RayEngineError", "SharedLimiter"]
