"""When rows were made and last changed, for objects whose values do not carry it."""

from __future__ import annotations

import datetime

import sqlalchemy as sa

from zoneflow.storage import db, models


def pool_timestamps() -> dict[str, tuple[datetime.datetime | None, datetime.datetime | None]]:
    """Each pool's (created_at, updated_at), by pool id."""
    with db.reader() as session:
        rows = session.execute(
            sa.select(models.Pool.id, models.Pool.created_at, models.Pool.updated_at)
        )
        return {pool_id: (created, updated) for pool_id, created, updated in rows}
