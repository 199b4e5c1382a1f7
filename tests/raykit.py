"""Helpers for the Ray tests: the command as a child process that joins the session's Ray, and the
job's worker actors as the tests find them (by name, as anyone on the cluster could)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from tests.batchkit import child_env
from tests.conftest import RAY_ENV


def ray_env(address: str) -> dict[str, str]:
    """A child's environment: the batch tests' clean one, joined to the session's Ray."""
    return child_env(RAY_ADDRESS=address, **RAY_ENV)


async def spawn_ray_batch(address: str, *args: str) -> asyncio.subprocess.Process:
    """``python -m solarstream batch ARGS`` joined to the session's Ray (stderr captured)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "solarstream", "batch", *args, env=ray_env(address),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def run_ray_batch(address: str, *args: str, timeout: float = 120) -> tuple[int, str]:
    proc = await spawn_ray_batch(address, *args)
    _, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


def worker_names() -> list[str]:
    """The named worker actors of the batch jobs now running on the cluster."""
    import ray

    return sorted(entry["name"] for entry in ray.util.list_named_actors(all_namespaces=True)
                  if entry["namespace"] == "solarstream" and "-worker-" in entry["name"])


def worker(name: str) -> Any:
    import ray

    return ray.get_actor(name, namespace="solarstream")
