"""The FastAPI application: routes, the caller's context, Designate's error body."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from zoneflow import dashboard
from zoneflow.api import auth, errors, metrics, openapi, versions
from zoneflow.api.v2 import (
    all_recordsets,
    events,
    imports_exports,
    jobs,
    pool_status,
    pools,
    quotas,
    recordsets,
    service_statuses,
    targets,
    tsigkeys,
    zone_status,
    zones,
)

DESCRIPTION = """\
OpenStack Designate's DNS API v2, served by zoneflow: python-designateclient and
`openstack zone ...` / `openstack recordset ...` work against it unchanged.
Every change answers 202 with the object PENDING; it turns ACTIVE once the
pool's nameservers serve it. Errors are `{code, type, message, request_id}`.
"""


def create_app() -> FastAPI:
    app = FastAPI(title="zoneflow", version="2", description=DESCRIPTION)
    app.state.auth = auth.load_strategy()
    app.include_router(versions.router)
    app.include_router(zones.router)
    app.include_router(recordsets.router)
    app.include_router(all_recordsets.router)
    app.include_router(imports_exports.router)
    app.include_router(pools.router)
    app.include_router(pool_status.router)
    app.include_router(service_statuses.router)
    app.include_router(tsigkeys.router)
    app.include_router(quotas.router)
    app.include_router(zone_status.router)
    app.include_router(jobs.router)
    app.include_router(events.router)
    app.include_router(targets.router)
    # The dashboard's pages (issue 16): served with the API, read through central.
    dashboard.install(app)
    # First, so it is the innermost middleware: it sees which route answered.
    metrics.install(app)
    errors.install(app)
    openapi.install(app)
    app.middleware("http")(_request_id)
    app.add_middleware(_NormalizePath)
    return app


async def _request_id(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Name each request (the id is in every error body and the log), and answer
    Designate's error body for anything that escaped the handlers."""
    request.state.request_id = f"req-{uuid.uuid4()}"
    try:
        response = await call_next(request)
    except Exception as exc:
        return await errors.unexpected(request, exc)
    response.headers.setdefault(errors.REQUEST_ID_HEADER, request.state.request_id)
    return response


class _NormalizePath:
    """Ignore a trailing slash (``/v2/zones/`` is ``/v2/zones``), as Designate does,
    instead of answering a redirect."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = dict(scope, path=path.rstrip("/") or "/")
        await self.app(scope, receive, send)
