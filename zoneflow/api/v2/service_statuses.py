"""``/v2/service_statuses``: each running conductor, mdns and API, from their heartbeats
(admin only). See :mod:`zoneflow.heartbeat`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from zoneflow.api import paging, schemas, views
from zoneflow.api.dependencies import ERRORS, AdminCtx, ServiceStatusId
from zoneflow.central import services

router = APIRouter(prefix="/v2/service_statuses", tags=["service statuses"], responses=ERRORS)


@router.get(
    "",
    response_model=schemas.ServiceStatusList,
    summary="List the services running",
    openapi_extra={"parameters": paging.openapi_parameters(services.STATUS_FILTERS)},
)
def list_service_statuses(request: Request, ctx: AdminCtx) -> JSONResponse:
    filters, page = paging.parse(request)
    found = services.find_service_statuses(filters, page)
    return JSONResponse(
        views.page(request, "service_statuses", found, lambda s: views.service_status(request, s))
    )


@router.get("/{service_status_id}", response_model=schemas.ServiceStatus, summary="Show a service")
def show_service_status(
    request: Request, service_status_id: ServiceStatusId, ctx: AdminCtx
) -> JSONResponse:
    return JSONResponse(
        views.service_status(request, services.get_service_status(service_status_id))
    )
