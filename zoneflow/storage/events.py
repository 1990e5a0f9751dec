"""Events as stored: each published change is a row of ``events``, written in the
transaction of the change it reports.

A change that rolls back takes its event with it, and an event is never seen
before its change. On PostgreSQL the same transaction also sends a NOTIFY on
:data:`CHANNEL` (delivered by PostgreSQL at commit, dropped at rollback) whose
payload is the event's header only, never its value, so it stays far below
NOTIFY's 8000-byte limit whatever the value; a listener reads the rest from the
row. See doc/events.md.

Ids are handed out in commit order, so "the events after id n" is a complete
answer for a subscriber that saw n: SQLite writers hold the database's write
lock until they commit; on PostgreSQL the COMMIT itself numbers the
transaction's events under one advisory lock, held until the commit ends (a
deferred trigger, migration 0018_event_ids_at_commit: until then a row has a
provisional negative id that no reader sees), and sends their NOTIFYs.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from zoneflow import objects
from zoneflow.storage import conversions, db, models

CHANNEL = "zoneflow_events"
# Marks a session whose transaction wrote events: the in-process driver wakes its
# subscribers when such a session commits.
SESSION_MARK = "zoneflow.events"

V = TypeVar("V")


def publisher_name() -> str:
    """This process's name as a publisher: host and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


def jsonable(value: Any) -> Any:
    """A value as JSON holds it: dataclasses as objects, times as ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {name: getattr(value, name) for name in objects.field_names(type(value))}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


@dataclasses.dataclass(frozen=True)
class NewEvent:
    """An event not yet written (its id and time come from the database)."""

    topic: str
    table: str
    key: str
    action: str
    value: dict[str, Any]
    project_id: str | None = None
    zone_id: str | None = None


def record(
    session: Session,
    topic: objects.EventTopic,
    value: V,
    *,
    zone: models.Zone | objects.Zone | None = None,
) -> V:
    """Publish ``value`` (a zone or a recordset just written) in ``session``'s
    transaction, and hand it back, so a write path's return line can carry it.
    A recordset's ``zone``, when the caller holds it, saves reading its project."""
    write(session, [_of_value(session, topic, value, zone)])
    return value


def zone_settled(
    session: Session, zone_id: str, *, written: bool, zone: objects.Zone | None = None
) -> bool:
    """Publish the zone's new status (a job's outcome) in ``session``'s transaction if
    ``written``; hand ``written`` back, for the status write's return line. ``zone``:
    the zone as written, when the write returned it (else it is read)."""
    if written:
        if zone is None:
            # A Core statement built once (every zone's job ends here): the ORM's load of
            # the row, refreshed past its identity map, cost more than the round trip.
            row = session.execute(conversions.ZONE_BY_ID, {"id": zone_id}).first()
            zone = None if row is None else objects.Zone(*row)
        if zone is not None:
            # Its action is the status reached: the zone's own is NONE once a job is done.
            settled = _of_value(session, objects.EventTopic.ZONE, zone)
            write(session, [dataclasses.replace(settled, action=zone.status)])
    return written


def target_statuses(
    zone_id: str, rows: Sequence[objects.TargetStatus], project_id: str | None
) -> NewEvent:
    """The event of one write of a zone's per-target rows, as stored: what its targets
    serve (topic ``propagation``, key ``ZONE_ID``, value ``{"zone_id", "targets":
    {TARGET_ID: row}}``, action the rows' status, or their statuses joined by commas
    when they differ).

    One event for all the targets a write records, not one each: a change on a pool
    of 8 targets wrote 8 rows of the events table, more than half of all its events
    (each numbered at commit, and read by every subscribing process)."""
    statuses = sorted({row.status for row in rows})
    return NewEvent(
        objects.EventTopic.PROPAGATION,
        TARGET_STATUS_TABLE,
        zone_id,
        ",".join(statuses),
        {"zone_id": zone_id, "targets": {row.target_id: jsonable(row) for row in rows}},
        project_id,
        zone_id,
    )


def transfer_seen(
    zone_id: str, seen: objects.ZoneTransfer, project_id: str | None, *, asked: bool = False
) -> NewEvent:
    """The event of what mdns saw a client do with a zone (topic ``propagation``, key
    ``ZONE_ID/ADDRESS``): transfer a serial (action AXFR, IXFR, IXFR-AXFR), or, with
    ``asked``, ask for its SOA or announce the serial it serves in an IXFR query
    (action SOA, IXFR-QUERY)."""
    return NewEvent(
        objects.EventTopic.PROPAGATION,
        TRANSFER_QUERIES_TABLE if asked else TRANSFERS_TABLE,
        f"{zone_id}/{seen.source}",
        seen.kind,
        jsonable(seen),
        project_id,
        zone_id,
    )


