"""A pool's catalog zone (RFC 9432): what pools.yaml accepts and what mdns serves."""

from __future__ import annotations

import time
from collections.abc import Iterator

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.xfr
import dns.zone
import pytest
from oslo_config import cfg

from tests import support
from zoneflow import exceptions, objects
from zoneflow.central import pools
from zoneflow.central import zones as central_zones
from zoneflow.mdns import server as mdns_server
from zoneflow.storage import catalogs as stored_catalogs
from zoneflow.storage import reads as stored_reads

HOST = "127.0.0.1"
CATALOG = "catalog.example.org."
POOL = f"""
- name: default
  ns_records: [{{hostname: ns1.example.org., priority: 1}}]
  targets: [{{type: fake, description: fake1}}]
  catalog_zone: {{catalog_zone_fqdn: {CATALOG}, catalog_zone_refresh: '30'}}
  provisioning: catalog
"""


@pytest.fixture
def catalog_pool() -> objects.Pool:
    [pool] = support.store_pools(pools.parse(POOL))
    return pool


@pytest.fixture
def mdns(catalog_pool: objects.Pool) -> Iterator[mdns_server.MdnsServer]:
    server = mdns_server.MdnsServer(HOST, 0)
    server.start_in_thread()
    yield server
    server.stop_thread()


def transfer_catalog(server: mdns_server.MdnsServer) -> dns.zone.Zone:
    catalog = dns.zone.Zone(CATALOG)
    dns.query.inbound_xfr(HOST, catalog, port=server.port, timeout=5)
    return catalog


def members(catalog: dns.zone.Zone) -> set[str]:
    return {
        rdata.target.to_text()
        for name, rdataset in catalog.iterate_rdatasets(dns.rdatatype.PTR)
        for rdata in rdataset
        if name.is_subdomain(dns.name.from_text("zones", None))
    }


def test_the_pool_keeps_its_catalog_settings(catalog_pool: objects.Pool) -> None:
    assert catalog_pool.provisioning == objects.CATALOG
    assert (catalog_pool.catalog_zone, catalog_pool.catalog_zone_refresh) == (CATALOG, 30)


def test_mdns_serves_the_catalog_with_each_live_zone_as_a_member(
    mdns: mdns_server.MdnsServer,
) -> None:
    empty = transfer_catalog(mdns)
    assert members(empty) == set()
    assert empty.get_rdataset("version", "TXT")[0].to_text() == '"2"'
    assert empty.get_rdataset("@", "NS")[0].to_text() == "invalid."

    for name in ("a.example.", "b.example.", "c.example."):
        central_zones.create_zone(name, "hostmaster@example.org")
    central_zones.delete_zone("b.example.")
    full = transfer_catalog(mdns)
    assert members(full) == {"a.example.", "c.example."}
    # Every membership change is a new serial, so consumers transfer again.
    assert full.get_soa().serial == empty.get_soa().serial + 4
    # Member ids are the zones' own: stable for the life of each zone.
    zone_a = stored_reads.get_zone("a.example.")
    assert full.get_rdataset(f"{zone_a.id.replace('-', '')}.zones", "PTR") is not None


def catalog_serial(server: mdns_server.MdnsServer) -> int:
    response = support.ask_udp(dns.message.make_query(CATALOG, "SOA"), HOST, server.port)
    assert response.rcode() == dns.rcode.NOERROR
    return int(response.answer[0][0].serial)


def ixfr_records(server: mdns_server.MdnsServer, serial: int) -> list[tuple[str, str, str]]:
    """The records of an IXFR of the catalog from ``serial``, in order, as (name, type,
    data) with the SOAs as their serials."""
    found = []
    for message in dns.query.xfr(
        HOST,
        CATALOG,
        rdtype=dns.rdatatype.IXFR,
        serial=serial,
        port=server.port,
        timeout=5,
        relativize=False,
    ):
        for rrset in message.answer:
            for rdata in rrset:
                data = str(rdata.serial) if rrset.rdtype == dns.rdatatype.SOA else rdata.to_text()
                found.append((rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), data))
    return found


def test_catalog_soa_answers_with_its_refresh(mdns: mdns_server.MdnsServer) -> None:
    central_zones.create_zone("a.example.", "hostmaster@example.org")
    response = support.ask_udp(dns.message.make_query(CATALOG, "SOA"), HOST, mdns.port)
    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer[0][0].refresh == 30


def test_an_ixfr_of_the_catalog_brings_only_the_members_that_joined_or_left(
    mdns: mdns_server.MdnsServer,
) -> None:
    ids = {"a.example.": central_zones.create_zone("a.example.", "hostmaster@example.org").id}
    consumer = transfer_catalog(mdns)
    before = consumer.get_soa().serial
    for name in ("b.example.", "c.example.", "gone.example."):
        ids[name] = central_zones.create_zone(name, "hostmaster@example.org").id
    central_zones.delete_zone("a.example.")
    central_zones.delete_zone("gone.example.")
    now = catalog_serial(mdns)
    assert now == before + 5  # one serial for each zone that joined or left

    records = ixfr_records(mdns, before)

    def owner(name: str) -> str:
        return f"{ids[name].replace('-', '')}.zones.{CATALOG}"

    # One difference (RFC 1995): a.example. left, b and c joined; gone.example.
    # joined and left since, so it is in neither.
    assert records == [
        (CATALOG, "SOA", str(now)),
        (CATALOG, "SOA", str(before)),
        (owner("a.example."), "PTR", "a.example."),
        (CATALOG, "SOA", str(now)),
        (owner("b.example."), "PTR", "b.example."),
        (owner("c.example."), "PTR", "c.example."),
        (CATALOG, "SOA", str(now)),
    ]
    assert mdns.responder.transfers["IXFR"] == 1
    # dnspython applies it to the catalog it held: the catalog a new AXFR gives.
    request, _ = dns.xfr.make_query(consumer, serial=before)
    dns.query.inbound_xfr(HOST, consumer, request, port=mdns.port, timeout=5)
    assert consumer.get_soa().serial == now
    assert members(consumer) == members(transfer_catalog(mdns)) == {"b.example.", "c.example."}


