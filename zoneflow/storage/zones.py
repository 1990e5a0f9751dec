"""Zones as stored: reads, and the writes a zone change is made of, each run in the
unit of work its caller (central) opened (:func:`zoneflow.storage.db.unit_of_work`).

A change to a zone's data begins with :func:`begin_change`, which bumps the
zone's serial first: that takes the zone row's lock on PostgreSQL, so
concurrent changes to one zone queue up instead of racing. A zone create takes
its pool's placement lock last, before its commit (:func:`lock_placement`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from oslo_db import exception as db_exc
from sqlalchemy.orm import Session

from zoneflow import exceptions, objects
from zoneflow.storage import (
    catalogs,
    conversions,
    db,
    events,
    history,
    models,
    outbox,
    queries,
    tables,
)

MAX_SERIAL = 2**32 - 1


def zone_wanted_gone(zone_id: str) -> bool:
    """Whether a zone is deleted, or its delete asked for, in one statement."""
    return bool(zones_wanted_gone([zone_id]))


def zones_wanted_gone(zone_ids: Collection[str]) -> set[str]:
    """Those of these zones deleted, gone, or whose delete is asked for, in one
    statement."""
    with db.connection() as conn:
        rows = conn.execute(_ZONES_STATE, {"ids": list(zone_ids)}).all()
    live = {
        row.id for row in rows if row.deleted == models.LIVE and row.action != objects.Action.DELETE
    }
    return set(zone_ids) - live


def live_zone(session: Session, zone_id: str) -> models.Zone:
    """A live zone's row."""
    query = sa.select(models.Zone).where(
        models.Zone.id == zone_id, models.Zone.deleted == models.LIVE
    )
    row = session.scalars(query).first()
    if row is None:
        raise exceptions.ZoneNotFound(f"zone {zone_id} does not exist")
    return row


_FIND_ZONE = conversions.ZONE_ROW.where(
    models.Zone.name == sa.bindparam("name"), models.Zone.deleted == models.LIVE
)


# A zone's deleted mark, whether a nameserver is in its pool, and the pool's catalog:
# one statement.
_POLL_STATE = (
    sa.select(
        models.Zone.deleted,
        models.PoolNameserver.id.label("listed"),
        models.Pool.provisioning,
        models.Pool.catalog_zone,
        models.Pool.catalog_serial,
    )
    .join(models.Pool, models.Pool.id == models.Zone.pool_id)
    .outerjoin(
        models.PoolNameserver,
        sa.and_(
            models.PoolNameserver.pool_id == models.Zone.pool_id,
            models.PoolNameserver.host == sa.bindparam("host"),
            models.PoolNameserver.port == sa.bindparam("port"),
        ),
    )
    .where(models.Zone.id == sa.bindparam("id"))
)


_ZONES_STATE = sa.select(models.Zone.id, models.Zone.deleted, models.Zone.action).where(
    models.Zone.id.in_(sa.bindparam("ids", expanding=True))
)


def find_zone_for_mdns(name: str) -> objects.Zone | None:
    """The live zone of exactly this name, or None (mdns answers REFUSED then).

    mdns asks this for every query, so it skips the ORM: one cached Core
    statement on a pooled connection.
    """
    with db.connection() as conn:
        row = conn.execute(_FIND_ZONE, {"name": name}).first()
    return None if row is None else objects.Zone(*row)


def get_zone_any(zone_id: str) -> objects.Zone | None:
    """A zone by id, live or deleted: flows use it to see the wanted state."""
    with db.connection() as conn:
        row = conn.execute(conversions.ZONE_BY_ID, {"id": zone_id}).first()
    return None if row is None else objects.Zone(*row)


def get_zones_any(zone_ids: Iterable[str]) -> dict[str, objects.Zone]:
    """Zones by id, live or deleted, in one statement (a slice of ids each): a relay
    reads the zones of every change it posts. A zone no longer stored is left out."""
    ids = list(dict.fromkeys(zone_ids))
    found: dict[str, objects.Zone] = {}
    if not ids:
        return found
    with db.connection() as conn:
        for start in range(0, len(ids), queries.IN_CHUNK):
            rows = conn.execute(_ZONES_BY_ID, {"ids": ids[start : start + queries.IN_CHUNK]})
            found.update((zone.id, zone) for zone in (objects.Zone(*row) for row in rows))
    return found


_ZONES_BY_ID = conversions.ZONE_ROW.where(models.Zone.id.in_(sa.bindparam("ids", expanding=True)))


def zone_is_deleted(zone_id: str) -> bool:
    with db.reader() as session:
        row = session.get(models.Zone, zone_id)
        return row is None or row.deleted != models.LIVE


