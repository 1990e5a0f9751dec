"""Catalog zones as stored: each pool's catalog, its serial bumped when a zone joins or
leaves the pool, and its members read for a transfer.

A catalog's serial and name live on its pool's row, so the question asked most
(the catalog's SOA, by every consumer at every refresh and NOTIFY) reads one row,
never the members; only a transfer reads those, streamed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from zoneflow import objects
from zoneflow.storage import db, models, options

CONF = options.CONF

_GET_CATALOG = sa.select(
    models.Pool.id,
    models.Pool.catalog_zone,
    models.Pool.catalog_serial,
    models.Pool.catalog_zone_refresh,
).where(models.Pool.id == sa.bindparam("pool_id"), models.Pool.catalog_zone.is_not(None))

# The pool's live zones, not being deleted. Unordered: a consumer reads the
# whole catalog before acting on it, and leaving the order out spares a sort.
_MEMBERS = sa.select(models.Zone.id, models.Zone.name).where(
    models.Zone.pool_id == sa.bindparam("pool_id"),
    models.Zone.deleted == models.LIVE,
    models.Zone.action != objects.Action.DELETE,
)


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


def _catalog(row: sa.Row[str, str | None, int, int] | None) -> objects.Catalog | None:
    if row is None:
        return None
    pool_id, name, serial, refresh = row
    assert name is not None  # the statement asks for pools that have one
    return objects.Catalog(pool_id=pool_id, name=name, serial=serial, refresh=refresh)


def get_catalog(pool_id: str) -> objects.Catalog | None:
    """A pool's catalog zone: its name, serial and refresh (one row; no members)."""
    with db.connection() as conn:
        return _catalog(conn.execute(_GET_CATALOG, {"pool_id": pool_id}).first())


def list_members(pool_id: str) -> list[tuple[str, str]]:
    """A pool's catalog members as (zone id, zone name): its live zones not being deleted."""
    with db.connection() as conn:
        return [(zone_id, name) for zone_id, name in conn.execute(_MEMBERS, {"pool_id": pool_id})]


@contextlib.contextmanager
def catalog_for_transfer(
    pool_id: str,
) -> Iterator[tuple[objects.Catalog | None, Iterator[tuple[str, str]]]]:
    """A pool's catalog and its members as (zone id, zone name), for one transfer.

    Read in one transaction, so the members are those of the serial returned
    even while zones come and go (PostgreSQL: REPEATABLE READ; SQLite's WAL
    readers see one snapshot anyway), ``[storage] transfer_batch_size`` rows
    at a time; the transaction stays open until the block ends. No catalog
    (the pool lost it meanwhile): None and no members.
    """
    # A plain connection, as for a zone's transfer: mdns reads the stream on
    # whichever pool thread is free, a batch after another.
    with db.snapshot() as connection:
        catalog = _catalog(connection.execute(_GET_CATALOG, {"pool_id": pool_id}).first())
        if catalog is None:
            yield None, iter(())
            return
        members = connection.execution_options(yield_per=CONF.storage.transfer_batch_size).execute(
            _MEMBERS, {"pool_id": pool_id}
        )
        yield catalog, cast(Iterator[tuple[str, str]], members)
