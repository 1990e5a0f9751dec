"""NOTIFYs sent in a batch (zoneflow.dns.query.send_notifies): every one on its way
before any reply is awaited, each reply matched to its zone."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import pytest

from zoneflow.dns import query


class NotifyReceiver:
    """A UDP server in a thread that answers NOTIFYs: NOERROR for ``held`` zones,
    NOTAUTH for others, nothing at all for ``silent`` ones; notes each zone and
    the serial hinted in its NOTIFY."""

    def __init__(self, held: set[str], silent: set[str]) -> None:
        self.held, self.silent = held, silent
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.host, self.port = self.sock.getsockname()
        self.hints: dict[str, int] = {}
        self.wires: dict[str, bytes] = {}
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                wire, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            message = dns.message.from_wire(wire)
            assert message.opcode() == dns.opcode.NOTIFY
            name = message.question[0].name.to_text()
            self.hints[name] = message.answer[0][0].serial
            self.wires[name] = wire
            if name in self.silent:
                continue
            reply = dns.message.make_response(message)
            reply.set_rcode(dns.rcode.NOERROR if name in self.held else dns.rcode.NOTAUTH)
            self.sock.sendto(reply.to_wire(), peer)

    def close(self) -> None:
        self.sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[NotifyReceiver]:
    server = NotifyReceiver(
        held={f"z{i}.example." for i in range(30)} - {"z3.example."}, silent={"z5.example."}
    )
    yield server
    server.close()


def test_each_zone_gets_its_own_reply_and_a_silent_one_none(receiver: NotifyReceiver) -> None:
    zones = [(f"z{i}.example.", 100 + i) for i in range(30)]

    rcodes = query.send_notifies(zones, receiver.host, receiver.port, timeout=0.5)

    expected: list[int | None] = [dns.rcode.NOERROR] * 30
    expected[3], expected[5] = dns.rcode.NOTAUTH, None
    assert rcodes == expected
    assert receiver.hints == {name: serial for name, serial in zones}


def test_nothing_listening_gives_no_reply_for_any_zone() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert query.send_notifies([("a.example.", 1), ("b.example.", 2)], "127.0.0.1", port) == [
        None,
        None,
    ]


def dnspython_notify(zone_name: str, serial: int, qid: int) -> bytes:
    """The NOTIFY dnspython renders: a query for the zone's SOA, opcode NOTIFY, AA and
    no RD, and an SOA carrying the serial in the answer."""
    name = dns.name.from_text(zone_name)
    notify = dns.message.make_query(name, dns.rdatatype.SOA)
    notify.id = qid
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.flags = (notify.flags | dns.flags.AA) & ~dns.flags.RD
    soa = dns.rdtypes.ANY.SOA.SOA(
        dns.rdataclass.IN, dns.rdatatype.SOA, dns.name.root, dns.name.root, serial, 0, 0, 0, 0
    )
    notify.find_rrset(notify.answer, name, dns.rdataclass.IN, dns.rdatatype.SOA, create=True).add(
        soa, 0
    )
    return notify.to_wire()


def test_a_batch_s_notifies_are_the_bytes_dnspython_would_send(receiver: NotifyReceiver) -> None:
    # send_notifies writes its NOTIFYs by hand: each must be what a server expects.
    zones = [("z0.example.", 1), ("z1.example.", 4294967295), ("z2.sub.example.", 2024120701)]

    query.send_notifies(zones, receiver.host, receiver.port, timeout=2.0)

    assert set(receiver.wires) == {name for name, _ in zones}
    for name, serial in zones:
        wire = receiver.wires[name]
        qid = int.from_bytes(wire[:2], "big")
        assert wire == dnspython_notify(name, serial, qid)
