"""The operations users call: create, update and delete zones and recordsets.

Each one validates its input, then opens one unit of work (a transaction,
:func:`zoneflow.storage.db.unit_of_work`) and, inside it, reads what it
decides on, checks quotas, placement and the zone rules itself, and calls
storage's writes: the change, the zone's serial and the job that will push
it to the nameservers (the outbox) commit together. A change goes down to
storage once; storage calls nothing back. Each such function runs whole
again, its checks with it, when its transaction lost to another one
(:func:`zoneflow.storage.db.retried`). The CLI and the REST API both call
these functions; neither talks to storage or the jobboard for a change
directly.

After a change commits, the functions registered with :func:`on_change`
are called (the job relay registers itself there to post the job at once).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable, Mapping, Sequence
from typing import Concatenate, ParamSpec

from zoneflow import exceptions, objects
from zoneflow.central import managed, options, quotas
from zoneflow.central.reads import get_zone as get_zone
from zoneflow.central.reads import list_zones as list_zones
from zoneflow.dns import rules, validation
from zoneflow.storage import catalogs as stored_catalogs
from zoneflow.storage import db, search
from zoneflow.storage import managed as stored_managed
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import recordsets as stored_recordsets
from zoneflow.storage import status as stored_status
from zoneflow.storage import zones as stored_zones
from zoneflow.storage.db import Unit

CONF = options.CONF
P = ParamSpec("P")


_listeners: list[Callable[[], None]] = []


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener`` after every committed change (e.g. to post its job now)."""
    _listeners.append(listener)


def _changed() -> None:
    for listener in _listeners:
        listener()


# --- zones ---------------------------------------------------------------


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
        "pool_id": stored_pools.get_pool(pool or CONF.central.default_pool).id,
        "project_id": project_id,
        "description": description,
    }
    zone = _insert_zone(values, zone_name, project_id)
    _changed()
    return zone


@db.retried
def _insert_zone(values: Mapping[str, object], name: str, project_id: str | None) -> objects.Zone:
    with db.unit_of_work() as unit:
        admit_zone(unit, name, str(values["pool_id"]), project_id)
        return stored_zones.insert_zone(unit, values, job=objects.JobKind.CREATE_ZONE)


def admit_zone(unit: Unit, name: str, pool_id: str, project_id: str | None) -> None:
    """Before a zone is inserted in ``unit``: take its pool's placement lock, refuse it
    where another project's zone is (:func:`refuse_misplaced`), then refuse it beyond
    its project's ``zones`` quota, each read under a lock held until the unit ends.
    Two creates racing for a zone and its subzone, or for a project's last zone,
    queue here, and the second sees the first's zone."""
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
    updated = _in_unit(stored_zones.update_zone, zone.id, values, job=objects.JobKind.UPDATE_ZONE)
    _changed()
    return updated


def delete_zone(ref: str, *, project_id: str | None = None) -> objects.Zone:
    zone = stored_reads.get_zone(ref, project_id=project_id)
    deleting = _in_unit(stored_zones.delete_zone, zone.id, job=objects.JobKind.DELETE_ZONE)
    _changed()
    return deleting


def recover_zone(ref: str, *, project_id: str | None = None) -> objects.Zone:
    """Bring every target to the zone's stored state: a zone left in ERROR, or with a
    target behind, is created or updated where its serial is missing, or deleted
    everywhere if its action is DELETE (a recover-zone job)."""
    zone = stored_reads.get_zone(ref, project_id=project_id)
    recovering = _in_unit(stored_zones.recover_zone, zone.id, job=objects.JobKind.RECOVER_ZONE)
    _changed()
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
    for key, value in _criteria(criteria, ZONE_FILTERS, "zones").items():
        if key == "type":
            if not fnmatch.fnmatchcase(ZONE_TYPE, value.upper()):
                return objects.Page((), 0, False)
        elif key == "ttl":
            columns[key] = _whole_number("ttl", value)
        elif key in ("name", "email"):
            columns[key] = value.lower() if key == "name" else value
        elif key == "status":
            columns[key] = value.upper()
        else:
            columns[key] = value
    return stored_zones.find_zones(
        columns, _paging(paging, ZONE_SORT_KEYS, "zones"), project_id=project_id
    )


