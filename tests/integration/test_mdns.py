"""mdns answers from storage: SOA, lookups, AXFR/IXFR, NOTIFY, and survives bad input.

Each test runs a real MdnsServer on a free port of 127.0.0.1 against the
per-test SQLite database, and asks it with dnspython, as a secondary would.
"""

from __future__ import annotations

import socket
import struct
import time
import tracemalloc

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.update
import dns.xfr
import dns.zone
import pytest
import sqlalchemy as sa
from oslo_config import cfg

from tests import support
from zoneflow import objects
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.dns import query, soa_probe
from zoneflow.dns import zone as dns_zone
from zoneflow.mdns import server as mdns_server
from zoneflow.storage import db, models
from zoneflow.storage import history as stored_history
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import status as stored_status
from zoneflow.storage import transfers as stored_transfers
from zoneflow.storage import zones as stored_zones

pytestmark = pytest.mark.usefixtures("fake_pool")

HOST = "127.0.0.1"
ZONE = "example.com."
RECORDS = [
    ("www", "A", ["192.0.2.1", "192.0.2.2"]),
    ("www", "AAAA", ["2001:db8::1"]),
    ("@", "MX", ["10 mail.example.com.", "20 mx.example.net."]),
    ("@", "TXT", ['"v=spf1 mx -all"']),
    ("mail", "A", ["192.0.2.25"]),
    ("alias", "CNAME", ["www.example.com."]),
]


@pytest.fixture
def zone() -> objects.Zone:
    central_zones.create_zone(ZONE, "hostmaster@example.com")
    for name, rtype, records in RECORDS:
        central_recordsets.create_recordset(ZONE, name, rtype, records)
    return stored_reads.get_zone(ZONE)


def ask(
    server: mdns_server.MdnsServer, name: str, rtype: str, *, tcp: bool = False
) -> dns.message.Message:
    message = dns.message.make_query(name, rtype)
    if tcp:
        return dns.query.tcp(message, HOST, port=server.port, timeout=10)
    return support.ask_udp(message, HOST, server.port)


