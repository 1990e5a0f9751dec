"""Recordsets as stored: reads, and the writes of a recordset change, run in the
unit of work its caller (central) opened, as part of a :class:`zoneflow.storage.zones.ZoneChange`.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from oslo_db import exception as db_exc
from sqlalchemy.orm import Session, selectinload

from zoneflow import exceptions, objects
from zoneflow.storage import conversions, events, history, models, outbox, tables, zones


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
    query = sa.select(models.RecordSet.name, models.RecordSet.type).where(
        models.RecordSet.zone_id == zone_id,
        sa.or_(
            models.RecordSet.name.in_([name, *above]),
            models.RecordSet.name.endswith("." + name, autoescape=True),
        ),
    )
    return [(row[0], row[1]) for row in unit.execute(query)]


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
        unit.execute(sa.insert(tables.recordsets).values(columns))
    except db_exc.DBDuplicateEntry:
        raise exceptions.DuplicateRecordSet(
            f"{objects.with_article(rtype)} recordset named {name} already exists: update it "
            "instead"
        ) from None
    if records:
        unit.execute(
            sa.insert(tables.records),
            [{"recordset_id": created.id, "position": i, "data": d} for i, d in enumerate(records)],
        )
    history.record_change(unit, zone_id, change.serials, after=history.served(change.zone, created))
    zones.mark_updating(unit, zone_id)
    outbox.post(unit, job, zone_id, change.serial)
    return events.record(unit, objects.EventTopic.RECORDSET, created, zone=change.zone)


# The recordsets table's columns, each a field of objects.RecordSet.
_RECORDSET_COLUMNS = tuple(c.name for c in tables.recordsets.columns)


def recordset_size(unit: Session, zone_id: str, recordset_id: str) -> int:
    """How many records a recordset of the zone holds, read in the caller's unit of work."""
    return len(_recordset_row(unit, zone_id, recordset_id).records)


def update_recordset(
    unit: Session,
    change: zones.ZoneChange,
    recordset_id: str,
    *,
    ttl: int | None,
    records: list[str] | None,
    set_ttl: bool,
    job: objects.JobOrder,
    description: str | None = None,
) -> objects.RecordSet:
    """Replace a recordset's records and/or TTL (``set_ttl``), and its description
    unless that is None ("" clears it), posting a ``job`` for its zone, in the caller's
    unit of work, as part of ``change``."""
    zone_id = change.zone.id
    row = _recordset_row(unit, zone_id, recordset_id)
    before = history.served(change.zone, row)
    if set_ttl:
        row.ttl = ttl
    if records is not None:
        # The old records go first: the ORM would insert the new ones
        # before deleting, and a record kept across the update would
        # then collide with itself on (recordset_id, data).
        row.records = []
        unit.flush()
        row.records = [models.Record(position=i, data=d) for i, d in enumerate(records)]
    if description is not None:
        row.description = description or None
    row.serial, row.status, row.action = (
        change.serial,
        objects.Status.PENDING,
        objects.Action.UPDATE,
    )
    row.version += 1
    history.record_change(
        unit, zone_id, change.serials, before=before, after=history.served(change.zone, row)
    )
    zones.mark_updating(unit, zone_id)
    outbox.post(unit, job, zone_id, change.serial)
    unit.flush()
    return events.record(unit, objects.EventTopic.RECORDSET, conversions.recordset(row))


def delete_recordset(
    unit: Session, change: zones.ZoneChange, recordset_id: str, *, job: objects.JobOrder
) -> objects.RecordSet:
    """Delete a recordset and post a ``job`` for its zone, in the caller's unit of
    work, as part of ``change``."""
    zone_id = change.zone.id
    row = _recordset_row(unit, zone_id, recordset_id)
    history.record_change(unit, zone_id, change.serials, before=history.served(change.zone, row))
    gone = dataclasses.replace(
        conversions.recordset(row),
        serial=change.serial,
        status=objects.Status.PENDING,
        action=objects.Action.DELETE,
    )
    unit.delete(row)
    zones.mark_updating(unit, zone_id)
    outbox.post(unit, job, zone_id, change.serial)
    return events.record(unit, objects.EventTopic.RECORDSET, gone)


def _recordset_row(session: Session, zone_id: str, recordset_id: str) -> models.RecordSet:
    row = session.scalars(
        recordset_query().where(
            models.RecordSet.zone_id == zone_id, models.RecordSet.id == recordset_id
        )
    ).first()
    if row is None:
        raise exceptions.RecordSetNotFound(f"recordset {recordset_id} does not exist")
    return row
