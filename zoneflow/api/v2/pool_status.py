"""``/v2/pools/{pool_id}/status``: each target of a pool over all the pool's zones
(admin only, as pools are).

zoneflow's own resource, read from the propagation model: per target, how
many zones it serves at their current serial, how many it has behind,
missing or in error, its health as the inspector last said, and when
zoneflow last had news of it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from zoneflow.api import schemas_zoneflow, views
from zoneflow.api.dependencies import ERRORS, AdminCtx, PoolId
from zoneflow.central import status

router = APIRouter(prefix="/v2/pools/{pool_id}/status", tags=["zoneflow"], responses=ERRORS)


@router.get(
    "",
    response_model=schemas_zoneflow.PoolStatus,
    summary="What each target serves of a pool's zones (zoneflow)",
)
def show_pool_status(request: Request, pool_id: PoolId, ctx: AdminCtx) -> dict[str, Any]:
    found = status.pool_serving(pool_id)
    pool_url = f"{views.base_url(request)}/v2/pools/{found.pool.id}"
    return {
        "pool_id": found.pool.id,
        "pool_name": found.pool.name,
        "zones": found.zones,
        "targets": found.rows(views.timestamp),
        "links": {"self": f"{pool_url}/status", "pool": pool_url},
    }