def send_raw_udp(port: int, wire: bytes, timeout: float = 1.0) -> bytes | None:
    """Send bytes as they are; the reply, or None when nothing comes back."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(wire, (HOST, port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def raw_axfr(port: int, name: str) -> list[bytes]:
    """The wire messages of an AXFR, read off the TCP stream until the closing SOA."""
    request = dns.message.make_query(name, dns.rdatatype.AXFR).to_wire()
    messages: list[bytes] = []
    soas = 0
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(struct.pack("!H", len(request)) + request)
        stream = sock.makefile("rb")
        while soas < 2:
            (length,) = struct.unpack("!H", stream.read(2))
            wire = stream.read(length)
            messages.append(wire)
            parsed = dns.message.from_wire(wire, xfr=True, one_rr_per_rrset=True)
            if parsed.rcode() != dns.rcode.NOERROR:
                break
            soas += sum(1 for rrset in parsed.answer if rrset.rdtype == dns.rdatatype.SOA)
    return messages


def transfer(port: int, name: str = ZONE) -> dns.zone.Zone:
    return dns.zone.from_xfr(dns.query.xfr(HOST, name, port=port, timeout=5, lifetime=60))


def stored_rrsets(zone: objects.Zone) -> set[str]:
    pool = stored_pools.get_pool(zone.pool_id)
    rendered = dns_zone.iter_rrsets(zone, pool, stored_reads.list_recordsets(zone.id))
    return {line for rrset in rendered for line in rrset.to_text().splitlines()}


def transferred_rrsets(transferred: dns.zone.Zone) -> set[str]:
    return {
        line
        for name, rdataset in transferred.iterate_rdatasets()
        for line in rdataset.to_text(name, origin=transferred.origin, relativize=False).splitlines()
    }


# --- SOA and lookups ---------------------------------------------------------------


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_soa_is_answered_with_authority_and_the_stored_serial(
    zone: objects.Zone, mdns: mdns_server.MdnsServer, tcp: bool
) -> None:
    response = ask(mdns, ZONE, "SOA", tcp=tcp)
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    soa = response.find_rrset(
        response.answer, dns.name.from_text(ZONE), dns.rdataclass.IN, dns.rdatatype.SOA
    )
    assert soa[0].serial == zone.serial
    assert soa[0].mname == dns.name.from_text("ns1.example.org.")
    assert soa[0].rname == dns.name.from_text("hostmaster.example.com.")


def test_records_are_answered_from_storage(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    www = ask(mdns, "www.example.com.", "A")
    assert www.flags & dns.flags.AA
    assert sorted(r.to_text() for r in www.answer[0]) == ["192.0.2.1", "192.0.2.2"]
    mx = ask(mdns, ZONE, "MX")
    assert sorted(r.to_text() for r in mx.answer[0]) == [
        "10 mail.example.com.",
        "20 mx.example.net.",
    ]
    ns = ask(mdns, ZONE, "NS")
    assert [r.to_text() for r in ns.answer[0]] == ["ns1.example.org."]


def test_a_cname_answers_any_type_at_its_name(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    response = ask(mdns, "alias.example.com.", "A")
    assert response.answer[0].rdtype == dns.rdatatype.CNAME
    assert response.answer[0][0].to_text() == "www.example.com."


def test_missing_names_and_types_get_negative_answers_with_the_soa(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    nxdomain = ask(mdns, "nothing.example.com.", "A")
    nodata = ask(mdns, "mail.example.com.", "AAAA")
    assert nxdomain.rcode() == dns.rcode.NXDOMAIN
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
    for response in (nxdomain, nodata):
        assert response.flags & dns.flags.AA
        soa = response.authority[0]
        assert soa.rdtype == dns.rdatatype.SOA
        assert soa.ttl == min(zone.ttl, zone.minimum)


def test_wildcards_empty_non_terminals_and_delegations(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    central_recordsets.create_recordset(ZONE, "*.users", "TXT", ['"any user"'])
    central_recordsets.create_recordset(ZONE, "a.b.deep", "A", ["192.0.2.9"])
    central_recordsets.create_recordset(ZONE, "child", "NS", ["ns.child.example.com."])
    central_recordsets.create_recordset(ZONE, "ns.child", "A", ["192.0.2.53"])

    wildcard = ask(mdns, "alice.users.example.com.", "TXT")
    assert wildcard.answer[0].name == dns.name.from_text("alice.users.example.com.")
    assert wildcard.answer[0][0].to_text() == '"any user"'

    empty_non_terminal = ask(mdns, "b.deep.example.com.", "A")
    assert empty_non_terminal.rcode() == dns.rcode.NOERROR and not empty_non_terminal.answer

    referral = ask(mdns, "www.child.example.com.", "A")
    assert not referral.flags & dns.flags.AA
    assert referral.authority[0].rdtype == dns.rdatatype.NS
    assert referral.additional[0][0].to_text() == "192.0.2.53"


def test_zones_it_does_not_hold_are_refused(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    assert ask(mdns, "example.net.", "SOA").rcode() == dns.rcode.REFUSED
    assert ask(mdns, "www.example.net.", "A", tcp=True).rcode() == dns.rcode.REFUSED
    with pytest.raises(dns.xfr.TransferError) as refused:
        transfer(mdns.port, "example.net.")
    assert refused.value.rcode == dns.rcode.REFUSED


def test_a_change_is_served_as_soon_as_it_commits(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    transfer(mdns.port)  # the old serial is now rendered and cached
    www = stored_reads.get_recordset(zone.id, "www.example.com.", "A")
    changed = central_recordsets.update_recordset(ZONE, www.id, records=["198.51.100.7"])
    assert ask(mdns, ZONE, "SOA").answer[0][0].serial == changed.serial
    assert [r.to_text() for r in ask(mdns, "www.example.com.", "A").answer[0]] == ["198.51.100.7"]
    transferred = transfer(mdns.port)
    assert transferred.get_soa().serial == changed.serial
    assert transferred.find_rdataset("www", "A")[0].to_text() == "198.51.100.7"


def test_an_answer_too_big_for_udp_is_truncated_and_whole_over_tcp(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    texts = [f'"{i:03d} {"x" * 100}"' for i in range(20)]
    central_recordsets.create_recordset(ZONE, "big", "TXT", texts)
    udp = ask(mdns, "big.example.com.", "TXT")
    assert udp.flags & dns.flags.TC
    tcp = ask(mdns, "big.example.com.", "TXT", tcp=True)
    assert not tcp.flags & dns.flags.TC
    assert len(tcp.answer[0]) == 20


# --- zone transfers ----------------------------------------------------------------


def test_axfr_holds_every_record_and_the_stored_serial(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    transferred = transfer(mdns.port)
    assert transferred.get_soa().serial == zone.serial
    assert transferred_rrsets(transferred) == stored_rrsets(zone)
    for name, rtype, _ in RECORDS:
        assert transferred.get_rdataset(name, rtype) is not None


def test_axfr_begins_and_ends_with_the_soa(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    messages = [dns.message.from_wire(w, xfr=True) for w in raw_axfr(mdns.port, ZONE)]
    answers = [rrset for message in messages for rrset in message.answer]
    assert answers[0].rdtype == answers[-1].rdtype == dns.rdatatype.SOA
    assert [a.rdtype for a in answers].count(dns.rdatatype.SOA) == 2
    assert all(message.flags & dns.flags.AA for message in messages)


def test_axfr_over_udp_is_a_format_error(zone: objects.Zone, mdns: mdns_server.MdnsServer) -> None:
    assert ask(mdns, ZONE, "AXFR").rcode() == dns.rcode.FORMERR


def _ixfr(port: int, serial: int) -> list[dns.rrset.RRset]:
    request = dns.message.make_query(ZONE, dns.rdatatype.IXFR)
    request.authority.append(
        dns.rrset.from_text(ZONE, 0, "IN", "SOA", f". . {serial} 0 0 0 0"),
    )
    messages = []
    with socket.create_connection((HOST, port), timeout=5) as sock:
        wire = request.to_wire()
        sock.sendall(struct.pack("!H", len(wire)) + wire)
        stream = sock.makefile("rb")
        soas = 0
        while True:
            (length,) = struct.unpack("!H", stream.read(2))
            message = dns.message.from_wire(stream.read(length), xfr=True)
            messages.append(message)
            soas += sum(1 for r in message.answer if r.rdtype == dns.rdatatype.SOA)
            first = messages[0].answer
            if soas == 2 or (len(first) == 1 and first[0].rdtype == dns.rdatatype.SOA):
                break
    return [rrset for message in messages for rrset in message.answer]


def test_ixfr_from_the_current_serial_is_a_single_soa(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    answers = _ixfr(mdns.port, zone.serial)
    assert len(answers) == 1
    assert answers[0][0].serial == zone.serial


def test_ixfr_beyond_the_history_sends_the_whole_zone(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    answers = _ixfr(mdns.port, zone.serial - 1000)
    assert answers[0].rdtype == answers[-1].rdtype == dns.rdatatype.SOA
    # AXFR-style (RFC 1995 section 4): the second record is not an SOA.
    assert answers[1].rdtype == dns.rdatatype.NS
    records = sum(len(rrset) for rrset in answers)
    assert records == 3 + sum(len(data) for _, _, data in RECORDS)  # SOA, NS, ..., SOA
    assert mdns.responder.transfers["IXFR-AXFR"] == 1


def _transfer_into(target: dns.zone.Zone, port: int, *, serial: int | None = 0) -> None:
    """AXFR (serial None) or IXFR from the zone's serial into ``target``, as a secondary would."""
    request, _ = dns.xfr.make_query(target, serial=serial)
    dns.query.inbound_xfr(HOST, target, request, port=port, lifetime=10)


