"""``/v2/quotas`` and ``/v2/limits``: how much a project may hold.

A caller reads its own project's quotas; another project's, and any change
or reset, need the admin role (Designate's policy). ``/v2/limits`` is the
caller's quotas as Designate's limits, with the API's own bounds.
See :mod:`zoneflow.central.quotas`.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from zoneflow import exceptions
from zoneflow.api import auth, paging, schemas
from zoneflow.api.dependencies import ERRORS, AdminCtx, Ctx
from zoneflow.central import quotas

router = APIRouter(tags=["quotas"], responses=ERRORS)


def _project(ctx: auth.Context) -> str:
    if ctx.project_id is None:
        raise exceptions.BadRequest("the request names no project: send X-Auth-Project-ID")
    return ctx.project_id


@router.get("/v2/quotas", response_model=schemas.Quotas, summary="The caller's project's quotas")
def show_own_quotas(ctx: Ctx) -> dict[str, int]:
    return quotas.get_quotas(_project(ctx))


@router.get("/v2/quotas/{project_id}", response_model=schemas.Quotas, summary="A project's quotas")
def show_quotas(project_id: str, ctx: Ctx) -> dict[str, int]:
    if project_id != ctx.project_id and not ctx.is_admin:
        raise exceptions.Forbidden(
            f"reading project {project_id}'s quotas needs the admin role: GET /v2/quotas "
            "shows your own"
        )
    return quotas.get_quotas(project_id)


@router.patch(
    "/v2/quotas/{project_id}", response_model=schemas.Quotas, summary="Set a project's quotas"
)
def update_quotas(project_id: str, body: schemas.QuotasUpdate, ctx: AdminCtx) -> dict[str, int]:
    return quotas.set_quotas(project_id, body.model_dump(exclude_none=True))


@router.delete(
    "/v2/quotas/{project_id}", status_code=204, summary="Reset a project's quotas to the defaults"
)
def reset_quotas(project_id: str, ctx: AdminCtx) -> Response:
    quotas.reset_quotas(project_id)
    return Response(status_code=204)


@router.get("/v2/limits", response_model=schemas.Limits, summary="The caller's limits")
def show_limits(ctx: Ctx) -> dict[str, int | None]:
    own = quotas.get_quotas(ctx.project_id)
    return {
        "max_zones": own["zones"],
        "max_zone_recordsets": own["zone_recordsets"],
        "max_zone_records": own["zone_records"],
        "max_recordset_records": own["recordset_records"],
        "min_ttl": None,
        "max_zone_name_length": 255,
        "max_recordset_name_length": 255,
        "max_page_limit": paging.CONF.api.max_limit,
    }
