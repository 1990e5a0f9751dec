"""Zone flows: TaskFlow graph flows that push one change to a pool.

``FACTORIES`` and ``pool_args`` are loaded on first use, so that importing
:mod:`zoneflow.flows.options` (as :func:`zoneflow.config.setup` does for
every command) does not load TaskFlow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zoneflow import objects

if TYPE_CHECKING:
    from zoneflow.flows.zone import FACTORIES, pool_args

__all__ = ["FACTORIES", "job_flow", "pool_args"]


def __getattr__(name: str) -> Any:
    if name in ("FACTORIES", "pool_args"):
        return getattr(importlib.import_module("zoneflow.flows.zone"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def job_flow(kind: str, pool: objects.Pool | None) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The factory of a job's flow and its arguments (zoneflow.jobs.FlowOf): a zone
    job's from its kind and its zone's pool, a pool target's job (no pool) retires it."""
    from zoneflow.flows import retire_target, zone

    if pool is None:
        return retire_target.retire_target_flow, {}
    return zone.FACTORIES[objects.JobKind(kind)], zone.pool_args(pool)
