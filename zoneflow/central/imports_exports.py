"""Zone exports and imports (Designate's zone tasks).

An export renders the zone as mdns serves it, at one serial, into a zone
file kept with the task; ``GET .../exports/{id}/export`` returns that file.
An import reads a zone file, checks every record as the API checks a
recordset, checks the project's quotas, and creates the zone with all its
recordsets in one transaction: nothing is created when any line is wrong.

Both run while the request waits, so a task answers COMPLETE (or ERROR,
with the reason in ``message``) at once; Designate's clients also accept
the PENDING they would see first from Designate.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from oslo_config import cfg

from zoneflow import exceptions, objects
from zoneflow.central import changes, filters, orders, quotas, zones
from zoneflow.dns import validation, zonefile
from zoneflow.storage import catalogs as stored_catalogs
from zoneflow.storage import db, models
from zoneflow.storage import imports_exports as stored
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import transfers as stored_transfers

CONF = cfg.CONF

TASK_FILTERS = ("status", "message", "zone_id")
TASK_SORT_KEYS = {key: key for key in ("created_at", "id", "updated_at")}


def _location(task_id: str) -> str:
    """Where the zone file is, as Designate writes it (the API turns it into a link)."""
    return f"designate://v2/zones/tasks/exports/{task_id}/export"


# --- exports -----------------------------------------------------------------------


def export_zone(zone_ref: str, *, project_id: str | None = None) -> objects.ZoneTask:
    """Export a zone: COMPLETE with its zone file, or ERROR (over the export quota)."""
    zone = stored_reads.get_zone(zone_ref, project_id=project_id)
    task_id = models.new_id()
    try:
        quotas.check_export(zone)
    except exceptions.OverQuota as exc:
        return stored.create_task(
            objects.ZoneTaskType.EXPORT,
            task_id=task_id,
            project_id=zone.project_id,
            zone_id=zone.id,
            status=objects.Status.ERROR,
            message=exc.message,
        )
    pool = stored_pools.get_pool(zone.pool_id)
    with stored_transfers.zone_for_transfer(zone.id) as (at_serial, records):
        text = zonefile.render(at_serial, pool, records)
    return stored.create_task(
        objects.ZoneTaskType.EXPORT,
        task_id=task_id,
        project_id=zone.project_id,
        zone_id=zone.id,
        status=objects.Status.COMPLETE,
        message=f"exported {zone.name} at serial {at_serial.serial}",
        location=_location(task_id),
        content=text,
    )


def get_export(task_id: str, *, project_id: str | None = None) -> objects.ZoneTask:
    return stored.get_task(objects.ZoneTaskType.EXPORT, task_id, project_id=project_id)


def export_file(task_id: str, *, project_id: str | None = None) -> str:
    """The zone file an export produced."""
    task = get_export(task_id, project_id=project_id)
    text = stored.get_content(objects.ZoneTaskType.EXPORT, task_id, project_id=project_id)
    if task.status != objects.Status.COMPLETE or text is None:
        raise exceptions.BadRequest(
            f"zone export {task_id} ended {task.status} ({task.message}): it has no zone file; "
            "export the zone again once the cause is fixed"
        )
    return text


def find_exports(
    criteria: Mapping[str, str], paging: objects.Paging, *, project_id: str | None = None
) -> objects.Page[objects.ZoneTask]:
    return _find(objects.ZoneTaskType.EXPORT, criteria, paging, project_id)


def delete_export(task_id: str, *, project_id: str | None = None) -> None:
    stored.delete_task(objects.ZoneTaskType.EXPORT, task_id, project_id=project_id)


# --- imports -----------------------------------------------------------------------


def import_zone(
    text: str, *, project_id: str | None = None, pool: str | None = None
) -> objects.ZoneTask:
    """Import a zone file: COMPLETE with the new zone's id, or ERROR naming what was
    wrong (the line, the quota, the existing zone), with nothing created."""
    task_id = models.new_id()
    try:
        parsed = zonefile.parse(text)
        if parsed.name in stored_catalogs.list_catalogs():
            raise exceptions.DuplicateZone(
                f"{parsed.name} is the catalog zone of a pool: import another zone"
            )
        pool_id = stored_pools.pool_id(pool or CONF.central.default_pool)
        values = {
            "name": parsed.name,
            "email": parsed.email,
            "ttl": validation.ttl(parsed.ttl),
            "refresh": parsed.refresh,
            "retry": parsed.retry,
            "expire": parsed.expire,
            "minimum": parsed.minimum,
            "pool_id": pool_id,
            "description": None,
        }
        _check_content_quotas(parsed, project_id)
        task = _insert_import(task_id, parsed, values, project_id)
    except (
        exceptions.InvalidInput,
        exceptions.Duplicate,
        exceptions.OverQuota,
        exceptions.IllegalChildZone,
        exceptions.IllegalParentZone,
    ) as exc:
        return stored.create_task(
            objects.ZoneTaskType.IMPORT,
            task_id=task_id,
            project_id=project_id,
            zone_id=None,
            status=objects.Status.ERROR,
            message=exc.message,
        )
    changes.changed()  # the new zone's job is posted at once
    return task


@db.retried
def _insert_import(
    task_id: str, parsed: zonefile.ParsedZone, values: Mapping[str, Any], project_id: str | None
) -> objects.ZoneTask:
    """The zone written whole with its recordsets and the import task, then placed
    and admitted as a zone created on its own is
    (:func:`zoneflow.central.zones.admit_zone`), in one unit of work."""
    with db.unit_of_work() as unit:
        task = stored.import_zone(
            unit,
            task_id,
            project_id=project_id,
            values=values,
            recordsets=[(rs.name, rs.type, rs.ttl, rs.records) for rs in parsed.recordsets],
            job=orders.CREATE_ZONE,
        )
        zones.admit_zone(unit, parsed.name, str(values["pool_id"]), project_id)
        return task


def _check_content_quotas(parsed: zonefile.ParsedZone, project_id: str | None) -> None:
    """Refuse a zone file holding more than the project allows in one zone (the
    project's zone count is checked as the zone is written)."""
    if project_id is None:
        return
    quotas.check_zone_content(
        _would_be(parsed, project_id),
        recordsets=len(parsed.recordsets),
        records=parsed.records,
        largest_recordset=max((len(rs.records) for rs in parsed.recordsets), default=0),
    )


def _would_be(parsed: zonefile.ParsedZone, project_id: str) -> objects.Zone:
    """The zone an import would create, as far as a quota message names it."""
    return objects.Zone(
        id="",
        name=parsed.name,
        email=parsed.email,
        ttl=parsed.ttl,
        serial=0,
        refresh=parsed.refresh,
        retry=parsed.retry,
        expire=parsed.expire,
        minimum=parsed.minimum,
        status=objects.Status.PENDING,
        action=objects.Action.CREATE,
        pool_id="",
        project_id=project_id,
        description=None,
        error=None,
        created_at=datetime.datetime.min,
        updated_at=None,
    )


def get_import(task_id: str, *, project_id: str | None = None) -> objects.ZoneTask:
    return stored.get_task(objects.ZoneTaskType.IMPORT, task_id, project_id=project_id)


def find_imports(
    criteria: Mapping[str, str], paging: objects.Paging, *, project_id: str | None = None
) -> objects.Page[objects.ZoneTask]:
    return _find(objects.ZoneTaskType.IMPORT, criteria, paging, project_id)


def delete_import(task_id: str, *, project_id: str | None = None) -> None:
    """Forget an import task (the zone it created stays)."""
    stored.delete_task(objects.ZoneTaskType.IMPORT, task_id, project_id=project_id)


def _find(
    task_type: str,
    criteria: Mapping[str, str],
    paging: objects.Paging,
    project_id: str | None,
) -> objects.Page[objects.ZoneTask]:
    what = f"zone {task_type.lower()}s"
    columns = {
        key: value.upper() if key == "status" else value
        for key, value in filters.criteria(criteria, TASK_FILTERS, what).items()
    }
    return stored.find_tasks(
        task_type, columns, filters.paging(paging, TASK_SORT_KEYS, what), project_id=project_id
    )
