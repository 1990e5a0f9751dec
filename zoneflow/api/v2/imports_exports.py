"""Zone exports and imports: ``/v2/zones/{id}/tasks/export``, ``/v2/zones/tasks/...``.

An export answers 202 with the task (COMPLETE at once: the zone file is
written while the request waits); ``.../exports/{id}/export`` is the RFC
1035 zone file (``text/dns``). An import takes a zone file
(``Content-Type: text/dns``) and answers 202 with the task: COMPLETE with
the new zone's id, or ERROR with the line that was wrong and nothing
created. See :mod:`zoneflow.central.imports_exports`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from zoneflow import exceptions, objects
from zoneflow.api import options, paging, schemas, views
from zoneflow.api.dependencies import ERRORS, Ctx, ExportId, ImportId, ZoneId
from zoneflow.central import imports_exports

CONF = options.CONF


router = APIRouter(tags=["zone exports and imports"], responses=ERRORS)

ZONE_FILE = "text/dns"
_LISTS = paging.openapi_parameters(imports_exports.TASK_FILTERS)


def _accepted(body: dict[str, object]) -> JSONResponse:
    links = body["links"]
    assert isinstance(links, dict)
    return JSONResponse(body, status_code=202, headers={"Location": links["self"]})


# --- exports ----------------------------------------------------------------------------


@router.post(
    "/v2/zones/{zone_id}/tasks/export",
    status_code=202,
    response_model=schemas.ZoneExport,
    summary="Export a zone to a zone file",
)
def create_export(request: Request, zone_id: ZoneId, ctx: Ctx) -> JSONResponse:
    task = imports_exports.export_zone(zone_id, project_id=ctx.scope)
    return _accepted(views.zone_export(request, task))


@router.get(
    "/v2/zones/tasks/exports",
    response_model=schemas.ZoneExportList,
    summary="List zone exports",
    openapi_extra={"parameters": _LISTS},
)
def list_exports(request: Request, ctx: Ctx) -> JSONResponse:
    filters, page = paging.parse(request)
    found = imports_exports.find_exports(filters, page, project_id=ctx.scope)
    return JSONResponse(
        views.page(request, "exports", found, lambda t: views.zone_export(request, t))
    )


@router.get(
    "/v2/zones/tasks/exports/{export_id}",
    response_model=schemas.ZoneExport,
    summary="Show a zone export",
)
def show_export(request: Request, export_id: ExportId, ctx: Ctx) -> JSONResponse:
    task = imports_exports.get_export(export_id, project_id=ctx.scope)
    return JSONResponse(views.zone_export(request, task))


@router.get(
    "/v2/zones/tasks/exports/{export_id}/export",
    summary="The zone file of an export",
    response_class=Response,
    responses={200: {"content": {ZONE_FILE: {"schema": {"type": "string"}}}}},
)
def export_file(export_id: ExportId, ctx: Ctx) -> Response:
    text = imports_exports.export_file(export_id, project_id=ctx.scope)
    return Response(content=text, media_type=ZONE_FILE)


@router.delete(
    "/v2/zones/tasks/exports/{export_id}", status_code=204, summary="Delete a zone export"
)
def delete_export(export_id: ExportId, ctx: Ctx) -> Response:
    imports_exports.delete_export(export_id, project_id=ctx.scope)
    return Response(status_code=204)


# --- imports ----------------------------------------------------------------------------


@router.post(
    "/v2/zones/tasks/imports",
    status_code=202,
    response_model=schemas.ZoneImport,
    summary="Import a zone from a zone file (Content-Type: text/dns)",
    responses={
        413: {
            "model": schemas.Error,
            "description": "the zone file is larger than [api] max_import_size, or the zone "
            "would take the project past a quota",
        },
        415: {"model": schemas.Error, "description": "the body is not text/dns"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {ZONE_FILE: {"schema": {"type": "string"}}},
        }
    },
)
async def create_import(request: Request, ctx: Ctx) -> JSONResponse:
    kind = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind != ZONE_FILE:
        raise exceptions.UnsupportedContentType(
            f"a zone import's body is a zone file sent as Content-Type: {ZONE_FILE}, "
            f"not {kind or 'no type'}"
        )
    body = await _bounded_body(request, CONF.api.max_import_size)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise exceptions.BadRequest(
            "the zone file is not UTF-8 text: send it as UTF-8 (or ASCII)"
        ) from None
    task: objects.ZoneTask = await run_in_threadpool(
        imports_exports.import_zone, text, project_id=ctx.project_id
    )
    return _accepted(views.zone_import(request, task))


async def _bounded_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to pass ``limit`` bytes:
    from its Content-Length before any of it is read, else while it streams in."""
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(f"{int(declared)} bytes, more", limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large("more", limit)
    return bytes(body)


def _too_large(size: str, limit: int) -> exceptions.RequestTooLarge:
    return exceptions.RequestTooLarge(
        f"the zone file is {size} than the {limit} bytes a zone import accepts "
        "([api] max_import_size): import a smaller zone, or have the operator raise the limit"
    )


@router.get(
    "/v2/zones/tasks/imports",
    response_model=schemas.ZoneImportList,
    summary="List zone imports",
    openapi_extra={"parameters": _LISTS},
)
def list_imports(request: Request, ctx: Ctx) -> JSONResponse:
    filters, page = paging.parse(request)
    found = imports_exports.find_imports(filters, page, project_id=ctx.scope)
    return JSONResponse(
        views.page(request, "imports", found, lambda t: views.zone_import(request, t))
    )


@router.get(
    "/v2/zones/tasks/imports/{import_id}",
    response_model=schemas.ZoneImport,
    summary="Show a zone import",
)
def show_import(request: Request, import_id: ImportId, ctx: Ctx) -> JSONResponse:
    return JSONResponse(
        views.zone_import(request, imports_exports.get_import(import_id, project_id=ctx.scope))
    )


@router.delete(
    "/v2/zones/tasks/imports/{import_id}",
    status_code=204,
    summary="Delete a zone import (the zone it made stays)",
)
def delete_import(import_id: ImportId, ctx: Ctx) -> Response:
    imports_exports.delete_import(import_id, project_id=ctx.scope)
    return Response(status_code=204)
