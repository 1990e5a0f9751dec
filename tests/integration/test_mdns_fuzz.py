"""mdns under hostile input: 50,000 random and mutated packets over UDP and TCP.

Each batch of 250 is built from a seed hypothesis draws: random bytes, and
valid queries of every kind mdns handles (SOA, lookups, AXFR, IXFR, NOTIFY,
UPDATE, signed and not) with bits flipped, bytes cut, inserted or overwritten
and header counts lied about. Between batches a valid query must still get the right answer at
once, and nothing mdns logged may be an unexpected exception: a bug that
mdns caught and answered with SERVFAIL fails the test as well.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import random
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator

import dns.exception
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.update
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import support
from zoneflow import objects
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.dns import query
from zoneflow.mdns import server as mdns_server
from zoneflow.storage import reads as stored_reads

pytestmark = pytest.mark.usefixtures("fake_pool")

HOST = "127.0.0.1"
ZONE = "fuzz.example."
SECRET = base64.b64encode(b"fuzzing key secret of 32 bytes!!").decode()
BATCH = 250
BATCHES = 100  # per transport: 2 x 100 x 250 = 50,000 packets

Override = Callable[..., None]


def _seeds() -> list[bytes]:
    """Valid requests of every kind mdns answers, to mutate."""
    key = dns.tsig.Key("fuzz-key.", SECRET, dns.tsig.HMAC_SHA256)
    seeds = []
    for name, rtype in [
        (ZONE, "SOA"),
        (f"www.{ZONE}", "A"),
        (f"missing.{ZONE}", "AAAA"),
        (f"x.sub.{ZONE}", "TXT"),
        ("elsewhere.example.", "SOA"),
        (ZONE, "ANY"),
        (ZONE, "AXFR"),
    ]:
        seeds.append(dns.message.make_query(name, rtype).to_wire())
        seeds.append(dns.message.make_query(name, rtype, use_edns=0, payload=4096).to_wire())
    ixfr = dns.message.make_query(ZONE, "IXFR")
    ixfr.authority.append(
        dns.rrset.from_text(ZONE, 0, "IN", "SOA", "ns. host. 1 3600 600 86400 300")
    )
    seeds.append(ixfr.to_wire())
    signed = dns.message.make_query(ZONE, "AXFR")
    signed.use_tsig(key)
    seeds.append(signed.to_wire())
    notify = dns.message.make_query(ZONE, "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    seeds.append(notify.to_wire())
    update = dns.update.UpdateMessage(ZONE)
    update.add("new", 300, "A", "192.0.2.9")
    seeds.append(update.to_wire())
    return seeds


SEEDS = _seeds()


def _mutated(rng: random.Random) -> bytes:
    """A valid request with 1 to 4 mutations: bits flipped, bytes cut, inserted or
    overwritten, header counts lied about."""
    packet = bytearray(rng.choice(SEEDS))
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["flip", "cut", "insert", "overwrite", "counts"])
        at = rng.randint(0, max(0, len(packet) - 1))
        if kind == "flip" and packet:
            packet[at] ^= 1 << rng.randint(0, 7)
        elif kind == "cut":
            del packet[at:]
        elif kind == "insert":
            packet[at:at] = rng.randbytes(rng.randint(1, 16))
        elif kind == "overwrite" and packet:
            packet[at] = rng.randint(0, 255)
        elif kind == "counts" and len(packet) >= 12:
            struct.pack_into("!HHHH", packet, 4, *(rng.randint(0, 0xFFFF) for _ in range(4)))
    return bytes(packet)


def _random_bytes(rng: random.Random) -> bytes:
    """Garbage up to 600 bytes, often around a header's 12, where parsing starts."""
    size = rng.choice([rng.randint(0, 16), rng.randint(12, 64), rng.randint(0, 600)])
    return rng.randbytes(size)


def packets(seed: int) -> list[bytes]:
    """One batch: two in three packets mutated requests, one in three garbage.

    Hypothesis draws only the batch's seed; a plain Random makes the packets
    from it. Drawing 250 packets each through Hypothesis took 0.9 s a batch
    (more than mdns took to answer them); this takes milliseconds, and a
    failing batch is named by its seed, which rebuilds it exactly.
    """
    rng = random.Random(seed)
    return [_mutated(rng) if rng.random() < 2 / 3 else _random_bytes(rng) for _ in range(BATCH)]