POOL_FILTERS = ("name",)
POOL_SORT_KEYS = {key: key for key in ("created_at", "id", "updated_at", "name")}


def find_pools(criteria: Mapping[str, str], paging: objects.Paging) -> objects.Page[objects.Pool]:
    """One page of the pools, with Designate's ``name`` filter and sort keys."""
    return stored_pools.find_pools(
        _criteria(criteria, POOL_FILTERS, "pools"), _paging(paging, POOL_SORT_KEYS, "pools")
    )


def zone_status(ref: str, *, project_id: str | None = None) -> list[objects.TargetStatus]:
    zone = stored_reads.get_zone(ref, project_id=project_id)
    return stored_status.list_target_status(zone.id)


# --- recordsets ----------------------------------------------------------


def create_recordset(
    zone_ref: str,
    name: str,
    rtype: str,
    records: Sequence[validation.RecordInput],
    *,
    ttl: int | None = None,
    description: str | None = None,
    project_id: str | None = None,
) -> objects.RecordSet:
    zone = stored_reads.get_zone(zone_ref, project_id=project_id)
    managed.refuse_soa(rtype)
    rs_type = validation.record_type(rtype)
    rs_name = validation.recordset_name(name, zone.name)
    managed.refuse_apex_ns(zone, rs_name, rs_type)
    canonical = validation.records(rs_type, records, zone=zone.name)
    recordset = _insert_recordset(
        zone,
        name=rs_name,
        rtype=rs_type,
        ttl=validation.ttl(ttl),
        records=canonical,
        description=description or None,
    )
    _changed()
    return recordset


@db.retried
def _insert_recordset(
    zone: objects.Zone,
    *,
    name: str,
    rtype: str,
    ttl: int | None,
    records: list[str],
    description: str | None,
) -> objects.RecordSet:
    """The recordset, checked against the quotas and the zone rules with the zone
    locked, then written, in one unit of work."""
    limits = quotas.check_recordset_size(zone, len(records))
    with db.unit_of_work() as unit:
        change = stored_zones.begin_change(unit, zone.id)
        quotas.check_recordset_change(
            unit, zone, limits, new_records=len(records), new_recordset=True
        )
        check_zone_rules(unit, zone, rules.Shape(name, rtype))
        return stored_recordsets.create_recordset(
            unit,
            change,
            name=name,
            rtype=rtype,
            ttl=ttl,
            records=records,
            job=objects.JobKind.UPDATE_ZONE,
            description=description,
        )


def update_recordset(
    zone_ref: str,
    recordset_ref: str,
    *,
    rtype: str | None = None,
    records: Sequence[validation.RecordInput] | None = None,
    ttl: int | None = None,
    clear_ttl: bool = False,
    description: str | None = None,
    project_id: str | None = None,
) -> objects.RecordSet:
    """Replace a recordset's records and/or TTL (``clear_ttl``: use the zone's), and
    its description unless that is None ("" clears it)."""
    zone = stored_reads.get_zone(zone_ref, project_id=project_id)
    current = _find_recordset(zone, recordset_ref, rtype)
    managed.refuse_update(zone, current)
    canonical = (
        validation.records(current.type, records, zone=zone.name) if records is not None else None
    )
    recordset = _replace_recordset(
        zone,
        current.id,
        ttl=validation.ttl(ttl),
        records=canonical,
        set_ttl=ttl is not None or clear_ttl,
        description=description,
    )
    _changed()
    return recordset


