"""Reads of zones and recordsets as Core statements, without the ORM.

These are storage's only way to read a zone or list recordsets, for every
caller; they use :mod:`zoneflow.storage.tables` and a plain connection, so a
process that only reads (``zoneflow zone list``, configured with
``db.configure(sessions=False)``) loads neither the ORM models nor oslo.db.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from zoneflow import exceptions, objects
from zoneflow.storage import db
from zoneflow.storage.tables import LIVE, records, recordsets, zones

if TYPE_CHECKING:  # the ORM is not loaded by a process that only reads
    from sqlalchemy.orm import Session

_ZONE_COLUMNS = [zones.c[field.name] for field in dataclasses.fields(objects.Zone)]
_RECORDSET_COLUMNS = [
    recordsets.c[field.name]
    for field in dataclasses.fields(objects.RecordSet)
    if field.name != "records"
]


# Built once: every request about a zone reads it first.
_GET_ZONE = sa.select(*_ZONE_COLUMNS).where(
    sa.or_(zones.c.id == sa.bindparam("ref"), zones.c.name == sa.bindparam("name")),
    zones.c.deleted == LIVE,
)
_GET_PROJECT_ZONE = _GET_ZONE.where(zones.c.project_id == sa.bindparam("project_id"))


def get_zone(ref: str, *, project_id: str | None = None) -> objects.Zone:
    """A live zone by id or name (with or without the trailing dot)."""
    name = ref.lower() if ref.endswith(".") else ref.lower() + "."
    query = _GET_ZONE if project_id is None else _GET_PROJECT_ZONE
    with db.connection() as conn:
        row = conn.execute(query, {"ref": ref, "name": name, "project_id": project_id}).first()
    if row is None:
        raise exceptions.ZoneNotFound(f"zone {ref!r} does not exist")
    return objects.Zone(**row._mapping)


def list_zones(*, project_id: str | None = None) -> list[objects.Zone]:
    query = sa.select(*_ZONE_COLUMNS).where(zones.c.deleted == LIVE)
    if project_id is not None:
        query = query.where(zones.c.project_id == project_id)
    with db.connection() as conn:
        rows = conn.execute(query.order_by(zones.c.name)).all()
    return [objects.Zone(**row._mapping) for row in rows]


def list_recordsets(zone_id: str, *, within: Session | None = None) -> list[objects.RecordSet]:
    """A zone's recordsets by name and type, each with its records in their order;
    read ``within`` the caller's unit of work if given, else on a connection of its own."""
    of_zone = recordsets.c.zone_id == zone_id
    with _reading(within) as conn:
        rows = conn.execute(
            sa.select(*_RECORDSET_COLUMNS)
            .where(of_zone)
            .order_by(recordsets.c.name, recordsets.c.type)
        ).all()
        data: dict[str, list[str]] = {row.id: [] for row in rows}
        for recordset_id, value in conn.execute(
            sa.select(records.c.recordset_id, records.c.data)
            .join(recordsets, recordsets.c.id == records.c.recordset_id)
            .where(of_zone)
            .order_by(records.c.recordset_id, records.c.position)
        ):
            data.setdefault(recordset_id, []).append(value)
    return [_recordset(row._mapping, data[row.id]) for row in rows]


def get_recordset(
    zone_id: str, ref: str, rtype: str | None = None, *, within: Session | None = None
) -> objects.RecordSet:
    """A recordset of the zone by id, or by absolute name and type, with its records;
    read ``within`` the caller's unit of work if given (a change that has locked the
    zone: what it reads holds until it commits), else on a connection of its own."""
    query = _RECORDSET_BY_ID if rtype is None else _RECORDSET_BY_NAME
    with _reading(within) as conn:
        rows = conn.execute(query, {"zone_id": zone_id, "ref": ref, "rtype": rtype}).all()
    if not rows:
        what = f"{ref} {rtype}" if rtype else ref
        raise exceptions.RecordSetNotFound(f"recordset {what} does not exist in this zone")
    # A row a record, the recordset's columns in each (one row, data NULL: no records).
    data = [row.data for row in rows if row.data is not None]
    return _recordset({c.name: rows[0]._mapping[c.name] for c in _RECORDSET_COLUMNS}, data)


# A recordset and its records in one statement built once: every update and delete
# reads its recordset so.
_RECORDSET_WITH_RECORDS = (
    sa.select(*_RECORDSET_COLUMNS, records.c.data)
    .outerjoin(records, records.c.recordset_id == recordsets.c.id)
    .where(recordsets.c.zone_id == sa.bindparam("zone_id"))
    .order_by(records.c.position)
)
_RECORDSET_BY_ID = _RECORDSET_WITH_RECORDS.where(recordsets.c.id == sa.bindparam("ref"))
_RECORDSET_BY_NAME = _RECORDSET_WITH_RECORDS.where(
    recordsets.c.name == sa.bindparam("ref"), recordsets.c.type == sa.bindparam("rtype")
)


@contextlib.contextmanager
def _reading(within: Session | None) -> Iterator[sa.Connection | Session]:
    if within is not None:
        yield within
        return
    with db.connection() as conn:
        yield conn


def _recordset(values: Any, data: list[str]) -> objects.RecordSet:
    return objects.RecordSet(**values, records=tuple(data))
