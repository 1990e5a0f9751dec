"""TSIG, access lists and NOTIFY in mdns, asked the way secondaries ask.

Requests are signed and responses verified by dnspython's TSIG code, an
implementation independent of the signing of transfer streams in
zoneflow/dns/tsig.py.
"""

from __future__ import annotations

import base64
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig
import dns.xfr
import dns.zone
import pytest
import sqlalchemy

from tests import support
from tests.integration.conftest import fake_pool_yaml
from zoneflow import exceptions, objects
from zoneflow.central import imports_exports, pools
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.dns import query as dns_query
from zoneflow.dns import tsig
from zoneflow.events import served
from zoneflow.mdns import responder
from zoneflow.mdns import server as mdns_server
from zoneflow.storage import db
from zoneflow.storage import reads as stored_reads

HOST = "127.0.0.1"
ZONE = "example.com."
NEW_ZONE = "new.example.net."
KEY = "xfr-key."
SECRET = base64.b64encode(b"the pool's transfer secret, 32 b").decode()
OTHER_SECRET = base64.b64encode(b"not the secret mdns has, 32 byte").decode()

Override = Callable[..., None]


@pytest.fixture
def tsig_pool(override: Override) -> None:
    """mdns knows two keys; the pool's first target transfers with ``xfr-key``."""
    override("tsig", key=[f"{KEY}:hmac-sha256:{SECRET}", f"other-key:hmac-sha256:{OTHER_SECRET}"])
    support.store_pools(pools.parse(fake_pool_yaml({"tsig_key_name": KEY}, {})))


@pytest.fixture
def zone(tsig_pool: None) -> objects.Zone:
    """The zone with 200 A recordsets, imported at once (200 changes cost 10 s of CPU)."""
    hosts = "".join(f"host{index} A 192.0.2.{index % 250 + 1}\n" for index in range(200))
    task = imports_exports.import_zone(
        f"$ORIGIN {ZONE}\n$TTL 3600\n"
        f"@ SOA ns1.{ZONE} hostmaster.{ZONE} 1 3600 600 86400 3600\n"
        f"@ NS ns1.{ZONE}\n{hosts}"
    )
    assert task.status == objects.Status.COMPLETE, task.message
    return stored_reads.get_zone(ZONE)


@pytest.fixture
def mdns(override: Override, tsig_pool: None) -> Iterator[mdns_server.MdnsServer]:
    # Small messages: the transfer spans many, each signed over the one before.
    override("mdns", xfr_message_size=1024)
    server = mdns_server.MdnsServer(HOST, 0)
    server.start_in_thread()
    yield server
    server.stop_thread()


def key(name: str = KEY, secret: str = SECRET) -> dns.tsig.Key:
    return dns.tsig.Key(name, secret, dns.tsig.HMAC_SHA256)


def axfr(server: mdns_server.MdnsServer, signing: dns.tsig.Key | None) -> dns.message.Message:
    """The first message of an AXFR, parsed without checking its TSIG."""
    request = dns.message.make_query(ZONE, dns.rdatatype.AXFR)
    if signing is not None:
        request.use_tsig(signing)
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        dns.query.send_tcp(sock, request.to_wire())
        response, _ = dns.query.receive_tcp(sock, time.time() + 5, keyring=False)
    return response


def tsig_error(response: dns.message.Message) -> int | None:
    return None if response.tsig is None else response.tsig[0].error


def transfer(
    server: mdns_server.MdnsServer, into: dns.zone.Zone, serial: int | None = None
) -> None:
    """AXFR (or IXFR from ``serial``) into ``into``, signed with the pool's key.

    dnspython checks each message's TSIG against the one before it.
    """
    request, _ = dns.xfr.make_query(
        into, serial=serial, keyring={dns.name.from_text(KEY): key()}, keyname=KEY
    )
    dns.query.inbound_xfr(HOST, into, request, port=server.port, timeout=5)