BATCH_SEEDS = st.integers(0, 2**32 - 1)
FUZZ = settings(
    max_examples=BATCHES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture
def zone() -> objects.Zone:
    central_zones.create_zone(ZONE, "hostmaster@fuzz.example")
    central_recordsets.create_recordset(ZONE, "www", "A", ["192.0.2.1"])
    central_recordsets.create_recordset(ZONE, "sub", "NS", ["ns.elsewhere.example."])
    central_recordsets.create_recordset(ZONE, "*", "TXT", ['"wild"'])
    return stored_reads.get_zone(ZONE)


@pytest.fixture
def mdns(override: Override, zone: objects.Zone) -> Iterator[mdns_server.MdnsServer]:
    override("tsig", key=[f"fuzz-key:hmac-sha256:{SECRET}"])
    override("mdns", tcp_timeout=1.0)
    server = mdns_server.MdnsServer(HOST, 0)
    server.start_in_thread()
    yield server
    server.stop_thread()


def still_answers(server: mdns_server.MdnsServer, zone: objects.Zone) -> None:
    """mdns answers over UDP and TCP. Its timeouts are generous: a busy machine may
    take seconds to schedule it; one silenced by the batch never answers."""
    assert query.soa_serial(ZONE, HOST, server.port, timeout=15.0) == zone.serial
    request = dns.message.make_query(f"www.{ZONE}", "A")
    response = dns.query.tcp(request, HOST, port=server.port, timeout=15.0)
    assert response.answer[0][0].to_text() == "192.0.2.1"


def read_to_the_end(sock: socket.socket, server: mdns_server.MdnsServer) -> None:
    """Once mdns has read every datagram ``sock`` sent: a query sent last is answered.

    Past its receive buffer the kernel drops datagrams, mdns's or not, and a
    DNS client asks again; so the query is sent again until answered. Only
    then does still_answers time mdns itself, not the kernel's buffer.
    """
    probe = dns.message.make_query(ZONE, "SOA")
    sock.settimeout(0.2)

    def answered() -> bool:
        sock.sendto(probe.to_wire(), (HOST, server.port))
        try:
            while True:  # past the replies to the batch
                with contextlib.suppress(dns.exception.DNSException):
                    if probe.is_response(dns.message.from_wire(sock.recv(65535))):
                        return True
        except TimeoutError:
            return False

    support.eventually(answered, timeout=30, interval=0, what="mdns to read the whole batch")


def no_unexpected_errors(caplog: pytest.LogCaptureFixture) -> None:
    mdns_records = [r for r in caplog.records if r.name.startswith("zoneflow.mdns")]
    # mdns's warnings (refused transfers, TSIG failures) reach us, so an
    # error would too: none may be there.
    assert any(r.levelno == logging.WARNING for r in mdns_records)
    errors = [r.getMessage() for r in mdns_records if r.levelno >= logging.ERROR]
    assert not errors, errors[:3]


def test_udp_fuzz_never_crashes_or_silences_mdns(
    mdns: mdns_server.MdnsServer, zone: objects.Zone, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)

    @FUZZ
    @given(BATCH_SEEDS)
    def batch(seed: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for packet in packets(seed):
                sock.sendto(packet, (HOST, mdns.port))
            read_to_the_end(sock, mdns)
        still_answers(mdns, zone)

    batch()
    no_unexpected_errors(caplog)


def test_tcp_fuzz_never_crashes_hangs_or_silences_mdns(
    mdns: mdns_server.MdnsServer, zone: objects.Zone, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)

    @FUZZ
    @given(BATCH_SEEDS, st.booleans())
    def batch(seed: int, cut_short: bool) -> None:
        stream = b"".join(struct.pack("!H", len(p)) + p for p in packets(seed))
        if cut_short:
            # The last length prefix promises more than ever comes.
            stream += struct.pack("!H", 300) + b"\x00" * 10
        with socket.create_connection((HOST, mdns.port), timeout=5) as sock:
            sock.sendall(stream)
            sock.shutdown(socket.SHUT_WR)
            # mdns answers what it can, then closes: reading to the end
            # proves it neither hangs nor leaves the connection open.
            deadline = time.monotonic() + 10
            while sock.recv(65536):
                assert time.monotonic() < deadline, "mdns kept the connection open"
        still_answers(mdns, zone)

    batch()
    no_unexpected_errors(caplog)


BLOCKED_FOR = 30.0


def test_a_client_that_stops_reading_a_transfer_blocks_nobody(
    override: Override, zone: objects.Zone
) -> None:
    big = support.bulk_zone("big.example.", 20000)
    # A stuck client given this long: were it blocking the server, the queries
    # below would wait that long, far above what a loaded machine takes for them.
    override("mdns", tcp_timeout=BLOCKED_FOR)
    server = mdns_server.MdnsServer(HOST, 0)
    server.start_in_thread()
    try:
        with socket.create_connection((HOST, server.port), timeout=5) as reader:
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            wire = dns.message.make_query(big.name, "AXFR").to_wire()
            reader.sendall(struct.pack("!H", len(wire)) + wire)
            # The transfer is under way, and soon stuck on our 4 KB buffer.
            support.eventually(
                lambda: select.select([reader], [], [], 0)[0], 10, what="the transfer to start"
            )
            started = time.monotonic()
            for _ in range(20):
                still_answers(server, zone)
            assert time.monotonic() - started < BLOCKED_FOR / 2
    finally:
        server.stop_thread()
