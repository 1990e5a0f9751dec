"""Rendering a stored zone as DNS data: the SOA and NS zoneflow writes, then the recordsets."""

from __future__ import annotations

import dataclasses
import datetime

import dns.name
import dns.rdatatype
import pytest

from tests.support import make_zone
from zoneflow import exceptions, objects
from zoneflow.dns import zone as dns_zone

NOW = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)

ZONE = make_zone(email="host.master@example.com", created_at=NOW)

POOL = objects.Pool(
    id="p1",
    name="default",
    description="",
    threshold_percentage=100,
    # Deliberately not in priority order: the lowest priority is the primary.
    ns_records=(objects.NsRecord("ns2.example.org.", 20), objects.NsRecord("ns1.example.org.", 10)),
    nameservers=(),
    targets=(),
    also_notifies=(),
)


def _recordset(
    name: str, rtype: str, records: list[str], ttl: int | None = None
) -> objects.RecordSet:
    return objects.RecordSet(
        id=f"{name}-{rtype}",
        zone_id=ZONE.id,
        name=name,
        type=rtype,
        ttl=ttl,
        records=tuple(records),
        serial=ZONE.serial,
        status=objects.Status.ACTIVE,
        action=objects.Action.NONE,
        created_at=NOW,
        updated_at=None,
    )


def test_soa_names_the_first_ns_record_the_email_and_the_zone_timers() -> None:
    soa = dns_zone.soa_rdata(ZONE, POOL)
    assert soa.mname == dns.name.from_text("ns1.example.org.")
    # The dot inside the mailbox's local part is escaped, not a label separator.
    assert soa.rname == dns.name.from_text("host\\.master.example.com.")
    assert soa.rname.labels[0] == b"host.master"
    assert (soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum) == (
        2024010101,
        3600,
        600,
        86400,
        60,
    )


def test_a_pool_without_ns_records_cannot_make_an_soa() -> None:
    pool = dataclasses.replace(POOL, ns_records=())
    with pytest.raises(exceptions.InvalidPoolConfig, match="ns_records"):
        dns_zone.soa_rdata(ZONE, pool)


def test_apex_is_the_soa_then_the_pools_ns_records_with_the_zone_ttl() -> None:
    soa, ns = dns_zone.apex_rrsets(ZONE, POOL)
    assert soa.rdtype == dns.rdatatype.SOA and ns.rdtype == dns.rdatatype.NS
    assert soa.name == ns.name == dns.name.from_text("example.com.")
    assert soa.ttl == ns.ttl == 300
    assert [r.to_text() for r in ns] == ["ns1.example.org.", "ns2.example.org."]


def test_a_recordset_without_a_ttl_takes_the_zones() -> None:
    inherited = dns_zone.recordset_rrset(ZONE, _recordset("www.example.com.", "A", ["192.0.2.1"]))
    own = dns_zone.recordset_rrset(
        ZONE, _recordset("www.example.com.", "AAAA", ["2001:db8::1"], ttl=30)
    )
    assert inherited.ttl == 300
    assert own.ttl == 30


def test_recordsets_render_from_their_canonical_text() -> None:
    mx = dns_zone.recordset_rrset(
        ZONE, _recordset("example.com.", "MX", ["10 mail.example.com.", "20 mx.example.net."])
    )
    txt = dns_zone.recordset_rrset(
        ZONE, _recordset("example.com.", "TXT", ['"v=spf1 -all"', '"two words" "and more"'])
    )
    assert sorted(r.to_text() for r in mx) == ["10 mail.example.com.", "20 mx.example.net."]
    assert sorted(r.to_text() for r in txt) == ['"two words" "and more"', '"v=spf1 -all"']


def test_iter_rrsets_yields_soa_then_ns_then_the_recordsets_in_order() -> None:
    recordsets = [
        _recordset("a.example.com.", "A", ["192.0.2.1"]),
        _recordset("b.example.com.", "CNAME", ["a.example.com."]),
    ]
    rrsets = list(dns_zone.iter_rrsets(ZONE, POOL, recordsets))
    assert [(r.name.to_text(), dns.rdatatype.to_text(r.rdtype)) for r in rrsets] == [
        ("example.com.", "SOA"),
        ("example.com.", "NS"),
        ("a.example.com.", "A"),
        ("b.example.com.", "CNAME"),
    ]