def test_a_consumer_behind_the_catalogs_history_gets_the_whole_catalog(
    mdns: mdns_server.MdnsServer,
) -> None:
    central_zones.create_zone("a.example.", "hostmaster@example.org")
    before = catalog_serial(mdns)
    cfg.CONF.set_override("catalog_change_history", 2, group="storage")
    try:
        for name in ("b.example.", "c.example.", "d.example."):
            central_zones.create_zone(name, "hostmaster@example.org")
    finally:
        cfg.CONF.clear_override("catalog_change_history", group="storage")

    # Two changes kept: the consumer at the first of the three lacks one.
    records = ixfr_records(mdns, before)
    assert {data for _, kind, data in records if kind == "PTR"} == {
        "a.example.",
        "b.example.",
        "c.example.",
        "d.example.",
    }
    assert mdns.responder.transfers["IXFR-AXFR"] == 1
    # A consumer within the history gets the difference.
    within = ixfr_records(mdns, before + 1)
    assert [data for _, kind, data in within if kind == "PTR"] == ["c.example.", "d.example."]
    assert mdns.responder.transfers["IXFR"] == 1


def test_a_catalog_of_5000_members_transfers_whole_while_consumers_ask_its_soa(
    catalog_pool: objects.Pool, mdns: mdns_server.MdnsServer
) -> None:
    names = support.bulk_zones(5000, pool_id=catalog_pool.id)
    stored = stored_catalogs.get_catalog(catalog_pool.id)
    assert stored is not None
    # Consumers ask the catalog's SOA at every refresh and every NOTIFY the flows
    # send it: eight of them, five times a second each, through the transfer.
    with support.SoaAskers(HOST, mdns.port, CATALOG, rate=40) as consumers:
        started = time.monotonic()
        messages = list(
            dns.query.xfr(HOST, CATALOG, port=mdns.port, timeout=30, lifetime=60, relativize=False)
        )
        elapsed = time.monotonic() - started

    records = [rrset for message in messages for rrset in message.answer]
    soas = [rrset[0].serial for rrset in records if rrset.rdtype == dns.rdatatype.SOA]
    assert (records[0].rdtype, records[-1].rdtype) == (dns.rdatatype.SOA, dns.rdatatype.SOA)
    assert soas == [stored.serial, stored.serial]
    zones = dns.name.from_text("zones", dns.name.from_text(CATALOG))
    members = [
        rdata.target.to_text()
        for rrset in records
        if rrset.rdtype == dns.rdatatype.PTR and rrset.name.is_subdomain(zones)
        for rdata in rrset
    ]
    assert len(members) == 5000 and set(members) == set(names)
    assert elapsed < 15, f"the catalog took {elapsed:.1f} s to transfer"
    assert consumers.answered >= 0.95 * consumers.sent, (
        f"{consumers.answered} of {consumers.sent} SOA queries answered within 2 s"
    )


def test_a_zone_cannot_take_the_catalog_name(catalog_pool: objects.Pool) -> None:
    with pytest.raises(exceptions.DuplicateZone, match="catalog zone"):
        central_zones.create_zone(CATALOG, "hostmaster@example.org")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("provisioning: catalog", "needs a catalog zone"),
        ("provisioning: sometimes", "must be 'per-zone' or 'catalog'"),
        ("catalog_zone: {catalog_zone_refresh: 5}", "no catalog_zone_fqdn"),
        ("catalog_zone: {catalog_zone_fqdn: c.example., catalog_zone_refresh: 0}", "1 to 86400"),
        ("catalog_zone: {catalog_zone_fqdn: 'bad..name'}", "bad..name"),
        ("catalog_zone: {catalog_zone_fqdn: c.example., colour: blue}", "colour"),
    ],
)
def test_bad_catalog_settings_are_explained(extra: str, message: str) -> None:
    text = (
        "- name: p\n  ns_records: [{hostname: ns1.example.org., priority: 1}]\n"
        f"  targets: [{{type: fake}}]\n  {extra}\n"
    )
    with pytest.raises(exceptions.InvalidPoolConfig, match=message):
        pools.parse(text)


def test_two_pools_cannot_share_a_catalog() -> None:
    one = (
        "- name: {n}\n  ns_records: [{{hostname: ns.example., priority: 1}}]\n"
        "  targets: [{{type: fake}}]\n  catalog_zone: {{catalog_zone_fqdn: c.example.}}\n"
    )
    with pytest.raises(exceptions.InvalidPoolConfig, match="same catalog_zone_fqdn"):
        pools.parse(one.format(n="a") + one.format(n="b"))
