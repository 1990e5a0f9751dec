"""Zone exports and imports as stored (the ``zone_tasks`` table), and an imported zone.

An import writes its zone, every recordset, the zone's create job and the
task in one transaction: a zone is imported whole or not at all.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa
from oslo_db import exception as db_exc
from sqlalchemy.orm import Session

from zoneflow import exceptions, objects
from zoneflow.storage import catalogs, conversions, db, events, models, outbox, queries

_NOT_FOUND = {
    objects.ZoneTaskType.EXPORT: exceptions.ZoneExportNotFound,
    objects.ZoneTaskType.IMPORT: exceptions.ZoneImportNotFound,
}


def _task(row: models.ZoneTask) -> objects.ZoneTask:
    return conversions.value(objects.ZoneTask, row)


def _scope(task_type: str, project_id: str | None) -> list[sa.ColumnElement[bool]]:
    scope = [models.ZoneTask.task_type == task_type]
    if project_id is not None:
        scope.append(models.ZoneTask.project_id == project_id)
    return scope


def _row(session: Any, task_type: str, task_id: str, project_id: str | None) -> models.ZoneTask:
    row = session.scalars(
        sa.select(models.ZoneTask).where(
            models.ZoneTask.id == task_id, *_scope(task_type, project_id)
        )
    ).first()
    if row is None:
        what = task_type.lower()
        raise _NOT_FOUND[objects.ZoneTaskType(task_type)](
            f"zone {what} {task_id} does not exist: GET /v2/zones/tasks/{what}s lists them"
        )
    return row


def create_task(
    task_type: str,
    *,
    project_id: str | None,
    zone_id: str | None,
    status: str,
    message: str | None = None,
    location: str | None = None,
    content: str | None = None,
    task_id: str | None = None,
) -> objects.ZoneTask:
    with db.writer() as session:
        row = models.ZoneTask(
            id=task_id or models.new_id(),
            task_type=task_type,
            project_id=project_id,
            zone_id=zone_id,
            status=status,
            message=message,
            location=location,
            content=content,
            version=1,
        )
        session.add(row)
        session.flush()
        return _task(row)


def get_task(task_type: str, task_id: str, *, project_id: str | None = None) -> objects.ZoneTask:
    with db.reader() as session:
        return _task(_row(session, task_type, task_id, project_id))


def get_content(task_type: str, task_id: str, *, project_id: str | None = None) -> str | None:
    """What the task produced (an export's zone file), or None."""
    with db.reader() as session:
        return _row(session, task_type, task_id, project_id).content


def find_tasks(
    task_type: str,
    criteria: Mapping[str, str],
    paging: objects.Paging,
    *,
    project_id: str | None = None,
) -> objects.Page[objects.ZoneTask]:
    filters = [
        queries.match(queries.column_named(models.ZoneTask, key), value)
        for key, value in criteria.items()
    ]
    with db.reader() as session:
        rows, total, more = queries.paged(
            session,
            sa.select(models.ZoneTask),
            models.ZoneTask,
            _scope(task_type, project_id),
            filters,
            paging,
        )
        return objects.Page(tuple(_task(r) for r in rows), total, more)


def delete_task(task_type: str, task_id: str, *, project_id: str | None = None) -> None:
    with db.writer() as session:
        session.delete(_row(session, task_type, task_id, project_id))


# Rows per executemany of an import: a 30,000-record zone in a few
# statements. SQLite runs each as one prepared statement over its rows;
# PostgreSQL's driver sends them as multi-row INSERTs of 1000 rows a page.
_INSERT_BATCH = 10_000


def _insert_recordsets(
    session: Session,
    zone_id: str,
    serial: int,
    recordsets: Sequence[tuple[str, str, int | None, Sequence[str]]],
) -> None:
    """Write an imported zone's recordsets and records, many rows a statement.

    Core INSERTs on the tables, not the ORM: an import's tens of thousands
    of rows cost the ORM most of the import's time (objects, attribute
    events, and for bulk inserts its per-row bookkeeping) for nothing it
    needs, since nothing is read back.
    """
    recordset_table = cast(sa.Table, models.RecordSet.__table__)
    record_table = cast(sa.Table, models.Record.__table__)
    for start in range(0, len(recordsets), _INSERT_BATCH):
        batch = [(models.new_id(), *rs) for rs in recordsets[start : start + _INSERT_BATCH]]
        session.execute(
            sa.insert(recordset_table),
            [
                {
                    "id": recordset_id,
                    "zone_id": zone_id,
                    "name": name,
                    "type": rtype,
                    "ttl": ttl,
                    "serial": serial,
                    "status": objects.Status.PENDING,
                    "action": objects.Action.CREATE,
                }
                for recordset_id, name, rtype, ttl, _ in batch
            ],
        )
        session.execute(
            sa.insert(record_table),
            [
                {"recordset_id": recordset_id, "position": position, "data": data}
                for recordset_id, _, _, _, records in batch
                for position, data in enumerate(records)
            ],
        )


def import_zone(
    unit: Session,
    task_id: str,
    *,
    project_id: str | None,
    values: Mapping[str, Any],
    recordsets: Sequence[tuple[str, str, int | None, Sequence[str]]],
    job: objects.JobOrder,
) -> objects.ZoneTask:
    """Create a zone (PENDING/CREATE, with a ``job`` for it) holding ``recordsets``
    (name, type, TTL or None, records), and the COMPLETE import task naming it, in the
    caller's unit of work, which then takes the placement lock and checks what it must
    under it, as for a zone created on its own (see
    :func:`zoneflow.storage.zones.lock_placement`)."""
    zone_id = str(uuid.uuid4())
    serial = max(int(time.time()), 1)
    zone = models.Zone(
        id=zone_id,
        serial=serial,
        status=objects.Status.PENDING,
        action=objects.Action.CREATE,
        project_id=project_id,
        **values,
    )
    unit.add(zone)
    try:
        unit.flush()
        _insert_recordsets(unit, zone_id, serial, recordsets)
    except db_exc.DBDuplicateEntry:
        raise exceptions.DuplicateZone(
            f"zone {values['name']} already exists: delete it first, or import another zone"
        ) from None
    catalogs.catalog_changed(unit, zone.pool_id, zone_id, zone.name, joined=True)
    outbox.post(unit, job, zone_id, serial)
    task = models.ZoneTask(
        id=task_id,
        task_type=objects.ZoneTaskType.IMPORT,
        project_id=project_id,
        zone_id=zone_id,
        status=objects.Status.COMPLETE,
        message=f"imported {values['name']} with {len(recordsets)} recordsets",
        version=1,
    )
    unit.add(task)
    unit.flush()
    # The new zone is published as one made on its own is (its CREATE event, last).
    events.record(unit, objects.EventTopic.ZONE, conversions.zone(zone))
    return _task(task)
