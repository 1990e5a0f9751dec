"""Catalog zones as stored: each pool's catalog, its serial bumped when a zone joins or
leaves the pool, its members read for a transfer, and each serial's member change
kept for IXFR.

A catalog's serial and name live on its pool's row, so the question asked most
(the catalog's SOA, by every consumer at every refresh and NOTIFY) reads one row,
never the members; only a transfer reads those, streamed. Each bump of the
serial writes one ``catalog_changes`` row in the same transaction (the zone that
joined or left), so a consumer a few serials behind is sent those members
alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
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


_CHANGES = cast(sa.Table, models.CatalogChange.__table__)

_POOLS = cast(sa.Table, models.Pool.__table__)

_BUMP = (
    sa.update(_POOLS)
    .where(_POOLS.c.id == sa.bindparam("b_pool_id"), _POOLS.c.catalog_zone.is_not(None))
    .values(catalog_serial=_POOLS.c.catalog_serial + 1)
    .returning(_POOLS.c.catalog_serial)
)


def catalog_changed(
    session: Session, pool_id: str, zone_id: str, zone_name: str, *, joined: bool
) -> None:
    """A zone joined or left the pool: its catalog zone gets a new serial, and the
    change is kept for IXFR (the newest ``[storage] catalog_change_history``).

    The UPDATE locks the pool's row until the transaction ends, so two zones
    joining at once take two serials one after the other.
    """
    serial = session.execute(_BUMP, {"b_pool_id": pool_id}).scalar()
    if serial is None:
        return  # the pool has no catalog
    session.execute(
        sa.insert(_CHANGES).values(
            pool_id=pool_id, serial=serial, zone_id=zone_id, zone_name=zone_name, joined=joined
        )
    )
    # One row per serial: those this far behind are past the history kept.
    session.execute(
        sa.delete(_CHANGES).where(
            _CHANGES.c.pool_id == pool_id,
            _CHANGES.c.serial <= serial - CONF.storage.catalog_change_history,
        )
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


@dataclasses.dataclass(frozen=True)
class CatalogDifference:
    """What brings a consumer from one serial of a catalog to ``catalog.serial``: the
    members (zone id, zone name) that left and those that joined since."""

    catalog: objects.Catalog
    left: list[tuple[str, str]]
    joined: list[tuple[str, str]]


_CHANGES_SINCE = (
    sa.select(_CHANGES.c.serial, _CHANGES.c.zone_id, _CHANGES.c.zone_name, _CHANGES.c.joined)
    .where(
        _CHANGES.c.pool_id == sa.bindparam("pool_id"),
        _CHANGES.c.serial > sa.bindparam("serial"),
    )
    .order_by(_CHANGES.c.serial)
)


def catalog_changes_since(pool_id: str, serial: int) -> CatalogDifference | None:
    """The members that left and joined the pool's catalog since ``serial``, netted into
    one difference (a zone that joined and left since is in neither); None when the
    history does not reach back to ``serial`` (or the pool has no catalog), and the
    consumer needs the whole catalog.

    The catalog's serial and its changes are read in one snapshot, so the
    difference ends exactly at the serial returned.
    """
    with db.snapshot() as connection:
        catalog = _catalog(connection.execute(_GET_CATALOG, {"pool_id": pool_id}).first())
        if catalog is None:
            return None
        rows = connection.execute(_CHANGES_SINCE, {"pool_id": pool_id, "serial": serial}).all()
    if serial > catalog.serial:
        return None  # a consumer ahead of the catalog (a restored database): start again
    # Every serial from the consumer's to the catalog's has its row (serials are unique
    # per pool: as many rows as serials, ending at the catalog's), or one is missing:
    # trimmed, or a serial from before the history was kept.
    if len(rows) != catalog.serial - serial or (rows and rows[-1].serial != catalog.serial):
        return None
    left: dict[str, str] = {}
    joined: dict[str, str] = {}
    for row in rows:
        if row.joined:
            joined[row.zone_id] = row.zone_name
        elif joined.pop(row.zone_id, None) is None:
            left[row.zone_id] = row.zone_name
    return CatalogDifference(catalog, list(left.items()), list(joined.items()))
