"""What the propagation model (zoneflow.model) is built from: live zones' wanted
serials, the per-target rows, and the transfers mdns served, for one zone, one
pool or all of them. Core statements on a plain connection: a pool of 100,000
zones is read as rows, not ORM objects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from zoneflow import objects
from zoneflow.storage import db, models


@dataclasses.dataclass(frozen=True)
class Wanted:
    """What a live zone is to be on its pool's targets: its serial."""

    zone_id: str
    pool_id: str
    project_id: str | None
    serial: int


@dataclasses.dataclass(frozen=True)
class Picture:
    """Storage's side of the propagation model, read in one transaction."""

    zones: tuple[Wanted, ...]
    rows: tuple[objects.TargetStatus, ...]
    # (zone id, the transfer mdns last served a client address).
    transfers: tuple[tuple[str, objects.ZoneTransfer], ...]
    # The inspector's judgement of each target that has one (zoneflow.storage.health).
    targets: tuple[objects.TargetState, ...] = ()


_TARGET_FIELDS = [f.name for f in dataclasses.fields(objects.TargetStatus)]
_TRANSFER_FIELDS = [f.name for f in dataclasses.fields(objects.ZoneTransfer)]


def _of_zones(query: Any, *, pool_id: str | None, zone_ids: Sequence[str] | None) -> Any:
    """``query`` kept to live zones: of one pool, or these ones."""
    query = query.where(models.Zone.deleted == models.LIVE)
    if pool_id is not None:
        query = query.where(models.Zone.pool_id == pool_id)
    if zone_ids is not None:
        query = query.where(models.Zone.id.in_(list(zone_ids)))
    return query


def read(*, pool_id: str | None = None, zone_ids: Sequence[str] | None = None) -> Picture:
    """The live zones (of one pool, or these ones; else all), their per-target rows and
    the transfers mdns served of them, as one snapshot.

    Targets' health and maintenance are read too (every target_states row: one
    per target the inspector judged DOWN or an operator put in maintenance), so
    that a model built after a restart knows the states published before it."""
    status, transfer = models.ZoneTargetStatus, models.ZoneTransfer
    zones = sa.select(
        models.Zone.id.label("zone_id"),
        models.Zone.pool_id,
        models.Zone.project_id,
        models.Zone.serial,
    )
    rows = sa.select(*(getattr(status, name) for name in _TARGET_FIELDS)).join(
        models.Zone, models.Zone.id == status.zone_id
    )
    transfers = sa.select(
        transfer.zone_id, *(getattr(transfer, name) for name in _TRANSFER_FIELDS)
    ).join(models.Zone, models.Zone.id == transfer.zone_id)
    with db.snapshot() as conn:
        zones_read, rows_read, transfers_read = (
            conn.execute(_of_zones(query, pool_id=pool_id, zone_ids=zone_ids)).all()
            for query in (zones, rows, transfers)
        )
        states_read = conn.execute(_TARGET_STATES).all()
    return Picture(
        zones=tuple(Wanted(**row._mapping) for row in zones_read),
        rows=tuple(objects.TargetStatus(**row._mapping) for row in rows_read),
        transfers=tuple(
            (row.zone_id, objects.ZoneTransfer(**{n: row._mapping[n] for n in _TRANSFER_FIELDS}))
            for row in transfers_read
        ),
        targets=tuple(objects.TargetState(**row._mapping) for row in states_read),
    )


_TARGET_STATES = sa.select(
    *(getattr(models.TargetState, f.name) for f in dataclasses.fields(objects.TargetState))
)
