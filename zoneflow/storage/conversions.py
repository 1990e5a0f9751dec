"""Value objects (:mod:`zoneflow.objects`) from rows: what storage's functions return."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from zoneflow import objects
from zoneflow.storage import models

# A pool's parts, by the name of its relationship.
POOL_PARTS = ("ns_records", "nameservers", "targets", "also_notifies")
T = TypeVar("T")


def pool(row: Any, parts: Mapping[str, Sequence[Any]] | None = None) -> objects.Pool:
    """A pool from its row and its parts (ORM rows: the row's relationships)."""
    if parts is None:
        parts = {name: getattr(row, name) for name in POOL_PARTS}
    return objects.Pool(
        id=row.id,
        name=row.name,
        description=row.description,
        threshold_percentage=row.threshold_percentage,
        ns_records=tuple(objects.NsRecord(r.hostname, r.priority) for r in parts["ns_records"]),
        nameservers=tuple(objects.HostPort(n.host, n.port) for n in parts["nameservers"]),
        targets=tuple(target(t) for t in parts["targets"] if t.retired_at is None),
        also_notifies=tuple(objects.HostPort(a.host, a.port) for a in parts["also_notifies"]),
        provisioning=row.provisioning,
        catalog_zone=row.catalog_zone,
        catalog_zone_refresh=row.catalog_zone_refresh,
        retired_targets=tuple(target(t) for t in parts["targets"] if t.retired_at is not None),
    )


def target(row: models.PoolTarget) -> objects.PoolTarget:
    return objects.PoolTarget(
        id=row.id,
        pool_id=row.pool_id,
        type=row.type,
        description=row.description,
        masters=tuple(objects.HostPort(m["host"], int(m["port"])) for m in row.masters),
        options=dict(row.options),
        retired_at=row.retired_at,
        drain_error=row.drain_error,
    )


def value(cls: type[T], row: Any, **computed: Any) -> T:
    """A value object from a row: same-named columns copied, the rest given."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return cls(**{n: computed[n] if n in computed else getattr(row, n) for n in names})


def zone(row: models.Zone) -> objects.Zone:
    return value(objects.Zone, row)


def recordset(row: models.RecordSet) -> objects.RecordSet:
    return value(objects.RecordSet, row, records=tuple(r.data for r in row.records))


ZONE_FIELDS = [field.name for field in dataclasses.fields(objects.Zone)]
# A zone's row as objects.Zone takes it (``objects.Zone(*row)``): its fields, in order.
ZONE_ROW = sa.select(*(getattr(models.Zone, name) for name in ZONE_FIELDS))
# A zone's row by its id (bound as ``id``), live or deleted.
ZONE_BY_ID = ZONE_ROW.where(models.Zone.id == sa.bindparam("id"))
