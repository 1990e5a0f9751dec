"""``/v2/tsigkeys``: TSIG keys, Designate's fields (admin only, as in Designate).

mdns verifies transfer requests with these keys beside its ``[tsig] key``
lines; see :mod:`zoneflow.central.tsigkeys` for what scope and resource_id mean.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from zoneflow.api import paging, schemas, views
from zoneflow.api.dependencies import ERRORS, AdminCtx, TsigKeyId
from zoneflow.central import tsigkeys

router = APIRouter(prefix="/v2/tsigkeys", tags=["tsigkeys"], responses=ERRORS)


@router.post("", status_code=201, response_model=schemas.TsigKey, summary="Create a TSIG key")
def create_tsigkey(request: Request, body: schemas.TsigKeyCreate, ctx: AdminCtx) -> JSONResponse:
    key = tsigkeys.create_tsigkey(
        body.name, body.algorithm, body.secret, body.scope, body.resource_id
    )
    shown = views.tsigkey(request, key)
    return JSONResponse(shown, status_code=201, headers={"Location": shown["links"]["self"]})


@router.get(
    "",
    response_model=schemas.TsigKeyList,
    summary="List TSIG keys",
    openapi_extra={"parameters": paging.openapi_parameters(tsigkeys.TSIGKEY_FILTERS)},
)
def list_tsigkeys(request: Request, ctx: AdminCtx) -> JSONResponse:
    filters, page = paging.parse(request)
    found = tsigkeys.find_tsigkeys(filters, page)
    return JSONResponse(views.page(request, "tsigkeys", found, lambda k: views.tsigkey(request, k)))


@router.get("/{tsigkey_id}", response_model=schemas.TsigKey, summary="Show a TSIG key")
def show_tsigkey(request: Request, tsigkey_id: TsigKeyId, ctx: AdminCtx) -> JSONResponse:
    return JSONResponse(views.tsigkey(request, tsigkeys.get_tsigkey(tsigkey_id)))


@router.patch("/{tsigkey_id}", response_model=schemas.TsigKey, summary="Update a TSIG key")
def update_tsigkey(
    request: Request, tsigkey_id: TsigKeyId, body: schemas.TsigKeyUpdate, ctx: AdminCtx
) -> JSONResponse:
    changes = body.model_dump(exclude_none=True)
    return JSONResponse(views.tsigkey(request, tsigkeys.update_tsigkey(tsigkey_id, changes)))


@router.delete("/{tsigkey_id}", status_code=204, summary="Delete a TSIG key")
def delete_tsigkey(tsigkey_id: TsigKeyId, ctx: AdminCtx) -> Response:
    tsigkeys.delete_tsigkey(tsigkey_id)
    return Response(status_code=204)
