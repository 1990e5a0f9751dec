"""What jobs record: a zone's status (unless a newer change was made since) and
what each target serves of it, the soft delete of a zone its delete job removed.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Collection, Iterable, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from zoneflow import objects
from zoneflow.storage import conversions, db, events, models, outbox, queries, zones

# (target id, serial, status, error): one row of a zone's per-target status.
TargetUpdate = tuple[str, int, str, str | None]


def set_zone_status(
    zone_id: str,
    *,
    serial: int,
    status: str,
    action: str | None = None,
    error: str | None = None,
    covered_targets: Collection[str] | None = None,
    covered_nameservers: Collection[tuple[str, int]] = (),
    if_pool_grows: objects.JobOrder | None = None,
    targets: Sequence[TargetUpdate] = (),
) -> bool:
    """Record a job's outcome unless a newer change has been made since.

    ``targets`` are per-target rows to record first, in the same transaction
    (see set_target_statuses): a job's last step is then one transaction.

    A job only speaks for the serial it carried out: if the zone's serial has
    moved on, a newer job will set the status and this call does nothing.
    Returns whether the status was written.

    A job making the zone ACTIVE says which targets and nameservers it
    covered, and the job that follows it if they are not all the pool's
    (``if_pool_grows``, decided by central when the job was posted: see
    objects.JobOrder). If the zone's pool now has one it did not cover (the
    pool changed while the job ran), the zone is not ACTIVE yet: it stays
    PENDING and that job, for the serial, is posted in the same transaction
    to bring the zone onto the rest. A job with no follow-up leaves the zone
    PENDING for the producer's recovery.
    """
    settled = Settlement(
        zone_id,
        serial=serial,
        status=status,
        action=action,
        error=error,
        covered_targets=covered_targets,
        covered_nameservers=covered_nameservers,
        if_pool_grows=if_pool_grows,
        targets=targets,
    )
    return settle_zones([settled])[0]


@dataclasses.dataclass(frozen=True)
class Settlement:
    """What a job records of one zone at its end: the arguments of
    :func:`set_zone_status`, or (``delete``) of :func:`finish_zone_delete`."""

    zone_id: str
    serial: int
    status: str
    action: str | None = None
    error: str | None = None
    covered_targets: Collection[str] | None = None
    covered_nameservers: Collection[tuple[str, int]] = ()
    if_pool_grows: objects.JobOrder | None = None
    targets: Sequence[TargetUpdate] = ()
    delete: bool = False


@db.retried
def settle_zones(settlements: Sequence[Settlement]) -> list[bool]:
    """Record the end of several zones' jobs (a batch's) in one transaction: for each,
    whether it was written, in the order given.

    Each zone as :func:`set_zone_status` or :func:`finish_zone_delete` records
    it alone. The zones' rows are locked in the order of their ids, so two
    such transactions never wait on each other in a circle; one that lost to
    another transaction anyway runs again whole.
    """
    written = [False] * len(settlements)
    order = sorted(range(len(settlements)), key=lambda i: settlements[i].zone_id)
    # Each pool's targets in service and nameservers, read once (_covers).
    pools: dict[str, list[Any]] = {}
    # Core statements built once, on the session's connection: this is every
    # job's last step, and the ORM's handling of a statement cost more than
    # the database did. The per-target rows of every zone go first, in one
    # statement: a batch's zones have the same targets.
    with db.writer() as session:
        write_zones_target_statuses(
            session,
            [
                (settlements[at].zone_id, update)
                for at in order
                for update in settlements[at].targets
            ],
        )
        for at in order:
            settled = settlements[at]
            if settled.delete:
                written[at] = _finish_delete(session, settled.zone_id, settled.serial)
            else:
                written[at] = _settle(session, settled, pools)
    return written


def _settle(session: Session, settled: Settlement, pools: dict[str, list[Any]]) -> bool:
    conn = session.connection()
    zone_id, serial = settled.zone_id, settled.serial
    if settled.status == objects.Status.ACTIVE and settled.covered_targets is not None:
        # The zone's row first, locked: a pool update backfilling it
        # waits for this transaction, or this one reads its targets.
        pool_id = conn.execute(_LOCK_ZONE_POOL, {"zone_id": zone_id, "serial": serial}).scalar()
        if pool_id is None:
            return False
        if pool_id not in pools:
            pools[pool_id] = list(conn.execute(_POOL_SERVERS, {"pool_id": pool_id}))
        if not _covers(pools[pool_id], settled.covered_targets, settled.covered_nameservers):
            queries.rows_changed(
                session,
                sa.update(models.Zone)
                .where(models.Zone.id == zone_id)
                .values(status=objects.Status.PENDING, error=None),
            )
            if settled.if_pool_grows is not None:
                outbox.post(session, settled.if_pool_grows, zone_id, serial)
            return False
    values: dict[str, Any] = {"status": settled.status, "error": settled.error}
    if settled.action is not None:
        values["action"] = settled.action
    # The zone as written comes back for its event: no read after the write.
    row = conn.execute(_SET_ZONE_STATUS, {"b_id": zone_id, "b_serial": serial, **values}).first()
    if settled.status == objects.Status.ACTIVE:
        conn.execute(_RECORDSETS_ACTIVE, {"b_zone_id": zone_id, "b_serial": serial})
    return events.zone_settled(
        session, zone_id, written=row is not None, zone=None if row is None else objects.Zone(*row)
    )


def _covers(
    servers: Iterable[Any], targets: Collection[str], nameservers: Collection[tuple[str, int]]
) -> bool:
    """Whether a job with these targets and nameservers covered the pool's ``servers``
    (_POOL_SERVERS's rows) as they are now."""
    covered_targets, covered_nameservers = set(targets), set(nameservers)
    return all(
        key in covered_targets if kind == "target" else (key, port) in covered_nameservers
        for kind, key, port in servers
    )


_LOCK_ZONE_POOL = queries.locking_zones(
    sa.select(models.Zone.pool_id).where(
        models.Zone.id == sa.bindparam("zone_id"),
        models.Zone.serial == sa.bindparam("serial"),
        models.Zone.deleted == models.LIVE,
    )
)


# A pool's targets in service and its nameservers, in one round trip:
# ("target", id, None) and ("nameserver", host, port) rows.
_POOL_SERVERS: sa.CompoundSelect[Any] = sa.union_all(
    sa.select(sa.literal("target"), models.PoolTarget.id, sa.null()).where(
        models.PoolTarget.pool_id == sa.bindparam("pool_id"), models.PoolTarget.retired_at.is_(None)
    ),
    sa.select(
        sa.literal("nameserver"), models.PoolNameserver.host, models.PoolNameserver.port
    ).where(models.PoolNameserver.pool_id == sa.bindparam("pool_id")),
)


_ZONES = cast(sa.Table, models.Zone.__table__)


_RECORDSETS = cast(sa.Table, models.RecordSet.__table__)


# The columns to set are the parameters given beside b_id and b_serial; the zone's
# row as written is returned.
_SET_ZONE_STATUS = (
    sa.update(_ZONES)
    .where(
        _ZONES.c.id == sa.bindparam("b_id"),
        _ZONES.c.serial == sa.bindparam("b_serial"),
        _ZONES.c.deleted == models.LIVE,
    )
    .returning(*(_ZONES.c[name] for name in conversions.ZONE_FIELDS))
)


_RECORDSETS_ACTIVE = (
    sa.update(_RECORDSETS)
    .where(
        _RECORDSETS.c.zone_id == sa.bindparam("b_zone_id"),
        _RECORDSETS.c.serial <= sa.bindparam("b_serial"),
    )
    .values(status=objects.Status.ACTIVE, action=objects.Action.NONE)
)


def finish_zone_delete(zone_id: str, *, serial: int, targets: Sequence[TargetUpdate] = ()) -> bool:
    """Soft-delete a zone once its delete job has succeeded (if still wanted),
    recording ``targets`` (per-target rows) in the same transaction."""
    settled = Settlement(
        zone_id, serial=serial, status=objects.Status.DELETED, targets=targets, delete=True
    )
    return settle_zones([settled])[0]


def _finish_delete(session: Session, zone_id: str, serial: int) -> bool:
    now = models.utcnow()
    result = queries.rows_changed(
        session,
        sa.update(models.Zone)
        .where(
            models.Zone.id == zone_id,
            models.Zone.serial == serial,
            models.Zone.action == objects.Action.DELETE,
            models.Zone.deleted == models.LIVE,
        )
        .values(
            status=objects.Status.DELETED,
            action=objects.Action.NONE,
            deleted=zone_id,
            deleted_at=now,
            error=None,
        ),
    )
    return events.zone_settled(session, zone_id, written=bool(result))


def set_target_status(
    zone_id: str, target_id: str, *, serial: int, status: str, error: str | None = None
) -> None:
    """Record what one target serves; a served serial never goes backwards."""
    set_target_statuses(zone_id, [(target_id, serial, status, error)])


def set_target_statuses(zone_id: str, updates: Sequence[TargetUpdate]) -> None:
    """Record (target id, serial, status, error) for several targets in one transaction."""
    if updates:
        with db.writer() as session:
            write_target_statuses(session, zone_id, updates)


def write_target_statuses(session: Session, zone_id: str, updates: Sequence[TargetUpdate]) -> None:
    write_zones_target_statuses(session, [(zone_id, update) for update in updates])


def _publish_rows(session: Session, stored: Iterable[Any]) -> None:
    """Publish per-target rows as an upsert's RETURNING gives them."""
    publish_target_rows(session, [objects.TargetStatus(**row._mapping) for row in stored])


def publish_target_rows(session: Session, rows: Iterable[objects.TargetStatus]) -> None:
    """Publish per-target rows as stored, in ``session``'s transaction: an event per
    zone (every writer of the rows does, so the propagation model sees them)."""
    by_zone: dict[str, list[objects.TargetStatus]] = {}
    for row in rows:
        by_zone.setdefault(row.zone_id, []).append(row)
    projects = zones.zone_projects(by_zone, within=session)
    events.write(
        session,
        [
            events.target_statuses(zone_id, rows, projects.get(zone_id))
            for zone_id, rows in by_zone.items()
        ],
    )


_IN_SERVICE = sa.select(models.PoolTarget.id).where(
    models.PoolTarget.id.in_(sa.bindparam("ids", expanding=True)),
    models.PoolTarget.retired_at.is_(None),
)


@functools.cache
def _upsert_target_status(dialect: str) -> Any:
    """The upsert of per-target rows, returning them as stored (published as
    events). With a RETURNING, SQLAlchemy sends many rows as one statement,
    where without it psycopg2 runs the statement once per row (SQLAlchemy's
    "insertmanyvalues")."""
    table = cast(sa.Table, models.ZoneTargetStatus.__table__)
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return insert.on_conflict_do_update(
        index_elements=[table.c.zone_id, table.c.target_id],
        set_={
            "serial": sa.case(
                (insert.excluded.serial > table.c.serial, insert.excluded.serial),
                else_=table.c.serial,
            ),
            "status": insert.excluded.status,
            "error": insert.excluded.error,
            "updated_at": insert.excluded.updated_at,
        },
    ).returning(*(table.c[f.name] for f in dataclasses.fields(objects.TargetStatus)))


def get_target_status(zone_id: str, target_id: str) -> objects.TargetStatus | None:
    """What one target was last recorded serving of a zone, or None if nothing yet."""
    with db.reader() as session:
        row = session.get(models.ZoneTargetStatus, (zone_id, target_id))
        return None if row is None else conversions.value(objects.TargetStatus, row)


def get_target_statuses(
    zone_ids: Collection[str], target_id: str
) -> dict[str, objects.TargetStatus]:
    """What one target was last recorded serving of each of these zones (a batch's),
    by zone id, in one read; a zone with nothing recorded yet is left out."""
    with db.reader() as session:
        rows = session.scalars(
            sa.select(models.ZoneTargetStatus).where(
                models.ZoneTargetStatus.zone_id.in_(list(zone_ids)),
                models.ZoneTargetStatus.target_id == target_id,
            )
        )
        return {row.zone_id: conversions.value(objects.TargetStatus, row) for row in rows}


def list_target_status(zone_id: str) -> list[objects.TargetStatus]:
    with db.reader() as session:
        rows = session.scalars(
            sa.select(models.ZoneTargetStatus).where(models.ZoneTargetStatus.zone_id == zone_id)
        )
        return [conversions.value(objects.TargetStatus, r) for r in rows]


def write_zones_target_statuses(
    session: Session, updates: Sequence[tuple[str, TargetUpdate]]
) -> None:
    """Per-target rows of many zones, (zone id, update) each, in a few statements: a
    batch's status (settle_zones), the producer's audit of thousands of zones at once.
    In-service targets only (a job that started before its target was retired or
    dropped records nothing about it: the retire-target job owns those rows), the
    served serial kept if higher, and the rows as stored published, an event per zone
    (for the propagation model, zoneflow.model)."""
    if not updates:
        return
    conn = session.connection()
    ids = sorted({update[0] for _, update in updates})
    in_service = set(conn.execute(_IN_SERVICE, {"ids": ids}).scalars())
    now = models.utcnow()
    rows = [
        {
            "zone_id": zone_id,
            "target_id": target_id,
            "serial": serial,
            "status": state,
            "error": error,
            "updated_at": now,
        }
        for zone_id, (target_id, serial, state, error) in updates
        if target_id in in_service
    ]
    if rows:
        rows.sort(key=lambda row: (row["zone_id"], row["target_id"]))  # a lock order
        _publish_rows(session, conn.execute(_upsert_target_status(conn.dialect.name), rows))
