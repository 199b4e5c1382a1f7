"""Joining a Ray cluster from the driver, or starting a local one, without taking over its signals.

``address``: ``None`` for Ray's default (``RAY_ADDRESS``, else a cluster started on this machine
with ``ray start``, else a new local instance), ``"auto"`` for an existing cluster only, or an
address (``host:6379``, ``ray://host:10001``). ``ray.init`` installs its own SIGTERM handler;
the command's own (a clean interruption, exit 130) is put back.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

import ray

from ..errors import SolarstreamError

__all__ = ["RayEngineError", "connect", "cpus"]


class RayEngineError(SolarstreamError):
    """The Ray cluster cannot run the job: unreachable, or its workers cannot start or keep dying."""


def _starts_local(address: str | None) -> bool:
    return address == "local" or (address is None and not os.environ.get("RAY_ADDRESS"))


def connect(address: str | None) -> bool:
    """Make sure this process is connected to Ray; True when this call connected it (so the
    caller disconnects at the end), False when it already was."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"address": address, "logging_level": logging.WARNING}
    if _starts_local(address):
        options["include_dashboard"] = False  # if a local instance is started: the job needs none
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        ray.init(**options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = address or os.environ.get("RAY_ADDRESS") or "a local Ray instance"
        raise RayEngineError(f"cannot connect to Ray at {where}: {exc}; start a cluster with 'ray start --head' "
                             "and pass its address to --ray (or set RAY_ADDRESS)") from None
    finally:
        if main and previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return True


def cpus() -> int:
    """The cluster's CPUs (at least 1): the default number of workers."""
    try:
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        return max(1, int(resources.get("CPU", 1)))
    except Exception:  # a Ray client without the resource view
        return 1
