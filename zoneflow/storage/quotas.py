"""Quotas as stored: each project's own limits, and what a project uses now.

A project without a row for a resource has the ``[quota]`` default
(:mod:`zoneflow.central.quotas` decides); these functions read and write
the rows and count what the limits apply to, in the unit of work of the
change they limit (see :func:`lock_project`), where central checks them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import sqlalchemy as sa
from oslo_db import exception as db_exc
from sqlalchemy.orm import Session

from zoneflow import objects
from zoneflow.storage import db, models


def project_quotas(project_id: str, *, session: Session | None = None) -> dict[str, int]:
    """The limits set for a project (resource -> hard limit); unset ones are absent.
    Read in ``session`` (a unit of work's) or in a read transaction of its own."""
    if session is None:
        with db.reader() as reading:
            return project_quotas(project_id, session=reading)
    rows = session.execute(_PROJECT_QUOTAS, {"project_id": project_id})
    return {resource: int(limit) for resource, limit in rows}


# Built once: every recordset change reads its project's quotas.
_PROJECT_QUOTAS = sa.select(models.Quota.resource, models.Quota.hard_limit).where(
    models.Quota.project_id == sa.bindparam("project_id")
)


@db.retried
def set_quotas(project_id: str, limits: Mapping[str, int]) -> None:
    """Set some of a project's limits, in one transaction."""
    with db.writer() as session:
        for resource, hard_limit in limits.items():
            updated = session.execute(
                sa.update(models.Quota)
                .where(models.Quota.project_id == project_id, models.Quota.resource == resource)
                .values(hard_limit=hard_limit, updated_at=models.utcnow())
            )
            if updated.rowcount:  # type: ignore[attr-defined]
                continue
            try:
                with session.begin_nested():
                    session.add(
                        models.Quota(
                            project_id=project_id, resource=resource, hard_limit=hard_limit
                        )
                    )
            except db_exc.DBDuplicateEntry:
                # Set by another request at the same moment: this one is newer.
                session.execute(
                    sa.update(models.Quota)
                    .where(models.Quota.project_id == project_id, models.Quota.resource == resource)
                    .values(hard_limit=hard_limit, updated_at=models.utcnow())
                )


@db.retried
def reset_quotas(project_id: str) -> None:
    """Forget a project's own limits: the defaults hold again."""
    with db.writer() as session:
        session.execute(sa.delete(models.Quota).where(models.Quota.project_id == project_id))


def lock_project(session: Session, project_id: str) -> None:
    """Make any other transaction that locks this project's quota wait until this one ends.

    On PostgreSQL an advisory transaction lock keyed on the project: a count
    read after it sees every zone the transaction before it committed (READ
    COMMITTED reads a fresh snapshot per statement), so the count and the
    insert are one step. SQLite needs none: writer() began with BEGIN
    IMMEDIATE, so the database is this transaction's alone.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(project_id))))


def _lock_key(project_id: str) -> int:
    """A 64-bit advisory lock key for a project's quota (two projects sharing one only
    wait for each other, they never miscount)."""
    digest = hashlib.sha256(f"zoneflow quota {project_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def count_zones(session: Session, project_id: str) -> int:
    """A project's live zones, not counting those being deleted."""
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(models.Zone)
            .where(
                models.Zone.project_id == project_id,
                models.Zone.deleted == models.LIVE,
                models.Zone.action != objects.Action.DELETE,
            )
        )
        or 0
    )


def zone_usage(zone_id: str, *, session: Session | None = None) -> tuple[int, int]:
    """How many recordsets and how many records a zone holds, read in ``session`` (a
    unit of work's, which has locked the zone) or in a read transaction of its own."""
    if session is None:
        with db.reader() as reading:
            return zone_usage(zone_id, session=reading)
    counted = session.execute(_ZONE_USAGE, {"zone_id": zone_id}).one()
    return int(counted[0] or 0), int(counted[1] or 0)


# Both counts in one statement built once: one round trip in the change's transaction.
_ZONE_USAGE = sa.select(
    sa.select(sa.func.count())
    .select_from(models.RecordSet)
    .where(models.RecordSet.zone_id == sa.bindparam("zone_id"))
    .scalar_subquery(),
    sa.select(sa.func.count())
    .select_from(models.Record)
    .join(models.RecordSet, models.RecordSet.id == models.Record.recordset_id)
    .where(models.RecordSet.zone_id == sa.bindparam("zone_id"))
    .scalar_subquery(),
)
