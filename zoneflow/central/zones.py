"""The zone operations users call: create, update, delete and recover zones, and
find them.

Each change validates its input, then opens one unit of work (a transaction,
:func:`zoneflow.storage.db.unit_of_work`) and, inside it, locks and reads
what it decides on through storage, checks placement and quotas itself, and
calls storage's writes: the change, the zone's serial and the job that will
push it to the nameservers (the outbox) commit together. A change goes down
to storage once; storage calls nothing back. Each such function runs whole
again, its checks with it, when its transaction lost to another one
(:func:`zoneflow.storage.db.retried`). The CLI and the REST API both call
these functions; neither talks to storage or the jobboard for a change
directly. After a change commits, :func:`zoneflow.central.changes.changed`
tells the listeners (the job relay posts the job at once).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from typing import Concatenate, ParamSpec

from zoneflow import exceptions, objects
from zoneflow.central import changes, filters, options, orders, quotas
from zoneflow.central.reads import get_zone as get_zone
from zoneflow.central.reads import list_zones as list_zones
from zoneflow.dns import validation
from zoneflow.storage import catalogs as stored_catalogs
from zoneflow.storage import db
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import status as stored_status
from zoneflow.storage import zones as stored_zones
from zoneflow.storage.db import Unit

CONF = options.CONF
P = ParamSpec("P")


def create_zone(
    name: str,
    email: str,
    *,
    ttl: int | None = None,
    pool: str | None = None,
    project_id: str | None = None,
    description: str | None = None,
) -> objects.Zone:
    zone_name = validation.zone_name(name)
    if zone_name in stored_catalogs.list_catalogs():
        raise exceptions.DuplicateZone(
            f"{zone_name} is the catalog zone of a pool (pools.yaml catalog_zone): pick "
            "another name"
        )
    values = {
        "name": zone_name,
        "email": validation.email(email),
        "ttl": validation.ttl(ttl) if ttl is not None else CONF.central.default_ttl,
        "refresh": CONF.central.default_refresh,
        "retry": CONF.central.default_retry,
        "expire": CONF.central.default_expire,
        "minimum": CONF.central.default_minimum,
        "pool_id": stored_pools.pool_id(pool or CONF.central.default_pool),
        "project_id": project_id,
        "description": description,
    }
    zone = _insert_zone(values, zone_name, project_id)
    changes.changed()
    return zone


@db.retried
def _insert_zone(values: Mapping[str, object], name: str, project_id: str | None) -> objects.Zone:
    with db.unit_of_work() as unit:
        zone = stored_zones.insert_zone(unit, values, job=orders.CREATE_ZONE)
        admit_zone(unit, name, str(values["pool_id"]), project_id)
        return zone


def admit_zone(unit: Unit, name: str, pool_id: str, project_id: str | None) -> None:
    """Once a zone is written in ``unit``, last before its commit: take its pool's
    placement lock, refuse the zone where another project's zone is
    (:func:`refuse_misplaced`), then beyond its project's ``zones`` quota, each read
    under a lock held until the unit ends; a refusal rolls the whole unit back.
    Two creates racing for a zone and its subzone, or for a project's last zone,
    queue here, and the second sees the first's zone.

    Last, so that the locks are held for a few statements and the commit: taken
    first, they made every create of a pool wait for the whole of the one
    before it (on average 229 ms a create at 20 changes/s, bench/load.py's
    pg_stat_statements). Reads under the lock see every zone committed by the
    creates that held it before, and this unit's own zone: not a parent or a
    subzone of itself, and counted in its project's zones."""
    stored_zones.lock_placement(unit, pool_id)
    if project_id is None:
        return
    refuse_misplaced(name, project_id, stored_zones.zones_around(unit, name, pool_id))
    quotas.check_zone_count(unit, project_id)


