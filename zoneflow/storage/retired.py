"""Retired targets: the zones still to delete from one, what its drain did, and
forgetting it once drained.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from zoneflow import objects
from zoneflow.storage import conversions, db, events, models, queries, status


def drain_query(pool_id: str, target_id: str) -> sa.Select[Any]:
    """The zones to delete from a retired target, by name.

    Every live zone of its pool, and every deleted one the target was not
    recorded as having deleted (a delete job that started before the
    retirement skips the target), unless a DELETED row says it is done.
    """
    done = aliased(models.ZoneTargetStatus)
    return (
        sa.select(*(getattr(models.Zone, name) for name in conversions.ZONE_FIELDS))
        .outerjoin(done, sa.and_(done.zone_id == models.Zone.id, done.target_id == target_id))
        .where(
            models.Zone.pool_id == pool_id,
            sa.or_(done.status.is_(None), done.status != objects.Status.DELETED),
            sa.or_(models.Zone.deleted == models.LIVE, done.zone_id.is_not(None)),
        )
    )


def zones_to_drain(
    target_id: str, *, after: tuple[str, str] = ("", ""), limit: int = 100
) -> list[objects.Zone]:
    """The next ``limit`` zones (by name, id) after ``after`` to delete from a retired target."""
    with db.reader() as session:
        target = session.get(models.PoolTarget, target_id)
        if target is None or target.retired_at is None:
            return []
        query = (
            drain_query(target.pool_id, target_id)
            .where(sa.tuple_(models.Zone.name, models.Zone.id) > after)
            .order_by(models.Zone.name, models.Zone.id)
            .limit(limit)
        )
        return [objects.Zone(*row) for row in session.execute(query)]


def count_zones_to_drain(target_id: str) -> int:
    """How many zones a retired target still has to have deleted (0 if it is gone)."""
    with db.reader() as session:
        target = session.get(models.PoolTarget, target_id)
        if target is None or target.retired_at is None:
            return 0
        return queries.count(session, drain_query(target.pool_id, target_id))


def record_drained(target_id: str, outcomes: Sequence[tuple[objects.Zone, str | None]]) -> None:
    """Record, per zone, that a retired target deleted it (error None) or why it did not."""
    if not outcomes:
        return
    now = models.utcnow()
    with db.writer() as session:
        existing = {
            row.zone_id: row
            for row in session.scalars(
                sa.select(models.ZoneTargetStatus).where(
                    models.ZoneTargetStatus.target_id == target_id,
                    models.ZoneTargetStatus.zone_id.in_([zone.id for zone, _ in outcomes]),
                )
            )
        }
        written = []
        for zone, error in outcomes:
            row = existing.get(zone.id)
            if row is None:
                row = models.ZoneTargetStatus(zone_id=zone.id, target_id=target_id, serial=0)
                session.add(row)
            row.status = objects.Status.DELETED if error is None else objects.Status.ERROR
            row.error = None if error is None else f"not deleted from the retired target: {error}"
            row.updated_at = now
            written.append(row)
        session.flush()
        status.publish_target_rows(
            session, [conversions.value(objects.TargetStatus, row) for row in written]
        )


def set_drain_error(target_id: str, error: str | None) -> None:
    """Record why a retired target's drain stopped (None: it is running again)."""
    with db.writer() as session:
        queries.rows_changed(
            session,
            sa.update(models.PoolTarget)
            .where(models.PoolTarget.id == target_id, models.PoolTarget.retired_at.is_not(None))
            .values(drain_error=error),
        )


def drop_retired_target(target_id: str) -> bool:
    """Forget a drained target: its row and its per-zone rows (published as one
    target event). False if it is in service again (listed by a newer pools file)
    or already gone."""
    with db.writer() as session:
        pool_id = session.scalar(
            sa.delete(models.PoolTarget)
            .where(models.PoolTarget.id == target_id, models.PoolTarget.retired_at.is_not(None))
            .returning(models.PoolTarget.pool_id)
        )
        if pool_id is None:
            return False
        session.execute(
            sa.delete(models.ZoneTargetStatus).where(models.ZoneTargetStatus.target_id == target_id)
        )
        events.write(session, [events.target_removed(target_id, pool_id)])
        return True
