"""mdns under a NOTIFY flood: queries keep being answered, the newest serial is kept.

A real MdnsServer on a free port of 127.0.0.1 and the per-test SQLite
database, as in test_mdns.py; the flood and the probes are plain UDP
sockets, as a misbehaving peer and a secondary would send them.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from tests import support
from tests.support import eventually
from zoneflow import objects
from zoneflow.central import zones as central_zones
from zoneflow.dns import query as dns_query
from zoneflow.mdns import notify_limit
from zoneflow.mdns import server as mdns_server
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import zones as stored_zones

pytestmark = pytest.mark.usefixtures("fake_pool")

HOST = "127.0.0.1"
ZONE = "flood.example."
# The flood: 10,000 NOTIFYs at 1,000/s (10 s), SOA probed 20 times a second.
FLOOD_COUNT = 10_000
FLOOD_RATE = 1000.0
PROBE_RATE = 20.0
# A probe waits this long for its answer; a secondary's first retry comes
# after 2 s (BIND's default for an SOA query), so later is as good as lost.
PROBE_TIMEOUT = 2.0


@pytest.fixture
def zone() -> objects.Zone:
    central_zones.create_zone(ZONE, "hostmaster@flood.example")
    return stored_reads.get_zone(ZONE)


def notify_wire(serial: int) -> bytes:
    notify = dns.message.make_query(ZONE, dns.rdatatype.SOA)
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.flags |= dns.flags.AA
    soa = f"ns1.flood.example. hostmaster.flood.example. {serial} 3600 600 86400 300"
    notify.answer.append(dns.rrset.from_text(ZONE, 300, "IN", "SOA", soa))
    return notify.to_wire()


def flood(port: int, first_serial: int, stop: threading.Event) -> int:
    """Send FLOOD_COUNT NOTIFYs paced at FLOOD_RATE, serials rising; the last serial."""
    # Built beforehand, so the pace is the sender's and not dnspython's.
    wires = [notify_wire(first_serial + n) for n in range(FLOOD_COUNT)]
    started = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for n, wire in enumerate(wires):
            if stop.is_set():
                break
            sock.sendto(wire, (HOST, port))
            ahead = started + (n + 1) / FLOOD_RATE - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)  # pacing the sender, not waiting for a result
    return first_serial + FLOOD_COUNT - 1


def probe_while(port: int, running: threading.Thread) -> tuple[int, int]:
    """SOA queries at PROBE_RATE until ``running`` ends: (sent, answered)."""
    sent = answered = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        started = time.monotonic()
        while running.is_alive():
            query = dns.message.make_query(ZONE, dns.rdatatype.SOA)
            sock.sendto(query.to_wire(), (HOST, port))
            sent += 1
            deadline = time.monotonic() + PROBE_TIMEOUT
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    reply = dns.message.from_wire(sock.recv(65535))
                except TimeoutError:
                    break
                if reply.id == query.id:  # a late answer to an earlier probe is not this one
                    if reply.rcode() == dns.rcode.NOERROR and reply.answer:
                        answered += 1
                    break
            ahead = started + sent / PROBE_RATE - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)  # pacing the probes
    return sent, answered


def test_soa_queries_are_answered_during_a_notify_flood(
    zone: objects.Zone, mdns: mdns_server.MdnsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="zoneflow.mdns.notify")
    stop = threading.Event()
    last: list[int] = []
    sender = threading.Thread(
        target=lambda: last.append(flood(mdns.port, zone.serial + 1, stop)), daemon=True
    )
    sender.start()
    try:
        sent, answered = probe_while(mdns.port, sender)
    finally:
        stop.set()
        sender.join(30)
    assert sent >= 100, f"only {sent} probes: the flood ended early"
    assert answered >= 0.99 * sent, f"{answered} of {sent} SOA probes answered during the flood"
    # Coalesced, not lost: the flood's last serial is the last mdns processes.
    [final] = last

    def processed() -> bool:
        notifies = support.notifies_processed(caplog.records)
        return bool(notifies) and notifies[-1] == (HOST, final)

    eventually(processed, timeout=30, what=f"the last NOTIFY's serial {final} to be processed")


def test_notifies_over_tcp_wait_for_their_turn_and_are_all_processed(
    override: Callable[..., None], zone: objects.Zone, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="zoneflow.mdns.notify")
    override("mdns", notify_rate=10.0, notify_burst=2)
    server = mdns_server.MdnsServer(HOST, 0)
    server.start_in_thread()
    try:
        with socket.create_connection((HOST, server.port), timeout=10) as sock:
            started = time.monotonic()
            rcodes = []
            for n in range(5):
                dns.query.send_tcp(sock, notify_wire(zone.serial + n))
                reply, _ = dns.query.receive_tcp(sock, time.time() + 10)
                rcodes.append(reply.rcode())
            took = time.monotonic() - started
    finally:
        server.stop_thread()
    assert rcodes == [dns.rcode.NOERROR] * 5
    # Two at once, then one each 1/10 s: at least 0.3 s, however fast the machine.
    assert took >= 0.29
    assert support.notifies_processed(caplog.records) == [(HOST, zone.serial + n) for n in range(5)]


# --- the limiter's bookkeeping --------------------------------------------------------

PAIR = ("192.0.2.53", dns.name.from_text(ZONE))


def test_a_pair_gets_its_burst_then_its_rate() -> None:
    limiter: notify_limit.NotifyLimiter[int] = notify_limit.NotifyLimiter(rate=2.0, burst=3)
    assert [limiter.admit(PAIR, 0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.admit(PAIR, 0.5)  # one token back after 1/rate
    assert not limiter.admit(PAIR, 0.5)
    # Another source, or another zone, has a bucket of its own.
    assert limiter.admit(("192.0.2.54", PAIR[1]), 0.5)
    assert limiter.admit((PAIR[0], dns.name.from_text("other.example.")), 0.5)


def test_held_notifies_coalesce_into_the_newest() -> None:
    limiter: notify_limit.NotifyLimiter[int] = notify_limit.NotifyLimiter(rate=2.0, burst=1)
    assert limiter.admit(PAIR, 0.0)
    assert limiter.hold(PAIR, 1, 0.0) == pytest.approx(0.5)  # schedule a release then
    assert limiter.hold(PAIR, 2, 0.1) is None  # one is already scheduled
    assert limiter.hold(PAIR, 3, 0.2) is None
    assert not limiter.admit(PAIR, 0.3)  # nothing overtakes the held one
    assert limiter.release(PAIR, 0.5) == 3
    assert limiter.release(PAIR, 0.5) is None


def test_a_waiting_sender_is_slowed_to_the_rate() -> None:
    limiter: notify_limit.NotifyLimiter[int] = notify_limit.NotifyLimiter(rate=4.0, burst=2)
    waits = [limiter.reserve(PAIR, 0.0, longest=0.6) for _ in range(4)]
    assert waits == [0.0, 0.0, pytest.approx(0.25), pytest.approx(0.5)]
    # Past the longest wait: refused, and no token taken, so the pair is not
    # pushed further back by what it was refused.
    assert limiter.reserve(PAIR, 0.0, longest=0.6) is None
    assert limiter.reserve(PAIR, 0.0, longest=0.6) is None
    assert limiter.reserve(PAIR, 0.5, longest=0.6) == pytest.approx(0.25)


def test_idle_pairs_are_forgotten_and_the_table_is_bounded() -> None:
    limiter: notify_limit.NotifyLimiter[int] = notify_limit.NotifyLimiter(
        rate=1.0, burst=1, max_keys=2
    )
    assert limiter.admit(("192.0.2.1", PAIR[1]), 0.0)
    assert limiter.admit(("192.0.2.2", PAIR[1]), 0.0)
    assert not limiter.admit(("192.0.2.3", PAIR[1]), 0.5)  # full, none idle yet
    assert limiter.admit(("192.0.2.3", PAIR[1]), 1.5)  # the first two have refilled
    assert len(limiter) == 1


def test_a_notify_that_waited_long_for_a_thread_is_still_processed(
    zone: objects.Zone, mdns: mdns_server.MdnsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="zoneflow.mdns.notify")
    received = time.monotonic() - 10 * mdns_server.MAX_UDP_WAIT
    addr = (HOST, 53000)
    # A query that waited that long is dropped (its client asked again long ago)...
    query = dns.message.make_query(ZONE, dns.rdatatype.SOA).to_wire()
    assert mdns._answer_datagram(query, addr, received) is None
    # ...but a NOTIFY the limiter let through is processed: it may be the newest serial.
    replies = mdns._answer_datagram(notify_wire(zone.serial + 7), addr, received, notify=True)
    assert replies and dns.message.from_wire(replies[0]).rcode() == dns.rcode.NOERROR
    assert support.notifies_processed(caplog.records) == [(HOST, zone.serial + 7)]


def test_a_notify_is_answered_while_every_query_thread_is_busy(
    zone: objects.Zone, override: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A target's NOTIFY (the polls' word that it serves a serial) never waits behind
    a backlog of queries: under load it once waited seconds in their queue."""
    override("mdns", threads=1)
    server = mdns_server.MdnsServer(HOST, 0)
    server.start_in_thread()
    release = threading.Event()
    asking = threading.Thread(
        target=lambda: dns.query.udp(
            dns.message.make_query(ZONE, dns.rdatatype.SOA), HOST, port=server.port, timeout=60
        )
    )
    try:
        # The zone's id is read at its first NOTIFY, and kept (caches.ZoneRows).
        assert dns_query.send_notify(ZONE, HOST, server.port, serial=zone.serial) == 0
        held = threading.Event()
        lookup = stored_zones.find_zone_for_mdns

        def stuck(name: str) -> objects.Zone | None:
            held.set()
            release.wait(60)
            return lookup(name)

        monkeypatch.setattr(stored_zones, "find_zone_for_mdns", stuck)
        asking.start()
        assert held.wait(10), "the query reached no thread"
        # The one query thread is stuck on its database read; the NOTIFY is answered.
        rcode = dns_query.send_notify(ZONE, HOST, server.port, serial=zone.serial, timeout=5)
        assert rcode == dns.rcode.NOERROR
    finally:
        release.set()
        if asking.ident is not None:  # started
            asking.join(30)
        server.stop_thread()
