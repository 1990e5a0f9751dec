"""The event stream as callers read it: ``/v2/events`` and ``zoneflow events``.

What a caller asks for is checked here (event types, the id to resume after),
and the stream is kept to the caller's project: a project sees the events of
its own zones and recordsets and of their jobs; events of no project (a
target's health, an alarm) are an operator's reading all projects.
"""

from __future__ import annotations

from collections.abc import Iterable

from zoneflow import events, exceptions, objects

TYPES = tuple(topic.value for topic in objects.EventTopic)


def event_filter(
    *,
    scope: str | None,
    zone_id: str | None = None,
    project_id: str | None = None,
    types: Iterable[str] = (),
) -> objects.EventFilter:
    """The events a caller of project ``scope`` (None: every project) asked for."""
    wanted = frozenset(t.strip() for t in types if t.strip())
    unknown = sorted(wanted - set(TYPES))
    if unknown:
        raise exceptions.BadRequest(
            f"unknown event type {', '.join(unknown)}: use any of {', '.join(TYPES)}"
        )
    return objects.EventFilter(
        zone_id=zone_id, project_id=project_id, topics=wanted or None, scope=scope
    )


def resume_after(last_event_id: str | None, *, named: str = "Last-Event-ID") -> int | None:
    """The event id a reconnecting subscriber last saw (None: start from now); ``named``
    is what the caller gave it as, for the error."""
    if last_event_id is None or last_event_id == "":
        return None
    try:
        after = int(last_event_id)
    except ValueError:
        after = -1
    if after < 0:
        raise exceptions.BadRequest(
            f"{named} {last_event_id!r} is not an event id: give the id of the last "
            "event received (a whole number), or none to start from now"
        )
    return after


def follow(wanted: objects.EventFilter, *, after: int | None) -> events.Subscription:
    """A subscription to the events ``wanted`` matches after event ``after``."""
    return events.subscribe(wanted, after=after)