def poll_state(zone_id: str, host: str, port: int) -> objects.PollState:
    """Whether a zone was deleted, whether a nameserver is still in its pool, and the
    pool's catalog (name, serial) if its targets learn of zones from it.

    A job posted before a pool update still polls the nameservers the pool
    had then; one the update removed is not waited for.
    """
    with db.connection() as conn:
        row = conn.execute(_POLL_STATE, {"id": zone_id, "host": host, "port": port}).first()
    if row is None:
        return objects.PollState(zone_deleted=True, nameserver_in_pool=False)
    through_catalog = row.provisioning == objects.CATALOG and row.catalog_zone is not None
    return objects.PollState(
        zone_deleted=row.deleted != models.LIVE,
        nameserver_in_pool=row.listed is not None,
        catalog=(row.catalog_zone, row.catalog_serial) if through_catalog else None,
    )


def zone_projects(
    zone_ids: Iterable[str], *, within: Session | None = None
) -> dict[str, str | None]:
    """The project of each of these zones, live or deleted (a zone no longer stored
    is left out): who may see the jobs that acted on them, or the events published
    of them. Read ``within`` the caller's unit of work if given.

    A zone's project, once read, is kept in this process (:data:`PROJECTS_KEPT`):
    nothing changes it after the zone's insert, and no other zone ever gets the
    zone's id. A conductor asked it twice a job (its task events, its end) and at
    every write of per-target rows, a transaction of its own each time.
    """
    ids = list(dict.fromkeys(zone_ids))
    with _projects_lock:
        found = {zone_id: _projects[zone_id] for zone_id in ids if zone_id in _projects}
    unknown = [zone_id for zone_id in ids if zone_id not in found]
    if not unknown:
        return found
    with contextlib.nullcontext(within) if within is not None else db.reader() as session:
        # In slices: SQLite caps the parameters of one statement.
        for start in range(0, len(unknown), queries.IN_CHUNK):
            rows = session.execute(
                _ZONE_PROJECTS, {"ids": unknown[start : start + queries.IN_CHUNK]}
            )
            found.update({zone_id: project_id for zone_id, project_id in rows})
    with _projects_lock:
        _projects.update((zone_id, found[zone_id]) for zone_id in unknown if zone_id in found)
        while len(_projects) > PROJECTS_KEPT:
            del _projects[next(iter(_projects))]  # the first kept goes first
    return found


# Zones whose project is kept (zone_projects): about 150 bytes each.
PROJECTS_KEPT = 20_000
_projects: dict[str, str | None] = {}
_projects_lock = threading.Lock()


# Built once: every write of per-target rows publishes them under their zones' projects.
_ZONE_PROJECTS = sa.select(models.Zone.id, models.Zone.project_id).where(
    models.Zone.id.in_(sa.bindparam("ids", expanding=True))
)


def find_zones(
    criteria: Mapping[str, str | int],
    paging: objects.Paging,
    *,
    project_id: str | None = None,
) -> objects.Page[objects.Zone]:
    """One page of the live zones matching ``criteria`` (column name -> value, see
    :func:`queries.match`), of one project or all, and how many match in all."""
    scope = [models.Zone.deleted == models.LIVE]
    if project_id is not None:
        scope.append(models.Zone.project_id == project_id)
    filters = [
        queries.match(queries.column_named(models.Zone, key), value)
        for key, value in criteria.items()
    ]
    with db.reader() as session:
        rows, total, more = queries.paged(
            session, sa.select(models.Zone), models.Zone, scope, filters, paging
        )
        return objects.Page(tuple(conversions.zone(r) for r in rows), total, more)


def next_serial(session: Session, zone_id: str) -> tuple[int, int]:
    """Bump a zone's serial by at least one, to the current time if that is larger.

    Returns the serial before and after. The row is read locked: on
    PostgreSQL that locks it until the transaction ends, so two changes to
    one zone queue up and can never share a serial (SQLite's writers are
    already serialized by BEGIN IMMEDIATE).
    """
    previous = session.execute(
        queries.locking_zones(
            sa.select(models.Zone.serial).where(
                models.Zone.id == zone_id, models.Zone.deleted == models.LIVE
            )
        )
    ).scalar_one_or_none()
    if previous is None:
        raise exceptions.ZoneNotFound(f"zone {zone_id} does not exist")
    return _bump_serial(session, zone_id, int(previous))


