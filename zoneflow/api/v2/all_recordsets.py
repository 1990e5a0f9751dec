"""``/v2/recordsets``: recordsets across every zone of the caller's project, and
``/v2/recordsets/{id}``: one of them by its id alone.

Designate's filters of a zone's list, and ``zone_id``; ``data=192.0.2.1``
finds every recordset that points at an address (an index answers it, see
bench/api_search.py). An admin asking for all projects searches them all.
``records_data=true`` shows each record as its type's fields too, as in a
zone's list.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from zoneflow.api import paging, schemas, views
from zoneflow.api.dependencies import ERRORS, Ctx, RecordsData, RecordSetId
from zoneflow.central import recordsets as central_recordsets

router = APIRouter(prefix="/v2/recordsets", tags=["recordsets"], responses=ERRORS)


@router.get(
    "",
    response_model=schemas.RecordSetList,
    summary="List recordsets across zones",
    openapi_extra={
        "parameters": paging.openapi_parameters(central_recordsets.ALL_RECORDSET_FILTERS)
    },
)
def list_all_recordsets(
    request: Request, ctx: Ctx, records_data: RecordsData = False
) -> JSONResponse:
    filters, page = paging.parse(request)
    found, zones = central_recordsets.find_all_recordsets(filters, page, project_id=ctx.scope)
    return JSONResponse(
        views.page(
            request,
            "recordsets",
            found,
            lambda rs: views.recordset(request, zones[rs.zone_id], rs, records_data=records_data),
        )
    )


@router.get(
    "/{recordset_id}",
    response_model=schemas.RecordSet,
    summary="Show a recordset by its id alone",
    description="Designate answers this with a 301 to the recordset's URL in its zone; "
    "zoneflow answers with the recordset itself, whose links.self is that URL.",
)
def show_any_recordset(
    request: Request, recordset_id: RecordSetId, ctx: Ctx, records_data: RecordsData = False
) -> JSONResponse:
    zone, recordset = central_recordsets.find_recordset(recordset_id, project_id=ctx.scope)
    return JSONResponse(views.recordset(request, zone, recordset, records_data=records_data))
