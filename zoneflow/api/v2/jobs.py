"""``/v2/jobs``: the jobs that carry zone changes to the nameservers (zoneflow's own).

Each change answered 202 is carried out by one job: its state, how many
runs it took, and its atoms (one task per target, NOTIFY, polls...) with
the state TaskFlow persisted for each. ``flow.svg`` draws the flow with
every atom coloured by that state. A caller sees the jobs of its project's
zones; an admin with all-projects sees every job.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from zoneflow import objects
from zoneflow.api import paging, schemas_zoneflow, views
from zoneflow.api.dependencies import ERRORS, Ctx, JobId
from zoneflow.central import jobs

router = APIRouter(prefix="/v2/jobs", tags=["zoneflow"], responses=ERRORS)


def _job(request: Request, job: jobs.Job, *, atoms: bool = False) -> dict[str, Any]:
    info = job.info
    url = f"{views.base_url(request)}/v2/jobs/{info.id}"
    shown: dict[str, Any] = {
        "id": info.id,
        "kind": info.kind,
        "zone_id": info.zone_id,
        "zone_name": info.zone_name,
        "zones": [{"id": z.id, "name": z.name, "serial": z.serial} for z in info.zones],
        "project_id": job.project_id,
        "serial": info.serial,
        "state": info.state,
        "failed": info.failed,
        "attempts": info.attempts,
        "failed_attempts": info.failed_attempts,
        "lost_attempts": info.lost_attempts,
        "error": info.error,
        "created_at": views.timestamp(info.created_at),
        "updated_at": views.timestamp(info.updated_at),
        "links": {
            "self": url,
            "flow": f"{url}/flow.svg",
            "zone": f"{views.base_url(request)}/v2/zones/{info.zone_id}",
        },
    }
    if atoms:
        shown["atoms"] = [
            {"name": a.name, "state": a.state, "intention": a.intention, "error": a.error}
            for a in info.atoms
        ]
        shown["runs"] = [
            {
                "number": r.number,
                "conductor": r.conductor,
                "ended": r.ended,
                "step": r.step,
                "error": r.error,
            }
            for r in info.runs
        ]
    return shown


@router.get(
    "",
    response_model=schemas_zoneflow.JobList,
    summary="List the jobs of the caller's zones, newest first (zoneflow)",
    openapi_extra={"parameters": paging.openapi_parameters(jobs.JOB_FILTERS)},
)
def list_jobs(request: Request, ctx: Ctx) -> JSONResponse:
    filters, page = paging.parse(request)
    if "sort_dir" not in request.query_params:
        page = objects.Paging(page.limit, page.marker, page.sort_key, objects.DESC)
    found = jobs.find_jobs(filters, page, project_id=ctx.scope)
    return JSONResponse(views.page(request, "jobs", found, lambda job: _job(request, job)))


@router.get("/{job_id}", response_model=schemas_zoneflow.JobDetail, summary="Show a job (zoneflow)")
def show_job(request: Request, job_id: JobId, ctx: Ctx) -> JSONResponse:
    return JSONResponse(_job(request, jobs.get_job(job_id, project_id=ctx.scope), atoms=True))


@router.get(
    "/{job_id}/flow.svg",
    response_class=Response,
    summary="Draw a job's flow, each atom coloured by its state (zoneflow)",
    responses={200: {"content": {"image/svg+xml": {"schema": {"type": "string"}}}}},
)
def show_job_flow(job_id: JobId, ctx: Ctx) -> Response:
    return Response(jobs.job_graph(job_id, "svg", project_id=ctx.scope), media_type="image/svg+xml")