@db.retried
def _replace_recordset(
    zone: objects.Zone,
    recordset_id: str,
    *,
    ttl: int | None,
    records: list[str] | None,
    set_ttl: bool,
    description: str | None,
) -> objects.RecordSet:
    """The recordset's new records checked against the quotas with the zone locked,
    then written, in one unit of work."""
    limits = quotas.check_recordset_size(zone, len(records)) if records is not None else None
    with db.unit_of_work() as unit:
        change = stored_zones.begin_change(unit, zone.id)
        if records is not None and limits is not None:
            quotas.check_recordset_change(
                unit,
                zone,
                limits,
                new_records=len(records),
                replaced=stored_recordsets.recordset_size(unit, zone.id, recordset_id),
            )
        return stored_recordsets.update_recordset(
            unit,
            change,
            recordset_id,
            ttl=ttl,
            records=records,
            set_ttl=set_ttl,
            job=objects.JobKind.UPDATE_ZONE,
            description=description,
        )


def check_zone_rules(unit: Unit, zone: objects.Zone, written: rules.Shape) -> None:
    """Refuse, in a recordset create's unit of work (the zone locked), a recordset that
    leaves the zone with data a nameserver refuses to load (:mod:`zoneflow.dns.rules`),
    given the recordsets related to its name; the check and the write are one
    transaction. An update keeps the recordset's name and type and a delete only
    takes data away, so neither can break a rule."""
    others = [
        rules.Shape(name, rtype)
        for name, rtype in stored_recordsets.related_recordsets(
            unit, zone.id, zone.name, written.name
        )
    ]
    rules.check(zone.name, [*others, written], before=others)


def delete_recordset(
    zone_ref: str, recordset_ref: str, *, rtype: str | None = None, project_id: str | None = None
) -> objects.RecordSet:
    zone = stored_reads.get_zone(zone_ref, project_id=project_id)
    current = _find_recordset(zone, recordset_ref, rtype)
    managed.refuse_delete(zone, current)
    gone = _remove_recordset(zone.id, current.id)
    _changed()
    return gone


@db.retried
def _remove_recordset(zone_id: str, recordset_id: str) -> objects.RecordSet:
    with db.unit_of_work() as unit:
        change = stored_zones.begin_change(unit, zone_id)
        return stored_recordsets.delete_recordset(
            unit, change, recordset_id, job=objects.JobKind.UPDATE_ZONE
        )


def list_recordsets(zone_ref: str, *, project_id: str | None = None) -> list[objects.RecordSet]:
    """The zone's recordsets: its SOA and apex NS first, then the stored ones."""
    zone = stored_reads.get_zone(zone_ref, project_id=project_id)
    return [*managed.of_zone(zone), *stored_reads.list_recordsets(zone.id)]


RECORDSET_FILTERS = ("name", "type", "ttl", "data", "status", "action", "description")
RECORDSET_SORT_KEYS = {
    key: key
    for key in ("created_at", "id", "updated_at", "zone_id", "name", "type", "ttl", "status")
} | {"serial": "serial"}


def find_recordsets(
    zone_ref: str,
    criteria: Mapping[str, str],
    paging: objects.Paging,
    *,
    project_id: str | None = None,
) -> tuple[objects.Zone, objects.Page[objects.RecordSet]]:
    """The zone, and one page of its recordsets matching Designate-style filters
    (``*`` is a wildcard; ``data`` matches any one of a recordset's records)."""
    zone = stored_reads.get_zone(zone_ref, project_id=project_id)
    columns = _recordset_columns(_criteria(criteria, RECORDSET_FILTERS, "recordsets"))
    page = stored_managed.find(
        lambda column: column == zone.id,
        columns,
        _paging(paging, RECORDSET_SORT_KEYS, "recordsets"),
    )
    return zone, _filled(page, {zone.id: zone})


# /v2/recordsets: a zone's filters, and which zone.
ALL_RECORDSET_FILTERS = (*RECORDSET_FILTERS, "zone_id")


def find_all_recordsets(
    criteria: Mapping[str, str],
    paging: objects.Paging,
    *,
    project_id: str | None = None,
) -> tuple[objects.Page[objects.RecordSet], dict[str, objects.Zone]]:
    """One page of the recordsets of every zone of a project (None: of all projects)
    matching Designate-style filters, and their zones by id."""
    columns = _recordset_columns(_criteria(criteria, ALL_RECORDSET_FILTERS, "recordsets"))
    page, zones = search.find_all_recordsets(
        columns, _paging(paging, RECORDSET_SORT_KEYS, "recordsets"), project_id=project_id
    )
    return _filled(page, zones), zones