# The tables propagation events name: per-target rows, and mdns's transfers and
# the queries it saw (those last ones are published, not stored).
TARGET_STATUS_TABLE = "zone_target_status"
TRANSFERS_TABLE = "zone_transfers"
TRANSFER_QUERIES_TABLE = "zone_transfer_queries"

# Target events (topic ``target``, key the target's id) name this table.
TARGETS_TABLE = "targets"
# Actions of the inspector's target events besides its health (UP, DOWN): a target
# counted again once caught up, and one put in or out of maintenance.
TARGET_COUNTED = "COUNTED"
# The action of a target gone with its per-zone rows (:func:`target_removed`).
TARGET_REMOVED = "REMOVED"


def target_removed(target_id: str, pool_id: str) -> NewEvent:
    """The event of a target deleted with every per-zone row it had (a drained target
    dropped, a target a catalog pool no longer lists): one event, not one per zone,
    as the statement that deletes the rows is one."""
    return NewEvent(
        objects.EventTopic.TARGET,
        TARGETS_TABLE,
        target_id,
        TARGET_REMOVED,
        {"target_id": target_id, "pool_id": pool_id},
    )


def target_maintenance(maintenance: str) -> str:
    """The action of a target event that put the target in ``maintenance`` (its state)."""
    return f"MAINTENANCE_{maintenance}"


def _of_value(
    session: Session,
    topic: objects.EventTopic,
    value: Any,
    zone: models.Zone | objects.Zone | None = None,
) -> NewEvent:
    if isinstance(value, objects.Zone):
        return NewEvent(
            topic, "zones", value.id, value.action, jsonable(value), value.project_id, value.id
        )
    if isinstance(value, objects.RecordSet):
        project_id = (
            zone.project_id
            if zone is not None and zone.id == value.zone_id
            else session.scalar(
                sa.select(models.Zone.project_id).where(models.Zone.id == value.zone_id)
            )
        )
        return NewEvent(
            topic, "recordsets", value.id, value.action, jsonable(value), project_id, value.zone_id
        )
    raise TypeError(f"no event is made of {type(value).__name__}")


_EVENTS = cast(sa.Table, models.Event.__table__)
# An objects.Event's fields, as columns.
_EVENT_COLUMNS = [_EVENTS.c[field.name] for field in dataclasses.fields(objects.Event)]


def write(session: Session, new: Sequence[NewEvent], *, publisher: str | None = None) -> None:
    """Publish ``new`` events in ``session``'s transaction: inserted, all of a
    transaction's in one statement, when it commits; numbered (and NOTIFY'd, on
    PostgreSQL) by the commit itself.

    The lock that keeps ids in commit order was once taken by the client, where
    the change was written and later just before the COMMIT: held across the
    client's round trips either way, the load benchmark found publishers
    waiting 220 ms for it on average. Taken inside the COMMIT it is held for no
    round trip at all.
    """
    if not new:
        return
    by = publisher or publisher_name()
    session.info.setdefault(_PENDING, []).extend((event, by) for event in new)
    session.info[SESSION_MARK] = True


# Events written in a session's transaction, inserted when it commits (see write).
_PENDING = "zoneflow.events.pending"


@sa.event.listens_for(Session, "before_commit")
def _insert_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        _insert(session, pending)


@sa.event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING, None)


def _insert(session: Session, pending: list[tuple[NewEvent, str]]) -> None:
    """Insert the events, in one statement. On PostgreSQL the COMMIT numbers them and
    sends their NOTIFYs (a trigger: migration 0018_event_ids_at_commit)."""
    now = models.utcnow()
    # A Core insert built once: every change writes one, and the ORM's flush of new
    # objects cost more than the statement (issue 17 counted a recordset create's CPU).
    rows = [
        {
            "topic": str(event.topic),
            "table": event.table,
            "key": event.key,
            "action": str(event.action),
            "value": event.value,
            "project_id": event.project_id,
            "zone_id": event.zone_id,
            "publisher": by,
            "created_at": now,
        }
        for event, by in pending
    ]
    # One row (most transactions) as a single execute: a list goes through executemany.
    session.execute(_INSERT_EVENTS, rows[0] if len(rows) == 1 else rows)


_INSERT_EVENTS = sa.insert(_EVENTS)


