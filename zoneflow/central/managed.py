"""A zone's managed recordsets (its SOA and apex NS) as users see them.

Storage lists them beside the stored recordsets without their records
(:mod:`zoneflow.storage.managed`); their records are filled here from the
zone and its pool by :func:`zoneflow.dns.zone.apex_rrsets`, the function
mdns renders them with, so the API shows what the nameservers serve.

Designate refuses to change them, and so does zoneflow, with Designate's
400s: an update of either (``Managed records may not be updated``), a
delete of the SOA (``Deleting a SOA recordset is not allowed``) or of the
apex NS (``Managed records may not be deleted``), a new SOA (``Creating a
SOA recordset is not allowed``); a new NS set at the apex is a duplicate
(409) as it is in Designate, where that set exists. NS recordsets below the
apex (delegations) are ordinary recordsets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from zoneflow import exceptions, objects
from zoneflow.dns import zone as dns_zone
from zoneflow.storage import managed as stored
from zoneflow.storage import pools as stored_pools

SOA = stored.SOA
NS = stored.NS


def is_managed(zone: objects.Zone, recordset: objects.RecordSet) -> bool:
    return recordset.id in (stored.managed_id(zone.id, SOA), stored.managed_id(zone.id, NS))


def of_zone(zone: objects.Zone) -> list[objects.RecordSet]:
    """The zone's SOA and NS recordsets, with their records."""
    return filled({zone.id: zone}, stored.of_zone(zone.id))


def of_type(zone: objects.Zone, name: str, rtype: str) -> objects.RecordSet | None:
    """The zone's managed recordset of this absolute name and type, if it is one."""
    if name != zone.name or rtype not in (SOA, NS):
        return None
    return with_id(zone, stored.managed_id(zone.id, rtype))


def with_id(zone: objects.Zone, recordset_id: str) -> objects.RecordSet | None:
    """The zone's managed recordset with this id, if it is one."""
    if stored.zone_id_of(recordset_id) != zone.id:
        return None
    for recordset in of_zone(zone):
        if recordset.id == recordset_id:
            return recordset
    return None


def filled(
    zones: Mapping[str, objects.Zone], recordsets: Iterable[objects.RecordSet]
) -> list[objects.RecordSet]:
    """The recordsets, the managed ones among them with their records (the zones
    they belong to given by id)."""
    pools: dict[str, objects.Pool] = {}
    shown = []
    for recordset in recordsets:
        zone = zones[recordset.zone_id]
        if is_managed(zone, recordset):
            if zone.pool_id not in pools:
                pools[zone.pool_id] = stored_pools.get_pool(zone.pool_id)
            recordset = _with_records(zone, pools[zone.pool_id], recordset)
        shown.append(recordset)
    return shown


def _with_records(
    zone: objects.Zone, pool: objects.Pool, recordset: objects.RecordSet
) -> objects.RecordSet:
    (rrset,) = [r for r in dns_zone.apex_rrsets(zone, pool) if r.rdtype.name == recordset.type]
    return dataclasses.replace(recordset, records=tuple(rdata.to_text() for rdata in rrset))


def refuse_soa(rtype: str) -> None:
    """Refuse a new recordset of type SOA (``rtype`` as given)."""
    if rtype.strip().upper() == SOA:
        raise exceptions.BadRequest(
            "Creating a SOA recordset is not allowed: zoneflow writes the SOA from the "
            "zone's email and timers; change those by updating the zone"
        )


def refuse_apex_ns(zone: objects.Zone, name: str, rtype: str) -> None:
    """Refuse a new NS recordset at the apex (``name`` absolute, ``rtype`` canonical)."""
    if rtype == NS and name == zone.name:
        raise exceptions.DuplicateRecordSet(
            f"recordset {zone.name} NS exists already: the NS records at the apex come "
            "from the pool's ns_records (change them in pools.yaml); add NS records "
            "below the apex to delegate"
        )


def refuse_update(zone: objects.Zone, recordset: objects.RecordSet) -> None:
    if is_managed(zone, recordset):
        raise exceptions.BadRequest(
            f"Managed records may not be updated: the {recordset.type} recordset of "
            f"{zone.name} is {_written_from(recordset.type)}"
        )


def refuse_delete(zone: objects.Zone, recordset: objects.RecordSet) -> None:
    if not is_managed(zone, recordset):
        return
    if recordset.type == SOA:
        raise exceptions.BadRequest(
            f"Deleting a SOA recordset is not allowed: the SOA of {zone.name} is "
            f"{_written_from(SOA)}"
        )
    raise exceptions.BadRequest(
        f"Managed records may not be deleted: the NS recordset of {zone.name} is "
        f"{_written_from(NS)}"
    )


def _written_from(rtype: str) -> str:
    if rtype == SOA:
        return "written from the zone's email and timers: change those by updating the zone"
    return "written from the pool's ns_records: change them in pools.yaml"
