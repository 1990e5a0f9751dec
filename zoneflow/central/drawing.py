"""Flows drawn as graphs: a kind of job's flow, for a pool or an example one.

A zone job's flow depends on its pool's targets, so it is drawn for a stored
pool, or, with none named, for an example pool of two BIND9 servers that
needs no database (a newcomer may look before ``zoneflow db sync``). A
target job's flow is the same for every pool.
"""

from __future__ import annotations

from typing import Any

from zoneflow import exceptions, flows, objects
from zoneflow.flows import render
from zoneflow.flows import retire_target as target_flows
from zoneflow.storage import pools as stored_pools


def flow_kinds() -> list[str]:
    """The kinds of job there is a flow of, sorted."""
    return sorted([*flows.FACTORIES, *target_flows.FACTORIES])


def flow_dot(kind: str, *, pool: str | None = None) -> str:
    """The flow of ``kind`` in Graphviz's dot language, drawn for ``pool`` (a zone job's)."""
    kinds = flow_kinds()
    if kind not in kinds:
        raise exceptions.FlowNotFound(
            f"there is no flow {kind!r}: choose one of {', '.join(kinds)}"
        )
    if kind not in flows.FACTORIES:
        pool_args = {}  # a target's flow is the same for every pool
    elif pool is None:
        pool_args = example_pool_args()
    else:
        pool_args = flows.pool_args(stored_pools.get_pool(pool))
    return render.to_dot(flow_of(kind, pool_args))


def flow_of(kind: str, pool_args: dict[str, Any]) -> Any:
    """The flow of a zone job (drawn for a pool) or of a target job (no pool needed)."""
    job = objects.JobKind(kind)
    if job in flows.FACTORIES:
        return flows.FACTORIES[job](**pool_args)
    return target_flows.FACTORIES[job]()


def example_pool_args() -> dict[str, Any]:
    """A two-server pool to draw flows with before any pool is loaded."""
    return {
        "targets": [
            {"id": f"bind9-{i}", "label": f"bind9-{i}", "host": f"192.0.2.{i}", "port": 53}
            for i in (1, 2)
        ],
        "nameservers": [[f"192.0.2.{i}", 53] for i in (1, 2)],
        "also_notifies": [],
        "threshold": 100,
    }


def image(dot: str, fmt: str) -> bytes:
    """A graph in dot drawn as ``fmt`` (``svg`` or ``png``) by Graphviz."""
    return render.to_image(dot, fmt)