def _axfr_zone(port: int) -> dns.zone.Zone:
    fresh = dns.zone.Zone(ZONE)
    _transfer_into(fresh, port, serial=None)
    return fresh


def test_ixfr_sends_only_the_changes_since_the_client_serial(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    secondary = _axfr_zone(mdns.port)
    www = stored_reads.get_recordset(zone.id, f"www.{ZONE}", "A")
    alias = stored_reads.get_recordset(zone.id, f"alias.{ZONE}", "CNAME")
    central_recordsets.update_recordset(ZONE, www.id, records=["192.0.2.1", "198.51.100.9"])
    central_recordsets.delete_recordset(ZONE, alias.id)
    central_recordsets.create_recordset(ZONE, "new", "TXT", ['"fresh"'], ttl=60)
    central_recordsets.update_recordset(ZONE, www.id, ttl=120)

    _transfer_into(secondary, mdns.port)

    # Applied as differences, the secondary's copy is exactly the zone now.
    assert mdns.responder.transfers["IXFR"] == 1
    assert secondary == _axfr_zone(mdns.port)
    assert secondary.get_soa().serial == stored_reads.get_zone(ZONE).serial
    www_now = secondary.get_rdataset("www", "A")
    assert www_now is not None and www_now.ttl == 120
    assert {r.to_text() for r in www_now} == {"192.0.2.1", "198.51.100.9"}
    assert secondary.get_node("alias") is None


def test_ixfr_sequence_has_each_change_between_its_soas(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    mail = stored_reads.get_recordset(zone.id, f"mail.{ZONE}", "A")
    first = central_recordsets.update_recordset(ZONE, mail.id, records=["192.0.2.26"])
    second = central_recordsets.create_recordset(ZONE, "extra", "A", ["192.0.2.99"])

    messages = dns.query.xfr(
        HOST, ZONE, rdtype=dns.rdatatype.IXFR, serial=zone.serial, port=mdns.port, relativize=False
    )
    answers = [
        (
            rrset.name.to_text(),
            rdata.serial if rrset.rdtype == dns.rdatatype.SOA else rdata.to_text(),
        )
        for message in messages
        for rrset in message.answer
        for rdata in rrset
    ]

    old, middle, new = [(ZONE, serial) for serial in (zone.serial, first.serial, second.serial)]
    assert answers == [
        new,
        old, (f"mail.{ZONE}", "192.0.2.25"),
        middle, (f"mail.{ZONE}", "192.0.2.26"),
        middle,
        new, (f"extra.{ZONE}", "192.0.2.99"),
        new,
    ]  # fmt: skip


def _counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The storage reads transfers make from now on, by name, counted as they happen."""
    reads: list[str] = []
    for module, name in (
        (stored_history, "zone_changes_since"),
        (stored_transfers, "zone_for_transfer"),
    ):
        real = getattr(module, name)

        def counted(*args: object, _real: object = real, _name: str = name) -> object:
            reads.append(_name)
            return _real(*args)  # type: ignore[operator]

        monkeypatch.setattr(module, name, counted)
    return reads


def test_every_target_after_the_first_gets_the_same_transfer_without_reading_it_again(
    zone: objects.Zone, mdns: mdns_server.MdnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each target of a pool transfers each change: one reads it from storage."""
    reads = _counting_reads(monkeypatch)
    whole = [_axfr_zone(mdns.port) for _ in range(3)]
    mail = stored_reads.get_recordset(zone.id, f"mail.{ZONE}", "A")
    central_recordsets.update_recordset(ZONE, mail.id, records=["192.0.2.26"])
    changes = [
        [
            rrset.to_text()
            for message in dns.query.xfr(
                HOST, ZONE, rdtype=dns.rdatatype.IXFR, serial=zone.serial, port=mdns.port
            )
            for rrset in message.answer
        ]
        for _ in range(3)
    ]

    assert whole[0] == whole[1] == whole[2]
    assert changes[0] == changes[1] == changes[2]
    assert [line.split()[3] for line in changes[0]] == ["SOA", "SOA", "A", "SOA", "A", "SOA"]
    assert changes[0][2].endswith("192.0.2.25") and changes[0][4].endswith("192.0.2.26")
    assert reads == ["zone_for_transfer", "zone_changes_since"]
    assert mdns.responder.transfers["AXFR"] == 3 and mdns.responder.transfers["IXFR"] == 3


def test_a_transfer_after_a_change_is_read_again(
    zone: objects.Zone, mdns: mdns_server.MdnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = _counting_reads(monkeypatch)
    before = _axfr_zone(mdns.port)
    central_recordsets.create_recordset(ZONE, "later", "A", ["192.0.2.77"])
    after = _axfr_zone(mdns.port)

    assert before.get_node("later") is None
    assert after.get_rdataset("later", "A") is not None
    assert after.get_soa().serial == stored_reads.get_zone(ZONE).serial
    assert reads == ["zone_for_transfer", "zone_for_transfer"]


def _counting_zone_rows(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the zone rows mdns reads from now on, as it reads them."""
    names: list[str] = []
    real = stored_zones.find_zone_for_mdns

    def counted(name: str) -> objects.Zone | None:
        names.append(name)
        return real(name)

    monkeypatch.setattr(stored_zones, "find_zone_for_mdns", counted)
    return names


def _ixfr_request(serial: int) -> dns.message.Message:
    request = dns.message.make_query(ZONE, dns.rdatatype.IXFR)
    request.authority.append(dns.rrset.from_text(ZONE, 0, "IN", "SOA", f". . {serial} 0 0 0 0"))
    return request


def test_targets_transfer_a_change_on_the_zone_row_their_soa_queries_read(
    zone: objects.Zone, mdns: mdns_server.MdnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each target asks the SOA, then transfers: one read of the zone's row each."""
    secondaries = [_axfr_zone(mdns.port) for _ in range(3)]
    central_recordsets.create_recordset(ZONE, "later", "A", ["192.0.2.77"])
    rows = _counting_zone_rows(monkeypatch)
    for secondary in secondaries:
        asked = ask(mdns, ZONE, "SOA").answer[0][0].serial
        assert asked > secondary.get_soa().serial
        _transfer_into(secondary, mdns.port)
    read = list(rows)

    assert read == [ZONE] * 3
    assert mdns.responder.transfers["IXFR"] == 3
    assert all(secondary == _axfr_zone(mdns.port) for secondary in secondaries)


def test_an_ixfr_sends_the_changes_committed_after_the_row_it_takes_was_read(
    zone: objects.Zone, mdns: mdns_server.MdnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    secondary = _axfr_zone(mdns.port)
    central_recordsets.create_recordset(ZONE, "first", "A", ["192.0.2.71"])
    ask(mdns, ZONE, "SOA")  # the row read at the first change's serial
    central_recordsets.create_recordset(ZONE, "second", "A", ["192.0.2.72"])
    rows = _counting_zone_rows(monkeypatch)
    _transfer_into(secondary, mdns.port)
    read = list(rows)

    assert read == []
    assert secondary.get_soa().serial == stored_reads.get_zone(ZONE).serial
    assert secondary == _axfr_zone(mdns.port)


def test_an_ixfr_the_kept_row_calls_current_is_answered_from_the_row_as_it_is_now(
    zone: objects.Zone, mdns: mdns_server.MdnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    secondary = _axfr_zone(mdns.port)  # the row read at the secondary's serial
    central_recordsets.create_recordset(ZONE, "later", "A", ["192.0.2.77"])
    rows = _counting_zone_rows(monkeypatch)
    _transfer_into(secondary, mdns.port)
    read = list(rows)

    assert read == [ZONE]
    assert secondary.get_rdataset("later", "A") is not None
    assert mdns.responder.transfers["IXFR-current"] == 0 and mdns.responder.transfers["IXFR"] == 1


def test_an_ixfr_of_a_zone_deleted_since_its_row_was_kept_is_refused(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    assert ask(mdns, ZONE, "SOA").rcode() == dns.rcode.NOERROR  # the row kept
    deleting = central_zones.delete_zone(ZONE)
    assert stored_status.finish_zone_delete(zone.id, serial=deleting.serial)

    reply = dns.query.tcp(_ixfr_request(zone.serial), HOST, port=mdns.port, timeout=10)

    assert reply.rcode() == dns.rcode.REFUSED
    assert ask(mdns, ZONE, "SOA").rcode() == dns.rcode.REFUSED


def test_a_zone_found_deleted_no_longer_stands_for_its_name(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    """A target's NOTIFY takes a zone's id from the row kept; once a read finds the
    zone gone, the NOTIFY is for a zone mdns does not hold."""
    assert query.send_notify(ZONE, HOST, mdns.port, serial=zone.serial) == dns.rcode.NOERROR
    deleting = central_zones.delete_zone(ZONE)
    assert stored_status.finish_zone_delete(zone.id, serial=deleting.serial)
    assert query.send_notify(ZONE, HOST, mdns.port, serial=zone.serial) == dns.rcode.NOERROR
    assert ask(mdns, ZONE, "SOA").rcode() == dns.rcode.REFUSED  # read: gone

    assert query.send_notify(ZONE, HOST, mdns.port, serial=zone.serial) == dns.rcode.NOTAUTH


def test_a_zone_too_large_to_keep_is_read_for_every_transfer(
    mdns: mdns_server.MdnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = _bulk_zone(mdns.responder.zone_transfers.kept.max_records + 1)
    reads = _counting_reads(monkeypatch)
    sizes = [
        len(dns.zone.from_xfr(dns.query.xfr(HOST, big.name, port=mdns.port)).nodes)
        for _ in range(2)
    ]

    assert sizes[0] == sizes[1] > mdns.responder.zone_transfers.kept.max_records
    assert reads == ["zone_for_transfer", "zone_for_transfer"]


def test_ixfr_across_a_zone_update_sends_the_whole_zone(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    secondary = _axfr_zone(mdns.port)
    central_recordsets.create_recordset(ZONE, "before", "A", ["192.0.2.7"])
    # A new default TTL changes every record without its own: no diff says that.
    central_zones.update_zone(ZONE, ttl=900)
    central_recordsets.create_recordset(ZONE, "after", "A", ["192.0.2.8"])

    _transfer_into(secondary, mdns.port)

    assert mdns.responder.transfers["IXFR-AXFR"] == 1
    assert secondary == _axfr_zone(mdns.port)
    assert secondary.get_rdataset("www", "A").ttl == 900  # type: ignore[union-attr]


def test_the_change_history_keeps_the_newest_changes_only(zone: objects.Zone) -> None:
    cfg.CONF.set_override("zone_change_history", 3, group="storage")
    try:
        for i in range(5):
            central_recordsets.create_recordset(ZONE, f"n{i}", "A", [f"192.0.2.{i + 100}"])
    finally:
        cfg.CONF.clear_override("zone_change_history", group="storage")
    newest = stored_reads.get_zone(ZONE).serial
    with db.reader() as session:
        kept = session.scalars(
            sa.select(models.ZoneChange.serial)
            .where(models.ZoneChange.zone_id == zone.id)
            .order_by(models.ZoneChange.serial)
        ).all()
    assert kept == [newest - 2, newest - 1, newest]
    assert stored_history.zone_changes_since(zone.id, newest - 3) is not None
    assert stored_history.zone_changes_since(zone.id, newest - 4) is None


def _bulk_zone(count: int, *, per_name: int = 1) -> objects.Zone:
    return support.bulk_zone("big.example.", count, per_name=per_name)


def test_a_zone_of_5000_records_transfers_whole_in_several_messages(
    mdns: mdns_server.MdnsServer,
) -> None:
    zone = _bulk_zone(5000)
    wires = raw_axfr(mdns.port, zone.name)
    assert len(wires) > 1
    assert max(len(w) for w in wires) <= cfg.CONF.mdns.xfr_message_size
    records = sum(len(rrset) for w in wires for rrset in dns.message.from_wire(w, xfr=True).answer)
    assert records == 5000 + 3  # SOA, NS, the A records, SOA

    inbound = dns.zone.Zone(zone.name)
    dns.query.inbound_xfr(HOST, inbound, port=mdns.port, timeout=5, lifetime=60)
    assert inbound.get_soa().serial == zone.serial
    assert sum(1 for _ in inbound.iterate_rdatas(dns.rdatatype.A)) == 5000


def test_a_large_zone_is_streamed_not_held_in_memory(mdns: mdns_server.MdnsServer) -> None:
    zone = _bulk_zone(20000)
    tracemalloc.start()
    try:
        records = 0
        request = dns.message.make_query(zone.name, dns.rdatatype.AXFR).to_wire()
        with socket.create_connection((HOST, mdns.port), timeout=10) as sock:
            sock.sendall(struct.pack("!H", len(request)) + request)
            stream = sock.makefile("rb")
            # Counted from the headers: parsing 20k records here would
            # dwarf what the server allocates.
            while records < 20000 + 3:
                (length,) = struct.unpack("!H", stream.read(2))
                records += struct.unpack("!H", stream.read(length)[6:8])[0]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert records == 20000 + 3
    # The zone as dnspython objects takes tens of MB; streamed, mdns holds a
    # batch of rows and a few messages at a time.
    assert peak < 4 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_an_rrset_larger_than_a_message_is_split_across_messages(
    mdns: mdns_server.MdnsServer,
) -> None:
    zone = _bulk_zone(3000, per_name=3000)
    wires = raw_axfr(mdns.port, zone.name)
    assert len(wires) > 1
    transferred = transfer(mdns.port, zone.name)
    assert len(transferred.find_rdataset("host00000", "A")) == 3000


# --- opcodes, bad input, and staying up --------------------------------------------


def test_notify_gets_a_notify_response_with_authority(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    notify = dns.message.make_query(ZONE, dns.rdatatype.SOA)
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.flags |= dns.flags.AA
    response = support.ask_udp(notify, HOST, mdns.port)
    assert response.opcode() == dns.opcode.NOTIFY
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA


def test_other_opcodes_are_not_implemented(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    update = dns.update.UpdateMessage(ZONE)
    update.add("new", 300, "A", "192.0.2.99")
    response = support.ask_udp(update, HOST, mdns.port)
    assert response.rcode() == dns.rcode.NOTIMP
    assert ask(mdns, "new.example.com.", "A").rcode() == dns.rcode.NXDOMAIN


def test_garbage_after_a_valid_header_gets_formerr(mdns: mdns_server.MdnsServer) -> None:
    header = struct.pack("!HHHHHH", 0x1234, 0, 1, 0, 0, 0)  # claims one question...
    reply = send_raw_udp(mdns.port, header + b"\x07exam")  # ...that is cut short
    assert reply is not None
    response = dns.message.from_wire(reply)
    assert response.id == 0x1234
    assert response.flags & dns.flags.QR
    assert response.rcode() == dns.rcode.FORMERR


def test_less_than_a_header_and_responses_get_no_reply(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    assert send_raw_udp(mdns.port, b"\x12\x34\x00", timeout=0.3) is None
    response = dns.message.make_response(dns.message.make_query(ZONE, "SOA"))
    assert send_raw_udp(mdns.port, response.to_wire(), timeout=0.3) is None
    assert ask(mdns, ZONE, "SOA").rcode() == dns.rcode.NOERROR


def test_a_storage_failure_is_servfail_and_the_server_stays_up(
    zone: objects.Zone, mdns: mdns_server.MdnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(name: str) -> objects.Zone | None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(stored_zones, "find_zone_for_mdns", broken)
    assert ask(mdns, ZONE, "SOA").rcode() == dns.rcode.SERVFAIL
    monkeypatch.undo()
    assert ask(mdns, ZONE, "SOA").rcode() == dns.rcode.NOERROR


def test_one_tcp_connection_carries_several_queries(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    with socket.create_connection((HOST, mdns.port), timeout=2) as sock:
        for rtype in ("SOA", "MX", "TXT"):
            wire = dns.message.make_query(ZONE, rtype).to_wire()
            sock.sendall(struct.pack("!H", len(wire)) + wire)
        stream = sock.makefile("rb")
        answered = []
        for _ in range(3):
            (length,) = struct.unpack("!H", stream.read(2))
            answered.append(dns.message.from_wire(stream.read(length)).answer[0].rdtype)
    assert answered == [dns.rdatatype.SOA, dns.rdatatype.MX, dns.rdatatype.TXT]


def test_a_stalled_tcp_client_blocks_nobody_and_is_dropped(zone: objects.Zone) -> None:
    cfg.CONF.set_override("tcp_timeout", 1.0, group="mdns")
    server = mdns_server.MdnsServer(HOST, 0)
    server.start_in_thread()
    try:
        with socket.create_connection((HOST, server.port), timeout=5) as stalled:
            stalled.sendall(b"\x00")  # half a length prefix, then nothing
            started = time.monotonic()
            assert ask(server, ZONE, "SOA").rcode() == dns.rcode.NOERROR
            assert ask(server, ZONE, "SOA", tcp=True).rcode() == dns.rcode.NOERROR
            assert time.monotonic() - started < 0.9  # long before the stalled one is dropped
            assert stalled.recv(1) == b""  # closed by mdns after tcp_timeout
            assert time.monotonic() - started < 5
    finally:
        server.stop_thread()
        cfg.CONF.clear_override("tcp_timeout", group="mdns")


# --- the query helpers the flows use, against mdns ---------------------------------


def test_soa_serial_reads_what_mdns_serves(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    # A wait longer than the 1 s a poll gives each try: this test asks once.
    assert query.soa_serial(ZONE, HOST, mdns.port, timeout=10) == zone.serial
    assert query.soa_serial("example.com", HOST, mdns.port, timeout=10) == zone.serial
    assert query.soa_serial("example.net.", HOST, mdns.port, timeout=10) is None


def test_the_probe_tells_zones_not_held_from_zones_served(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    # A name inside a held zone is answered NXDOMAIN: not a zone there either.
    names = ["example.net.", ZONE, "nothing.example.com."]
    found = soa_probe.serials({(HOST, mdns.port): names})[(HOST, mdns.port)]
    assert found == [soa_probe.NOT_SERVED, zone.serial, soa_probe.NOT_SERVED]


def test_send_notify_returns_the_rcode(zone: objects.Zone, mdns: mdns_server.MdnsServer) -> None:
    assert query.send_notify(ZONE, HOST, mdns.port, serial=zone.serial) == dns.rcode.NOERROR
    assert query.send_notify(ZONE, HOST, mdns.port) == dns.rcode.NOERROR


def test_no_listener_is_an_os_error_at_once() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(OSError):
        query.soa_serial(ZONE, HOST, port, timeout=2)
    with pytest.raises(OSError):
        query.send_notify(ZONE, HOST, port, timeout=2)
    assert time.monotonic() - started < 1


def test_a_silent_server_is_a_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((HOST, 0))
        port = silent.getsockname()[1]
        with pytest.raises(dns.exception.Timeout):
            query.soa_serial(ZONE, HOST, port, timeout=0.2)
        with pytest.raises(dns.exception.Timeout):
            query.send_notify(ZONE, HOST, port, timeout=0.2)