def refuse_misplaced(name: str, project_id: str, around: Sequence[objects.Zone]) -> None:
    """Refuse a project's zone inside or above another project's zone of the same pool
    (``around``: the zones above and below ``name``), as Designate does: on the same
    nameservers a subzone takes over names of its parent, so a project could
    otherwise answer for another's names. Zones made with the ``zoneflow`` command
    (no project) are the operator's choice and are not checked."""
    for other in around:
        if other.project_id == project_id:
            continue
        if name.endswith("." + other.name):
            raise exceptions.IllegalChildZone(
                f"zone {name} is inside zone {other.name}, which another project owns: "
                f"only that project can create zones below {other.name}"
            )
        raise exceptions.IllegalParentZone(
            f"zone {name} would hold zone {other.name}, which another project owns: "
            "ask its owner to delete it first, or pick a name that does not contain it"
        )


def update_zone(
    ref: str,
    *,
    email: str | None = None,
    ttl: int | None = None,
    description: str | None = None,
    project_id: str | None = None,
) -> objects.Zone:
    zone = stored_reads.get_zone(ref, project_id=project_id)
    values: dict[str, object] = {}
    if email is not None:
        values["email"] = validation.email(email)
    if ttl is not None:
        values["ttl"] = validation.ttl(ttl)
    if description is not None:
        values["description"] = description
    updated = _in_unit(stored_zones.update_zone, zone.id, values, job=orders.UPDATE_ZONE)
    changes.changed()
    return updated


def delete_zone(ref: str, *, project_id: str | None = None) -> objects.Zone:
    zone = stored_reads.get_zone(ref, project_id=project_id)
    deleting = _in_unit(stored_zones.delete_zone, zone.id, job=orders.DELETE_ZONE)
    changes.changed()
    return deleting


def recover_zone(ref: str, *, project_id: str | None = None) -> objects.Zone:
    """Bring every target to the zone's stored state: a zone left in ERROR, or with a
    target behind, is created or updated where its serial is missing, or deleted
    everywhere if its action is DELETE (a recover-zone job)."""
    zone = stored_reads.get_zone(ref, project_id=project_id)
    recovering = _in_unit(stored_zones.recover_zone, zone.id, job=orders.RECOVER_ZONE)
    changes.changed()
    return recovering


@db.retried
def _in_unit(
    write: Callable[Concatenate[Unit, P], objects.Zone], *args: P.args, **kwargs: P.kwargs
) -> objects.Zone:
    """``write``, one of storage's zone writes with nothing to check first, in a unit
    of work of its own."""
    with db.unit_of_work() as unit:
        return write(unit, *args, **kwargs)


# Designate's filters and sort keys, and the column each one reads.
ZONE_FILTERS = ("name", "email", "status", "type", "ttl", "description")


ZONE_SORT_KEYS = {
    "created_at": "created_at",
    "id": "id",
    "updated_at": "updated_at",
    "name": "name",
    "tenant_id": "project_id",
    "project_id": "project_id",
    "serial": "serial",
    "ttl": "ttl",
    "status": "status",
}


# zoneflow serves primary zones only (it is the primary, through mdns).
ZONE_TYPE = "PRIMARY"


def find_zones(
    criteria: Mapping[str, str],
    paging: objects.Paging,
    *,
    project_id: str | None = None,
) -> objects.Page[objects.Zone]:
    """One page of the zones matching Designate-style filters (``*`` is a wildcard)."""
    columns: dict[str, str | int] = {}
    for key, value in filters.criteria(criteria, ZONE_FILTERS, "zones").items():
        if key == "type":
            if not fnmatch.fnmatchcase(ZONE_TYPE, value.upper()):
                return objects.Page((), 0, False)
        elif key == "ttl":
            columns[key] = filters.whole_number("ttl", value)
        elif key in ("name", "email"):
            columns[key] = value.lower() if key == "name" else value
        elif key == "status":
            columns[key] = value.upper()
        else:
            columns[key] = value
    return stored_zones.find_zones(
        columns, filters.paging(paging, ZONE_SORT_KEYS, "zones"), project_id=project_id
    )


def zone_status(ref: str, *, project_id: str | None = None) -> list[objects.TargetStatus]:
    zone = stored_reads.get_zone(ref, project_id=project_id)
    return stored_status.list_target_status(zone.id)
