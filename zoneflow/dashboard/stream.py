"""What the pages' script reads besides pages: the event stream and the static files.

``/dashboard/events`` is ``/v2/events`` (the same code) for the identity the
dashboard's cookie carries: a browser's EventSource cannot send headers, so
the stream the pages follow is asked with the cookie. It resumes from
``Last-Event-ID`` as ``/v2/events`` does, which EventSource sends by itself
when it reconnects.
"""

from __future__ import annotations

import importlib.resources
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import PlainTextResponse, Response

from zoneflow import exceptions
from zoneflow.api.v2 import events as api_events
from zoneflow.dashboard import identity, render

router = APIRouter(prefix=render.ROOT, include_in_schema=False)

# The files the pages load, and their types: nothing else is served from the package.
STATIC = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}


@router.get("/events")
def events(
    request: Request,
    zone_id: Annotated[str | None, Query()] = None,
    type: Annotated[str | None, Query()] = None,
    follow: Annotated[bool, Query()] = True,
    last_event_id: Annotated[str | None, Query()] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    try:
        ctx = identity.context(request)
        return api_events.stream_events(
            request,
            ctx,
            zone_id=zone_id,
            project_id=None,
            type=type,
            follow=follow,
            last_event_id=last_event_id,
            last_event_id_header=last_event_id_header,
        )
    except identity.NotSignedIn:
        # EventSource stops at an answer other than 200: the page says so.
        return PlainTextResponse("sign in first", status_code=401)
    except exceptions.ZoneflowError as exc:
        return PlainTextResponse(exc.message, status_code=exc.http_status)


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        return PlainTextResponse(f"no static file {name!r}", status_code=404)
    text = importlib.resources.files("zoneflow.dashboard").joinpath("static", name).read_bytes()
    return Response(text, media_type=STATIC[name], headers={"Cache-Control": "max-age=300"})
