"""``/v2/zones/{zone_id}/status``: what each target of the zone's pool serves.

zoneflow's own resource: for every target, the zone serial it was last
seen serving, its state and last error, and when that was recorded; a
client compares ``serial`` with a recordset's ``serial`` to know whether a
change is live there.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from zoneflow.api import schemas_zoneflow, views
from zoneflow.api.dependencies import ERRORS, Ctx, ZoneId
from zoneflow.central import status

router = APIRouter(prefix="/v2/zones/{zone_id}/status", tags=["zoneflow"], responses=ERRORS)


@router.get(
    "",
    response_model=schemas_zoneflow.ZoneStatus,
    summary="What each target serves of a zone (zoneflow)",
)
def show_zone_status(request: Request, zone_id: ZoneId, ctx: Ctx) -> dict[str, Any]:
    serving = status.zone_serving(zone_id, project_id=ctx.scope)
    zone = serving.zone
    zone_url = f"{views.base_url(request)}/v2/zones/{zone.id}"
    return {
        "zone_id": zone.id,
        "zone_name": zone.name,
        "serial": zone.serial,
        "status": zone.status,
        "action": zone.action,
        "error": zone.error,
        "targets": [
            {
                "target_id": t.target_id,
                "target": t.label,
                "type": t.type,
                "serial": t.serial,
                "status": t.status,
                "error": t.error,
                "updated_at": views.timestamp(t.updated_at),
                "current": t.current,
                "in_pool": t.in_pool,
                "last_seen": views.timestamp(t.last_seen),
                "seen_by": t.seen_by,
            }
            for t in serving.targets
        ],
        "links": {"self": f"{zone_url}/status", "zone": zone_url},
    }