@db.retried
def append(new: Sequence[NewEvent], *, publisher: str) -> None:
    """Publish events that report no change of zoneflow's own tables (a job's end, a
    target's health), in a transaction of their own."""
    with db.writer() as session:
        write(session, new, publisher=publisher)
        session.execute(
            _COUNT_PUBLISHED, {"b_name": publisher, "b_count": len(new), "b_now": models.utcnow()}
        )


_PUBLISHERS = cast(sa.Table, models.EventPublisher.__table__)
# On the table, not the ORM class: the ORM's UPDATE looked for the row among the
# session's objects, a third of what a conductor's event publisher spent a flush.
_COUNT_PUBLISHED = (
    sa.update(_PUBLISHERS)
    .where(_PUBLISHERS.c.name == sa.bindparam("b_name"))
    .values(
        published=_PUBLISHERS.c.published + sa.bindparam("b_count"),
        last_activity=sa.bindparam("b_now"),
    )
)


def _value(cls: type[V], row: Any) -> V:
    # Not storage.api's: storage.api imports this module for its write paths.
    return cls(**{name: getattr(row, name) for name in objects.field_names(cls)})


def _matching(wanted: objects.EventFilter) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if wanted.scope is not None:
        where.append(models.Event.project_id == wanted.scope)
    if wanted.project_id is not None:
        where.append(models.Event.project_id == wanted.project_id)
    if wanted.zone_id is not None:
        where.append(models.Event.zone_id == wanted.zone_id)
    if wanted.topics is not None:
        where.append(models.Event.topic.in_(sorted(wanted.topics)))
    return where


# Events read at a time.
PAGE = 500


def after(
    last_id: int, wanted: objects.EventFilter, *, upto: int | None = None
) -> list[objects.Event]:
    """The events after ``last_id`` (up to ``upto``) that ``wanted`` matches, oldest
    first, :data:`PAGE` at most."""
    # Core on a plain connection: each process's subscribers read at every commit
    # that publishes, and the ORM's session and row objects were most of the cost.
    query = _after(wanted, bounded=upto is not None)
    with db.connection() as conn:
        bounds = {"b_last_id": last_id} if upto is None else {"b_last_id": last_id, "b_upto": upto}
        rows = conn.execute(query, bounds)
        return [objects.Event(**row._mapping) for row in rows]


@functools.lru_cache(maxsize=256)
def _after(wanted: objects.EventFilter, *, bounded: bool) -> sa.Select[Any]:
    """The statement of :func:`after` for one filter, built once: built at each read,
    it cost as much CPU as the read itself."""
    where = [_EVENTS.c.id > sa.bindparam("b_last_id"), *_matching(wanted)]
    if bounded:
        where.append(_EVENTS.c.id <= sa.bindparam("b_upto"))
    return sa.select(*_EVENT_COLUMNS).where(*where).order_by(_EVENTS.c.id).limit(PAGE)


def last_id() -> int:
    """The id of the newest event (0 when there is none): where a new subscriber starts."""
    with db.connection() as conn:
        return int(conn.scalar(_LAST_ID) or 0)


_LAST_ID = sa.select(sa.func.max(_EVENTS.c.id))


@db.retried
def prune(before: datetime.datetime) -> int:
    """Remove the events published before ``before``; how many went."""
    with db.writer() as session:
        gone = session.execute(sa.delete(models.Event).where(models.Event.created_at < before))
        return int(gone.rowcount)  # type: ignore[attr-defined]


@db.retried
def touch_publisher(name: str, *, hostname: str, pid: int) -> None:
    """Say that publisher ``name`` is alive now (its row is made on the first touch)."""
    now = models.utcnow()
    with db.writer() as session:
        row = session.get(models.EventPublisher, name)
        if row is None:
            session.add(
                models.EventPublisher(name=name, hostname=hostname, pid=pid, last_activity=now)
            )
        else:
            row.last_activity = now


@db.retried
def reap_publishers(silent_since: datetime.datetime) -> list[str]:
    """Remove the publishers silent since before ``silent_since``; their names."""
    stale = models.EventPublisher.last_activity < silent_since
    with db.writer() as session:
        names = list(session.scalars(sa.select(models.EventPublisher.name).where(stale)))
        if names:
            session.execute(
                sa.delete(models.EventPublisher).where(models.EventPublisher.name.in_(names))
            )
        return names


@db.retried
def forget_publisher(name: str) -> None:
    with db.writer() as session:
        session.execute(sa.delete(models.EventPublisher).where(models.EventPublisher.name == name))


def list_publishers() -> list[objects.EventPublisher]:
    with db.reader() as session:
        rows = session.scalars(
            sa.select(models.EventPublisher).order_by(models.EventPublisher.name)
        )
        return [_value(objects.EventPublisher, row) for row in rows]