def _bump_serial(
    session: Session, zone_id: str, previous: int, *, updating: bool = False
) -> tuple[int, int]:
    """Write a locked zone's next serial after ``previous``, and mark it PENDING for a
    recordset change (``updating``); (previous, next)."""
    serial = max(previous + 1, int(time.time()))
    if serial > MAX_SERIAL:
        # RFC 1982 arithmetic would let us wrap; we refuse instead of silently
        # publishing a serial that secondaries would read as older.
        raise exceptions.InvalidInput(f"zone {zone_id} serial would exceed {MAX_SERIAL}")
    statement = _BUMP_SERIAL_UPDATING if updating else _BUMP_SERIAL
    session.execute(statement, {"zone_id": zone_id, "new_serial": serial})
    return int(previous), serial


# Core statements built once, for the write every recordset change makes: the ORM's
# bulk UPDATE and a statement built per call cost more CPU than the round trip.
_BUMP_SERIAL = (
    sa.update(tables.zones)
    .where(tables.zones.c.id == sa.bindparam("zone_id"))
    .values(serial=sa.bindparam("new_serial"), version=tables.zones.c.version + 1)
)
# A recordset change marks its zone PENDING in the same statement. A zone whose create
# job has not finished stays CREATE: the create job or the update job after it,
# whichever carries the newest serial, will make it ACTIVE.
_BUMP_SERIAL_UPDATING = _BUMP_SERIAL.values(
    status=objects.Status.PENDING,
    action=sa.case(
        (tables.zones.c.action == objects.Action.CREATE, objects.Action.CREATE),
        else_=objects.Action.UPDATE,
    ),
    error=None,
)


def insert_zone(unit: Session, values: Mapping[str, Any], *, job: objects.JobOrder) -> objects.Zone:
    """Insert a zone as PENDING/CREATE with a ``job`` for it, in the caller's unit of
    work (:func:`zoneflow.storage.db.unit_of_work`), which then takes the placement
    lock (:func:`lock_placement`) and checks what it must under it."""
    zone_id = str(uuid.uuid4())
    serial = max(int(time.time()), 1)
    row = models.Zone(
        id=zone_id,
        serial=serial,
        status=objects.Status.PENDING,
        action=objects.Action.CREATE,
        **values,
    )
    unit.add(row)
    try:
        unit.flush()
    except db_exc.DBDuplicateEntry:
        raise exceptions.DuplicateZone(
            f"zone {values['name']} already exists: pick another name or delete the old zone"
        ) from None
    catalogs.catalog_changed(unit, row.pool_id, zone_id, row.name, joined=True)
    outbox.post(unit, job, zone_id, serial)
    return events.record(unit, objects.EventTopic.ZONE, conversions.zone(row))


# The class of zoneflow's pool placement locks: PostgreSQL's two-key advisory locks are
# apart from its one-key ones (the projects' quota locks), so the two never collide.
_PLACEMENT_LOCKS = 0x7A66_706C


def lock_placement(unit: Session, pool_id: str) -> None:
    """Make any other unit of work creating a zone in this pool wait until this one ends.

    Every zone create takes it after its insert, as the last step before its commit,
    even one with nothing to check (a zone of no project): a project's create
    checking under it must see that zone too.
    Of two creates racing for a zone and its subzone, the second then reads the first's
    zone (:func:`zones_around`). Taken before a project's quota lock, always, so two
    creates never wait for each other in a cycle.

    On PostgreSQL an advisory transaction lock keyed on the pool; the zones read
    after it include every zone the transaction before it committed (READ
    COMMITTED reads a fresh snapshot per statement). Two pools sharing a key
    only wait for each other. SQLite needs none: writer() began with BEGIN
    IMMEDIATE, so the database is this transaction's alone.
    """
    if unit.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"zoneflow pool {pool_id}".encode()).digest()
        key = int.from_bytes(digest[:4], "big", signed=True)
        unit.execute(sa.select(sa.func.pg_advisory_xact_lock(_PLACEMENT_LOCKS, key)))


def update_zone(
    session: Session, zone_id: str, values: Mapping[str, Any], *, job: objects.JobOrder
) -> objects.Zone:
    """Change a zone's fields and post ``job``, in the caller's unit of work."""
    row = live_zone(session, zone_id)
    refuse_if_deleting(row)
    # The SOA fields or the TTL of every record may change: not incremental.
    history.record_change(session, zone_id, next_serial(session, zone_id))
    session.refresh(row)
    for key, value in values.items():
        setattr(row, key, value)
    row.status, row.action, row.error = objects.Status.PENDING, objects.Action.UPDATE, None
    outbox.post(session, job, zone_id, row.serial)
    session.flush()
    # Converted inside the transaction: re-reading after commit could
    # return a newer change's serial.
    return events.record(session, objects.EventTopic.ZONE, conversions.zone(row))


