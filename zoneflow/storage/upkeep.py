"""What the producer's periodic passes read and write: the zones an audit asks
targets about, what targets were last recorded serving, zones to recover,
recover-zone jobs for zones left behind, the purge of old deleted zones.

Reads are Core statements returning plain tuples: an audit reads every zone
of its shards (100,000 and more) at each pass.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from zoneflow import objects
from zoneflow.storage import conversions, db, events, models, outbox, queries, status

_ZONES = cast(sa.Table, models.Zone.__table__)
_ROWS = cast(sa.Table, models.ZoneTargetStatus.__table__)
_OUTBOX = cast(sa.Table, models.JobOutbox.__table__)


@dataclasses.dataclass(frozen=True)
class KeptZone:
    """A zone as the producer's passes see it."""

    id: str
    name: str
    pool_id: str
    serial: int
    status: str
    action: str
    deleted: bool


_KEPT_COLUMNS = (
    _ZONES.c.id,
    _ZONES.c.name,
    _ZONES.c.pool_id,
    _ZONES.c.serial,
    _ZONES.c.status,
    _ZONES.c.action,
    _ZONES.c.deleted != models.LIVE,
)


def zones_to_audit(*, deleted_since: datetime.datetime) -> list[KeptZone]:
    """Live ACTIVE zones (what targets should serve), and zones deleted since
    ``deleted_since`` (what they should no longer serve)."""
    query = sa.select(*_KEPT_COLUMNS).where(
        sa.or_(
            sa.and_(_ZONES.c.deleted == models.LIVE, _ZONES.c.status == objects.Status.ACTIVE),
            sa.and_(_ZONES.c.deleted != models.LIVE, _ZONES.c.deleted_at >= deleted_since),
        )
    )
    with db.connection() as conn:
        return [KeptZone(*row) for row in conn.execute(query)]


def live_names() -> set[tuple[str, str]]:
    """(pool id, name) of every live zone: a deleted zone whose name lives again
    in its pool is that zone's now, not one to remove."""
    query = sa.select(_ZONES.c.pool_id, _ZONES.c.name).where(_ZONES.c.deleted == models.LIVE)
    with db.connection() as conn:
        return {(pool_id, name) for pool_id, name in conn.execute(query)}


def recorded_rows() -> dict[tuple[str, str], tuple[int, str]]:
    """(zone id, target id) -> (serial, status) of every per-target row."""
    query = sa.select(_ROWS.c.zone_id, _ROWS.c.target_id, _ROWS.c.serial, _ROWS.c.status)
    with db.connection() as conn:
        return {(z, t): (serial, state) for z, t, serial, state in conn.execute(query)}


def zones_to_recover(*, pending_before: datetime.datetime) -> list[KeptZone]:
    """Live zones in ERROR, or PENDING since before ``pending_before``, oldest first."""
    changed = sa.func.coalesce(_ZONES.c.updated_at, _ZONES.c.created_at)
    query = (
        sa.select(*_KEPT_COLUMNS)
        .where(
            _ZONES.c.deleted == models.LIVE,
            sa.or_(
                _ZONES.c.status == objects.Status.ERROR,
                sa.and_(_ZONES.c.status == objects.Status.PENDING, changed < pending_before),
            ),
        )
        .order_by(changed)
    )
    with db.connection() as conn:
        return [KeptZone(*row) for row in conn.execute(query)]


def zones_with_waiting_jobs() -> set[str]:
    """Zones whose job is still in the outbox, not yet on the board."""
    query = sa.select(_OUTBOX.c.zone_id).where(_OUTBOX.c.zone_id.is_not(None)).distinct()
    with db.connection() as conn:
        return {str(zone_id) for zone_id in conn.execute(query).scalars()}


def recover_left_zone(
    session: Session,
    zone_id: str,
    *,
    job: objects.JobOrder,
    pending_before: datetime.datetime,
    serial: int | None = None,
) -> objects.Zone | None:
    """Mark a zone PENDING and post ``job`` for its serial, if it is still one to
    recover: live, and in ERROR, or PENDING since before ``pending_before``, or
    ACTIVE at ``serial`` (the serial an audit found a target missing or behind).
    None, writing nothing, if it is not (a change or a job got to it meanwhile).
    In the caller's unit of work; the zone's row is locked first."""
    row = session.scalars(
        queries.locking_zones(
            sa.select(models.Zone).where(
                models.Zone.id == zone_id, models.Zone.deleted == models.LIVE
            )
        )
    ).first()
    if row is None:
        return None
    changed = row.updated_at or row.created_at
    if not (
        row.status == objects.Status.ERROR
        or (row.status == objects.Status.PENDING and changed < pending_before)
        or (serial is not None and row.status == objects.Status.ACTIVE and row.serial == serial)
    ):
        return None
    row.status, row.error = objects.Status.PENDING, None
    # Stamped here: the PENDING age counts from this job, not the last change.
    row.updated_at = models.utcnow()
    outbox.post(session, job, zone_id, row.serial)
    session.flush()
    return events.record(session, objects.EventTopic.ZONE, conversions.zone(row))


def remove_deleted_zone(session: Session, zone_id: str, *, job: objects.JobOrder) -> bool:
    """Post ``job`` (central's removal) for a deleted zone at its last serial,
    unless one waits in the outbox already. In the caller's unit of work."""
    row = session.execute(
        sa.select(_ZONES.c.serial).where(_ZONES.c.id == zone_id, _ZONES.c.deleted != models.LIVE)
    ).first()
    if row is None:
        return False
    waiting = session.execute(sa.select(_OUTBOX.c.id).where(_OUTBOX.c.zone_id == zone_id)).first()
    if waiting is not None:
        return False
    outbox.post(session, job, zone_id, row.serial)
    session.flush()
    return True


def record_findings(findings: Sequence[tuple[str, status.TargetUpdate]]) -> None:
    """(zone id, per-target update) rows in one transaction, each as a job records
    them (a served serial never goes back)."""
    with db.writer() as session:
        status.write_zones_target_statuses(session, findings)


def deleted_zones_before(before: datetime.datetime, *, limit: int) -> list[str]:
    """Ids of zones deleted before ``before``, oldest first."""
    query = (
        sa.select(_ZONES.c.id)
        .where(_ZONES.c.deleted != models.LIVE, _ZONES.c.deleted_at < before)
        .order_by(_ZONES.c.deleted_at)
        .limit(limit)
    )
    with db.connection() as conn:
        return [str(zone_id) for zone_id in conn.execute(query).scalars()]


def purge_zones(zone_ids: Sequence[str], *, before: datetime.datetime) -> int:
    """Delete these zones' rows (recordsets, per-target rows and changes go with
    them) if still deleted before ``before``; how many went."""
    if not zone_ids:
        return 0
    statement: Any = sa.delete(_ZONES).where(
        _ZONES.c.id.in_(list(zone_ids)),
        _ZONES.c.deleted != models.LIVE,
        _ZONES.c.deleted_at < before,
    )
    with db.transaction() as conn:
        return int(conn.execute(statement).rowcount or 0)
