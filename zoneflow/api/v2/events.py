"""``/v2/events``: the event stream as Server-Sent Events (zoneflow's, not Designate's).

Each event is one SSE message: ``id`` (the event's id), ``event`` (its type:
zone, recordset, job, ...) and ``data`` (the event as JSON). A client that
reconnects sends the last id it received as ``Last-Event-ID`` (browsers'
EventSource does so by itself; ``?last_event_id=`` does the same) and gets
every event committed since, within ``[events] retention``. Without it the
stream starts from now. ``follow=false`` sends the events after
``last_event_id`` (all those kept, given 0) and ends.
"""

from __future__ import annotations

import collections
import datetime
import json
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from zoneflow import events, objects
from zoneflow.api.dependencies import ERRORS, Ctx
from zoneflow.central import events as central_events

router = APIRouter(prefix="/v2/events", tags=["events"], responses=ERRORS)

# Seconds between comments sent while nothing happens: proxies keep the
# connection, and a client gone is noticed.
KEEPALIVE = 15.0
# Seconds of one wait for new events.
WAIT = 1.0


# Each event's message, written once for every stream of the process that sends
# it (a hundred followers would otherwise each encode it again), the newest kept.
_MESSAGES_KEPT = 5000
# Keyed by id and time: another database (a test's) hands out the same ids again.
_messages: collections.OrderedDict[tuple[int, datetime.datetime], str] = collections.OrderedDict()


def message(event: objects.Event) -> str:
    """The event as one SSE message (the event loop's thread alone calls this)."""
    key = (event.id, event.created_at)
    text = _messages.get(key)
    if text is None:
        text = _encode(event)
        _messages[key] = text
        if len(_messages) > _MESSAGES_KEPT:
            _messages.popitem(last=False)
    return text


def _encode(event: objects.Event) -> str:
    data = {
        "id": event.id,
        "type": event.topic,
        "table": event.table,
        "key": event.key,
        "action": event.action,
        "value": event.value,
        "project_id": event.project_id,
        "zone_id": event.zone_id,
        "publisher": event.publisher,
        "created_at": event.created_at.isoformat(),
    }
    return f"id: {event.id}\nevent: {event.topic}\ndata: {json.dumps(data)}\n\n"


# Threads the streams wait in, apart from the 40 that anyio lends every other
# route: a hundred followers would otherwise hold them all, each for up to WAIT
# seconds at a time, and every other request (and stream) would queue behind them.
STREAM_THREADS = 1000
_limiter: anyio.CapacityLimiter | None = None


def _stream_threads() -> anyio.CapacityLimiter:
    global _limiter
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(STREAM_THREADS)
    return _limiter


async def _stream(
    request: Request, subscription: events.Subscription, *, follow: bool
) -> AsyncIterator[str]:
    quiet = 0.0
    while True:
        # Short waits, each in a thread of its own: a client gone is noticed within
        # one, and a stopping server waits for no longer.
        found = await anyio.to_thread.run_sync(
            subscription.next, WAIT if follow else 0.0, limiter=_stream_threads()
        )
        if found:
            # One write for what one wait found, not one per event.
            yield "".join(message(event) for event in found)
        if not found and not follow:
            return
        quiet = 0.0 if found else quiet + WAIT
        if quiet >= KEEPALIVE:
            quiet = 0.0
            yield ": keepalive\n\n"
        if await request.is_disconnected():
            return


@router.get(
    "",
    summary="Follow zoneflow's events (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def stream_events(
    request: Request,
    ctx: Ctx,
    zone_id: Annotated[str | None, Query(description="only this zone's events")] = None,
    project_id: Annotated[
        str | None, Query(description="only this project's events (within the caller's)")
    ] = None,
    type: Annotated[
        str | None,
        Query(description=f"event types, comma-separated: {', '.join(central_events.TYPES)}"),
    ] = None,
    follow: Annotated[bool, Query(description="false: send what is kept, then end")] = True,
    last_event_id: Annotated[
        str | None, Query(description="resume after this event id (as Last-Event-ID)")
    ] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    wanted = central_events.event_filter(
        scope=ctx.scope,
        zone_id=zone_id,
        project_id=project_id,
        types=(type or "").split(","),
    )
    after = central_events.resume_after(
        last_event_id_header if last_event_id_header is not None else last_event_id
    )
    if after is None and not follow:
        after = 0
    subscription = central_events.follow(wanted, after=after)
    return StreamingResponse(
        _stream(request, subscription, follow=follow),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
