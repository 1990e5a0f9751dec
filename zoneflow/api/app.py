"""The FastAPI application: routes, the caller's context, Designate's error body."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import anyio.to_thread
from fastapi import FastAPI, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zoneflow import dashboard
from zoneflow.api import auth, errors, metrics, openapi, options, versions
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
    app = FastAPI(title="zoneflow", version="2", description=DESCRIPTION, lifespan=_lifespan)
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
    app.add_middleware(_RequestId)
    app.add_middleware(_NormalizePath)
    return app


@contextlib.asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Run at most ``[api] threads`` requests' route code at once, in the threads anyio
    lends (40 by default): each may hold a database connection, and the process keeps
    that many (server.run_forever). Past the pool, a connection is closed when given
    back and the next one forks a PostgreSQL backend."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = options.CONF.api.threads
    yield


class _RequestId:
    """Name each request (the id is in every error body and the log), and answer
    Designate's error body for anything that escaped the handlers.

    Plain ASGI, not Starlette's BaseHTTPMiddleware: that one runs the rest of the
    app in a task of its own and streams the response back through a queue, a
    cost every request paid (issue 17 counted the CPU of a recordset create).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req-{uuid.uuid4()}"
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_named(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message).setdefault(errors.REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_named)
        except Exception as exc:
            if started:  # too late for an error body: the client sees the connection end
                raise
            response = await errors.unexpected(Request(scope), exc)
            await response(scope, receive, send_named)


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
