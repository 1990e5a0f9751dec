"""Recordsets as stored: reads, and the writes of a recordset change, run in the
unit of work its caller (central) opened, as part of a :class:`zoneflow.storage.zones.ZoneChange`.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from oslo_db import exception as db_exc
from sqlalchemy.orm import Session, selectinload

from zoneflow import exceptions, objects
from zoneflow.storage import events, history, models, outbox, tables, zones


def recordset_query() -> sa.Select[models.RecordSet]:
    return sa.select(models.RecordSet).options(selectinload(models.RecordSet.records))


def related_recordsets(
    unit: Session, zone_id: str, zone_name: str, name: str
) -> list[tuple[str, str]]:
    """The (name, type) of the zone's recordsets at ``name``, at the names above it up
    to the apex and at the names below it: all a rule of :mod:`zoneflow.dns.rules`
    about ``name`` can involve, read in the caller's unit of work (after
    :func:`zones.begin_change` locked the zone)."""
    labels = name[: -len(zone_name)].rstrip(".").split(".") if name != zone_name else []
    above = [".".join([*labels[i:], zone_name]) for i in range(1, len(labels))] + [zone_name]
    below = "%" + "".join("/" + c if c in "/%_" else c for c in "." + name)
    rows = unit.execute(_RELATED, {"zone_id": zone_id, "names": [name, *above], "below": below})
    return [(row[0], row[1]) for row in rows]


# Built once: every recordset create reads its neighbours so.
_RELATED = sa.select(models.RecordSet.name, models.RecordSet.type).where(
    models.RecordSet.zone_id == sa.bindparam("zone_id"),
    sa.or_(
        models.RecordSet.name.in_(sa.bindparam("names", expanding=True)),
        # The names below: a LIKE pattern, its wildcards in the name escaped.
        models.RecordSet.name.like(sa.bindparam("below"), escape="/"),
    ),
)


def create_recordset(
    unit: Session,
    change: zones.ZoneChange,
    *,
    name: str,
    rtype: str,
    ttl: int | None,
    records: list[str],
    job: objects.JobOrder,
    description: str | None = None,
) -> objects.RecordSet:
    """Insert a recordset as PENDING/CREATE and a ``job`` for its zone, in the caller's
    unit of work, as part of ``change``.

    Core inserts, not the ORM's unit of work: this is the API's busiest write, and
    flushing new objects cost more CPU than the statements (issue 17)."""
    zone_id = change.zone.id
    created = objects.RecordSet(
        id=tables.new_id(),
        zone_id=zone_id,
        name=name,
        type=rtype,
        ttl=ttl,
        records=tuple(records),
        serial=change.serial,
        status=objects.Status.PENDING,
        action=objects.Action.CREATE,
        created_at=tables.utcnow(),
        updated_at=None,
        description=description,
    )
    columns = {f: getattr(created, f) for f in _RECORDSET_COLUMNS}
    try:
        unit.execute(_INSERT_RECORDSET, columns)
    except db_exc.DBDuplicateEntry:
        raise exceptions.DuplicateRecordSet(
            f"{objects.with_article(rtype)} recordset named {name} already exists: update it "
            "instead"
        ) from None
    _insert_records(unit, created)
    history.record_change(unit, zone_id, change.serials, after=history.served(change.zone, created))
    outbox.post(unit, job, zone_id, change.serial)
    return events.record(unit, objects.EventTopic.RECORDSET, created, zone=change.zone)


# The recordsets table's columns, each a field of objects.RecordSet.
_RECORDSET_COLUMNS = tuple(c.name for c in tables.recordsets.columns)


def update_recordset(
    unit: Session,
    change: zones.ZoneChange,
    current: objects.RecordSet,
    *,
    ttl: int | None,
    records: list[str] | None,
    set_ttl: bool,
    job: objects.JobOrder,
    description: str | None = None,
) -> objects.RecordSet:
    """Replace a recordset's records and/or TTL (``set_ttl``), and its description
    unless that is None ("" clears it), posting a ``job`` for its zone, in the caller's
    unit of work, as part of ``change``. ``current`` is the recordset as read in
    that unit of work.

    Core statements, not the ORM's unit of work: three changes in four are updates,
    and loading the row with its records and flushing them cost more CPU than the
    statements (issue 17)."""
    updated = dataclasses.replace(
        current,
        ttl=ttl if set_ttl else current.ttl,
        records=tuple(records) if records is not None else current.records,
        description=(description or None) if description is not None else current.description,
        serial=change.serial,
        status=objects.Status.PENDING,
        action=objects.Action.UPDATE,
        version=current.version + 1,
        updated_at=tables.utcnow(),
    )
    if updated.records != current.records:
        # The old records go first: a record kept across the update would collide
        # with itself on (recordset_id, data).
        unit.execute(_DELETE_RECORDS, {"recordset_id": current.id})
        _insert_records(unit, updated)
    unit.execute(
        _UPDATE_RECORDSET,
        {f"new_{f}": getattr(updated, f) for f in _UPDATED_COLUMNS} | {"recordset_id": current.id},
    )
    history.record_change(
        unit,
        change.zone.id,
        change.serials,
        before=history.served(change.zone, current),
        after=history.served(change.zone, updated),
    )
    outbox.post(unit, job, change.zone.id, change.serial)
    return events.record(unit, objects.EventTopic.RECORDSET, updated, zone=change.zone)


def delete_recordset(
    unit: Session, change: zones.ZoneChange, current: objects.RecordSet, *, job: objects.JobOrder
) -> objects.RecordSet:
    """Delete a recordset (as read in the caller's unit of work) and post a ``job`` for
    its zone, in that unit of work, as part of ``change``. Its records go with it
    (ON DELETE CASCADE)."""
    unit.execute(sa.delete(tables.recordsets).where(tables.recordsets.c.id == current.id))
    history.record_change(
        unit, change.zone.id, change.serials, before=history.served(change.zone, current)
    )
    gone = dataclasses.replace(
        current,
        serial=change.serial,
        status=objects.Status.PENDING,
        action=objects.Action.DELETE,
    )
    outbox.post(unit, job, change.zone.id, change.serial)
    return events.record(unit, objects.EventTopic.RECORDSET, gone, zone=change.zone)


def _insert_records(unit: Session, recordset: objects.RecordSet) -> None:
    rows = [
        {"recordset_id": recordset.id, "position": i, "data": d}
        for i, d in enumerate(recordset.records)
    ]
    if rows:
        # One record (most recordsets) as a single execute: a list goes through executemany.
        unit.execute(_INSERT_RECORDS, rows[0] if len(rows) == 1 else rows)


# Core statements built once, for the writes of every update and delete.
_INSERT_RECORDSET = sa.insert(tables.recordsets)
_INSERT_RECORDS = sa.insert(tables.records)
_DELETE_RECORDS = sa.delete(tables.records).where(
    tables.records.c.recordset_id == sa.bindparam("recordset_id")
)
# What an update writes of a recordset: objects.RecordSet's fields, as columns.
_UPDATED_COLUMNS = (
    "ttl",
    "description",
    "serial",
    "status",
    "action",
    "version",
    "updated_at",
)
_UPDATE_RECORDSET = (
    sa.update(tables.recordsets)
    .where(tables.recordsets.c.id == sa.bindparam("recordset_id"))
    .values({f: sa.bindparam(f"new_{f}") for f in _UPDATED_COLUMNS})
)
