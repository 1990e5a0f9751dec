"""``/v2/pools``: the pools zones go to, as Designate shows them (admin only).

Pools are loaded from pools.yaml (``zoneflow pool update``); the API shows
them and does not change them.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from zoneflow import exceptions
from zoneflow.api import paging, schemas, views
from zoneflow.api.dependencies import ERRORS, AdminCtx, PoolId
from zoneflow.central import pools as central_pools

router = APIRouter(prefix="/v2/pools", tags=["pools"], responses=ERRORS)


@router.get(
    "",
    response_model=schemas.PoolList,
    summary="List pools",
    openapi_extra={"parameters": paging.openapi_parameters(central_pools.POOL_FILTERS)},
)
def list_pools(request: Request, ctx: AdminCtx) -> JSONResponse:
    filters, page = paging.parse(request)
    found = central_pools.find_pools(filters, page)
    times = central_pools.pool_timestamps()
    return JSONResponse(
        views.page(request, "pools", found, lambda p: views.pool(request, p, times[p.id]))
    )


@router.get("/{pool_id}", response_model=schemas.Pool, summary="Show a pool")
def show_pool(request: Request, pool_id: PoolId, ctx: AdminCtx) -> JSONResponse:
    times = central_pools.pool_timestamps()
    if pool_id not in times:
        raise exceptions.PoolNotFound(f"pool {pool_id} does not exist: GET /v2/pools lists them")
    return JSONResponse(views.pool(request, central_pools.get_pool(pool_id), times[pool_id]))
