"""A zone in storage as DNS data: the SOA and apex NS zoneflow writes, then the recordsets.

Storage keeps what users own (recordsets, the zone's email and timers); the
apex SOA and NS are derived here, from the zone and its pool, so that every
consumer (mdns answering AXFR, exports, checks) renders one and the same zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset

from zoneflow import exceptions, objects
from zoneflow.dns import validation


def zone_origin(zone: objects.Zone) -> dns.name.Name:
    return dns.name.from_text(zone.name)


def soa_rdata(zone: objects.Zone, pool: objects.Pool) -> dns.rdtypes.ANY.SOA.SOA:
    """The zone's SOA: MNAME is the pool's first NS record, the rest comes from the zone.

    The serial is the zone's: storage bumps it with every change, which is
    what tells secondaries to transfer again.
    """
    if not pool.ns_records:
        # pools.parse refuses such a pool; a hand-made one must fail loudly, not
        # publish an SOA without a primary.
        raise exceptions.InvalidPoolConfig(
            f"pool {pool.name} has no ns_records: the SOA of {zone.name} names its primary "
            "from them, so list at least one in pools.yaml"
        )
    primary = min(pool.ns_records, key=lambda record: record.priority)
    return dns.rdtypes.ANY.SOA.SOA(
        dns.rdataclass.IN,
        dns.rdatatype.SOA,
        dns.name.from_text(primary.hostname),
        dns.name.from_text(validation.email_to_rname(zone.email)),
        zone.serial,
        zone.refresh,
        zone.retry,
        zone.expire,
        zone.minimum,
    )


def soa_rrset(zone: objects.Zone, pool: objects.Pool) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(zone_origin(zone), dns.rdataclass.IN, dns.rdatatype.SOA)
    rrset.add(soa_rdata(zone, pool), zone.ttl)
    return rrset


def apex_ns_rrset(zone: objects.Zone, pool: objects.Pool) -> dns.rrset.RRset:
    """The apex NS set from the pool's ns_records (by priority), TTL the zone's."""
    return dns.rrset.from_text_list(
        zone_origin(zone),
        zone.ttl,
        dns.rdataclass.IN,
        dns.rdatatype.NS,
        [r.hostname for r in sorted(pool.ns_records, key=lambda record: record.priority)],
    )


def apex_rrsets(zone: objects.Zone, pool: objects.Pool) -> list[dns.rrset.RRset]:
    """SOA, then the apex NS set (:func:`apex_ns_rrset`)."""
    return [soa_rrset(zone, pool), apex_ns_rrset(zone, pool)]


def recordset_rrset(zone: objects.Zone, recordset: objects.RecordSet) -> dns.rrset.RRset:
    """One recordset as an RRset; a recordset without its own TTL takes the zone's."""
    ttl = recordset.ttl if recordset.ttl is not None else zone.ttl
    # Records are stored as canonical text with absolute names, so no origin
    # is needed to read them back.
    return dns.rrset.from_text_list(
        recordset.name,
        ttl,
        dns.rdataclass.IN,
        dns.rdatatype.from_text(recordset.type),
        list(recordset.records),
    )


def iter_rrsets(
    zone: objects.Zone, pool: objects.Pool, recordsets: Iterable[objects.RecordSet]
) -> Iterator[dns.rrset.RRset]:
    """Everything the zone holds: SOA first, apex NS, then the recordsets in the given order.

    The order is what an AXFR needs (SOA first); the closing SOA of a
    transfer is the caller's to add.
    """
    yield from apex_rrsets(zone, pool)
    for recordset in recordsets:
        yield recordset_rrset(zone, recordset)
