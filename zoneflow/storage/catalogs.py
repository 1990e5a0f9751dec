"""Catalog zones as stored: each pool's catalog, and its serial bumped when a zone
joins or leaves the pool.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from zoneflow import objects
from zoneflow.storage import db, models


def catalog_changed(session: Session, pool_id: str) -> None:
    """A zone joined or left the pool: its catalog zone gets a new serial."""
    session.execute(
        sa.update(models.Pool)
        .where(models.Pool.id == pool_id, models.Pool.catalog_zone.is_not(None))
        .values(catalog_serial=models.Pool.catalog_serial + 1)
    )


def list_catalogs() -> dict[str, str]:
    """Every pool's catalog zone name (lower case, absolute) and the pool's id."""
    with db.reader() as session:
        rows = session.execute(
            sa.select(models.Pool.catalog_zone, models.Pool.id).where(
                models.Pool.catalog_zone.is_not(None)
            )
        )
        return {str(name): pool_id for name, pool_id in rows}


def get_catalog(pool_id: str) -> objects.Catalog | None:
    """A pool's catalog: its serial and the zones it lists (live, not being deleted)."""
    with db.reader() as session:
        pool = session.get(models.Pool, pool_id)
        if pool is None or pool.catalog_zone is None:
            return None
        members = session.execute(
            sa.select(models.Zone.id, models.Zone.name)
            .where(
                models.Zone.pool_id == pool_id,
                models.Zone.deleted == models.LIVE,
                models.Zone.action != objects.Action.DELETE,
            )
            .order_by(models.Zone.name)
        )
        return objects.Catalog(
            pool_id=pool_id,
            name=pool.catalog_zone,
            serial=pool.catalog_serial,
            refresh=pool.catalog_zone_refresh,
            members=tuple((zone_id, name) for zone_id, name in members),
        )
