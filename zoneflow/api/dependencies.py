"""What v2 routes take from a request besides their body: the caller, checked ids."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from zoneflow import exceptions
from zoneflow.api import auth, schemas

# An id in a path, declared a UUID in /openapi.json; _uuid enforces it, answering
# Designate's 400 invalid_uuid (FastAPI's own check would answer another body).
UuidPath = Annotated[str, Path(json_schema_extra={"format": "uuid"})]


# The dependencies are coroutines: FastAPI runs a plain function in a worker thread,
# a hop through the thread pool per dependency per request for what takes
# microseconds. Only a strategy that may wait on the network still takes one.


async def current_context(request: Request) -> auth.Context:
    strategy: auth.Strategy = request.app.state.auth
    if strategy.blocking:
        return await run_in_threadpool(auth.context, request, strategy)
    return auth.context(request, strategy)


def _uuid(name: str, value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise exceptions.InvalidUUID(
            f"{name} {value!r} is not a UUID: give the id a list shows "
            "(e.g. GET /v2/zones?name=example.com.)"
        ) from None


async def zone_id(zone_id: UuidPath) -> str:
    return _uuid("zone_id", zone_id)


async def recordset_id(recordset_id: UuidPath) -> str:
    return _uuid("recordset_id", recordset_id)


async def job_id(job_id: UuidPath) -> str:
    return _uuid("job_id", job_id)


Ctx = Annotated[auth.Context, Depends(current_context)]
ZoneId = Annotated[str, Depends(zone_id)]
RecordSetId = Annotated[str, Depends(recordset_id)]
JobId = Annotated[str, Depends(job_id)]
# zoneflow: show each record as its type's fields too (records stays text).
RecordsData = Annotated[
    bool,
    Query(
        description="zoneflow: true adds records_data, each record as its type's fields "
        "(MX: priority, exchange; SRV: priority, weight, port, target; ...)"
    ),
]

# The errors any v2 route may answer, for /openapi.json.
ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": schemas.Error, "description": text}
    for status, text in (
        (400, "bad input: the message names the field"),
        (401, "no valid token (auth_strategy keystone): WWW-Authenticate says where to get one"),
        (403, "the caller's roles do not allow this"),
        (404, "no such zone or recordset (in the caller's project)"),
        (409, "a duplicate, or a zone being deleted"),
        (500, "internal error: the server log has it under the request_id"),
    )
}
ERRORS[503] = {
    "model": schemas.Error,
    "description": "the database or the jobboard is unreachable, or the database stayed busy",
    "headers": {
        "Retry-After": {
            "description": "seconds after which to try again",
            "schema": {"type": "integer"},
        }
    },
}


# Also answered by the operations that add to a project's quotas.
OVER_QUOTA: dict[int | str, dict[str, object]] = {
    413: {"model": schemas.Error, "description": "the change would take the project past a quota"}
}


async def admin_context(request: Request) -> auth.Context:
    """The caller's context, refused (403) unless it has the admin role, as Designate's
    policy refuses pools, service statuses, TSIG keys and quota changes to others."""
    ctx = await current_context(request)
    if not ctx.is_admin:
        raise exceptions.Forbidden(
            f"{request.method} {request.url.path} needs the admin role; ask an operator"
        )
    return ctx


async def export_id(export_id: UuidPath) -> str:
    return _uuid("export_id", export_id)


async def import_id(import_id: UuidPath) -> str:
    return _uuid("import_id", import_id)


async def tsigkey_id(tsigkey_id: UuidPath) -> str:
    return _uuid("tsigkey_id", tsigkey_id)


async def pool_id(pool_id: UuidPath) -> str:
    return _uuid("pool_id", pool_id)


async def service_status_id(service_status_id: UuidPath) -> str:
    return _uuid("service_status_id", service_status_id)


AdminCtx = Annotated[auth.Context, Depends(admin_context)]
ExportId = Annotated[str, Depends(export_id)]
ImportId = Annotated[str, Depends(import_id)]
TsigKeyId = Annotated[str, Depends(tsigkey_id)]
PoolId = Annotated[str, Depends(pool_id)]
ServiceStatusId = Annotated[str, Depends(service_status_id)]


# --- the inspector's routes (issue 15) --------------------------------------------------


async def target_id(target_id: UuidPath) -> str:
    return _uuid("target_id", target_id)


TargetId = Annotated[str, Depends(target_id)]
