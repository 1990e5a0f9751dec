"""A zone in storage as DNS data: the SOA and apex NS zoneflow writes, and the recordsets."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from zoneflow import objects
from zoneflow.central import validation


def soa_rrset(zone: objects.Zone, pool: objects.Pool) -> dns.rrset.RRset:
    primary = pool.ns_records[0].hostname if pool.ns_records else zone.name
    text = (
        f"{primary} {validation.email_to_rname(zone.email)} {zone.serial} "
        f"{zone.refresh} {zone.retry} {zone.expire} {zone.minimum}"
    )
    return dns.rrset.from_text(zone.name, zone.ttl, dns.rdataclass.IN, dns.rdatatype.SOA, text)


def apex_rrsets(zone: objects.Zone, pool: objects.Pool) -> list[dns.rrset.RRset]:
    """SOA, then NS from the pool's ns_records."""
    rrsets = [soa_rrset(zone, pool)]
    if pool.ns_records:
        rrsets.append(
            dns.rrset.from_text_list(
                zone.name,
                zone.ttl,
                dns.rdataclass.IN,
                dns.rdatatype.NS,
                [r.hostname for r in pool.ns_records],
            )
        )
    return rrsets


def recordset_rrset(zone: objects.Zone, recordset: objects.RecordSet) -> dns.rrset.RRset:
    ttl = recordset.ttl if recordset.ttl is not None else zone.ttl
    return dns.rrset.from_text_list(
        recordset.name, ttl, dns.rdataclass.IN, recordset.type, list(recordset.records)
    )


def iter_rrsets(
    zone: objects.Zone, pool: objects.Pool, recordsets: Iterable[objects.RecordSet]
) -> Iterator[dns.rrset.RRset]:
    """Everything the zone holds: SOA first, apex NS, then the recordsets."""
    yield from apex_rrsets(zone, pool)
    for recordset in recordsets:
        yield recordset_rrset(zone, recordset)


def zone_origin(zone: objects.Zone) -> dns.name.Name:
    return dns.name.from_text(zone.name)
