"""The recordset operations users call: create, update and delete recordsets, and
find them (a zone's managed SOA and apex NS among them).

A change is one unit of work, as a zone's is (:mod:`zoneflow.central.zones`):
:func:`zoneflow.storage.zones.begin_change` bumps the zone's serial and
locks its row, then the quotas and the zone rules are checked here with
what storage reads under that lock, then storage writes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from zoneflow import exceptions, objects
from zoneflow.central import changes, filters, managed, orders, quotas
from zoneflow.dns import rules, validation
from zoneflow.storage import db, search
from zoneflow.storage import managed as stored_managed
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import recordsets as stored_recordsets
from zoneflow.storage import zones as stored_zones
from zoneflow.storage.db import Unit


def create_recordset(
    zone_ref: str | objects.Zone,
    name: str,
    rtype: str,
    records: Sequence[validation.RecordInput],
    *,
    ttl: int | None = None,
    description: str | None = None,
    project_id: str | None = None,
) -> objects.RecordSet:
    """A new recordset in a zone given by id or name, or as the caller has just read
    it in ``project_id``'s zones (the API's route has: it is not read twice)."""
    zone = _zone(zone_ref, project_id)
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
    changes.changed()
    return recordset


def _zone(zone_ref: str | objects.Zone, project_id: str | None) -> objects.Zone:
    """The zone given by id or name, read in ``project_id``'s zones, or as given."""
    if isinstance(zone_ref, objects.Zone):
        return zone_ref
    return stored_reads.get_zone(zone_ref, project_id=project_id)


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
    with db.unit_of_work() as unit:
        # The quotas read in the unit of work too: one transaction for the whole create.
        limits = quotas.check_recordset_size(zone, len(records), unit=unit)
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
            job=orders.UPDATE_ZONE,
            description=description,
        )


def update_recordset(
    zone_ref: str | objects.Zone,
    recordset_ref: str,
    *,
    rtype: str | None = None,
    records: Sequence[validation.RecordInput] | None = None,
    ttl: int | None = None,
    clear_ttl: bool = False,
    description: str | None = None,
    project_id: str | None = None,
    absolute_names: bool = False,
) -> objects.RecordSet:
    """Replace a recordset's records and/or TTL (``clear_ttl``: use the zone's), and
    its description unless that is None ("" clears it). The zone as for
    :func:`create_recordset`. ``absolute_names``: refuse names in the records' data
    without their trailing dot, as the API and CLI do
    (validation.absolute_record_names)."""
    zone = _zone(zone_ref, project_id)
    current = _find_recordset(zone, recordset_ref, rtype)
    managed.refuse_update(zone, current)
    if absolute_names and records is not None:
        validation.absolute_record_names(current.type, records, zone=zone.name)
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
    changes.changed()
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
    with db.unit_of_work() as unit:
        limits = (
            quotas.check_recordset_size(zone, len(records), unit=unit)
            if records is not None
            else None
        )
        change = stored_zones.begin_change(unit, zone.id)
        current = stored_recordsets.locked_recordset(unit, zone.id, recordset_id)
        if records is not None and limits is not None:
            quotas.check_recordset_change(
                unit, zone, limits, new_records=len(records), replaced=len(current.records)
            )
        return stored_recordsets.update_recordset(
            unit,
            change,
            current,
            ttl=ttl,
            records=records,
            set_ttl=set_ttl,
            job=orders.UPDATE_ZONE,
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
    zone_ref: str | objects.Zone,
    recordset_ref: str,
    *,
    rtype: str | None = None,
    project_id: str | None = None,
) -> objects.RecordSet:
    """Delete a recordset; the zone as for :func:`create_recordset`."""
    zone = _zone(zone_ref, project_id)
    current = _find_recordset(zone, recordset_ref, rtype)
    managed.refuse_delete(zone, current)
    gone = _remove_recordset(zone.id, current.id)
    changes.changed()
    return gone


@db.retried
def _remove_recordset(zone_id: str, recordset_id: str) -> objects.RecordSet:
    with db.unit_of_work() as unit:
        change = stored_zones.begin_change(unit, zone_id)
        current = stored_recordsets.locked_recordset(unit, zone_id, recordset_id)
        return stored_recordsets.delete_recordset(unit, change, current, job=orders.UPDATE_ZONE)


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
    columns = _recordset_columns(filters.criteria(criteria, RECORDSET_FILTERS, "recordsets"))
    page = stored_managed.find(
        zone.id,
        columns,
        filters.paging(paging, RECORDSET_SORT_KEYS, "recordsets"),
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
    columns = _recordset_columns(filters.criteria(criteria, ALL_RECORDSET_FILTERS, "recordsets"))
    page, zones = search.find_all_recordsets(
        columns, filters.paging(paging, RECORDSET_SORT_KEYS, "recordsets"), project_id=project_id
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
            columns[key] = filters.whole_number("ttl", value)
        elif key == "name":
            columns[key] = value.lower()
        elif key in ("type", "status", "action"):
            columns[key] = value.upper()
        else:
            columns[key] = value
    return columns


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
        return stored_reads.get_recordset(zone.id, name, validation.record_type(rtype))
    by_id = managed.with_id(zone, ref)
    if by_id is not None:
        return by_id
    try:
        return stored_reads.get_recordset(zone.id, ref)
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
