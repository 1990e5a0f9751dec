"""``/v2/zones``: create, list, show, update and delete zones.

Changes answer 202 with the zone PENDING: its job is on its way to the
nameservers, and the zone turns ACTIVE (or ERROR) when they serve it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from zoneflow import objects
from zoneflow.api import paging, schemas, views
from zoneflow.api.dependencies import ERRORS, OVER_QUOTA, Ctx, ZoneId
from zoneflow.central import zones as central_zones

router = APIRouter(prefix="/v2/zones", tags=["zones"], responses=ERRORS)


def _accepted(request: Request, zone: objects.Zone, *, created: bool = False) -> JSONResponse:
    shown = views.zone(request, zone)
    headers = {"Location": shown["links"]["self"]} if created else None
    return JSONResponse(shown, status_code=202, headers=headers)


@router.post(
    "",
    status_code=202,
    response_model=schemas.Zone,
    summary="Create a zone",
    responses=OVER_QUOTA,
)
def create_zone(request: Request, body: schemas.ZoneCreate, ctx: Ctx) -> JSONResponse:
    zone = central_zones.create_zone(
        body.name,
        body.email,
        ttl=body.ttl,
        pool=body.pool_id,
        project_id=ctx.project_id,
        description=body.description,
    )
    return _accepted(request, zone, created=True)


@router.get(
    "",
    response_model=schemas.ZoneList,
    summary="List zones",
    openapi_extra={"parameters": paging.openapi_parameters(central_zones.ZONE_FILTERS)},
)
def list_zones(request: Request, ctx: Ctx) -> JSONResponse:
    filters, page = paging.parse(request)
    found = central_zones.find_zones(filters, page, project_id=ctx.scope)
    return JSONResponse(views.page(request, "zones", found, lambda z: views.zone(request, z)))


@router.get("/{zone_id}", response_model=schemas.Zone, summary="Show a zone")
def show_zone(request: Request, zone_id: ZoneId, ctx: Ctx) -> JSONResponse:
    return JSONResponse(views.zone(request, central_zones.get_zone(zone_id, project_id=ctx.scope)))


@router.patch("/{zone_id}", status_code=202, response_model=schemas.Zone, summary="Update a zone")
def update_zone(
    request: Request, zone_id: ZoneId, body: schemas.ZoneUpdate, ctx: Ctx
) -> JSONResponse:
    description = None
    if "description" in body.model_fields_set:
        description = body.description or ""
    zone = central_zones.update_zone(
        zone_id,
        email=body.email,
        ttl=body.ttl,
        description=description,
        project_id=ctx.scope,
    )
    return _accepted(request, zone)


@router.delete("/{zone_id}", status_code=202, response_model=schemas.Zone, summary="Delete a zone")
def delete_zone(request: Request, zone_id: ZoneId, ctx: Ctx) -> JSONResponse:
    return _accepted(request, central_zones.delete_zone(zone_id, project_id=ctx.scope))
