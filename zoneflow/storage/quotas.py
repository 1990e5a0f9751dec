"""Quotas as stored: each project's own limits, and what a project uses now.

A project without a row for a resource has the ``[quota]`` default
(:mod:`zoneflow.central.quotas` decides); these functions read and write
the rows and count what the limits apply to.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from oslo_db import exception as db_exc

from zoneflow import objects
from zoneflow.storage import db, models


def project_quotas(project_id: str) -> dict[str, int]:
    """The limits set for a project (resource -> hard limit); unset ones are absent."""
    with db.reader() as session:
        rows = session.execute(
            sa.select(models.Quota.resource, models.Quota.hard_limit).where(
                models.Quota.project_id == project_id
            )
        )
        return {resource: int(limit) for resource, limit in rows}


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


def reset_quotas(project_id: str) -> None:
    """Forget a project's own limits: the defaults hold again."""
    with db.writer() as session:
        session.execute(sa.delete(models.Quota).where(models.Quota.project_id == project_id))


def count_zones(project_id: str) -> int:
    """A project's live zones, not counting those being deleted."""
    with db.reader() as session:
        return int(
            session.scalar(
                sa.select(sa.func.count())
                .select_from(models.Zone)
                .where(
                    models.Zone.project_id == project_id,
                    models.Zone.deleted == models.LIVE,
                    models.Zone.action != objects.DELETE,
                )
            )
            or 0
        )


def zone_usage(zone_id: str) -> tuple[int, int]:
    """How many recordsets and how many records a zone holds."""
    with db.reader() as session:
        recordsets = session.scalar(
            sa.select(sa.func.count())
            .select_from(models.RecordSet)
            .where(models.RecordSet.zone_id == zone_id)
        )
        records = session.scalar(
            sa.select(sa.func.count())
            .select_from(models.Record)
            .join(models.RecordSet, models.RecordSet.id == models.Record.recordset_id)
            .where(models.RecordSet.zone_id == zone_id)
        )
        return int(recordsets or 0), int(records or 0)
