"""A zone as DNS data: one serial of one zone, indexed for lookups (CNAME,
wildcard, delegation and negative answers as RFC 1034 and 2308 describe) and
ready for AXFR; and a pool's catalog zone (RFC 9432) in the same form."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset

from zoneflow import objects
from zoneflow.dns import zone as dns_zone
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import zones as stored_zones


@dataclasses.dataclass
class Lookup:
    """What a zone answers for one name and type, by message section."""

    rcode: dns.rcode.Rcode = dns.rcode.NOERROR
    authoritative: bool = True
    answer: list[dns.rrset.RRset] = dataclasses.field(default_factory=list)
    authority: list[dns.rrset.RRset] = dataclasses.field(default_factory=list)
    additional: list[dns.rrset.RRset] = dataclasses.field(default_factory=list)


class ZoneSnapshot:
    """One serial of one zone as DNS data, indexed for lookups and ready for AXFR."""

    def __init__(self, zone: objects.Zone, pool: objects.Pool, rrsets: list[dns.rrset.RRset]):
        self.zone = zone
        self.origin = dns_zone.zone_origin(zone)
        self.soa = dns_zone.soa_rrset(zone, pool)
        self.rrsets = rrsets
        self.nodes: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}
        # Every owner name and every name between it and the apex: a name in
        # here exists (RFC 4592's empty non-terminals included) and gets
        # NODATA, never NXDOMAIN.
        self.names: set[dns.name.Name] = {self.origin}
        for rrset in rrsets:
            self.nodes.setdefault(rrset.name, {})[rrset.rdtype] = rrset
            name = rrset.name
            while name != self.origin and name not in self.names:
                self.names.add(name)
                name = name.parent()

    @classmethod
    def read(
        cls, zone: objects.Zone, pool: objects.Pool, *, attempts: int = 3
    ) -> tuple[ZoneSnapshot, bool]:
        """Read a zone's recordsets; return the snapshot and whether it is exact.

        The zone row and its recordsets are separate reads, and a change may
        commit in between. Every change bumps the serial in its own
        transaction, so an unchanged serial after the recordsets were read
        proves they belong to it. When changes keep landing, the snapshot
        carries the serial read before its data: the data is then at least
        as new as the serial says, and the next NOTIFY brings the rest.
        """
        current = zone
        for attempt in range(attempts):
            recordsets = stored_reads.list_recordsets(current.id)
            again = stored_zones.find_zone_for_mdns(current.name)
            exact = again is not None and again.serial == current.serial
            if exact or again is None or again.id != current.id or attempt == attempts - 1:
                break
            current = again
        rrsets = list(dns_zone.iter_rrsets(current, pool, recordsets))
        return cls(current, pool, rrsets), exact

    def negative_soa(self) -> dns.rrset.RRset:
        # RFC 2308 section 3: the SOA of a negative answer lives min(TTL, MINIMUM).
        soa = self.soa[0]
        assert isinstance(soa, dns.rdtypes.ANY.SOA.SOA)
        return dns.rrset.from_rdata(self.origin, min(self.soa.ttl, soa.minimum), soa)

    def lookup(self, qname: dns.name.Name, qtype: dns.rdatatype.RdataType) -> Lookup:
        referral = self._delegation(qname, qtype)
        if referral is not None:
            return referral
        node = self.nodes.get(qname)
        if node is None and qname not in self.names:
            node = self._wildcard(qname)
            if node is None:
                return Lookup(rcode=dns.rcode.NXDOMAIN, authority=[self.negative_soa()])
            node = {
                rdtype: dns.rrset.from_rdata_list(qname, rrset.ttl, list(rrset))
                for rdtype, rrset in node.items()
            }
        node = node or {}
        if qtype == dns.rdatatype.ANY and node:
            return Lookup(answer=list(node.values()))
        if qtype in node:
            return Lookup(answer=[node[qtype]])
        if dns.rdatatype.CNAME in node:
            return Lookup(answer=[node[dns.rdatatype.CNAME]])
        return Lookup(authority=[self.negative_soa()])

    def _delegation(self, qname: dns.name.Name, qtype: dns.rdatatype.RdataType) -> Lookup | None:
        """A referral when ``qname`` is at or below an NS set below the apex."""
        for depth in range(len(self.origin) + 1, len(qname) + 1):
            cut = qname.split(depth)[1]
            ns = self.nodes.get(cut, {}).get(dns.rdatatype.NS)
            if ns is None:
                continue
            if cut == qname and qtype == dns.rdatatype.DS:
                # The DS of a child lives on the parent's side of the cut.
                return None
            glue = [
                rrset
                for target in ns
                for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
                if (rrset := self.nodes.get(target.target, {}).get(rdtype)) is not None
            ]
            return Lookup(authoritative=False, authority=[ns], additional=glue)
        return None

    def _wildcard(self, qname: dns.name.Name) -> dict[int, dns.rrset.RRset] | None:
        """The ``*`` node at the closest encloser of ``qname`` (RFC 4592), if any."""
        encloser = qname.parent()
        while encloser not in self.names:
            encloser = encloser.parent()
        return self.nodes.get(dns.name.Name((b"*", *encloser.labels)))


def catalog_zone(catalog: objects.Catalog) -> objects.Zone:
    """A pool's catalog as the zone row it would have: what its SOA is made from."""
    return objects.Zone(
        id=f"catalog-{catalog.pool_id}",
        name=catalog.name,
        email=f"hostmaster@{catalog.name.rstrip('.')}",
        ttl=0,
        serial=catalog.serial,
        refresh=catalog.refresh,
        retry=catalog.refresh,
        expire=2419200,
        minimum=0,
        status=objects.Status.ACTIVE,
        action=objects.Action.NONE,
        pool_id=catalog.pool_id,
        project_id=None,
        description=None,
        error=None,
        created_at=datetime.datetime.min,
        updated_at=None,
    )


def catalog_apex(origin: dns.name.Name) -> list[dns.rrset.RRset]:
    """A catalog's data besides its SOA and members (RFC 9432, version 2): the
    apex NS ``invalid.`` the RFC asks for, and the schema version."""
    return [
        dns.rrset.from_text(origin, 0, "IN", "NS", "invalid."),
        dns.rrset.from_text(dns.name.from_text("version", origin), 0, "IN", "TXT", '"2"'),
    ]


def member_owner(catalog_name: str, zone_id: str) -> str:
    """Where a member's PTR lives: ``<id>.zones.<catalog>``, its id the zone's
    (stable for the zone's life, so a consumer never sees a member change identity)."""
    return f"{zone_id.replace('-', '')}.zones.{catalog_name}"


def catalog_snapshot(
    catalog: objects.Catalog, pool: objects.Pool, members: Iterable[tuple[str, str]]
) -> ZoneSnapshot:
    """A pool's catalog zone (RFC 9432, version 2) as DNS data, for queries of the
    names in it: each member (zone id, zone name) a PTR at :func:`member_owner`."""
    origin = dns.name.from_text(catalog.name)
    rrsets = catalog_apex(origin)
    for zone_id, name in members:
        owner = dns.name.from_text(member_owner(catalog.name, zone_id))
        rrsets.append(dns.rrset.from_text(owner, 0, "IN", "PTR", name))
    return ZoneSnapshot(catalog_zone(catalog), pool, rrsets)