def _filled(
    page: objects.Page[objects.RecordSet], zones: Mapping[str, objects.Zone]
) -> objects.Page[objects.RecordSet]:
    """The page with the records of its managed SOA and NS filled in."""
    return dataclasses.replace(page, items=tuple(managed.filled(zones, page.items)))


def find_recordset(
    recordset_id: str, *, project_id: str | None = None
) -> tuple[objects.Zone, objects.RecordSet]:
    """A recordset by its id alone, in any live zone of a project (None: of all
    projects), and its zone: what ``GET /v2/recordsets/{id}`` shows."""
    zone, recordset = search.get_recordset(recordset_id, project_id=project_id)
    (shown,) = managed.filled({zone.id: zone}, [recordset])
    return zone, shown


def _recordset_columns(criteria: Mapping[str, str]) -> dict[str, str | int]:
    """Filter values as the columns hold them (names lower case, types upper case)."""
    columns: dict[str, str | int] = {}
    for key, value in criteria.items():
        if key == "ttl":
            columns[key] = _whole_number("ttl", value)
        elif key == "name":
            columns[key] = value.lower()
        elif key in ("type", "status", "action"):
            columns[key] = value.upper()
        else:
            columns[key] = value
    return columns


def _criteria(criteria: Mapping[str, str], accepted: Sequence[str], what: str) -> dict[str, str]:
    unknown = sorted(set(criteria) - set(accepted))
    if unknown:
        raise exceptions.BadRequest(
            f"invalid filter(s) {', '.join(unknown)}: {what} can be filtered by "
            f"{', '.join(accepted)}"
        )
    return dict(criteria)


def _whole_number(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise exceptions.BadRequest(
            f"filter {name}={value!r} is not a whole number: give e.g. {name}=3600"
        ) from None


def _paging(paging: objects.Paging, sort_keys: Mapping[str, str], what: str) -> objects.Paging:
    """The paging with its sort key turned into the column it sorts by."""
    if paging.limit < 1:
        raise exceptions.InvalidLimit(f"limit {paging.limit} is too small: give 1 or more")
    if paging.sort_key not in sort_keys:
        raise exceptions.InvalidSortKey(
            f"sort key {paging.sort_key!r} is unknown: {what} sort by "
            f"{', '.join(sorted(sort_keys))}"
        )
    if paging.sort_dir not in (objects.ASC, objects.DESC):
        raise exceptions.InvalidSortDir(
            f"sort direction {paging.sort_dir!r} is unknown: give asc or desc"
        )
    return dataclasses.replace(paging, sort_key=sort_keys[paging.sort_key])


def get_recordset(
    zone_ref: str, recordset_ref: str, *, rtype: str | None = None, project_id: str | None = None
) -> objects.RecordSet:
    zone = stored_reads.get_zone(zone_ref, project_id=project_id)
    return _find_recordset(zone, recordset_ref, rtype)


def _find_recordset(zone: objects.Zone, ref: str, rtype: str | None) -> objects.RecordSet:
    """By id, or by name and type (a name alone when it holds one recordset); the
    zone's managed SOA and NS among them."""
    if rtype is not None:
        name = validation.recordset_name(ref, zone.name)
        wanted = managed.of_type(zone, name, rtype.strip().upper())
        if wanted is not None:
            return wanted
        return stored_recordsets.get_recordset(zone.id, name, validation.record_type(rtype))
    by_id = managed.with_id(zone, ref)
    if by_id is not None:
        return by_id
    try:
        return stored_recordsets.get_recordset(zone.id, ref)
    except exceptions.RecordSetNotFound:
        name = validation.recordset_name(ref, zone.name)
        matches = [rs for rs in stored_reads.list_recordsets(zone.id) if rs.name == name]
        if name == zone.name:
            matches = [*managed.of_zone(zone), *matches]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            types = ", ".join(rs.type for rs in matches)
            raise exceptions.InvalidInput(
                f"{name} holds several recordsets ({types}): say which with --type"
            ) from None
        raise
