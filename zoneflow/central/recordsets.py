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
    if (named := _managed_named(zone, recordset_ref, rtype)) is not None:
        managed.refuse_update(zone, named)  # a managed SOA or NS is never updated
    recordset = _replace_recordset(
        zone,
        recordset_ref,
        rtype,
        records=records,
        ttl=validation.ttl(ttl),
        set_ttl=ttl is not None or clear_ttl,
        description=description,
        absolute_names=absolute_names,
    )
    changes.changed()
    return recordset


@db.retried
def _replace_recordset(
    zone: objects.Zone,
    recordset_ref: str,
    rtype: str | None,
    *,
    records: Sequence[validation.RecordInput] | None,
    ttl: int | None,
    set_ttl: bool,
    description: str | None,
    absolute_names: bool,
) -> objects.RecordSet:
    """The recordset found with the zone locked, its new records checked for its type
    and against the quotas, then written: one unit of work, one transaction."""
    with db.unit_of_work() as unit:
        change = stored_zones.begin_change(unit, zone.id)
        current = _find_recordset(zone, recordset_ref, rtype, within=unit)
        canonical = None
        if records is not None:
            if absolute_names:
                validation.absolute_record_names(current.type, records, zone=zone.name)
            canonical = validation.records(current.type, records, zone=zone.name)
            limits = quotas.check_recordset_size(zone, len(canonical), unit=unit)
            quotas.check_recordset_change(
                unit, zone, limits, new_records=len(canonical), replaced=len(current.records)
            )
        return stored_recordsets.update_recordset(
            unit,
            change,
            current,
            ttl=ttl,
            records=canonical,
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
    if (named := _managed_named(zone, recordset_ref, rtype)) is not None:
        managed.refuse_delete(zone, named)  # nor deleted
    gone = _remove_recordset(zone, recordset_ref, rtype)
    changes.changed()
    return gone


@db.retried
def _remove_recordset(
    zone: objects.Zone, recordset_ref: str, rtype: str | None
) -> objects.RecordSet:
    """The recordset found with the zone locked, then deleted, in one unit of work."""
    with db.unit_of_work() as unit:
        change = stored_zones.begin_change(unit, zone.id)
        current = _find_recordset(zone, recordset_ref, rtype, within=unit)
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


def _managed_named(zone: objects.Zone, ref: str, rtype: str | None) -> objects.RecordSet | None:
    """The zone's managed SOA or NS that ``ref`` names: by id, or by the apex's name and
    type. Read on a connection of its own, and only for such a ref."""
    if rtype is not None:
        name = validation.recordset_name(ref, zone.name)
        return managed.of_type(zone, name, rtype.strip().upper())
    return managed.with_id(zone, ref)


def _find_recordset(
    zone: objects.Zone, ref: str, rtype: str | None, *, within: Unit | None = None
) -> objects.RecordSet:
    """By id, or by name and type (a name alone when it holds one recordset), read
    ``within`` a change's unit of work if given. The zone's managed SOA and NS are
    among them only outside one: they are read on a connection of their own, which
    SQLite's write lock would keep waiting, and a change refuses them before it
    begins (:func:`_managed_named`)."""
    if within is None and (found := _managed_named(zone, ref, rtype)) is not None:
        return found
    if rtype is not None:
        name = validation.recordset_name(ref, zone.name)
        return stored_reads.get_recordset(
            zone.id, name, validation.record_type(rtype), within=within
        )
    try:
        return stored_reads.get_recordset(zone.id, ref, within=within)
    except exceptions.RecordSetNotFound:
        name = validation.recordset_name(ref, zone.name)
        matches = [
            rs for rs in stored_reads.list_recordsets(zone.id, within=within) if rs.name == name
        ]
        # The apex holds the managed SOA and NS as well: never one recordset alone.
        types = [managed.SOA, managed.NS] if name == zone.name else []
        types += [rs.type for rs in matches]
        if len(types) == 1:
            return matches[0]
        if len(types) > 1:
            raise exceptions.InvalidInput(
                f"{name} holds several recordsets ({', '.join(types)}): say which with --type"
            ) from None
        raise
