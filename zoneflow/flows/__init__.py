"""Zone flows: TaskFlow graph flows that push one change to a pool."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zoneflow import objects
from zoneflow.flows.target import retire_target_flow
from zoneflow.flows.zone import FACTORIES, pool_args

__all__ = ["FACTORIES", "job_flow", "pool_args"]


def job_flow(kind: str, pool: objects.Pool | None) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The factory of a job's flow and its arguments (zoneflow.jobs.FlowOf): a zone
    job's from its kind and its zone's pool, a pool target's job (no pool) retires it."""
    if pool is None:
        return retire_target_flow, {}
    return FACTORIES[kind], pool_args(pool)
