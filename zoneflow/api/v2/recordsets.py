"""``/v2/zones/{zone_id}/recordsets``: a zone's recordsets.

Besides Designate's fields each recordset carries ``serial``: the zone
serial at which it last changed, so a client can tell whether a
nameserver (whose SOA says which serial it serves) has the change yet.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from zoneflow import objects
from zoneflow.api import paging, schemas, views
from zoneflow.api.dependencies import (
    ERRORS,
    OVER_QUOTA,
    Ctx,
    RecordsData,
    RecordSetId,
    ZoneId,
)
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.dns import validation

router = APIRouter(prefix="/v2/zones/{zone_id}/recordsets", tags=["recordsets"], responses=ERRORS)


def _shown(
    request: Request,
    zone: objects.Zone,
    recordset: objects.RecordSet,
    *,
    status: int = 200,
    created: bool = False,
    records_data: bool = False,
) -> JSONResponse:
    shown = views.recordset(request, zone, recordset, records_data=records_data)
    headers = {"Location": shown["links"]["self"]} if created else None
    return JSONResponse(shown, status_code=status, headers=headers)


@router.post(
    "",
    status_code=202,
    response_model=schemas.RecordSet,
    summary="Create a recordset",
    responses=OVER_QUOTA,
)
def create_recordset(
    request: Request,
    zone_id: ZoneId,
    body: schemas.RecordSetCreate,
    ctx: Ctx,
    records_data: RecordsData = False,
) -> JSONResponse:
    zone = central_zones.get_zone(zone_id, project_id=ctx.scope)
    # Designate's API takes absolute names only; central also serves callers that
    # name records relative to the zone (zone files, the demo).
    validation.absolute_recordset_name(body.name, zone.name)
    validation.absolute_record_names(body.type, body.records, zone=zone.name)
    recordset = central_recordsets.create_recordset(
        zone,
        body.name,
        body.type,
        body.records,
        ttl=body.ttl,
        description=body.description,
        project_id=ctx.scope,
    )
    return _shown(request, zone, recordset, status=202, created=True, records_data=records_data)


@router.get(
    "",
    response_model=schemas.RecordSetList,
    summary="List a zone's recordsets",
    openapi_extra={"parameters": paging.openapi_parameters(central_recordsets.RECORDSET_FILTERS)},
)
def list_recordsets(
    request: Request, zone_id: ZoneId, ctx: Ctx, records_data: RecordsData = False
) -> JSONResponse:
    filters, page = paging.parse(request)
    zone, found = central_recordsets.find_recordsets(zone_id, filters, page, project_id=ctx.scope)
    return JSONResponse(
        views.page(
            request,
            "recordsets",
            found,
            lambda rs: views.recordset(request, zone, rs, records_data=records_data),
        )
    )


@router.get("/{recordset_id}", response_model=schemas.RecordSet, summary="Show a recordset")
def show_recordset(
    request: Request,
    zone_id: ZoneId,
    recordset_id: RecordSetId,
    ctx: Ctx,
    records_data: RecordsData = False,
) -> JSONResponse:
    zone = central_zones.get_zone(zone_id, project_id=ctx.scope)
    recordset = central_recordsets.get_recordset(zone.id, recordset_id, project_id=ctx.scope)
    return _shown(request, zone, recordset, records_data=records_data)


@router.put(
    "/{recordset_id}",
    status_code=202,
    response_model=schemas.RecordSet,
    summary="Replace a recordset's records, TTL or description",
    responses=OVER_QUOTA,
)
def update_recordset(
    request: Request,
    zone_id: ZoneId,
    recordset_id: RecordSetId,
    body: schemas.RecordSetUpdate,
    ctx: Ctx,
    records_data: RecordsData = False,
) -> JSONResponse:
    given = body.model_fields_set
    zone = central_zones.get_zone(zone_id, project_id=ctx.scope)
    recordset = central_recordsets.update_recordset(
        zone,
        recordset_id,
        records=body.records,
        ttl=body.ttl,
        clear_ttl="ttl" in given and body.ttl is None,
        description=(body.description or "") if "description" in given else None,
        project_id=ctx.scope,
        absolute_names=True,
    )
    return _shown(request, zone, recordset, status=202, records_data=records_data)


@router.delete(
    "/{recordset_id}",
    status_code=202,
    response_model=schemas.RecordSet,
    summary="Delete a recordset",
)
def delete_recordset(
    request: Request,
    zone_id: ZoneId,
    recordset_id: RecordSetId,
    ctx: Ctx,
    records_data: RecordsData = False,
) -> JSONResponse:
    zone = central_zones.get_zone(zone_id, project_id=ctx.scope)
    gone = central_recordsets.delete_recordset(zone, recordset_id, project_id=ctx.scope)
    return _shown(request, zone, gone, status=202, records_data=records_data)