def delete_zone(session: Session, zone_id: str, *, job: objects.JobOrder) -> objects.Zone:
    """Mark a zone PENDING/DELETE and post ``job`` (central's delete-zone), in the
    caller's unit of work.

    The row stays until the job has removed the zone from the targets, so a
    failed delete can be seen and retried.
    """
    row = live_zone(session, zone_id)
    history.record_change(session, zone_id, next_serial(session, zone_id))
    session.refresh(row)
    row.status, row.action, row.error = objects.Status.PENDING, objects.Action.DELETE, None
    catalogs.catalog_changed(session, row.pool_id, zone_id, row.name, joined=False)
    outbox.post(session, job, zone_id, row.serial)
    session.flush()
    return events.record(session, objects.EventTopic.ZONE, conversions.zone(row))


def recover_zone(session: Session, zone_id: str, *, job: objects.JobOrder) -> objects.Zone:
    """Mark a zone PENDING (its action kept) and post ``job`` (central's recover-zone)
    for its serial.

    Nothing about the zone changes, so the serial stays: the job brings the
    targets to what the zone already is. A zone with a job in flight is
    refused, since that job will set its status. In the caller's unit of work.
    """
    row = session.scalars(
        queries.locking_zones(
            sa.select(models.Zone).where(
                models.Zone.id == zone_id, models.Zone.deleted == models.LIVE
            )
        )
    ).first()
    if row is None:
        raise exceptions.ZoneNotFound(f"zone {zone_id} does not exist")
    if row.status == objects.Status.PENDING:
        raise exceptions.ZoneBusy(
            f"zone {row.name} has a job in progress (PENDING {row.action}): wait for it to "
            "finish, then recover the zone if it ends in ERROR"
        )
    row.status, row.error = objects.Status.PENDING, None
    outbox.post(session, job, zone_id, row.serial)
    session.flush()
    return events.record(session, objects.EventTopic.ZONE, conversions.zone(row))


def zones_around(session: Session, name: str, pool_id: str) -> list[objects.Zone]:
    """The live zones of a pool above ``name`` (its parents, up to the top-level domain)
    and below it (its subzones), whoever owns them; read after :func:`lock_placement`.

    Two index lookups, whatever the number of zones: the parents are a few
    names (ix_zones_name); the subzones are the names whose labels, reversed,
    start with ``name``'s reversed and a dot (ix_zones_reversed_name, a range).
    """
    labels = name.rstrip(".").split(".")
    parents = [".".join(labels[i:]) + "." for i in range(1, len(labels))]
    # At least one character after the prefix: the zone itself is not below itself.
    below = queries.escape_like(tables.reversed_name(name)) + "_%"
    query = sa.select(models.Zone).where(
        models.Zone.deleted == models.LIVE,
        models.Zone.pool_id == pool_id,
        sa.or_(
            models.Zone.name.in_(parents),
            models.Zone.reversed_name.like(below, escape="\\"),
        ),
    )
    return [conversions.zone(row) for row in session.scalars(query.order_by(models.Zone.name))]


def refuse_if_deleting(row: models.Zone | objects.Zone) -> None:
    if row.action == objects.Action.DELETE:
        raise exceptions.ZoneBusy(
            f"zone {row.name} is being deleted and accepts no changes: wait for the delete to "
            "finish, then create it again"
        )


@dataclasses.dataclass(frozen=True)
class ZoneChange:
    """A zone locked for a change to its data in a unit of work, and the serial the
    change takes it from and to (see :func:`begin_change`)."""

    zone: objects.Zone
    serials: tuple[int, int]

    @property
    def serial(self) -> int:
        return self.serials[1]


def begin_change(unit: Session, zone_id: str) -> ZoneChange:
    """Start a change to a live zone's data in the caller's unit of work: refuse a zone
    being deleted, bump its serial, which locks its row (PostgreSQL) so changes
    to one zone queue up and whatever is read about the zone next is current, and
    mark it PENDING, UPDATE (still CREATE if its create job has not finished). A
    check that refuses the change later rolls all of it back."""
    # Locked as it is read: the serial read with it is the one to bump.
    row = unit.execute(_LOCK_LIVE_ZONE, {"id": zone_id}).first()
    if row is None:
        raise exceptions.ZoneNotFound(f"zone {zone_id} does not exist")
    zone = objects.Zone(*row)
    refuse_if_deleting(zone)
    return ZoneChange(zone, _bump_serial(unit, zone_id, zone.serial, updating=True))


# Every recordset change reads its zone so: a Core statement built once (loading the
# row into the ORM cost more CPU than the round trip, issue 17).
_LOCK_LIVE_ZONE = queries.locking_zones(
    conversions.ZONE_ROW.where(
        models.Zone.id == sa.bindparam("id"), models.Zone.deleted == models.LIVE
    )
)
