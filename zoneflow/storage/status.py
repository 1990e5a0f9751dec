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
    it alone, in a few statements for all of them, not a few for each (a
    batch's status was a fifth of a conductor's CPU in a backfill): every
    zone's row is read and locked first, in one statement and in the order of
    their ids, so two such transactions never wait on each other in a circle
    (one that lost to another transaction anyway runs again whole); then the
    zones whose serial is still the job's are written, those of one outcome
    together.
    """
    written = [False] * len(settlements)
    # Core statements built once, on the session's connection: this is every
    # job's last step, and the ORM's handling of a statement cost more than
    # the database did. The per-target rows of every zone go first, in one
    # statement: a batch's zones have the same targets.
    with db.writer() as session:
        write_zones_target_statuses(
            session,
            [(settled.zone_id, update) for settled in settlements for update in settled.targets],
        )
        conn = session.connection()
        every = sorted({settled.zone_id for settled in settlements})
        locked = {row.id: row for row in conn.execute(_LOCK_ZONES, {"ids": every})}
        # The zones a newer change has moved on from (or that are gone) are left alone.
        current = [
            at
            for at, settled in enumerate(settlements)
            if (row := locked.get(settled.zone_id)) is not None and row.serial == settled.serial
        ]
        # A delete still asked for (not taken back by a newer change) is finished.
        deletes = [
            at
            for at in current
            if settlements[at].delete and locked[settlements[at].zone_id].action == _DELETE
        ]
        to_write = _covered(
            session,
            [at for at in current if not settlements[at].delete],
            settlements,
            locked,
        )
        zones: dict[str, objects.Zone] = {}
        for values, group in _by_outcome(to_write, settlements).items():
            ids = [settlements[at].zone_id for at in group]
            zones.update(_returned(conn.execute(_SET_ZONES, {"ids": ids, **dict(values)})))
        active = [z.id for z in zones.values() if z.status == objects.Status.ACTIVE]
        if active:
            conn.execute(_RECORDSETS_ACTIVE, {"ids": active})
        if deletes:
            ids = [settlements[at].zone_id for at in deletes]
            zones.update(
                _returned(
                    conn.execute(_FINISH_DELETES, {"ids": ids, "b_deleted_at": models.utcnow()})
                )
            )
        done = set(to_write) | set(deletes)
        # Events in the order of the zones' ids, as the rows were locked.
        for at in sorted(range(len(settlements)), key=lambda at: settlements[at].zone_id):
            zone_id = settlements[at].zone_id
            written[at] = events.zone_settled(
                session, zone_id, written=at in done, zone=zones.get(zone_id)
            )
    return written


def _covered(
    session: Session,
    candidates: list[int],
    settlements: Sequence[Settlement],
    locked: dict[str, Any],
) -> list[int]:
    """Of ``candidates`` (indexes of settlements), those to write: all but a zone made
    ACTIVE by a job that did not cover every target and nameserver of its pool as it
    is now (the pool grew while the job ran). Such a zone stays PENDING, and its
    job's follow-up is posted (see set_zone_status)."""
    conn = session.connection()
    # Each pool's targets in service and nameservers, read once.
    pools: dict[str, list[Any]] = {}
    kept = []
    for at in candidates:
        settled = settlements[at]
        if settled.status != objects.Status.ACTIVE or settled.covered_targets is None:
            kept.append(at)
            continue
        pool_id = locked[settled.zone_id].pool_id
        if pool_id not in pools:
            pools[pool_id] = list(conn.execute(_POOL_SERVERS, {"pool_id": pool_id}))
        if _covers(pools[pool_id], settled.covered_targets, settled.covered_nameservers):
            kept.append(at)
            continue
        queries.rows_changed(
            session,
            sa.update(models.Zone)
            .where(models.Zone.id == settled.zone_id)
            .values(status=objects.Status.PENDING, error=None),
        )
        if settled.if_pool_grows is not None:
            outbox.post(session, settled.if_pool_grows, settled.zone_id, settled.serial)
    return kept


def _by_outcome(
    indexes: list[int], settlements: Sequence[Settlement]
) -> dict[tuple[tuple[str, Any], ...], list[int]]:
    """The settlements to write, grouped by the columns each sets (a batch's zones
    mostly share one outcome: one statement writes them all)."""
    groups: dict[tuple[tuple[str, Any], ...], list[int]] = {}
    for at in indexes:
        settled = settlements[at]
        values: dict[str, Any] = {"status": settled.status, "error": settled.error}
        if settled.action is not None:
            values["action"] = settled.action
        groups.setdefault(tuple(sorted(values.items())), []).append(at)
    return groups


def _returned(rows: Iterable[Any]) -> dict[str, objects.Zone]:
    """Zones as an UPDATE ... RETURNING wrote them, by id."""
    return {row.id: objects.Zone(*row) for row in rows}


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


_DELETE = objects.Action.DELETE

# The live rows of the zones a job settles (parameter ``ids``), locked, in the order
# of their ids, with what each settlement depends on: is the zone's serial still the
# job's, which pool's servers must a job that makes it ACTIVE have covered, is its
# delete still asked for.
_LOCK_ZONES = queries.locking_zones(
    sa.select(models.Zone.id, models.Zone.pool_id, models.Zone.serial, models.Zone.action)
    .where(
        models.Zone.id.in_(sa.bindparam("ids", expanding=True)),
        models.Zone.deleted == models.LIVE,
    )
    .order_by(models.Zone.id)
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


_RETURNED = [_ZONES.c[name] for name in conversions.ZONE_FIELDS]

# The columns to set are the parameters given beside ``ids`` (zones this transaction
# has locked); each zone's row as written is returned, for its event.
_SET_ZONES = (
    sa.update(_ZONES)
    .where(_ZONES.c.id.in_(sa.bindparam("ids", expanding=True)))
    .returning(*_RETURNED)
)

# The zones whose delete jobs succeeded, soft-deleted (``deleted`` takes the
# zone's id, which frees its name); their rows as written are returned.
_FINISH_DELETES = (
    sa.update(_ZONES)
    .where(_ZONES.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(
        status=objects.Status.DELETED,
        action=objects.Action.NONE,
        deleted=_ZONES.c.id,
        deleted_at=sa.bindparam("b_deleted_at"),
        error=None,
    )
    .returning(*_RETURNED)
)

# The recordsets of zones made ACTIVE (``ids``) that the zone's serial covers and
# are not ACTIVE yet: a recordset changed later waits for its own job.
_RECORDSETS_ACTIVE = (
    sa.update(_RECORDSETS)
    .where(
        _RECORDSETS.c.zone_id.in_(sa.bindparam("ids", expanding=True)),
        _RECORDSETS.c.serial
        <= sa.select(_ZONES.c.serial).where(_ZONES.c.id == _RECORDSETS.c.zone_id).scalar_subquery(),
        sa.or_(
            _RECORDSETS.c.status != objects.Status.ACTIVE,
            _RECORDSETS.c.action != objects.Action.NONE,
        ),
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