def test_signed_axfr_is_answered_and_every_message_verifies(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    transferred = dns.zone.Zone(ZONE)
    transfer(mdns, transferred)
    assert transferred.get_rdataset("host199", "A") is not None
    assert transferred.get_rdataset("@", "SOA")[0].serial == zone.serial
    assert mdns.responder.transfers["AXFR"] == 1


def test_signed_ixfr_is_answered_signed(zone: objects.Zone, mdns: mdns_server.MdnsServer) -> None:
    transferred = dns.zone.Zone(ZONE)
    transfer(mdns, transferred)
    serial = transferred.get_rdataset("@", "SOA")[0].serial
    central_recordsets.create_recordset(ZONE, "new", "A", ["198.51.100.7"])
    transfer(mdns, transferred, serial=serial)
    assert transferred.get_rdataset("new", "A")[0].to_text() == "198.51.100.7"
    assert mdns.responder.transfers["IXFR"] == 1


def test_unsigned_transfer_is_refused_when_the_pool_names_a_key(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    response = axfr(mdns, None)
    assert response.rcode() == dns.rcode.REFUSED
    assert not response.answer


def test_a_key_the_pool_does_not_use_is_refused(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    response = axfr(mdns, key("other-key.", OTHER_SECRET))
    assert response.rcode() == dns.rcode.REFUSED
    assert not response.answer
    assert tsig_error(response) == dns.rcode.NOERROR  # refused, and signed


def test_unknown_key_gets_notauth_badkey_and_no_data(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    response = axfr(mdns, key("nobody-knows-me.", SECRET))
    assert response.rcode() == dns.rcode.NOTAUTH
    assert tsig_error(response) == dns.rcode.BADKEY
    assert not response.answer


def test_wrong_secret_gets_notauth_badsig_and_no_data(
    zone: objects.Zone, mdns: mdns_server.MdnsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = axfr(mdns, key(KEY, OTHER_SECRET))
    assert response.rcode() == dns.rcode.NOTAUTH
    assert tsig_error(response) == dns.rcode.BADSIG
    assert not response.answer
    assert "BADSIG" in caplog.text and KEY in caplog.text
    assert SECRET not in caplog.text and OTHER_SECRET not in caplog.text


def test_stale_signature_gets_badtime_signed_with_mdns_clock(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    request = dns.message.make_query(ZONE, dns.rdatatype.SOA)
    wire = request.to_wire()
    signing = key()
    stale = int(time.time()) - 3600
    template = dns.rdtypes.ANY.TSIG.TSIG(
        dns.rdataclass.ANY,
        dns.rdatatype.TSIG,
        signing.algorithm,
        stale,
        300,
        b"",
        request.id,
        0,
        b"",
    )
    rdata, _ = dns.tsig.sign(wire, signing, template, stale)
    signed = _with_tsig(wire, signing.name, rdata)
    response = dns.message.from_wire(raw_udp(mdns.port, signed), keyring=False)
    assert response.rcode() == dns.rcode.NOTAUTH
    assert tsig_error(response) == dns.rcode.BADTIME
    upper, lower = struct.unpack("!HI", response.tsig[0].other)
    assert abs(((upper << 32) | lower) - time.time()) < 60
    assert response.tsig[0].mac  # signed: the client can trust the clock it reads


def _with_tsig(wire: bytes, owner: dns.name.Name, rdata: dns.rdtypes.ANY.TSIG.TSIG) -> bytes:
    body = rdata.to_wire()
    record = (
        owner.to_wire()
        + struct.pack("!HHIH", dns.rdatatype.TSIG, dns.rdataclass.ANY, 0, len(body))
        + body
    )
    (additional,) = struct.unpack("!H", wire[10:12])
    return wire[:10] + struct.pack("!H", additional + 1) + wire[12:] + record


def raw_udp(port: int, wire: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(wire, (HOST, port))
        return sock.recv(65535)


def test_signed_soa_query_gets_a_signed_answer(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    request = dns.message.make_query(ZONE, dns.rdatatype.SOA)
    request.use_tsig(key())
    # support.ask_udp's dns.query.udp verifies the response's TSIG against the request's MAC.
    response = support.ask_udp(request, HOST, mdns.port)
    assert response.had_tsig
    assert response.answer[0][0].serial == zone.serial


def test_transfers_from_outside_allow_transfer_are_refused(
    override: Override, zone: objects.Zone
) -> None:
    override("mdns", allow_transfer=["192.0.2.0/24"])
    server = mdns_server.MdnsServer(HOST, 0)
    server.start_in_thread()
    try:
        response = axfr(server, key())
    finally:
        server.stop_thread()
    assert response.rcode() == dns.rcode.REFUSED
    assert not response.answer


def test_bad_access_list_or_key_config_is_a_clear_error(override: Override) -> None:
    override("mdns", allow_transfer=["not-a-network"])
    with pytest.raises(exceptions.InvalidConfig, match="allow_transfer.*not-a-network"):
        responder.Responder()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("just-a-name", "not NAME:ALGORITHM:SECRET"),
        (f"k:hmac-sha999:{SECRET}", "unknown algorithm 'hmac-sha999'"),
        ("k:hmac-sha256:not base64!", "not valid base64"),
        (f"bad..name:hmac-sha256:{SECRET}", "not a valid key name"),
    ],
)
def test_bad_tsig_keys_are_named_without_their_secret(entry: str, message: str) -> None:
    with pytest.raises(exceptions.InvalidConfig, match=message) as raised:
        tsig.parse_keys([entry])
    assert SECRET not in str(raised.value) and "not base64!" not in str(raised.value)


def test_a_key_defined_twice_is_an_error() -> None:
    with pytest.raises(exceptions.InvalidConfig, match="defined twice"):
        tsig.parse_keys([f"k:hmac-sha256:{SECRET}", f"k.:hmac-sha512:{SECRET}"])


def test_notify_is_processed_with_source_and_serial(
    zone: objects.Zone, mdns: mdns_server.MdnsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="zoneflow.mdns.notify")
    assert dns_query.send_notify(ZONE, HOST, mdns.port, serial=zone.serial) == dns.rcode.NOERROR
    assert dns_query.send_notify(ZONE, HOST, mdns.port, serial=zone.serial + 1) == 0
    assert support.notifies_processed(caplog.records) == [
        (HOST, zone.serial),
        (HOST, zone.serial + 1),
    ]


def test_a_nameservers_notify_is_passed_on_to_the_polls_waiting_on_it(
    zone: objects.Zone, mdns: mdns_server.MdnsServer, override: Override
) -> None:
    override("events", driver="inprocess")
    with served.Ear(HOST, {zone.id: zone.serial + 1}) as ear:
        dns_query.send_notify(ZONE, HOST, mdns.port, serial=zone.serial)  # not there yet
        assert ear.wait(0) == set()
        dns_query.send_notify(ZONE, HOST, mdns.port, serial=zone.serial + 1)
        assert ear.wait(5) == {zone.id}


def test_notify_for_a_zone_mdns_does_not_hold_gets_notauth(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    assert dns_query.send_notify("other.example.", HOST, mdns.port) == dns.rcode.NOTAUTH


def test_a_zones_notifies_after_the_first_read_no_storage_and_a_new_zone_is_found_at_once(
    zone: objects.Zone, mdns: mdns_server.MdnsServer, override: Override
) -> None:
    """Every target NOTIFYs mdns of each serial it loads: the zone's id is read once
    for all of them, and a name not found is not remembered as such."""
    override("events", driver="inprocess")
    asked: list[object] = []

    def note(*args: object) -> None:
        # The reads mdns's threads make with either name: SQLite's parameters are a
        # tuple, PostgreSQL's a dict.
        parameters = args[3]
        values = parameters.values() if isinstance(parameters, dict) else parameters
        if threading.current_thread().name.startswith("mdns") and isinstance(values, Iterable):
            asked.extend(value for value in values if value in (ZONE, NEW_ZONE))

    engine = db.get_engine()
    sqlalchemy.event.listen(engine, "before_cursor_execute", note)
    try:
        with served.Ear(HOST, {zone.id: zone.serial}) as ear:
            for _ in range(3):
                assert dns_query.send_notify(ZONE, HOST, mdns.port, serial=zone.serial) == 0
                assert ear.wait(5) == {zone.id}  # each is passed on to the polls
        assert asked == [ZONE]
        assert dns_query.send_notify(NEW_ZONE, HOST, mdns.port) == dns.rcode.NOTAUTH
        made = central_zones.create_zone(NEW_ZONE, "hostmaster@example.net")
        with served.Ear(HOST, {made.id: made.serial}) as ear:
            assert dns_query.send_notify(NEW_ZONE, HOST, mdns.port, serial=made.serial) == 0
            assert ear.wait(5) == {made.id}
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", note)
    assert asked == [ZONE, NEW_ZONE, NEW_ZONE]


def test_notify_from_outside_allow_notify_is_refused_and_not_processed(
    override: Override, zone: objects.Zone, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="zoneflow.mdns.notify")
    override("mdns", allow_notify=["192.0.2.0/24"])
    server = mdns_server.MdnsServer(HOST, 0)
    server.start_in_thread()
    try:
        rcode = dns_query.send_notify(ZONE, HOST, server.port, serial=zone.serial)
    finally:
        server.stop_thread()
    assert rcode == dns.rcode.REFUSED
    assert support.notifies_processed(caplog.records) == []
    assert "not in [mdns] allow_notify" in caplog.text
