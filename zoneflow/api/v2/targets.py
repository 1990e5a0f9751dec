"""``/v2/targets``: each pool target's health and maintenance (zoneflow's own, admin only).

``GET /v2/targets`` shows what the inspector judged of each target (UP or
DOWN, since when) and whether an operator has it in maintenance;
``PUT /v2/targets/{target_id}/maintenance`` with ``{"maintenance": true}``
leaves a target out of every threshold, and with ``false`` counts it again
once it has caught up (as ``zoneflow pool target maintenance`` does).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from zoneflow import objects
from zoneflow.api import schemas_zoneflow, views
from zoneflow.api.dependencies import ERRORS, AdminCtx, TargetId
from zoneflow.central import health

router = APIRouter(prefix="/v2/targets", tags=["zoneflow"], responses=ERRORS)


def _shown(target: objects.PoolTarget, state: objects.TargetState | None) -> dict[str, Any]:
    return {
        "target_id": target.id,
        "target": target.label,
        "pool_id": target.pool_id,
        "health": state.health if state else objects.TargetHealth.UP,
        "since": views.timestamp(state.since) if state else None,
        "maintenance": state.maintenance if state else None,
        "maintenance_since": views.timestamp(state.maintenance_since) if state else None,
        "counted": state.counted if state else True,
    }


@router.get(
    "",
    response_model=schemas_zoneflow.TargetStateList,
    summary="Each target's health and maintenance (zoneflow)",
)
def list_targets(ctx: AdminCtx) -> dict[str, Any]:
    states = health.states()
    return {
        "targets": [_shown(w.target, states.get(w.target.id)) for w in health.watched_targets()]
    }


@router.put(
    "/{target_id}/maintenance",
    response_model=schemas_zoneflow.TargetState,
    summary="Put a target in maintenance, or end it (zoneflow)",
)
def set_maintenance(
    target_id: TargetId, body: schemas_zoneflow.MaintenanceUpdate, ctx: AdminCtx
) -> dict[str, Any]:
    found, state = health.set_maintenance(target_id, on=body.maintenance)
    return _shown(found, state)
