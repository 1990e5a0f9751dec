"""mdns's plain SOA queries and NOTIFYs (zoneflow.mdns.plain_soa): read by hand and
answered with a reply rendered once, byte for byte the reply of the full path, which
still answers every other shape of query."""

from __future__ import annotations

import struct
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import pytest

from zoneflow import objects
from zoneflow.central import zones as central_zones
from zoneflow.events import served
from zoneflow.mdns import plain_soa
from zoneflow.mdns.responder import Responder
from zoneflow.storage import reads as stored_reads

pytestmark = pytest.mark.usefixtures("fake_pool")

ZONE = "plain.example."
KEYRING = dns.tsigkeyring.from_text({"transfer.": "c2VjcmV0c2VjcmV0c2VjcmV0"})


@pytest.fixture
def zone() -> objects.Zone:
    central_zones.create_zone(ZONE, "hostmaster@plain.example")
    return stored_reads.get_zone(ZONE)


def _query(name: str = ZONE, **edns: Any) -> dns.message.QueryMessage:
    query = dns.message.make_query(name, "SOA", **edns)
    query.id = 4242
    return query


def _reply(responder: Responder, wire: bytes) -> bytes:
    """The one reply to ``wire``, over UDP."""
    (reply,) = responder.answer(wire, tcp=False)
    return reply


def _full_path(responder: Responder, wire: bytes, *, tcp: bool = False) -> list[bytes]:
    return list(responder._answer(wire, tcp=tcp, peer="test", address="127.0.0.1"))  # noqa: SLF001


# Each shape a target or a person's dig sends: without EDNS, with it, with a cookie,
# asking for padding, without RD, in mixed case, and over TCP.
SHAPES = {
    "no EDNS": lambda: _query(),
    "EDNS": lambda: _query(use_edns=0, payload=1232),
    "EDNS, a cookie": lambda: _query(
        use_edns=0, options=[dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"c" * 8)]
    ),
    "EDNS, padding": lambda: _query(
        use_edns=0, options=[dns.edns.GenericOption(dns.edns.OptionType.PADDING, b"")]
    ),
    "EDNS, a small payload, DO": lambda: _query(use_edns=0, payload=512, want_dnssec=True),
    "no RD": lambda: _query(flags=0),
    "mixed case": lambda: _query("PlAiN.ExAmPlE."),
}


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("shape", SHAPES)
def test_a_plain_soa_query_gets_the_full_paths_reply_byte_for_byte(
    zone: objects.Zone, shape: str, tcp: bool
) -> None:
    responder = Responder()
    wire = SHAPES[shape]().to_wire()
    assert plain_soa.read(wire) is not None
    first = list(responder.answer(wire, tcp=tcp, address="127.0.0.1"))
    again = list(responder.answer(wire, tcp=tcp, address="127.0.0.1"))
    assert first == again == _full_path(responder, wire, tcp=tcp)
    reply = dns.message.from_wire(first[0])
    assert reply.id == 4242
    assert reply.answer[0].rdtype == dns.rdatatype.SOA
    assert reply.answer[0][0].serial == zone.serial


def test_a_kept_reply_is_sent_under_each_querys_id_and_follows_the_zones_serial(
    zone: objects.Zone, monkeypatch: pytest.MonkeyPatch
) -> None:
    responder = Responder()
    query = _query(use_edns=0)
    _reply(responder, query.to_wire())
    parsed: list[bytes] = []
    parse = dns.message.from_wire
    monkeypatch.setattr(
        dns.message, "from_wire", lambda w, **kw: parsed.append(w) or parse(w, **kw)
    )

    query.id = 7
    sent = _reply(responder, query.to_wire())
    monkeypatch.undo()
    assert parsed == [], "a query of a shape answered before is not parsed by dnspython"
    reply = dns.message.from_wire(sent)
    assert (reply.id, reply.answer[0][0].serial) == (7, zone.serial)

    central_zones.update_zone(ZONE, ttl=900)  # a new serial
    newer = stored_reads.get_zone(ZONE).serial
    assert newer > zone.serial
    reply = dns.message.from_wire(_reply(responder, query.to_wire()))
    assert reply.answer[0][0].serial == newer


def _with_tsig() -> bytes:
    return _signed(_query())


def _signed(message: dns.message.Message) -> bytes:
    message.use_tsig(KEYRING, keyname="transfer.")
    return message.to_wire()


def _edns_version_1() -> bytes:
    return _query(use_edns=1).to_wire()


def _two_questions() -> bytes:
    wire = bytearray(_query().to_wire())
    struct.pack_into("!H", wire, 4, 2)
    return bytes(wire) + wire[12:]


def _pointer_in_question() -> bytes:
    header = _query().to_wire()[:12]
    return header + b"\xc0\x0c" + struct.pack("!HH", 6, 1)


NOT_PLAIN = {
    "signed (TSIG)": _with_tsig,
    "EDNS version 1": _edns_version_1,
    "a byte past its end": lambda: _query().to_wire() + b"\x00",
    "two questions": _two_questions,
    "a pointer in the question": _pointer_in_question,
    "a NOTIFY, signed (TSIG)": lambda: _signed(_notify()),
    "a NOTIFY with two answers": lambda: _notify(answers=2).to_wire(),
    "a NOTIFY whose answer is not an SOA": lambda: _notify(answer_type="A").to_wire(),
    "a NOTIFY cut short in its answer": lambda: _notify().to_wire()[:-4],
    "an UPDATE": lambda: _query(flags=5 << 11).to_wire(),
    "AXFR": lambda: dns.message.make_query(ZONE, "AXFR").to_wire(),
    "class CH": lambda: dns.message.make_query(ZONE, "SOA", rdclass="CH").to_wire(),
    "a dot inside a label": lambda: dns.message.make_query(
        dns.name.Name([b"pla.in", b"example", b""]), "SOA"
    ).to_wire(),
    "cut short": lambda: _query().to_wire()[:-3],
}


@pytest.mark.parametrize("shape", NOT_PLAIN)
def test_a_query_of_any_other_shape_takes_the_full_path(shape: str) -> None:
    assert plain_soa.read(NOT_PLAIN[shape]()) is None


def test_what_the_full_path_says_of_other_shapes_is_still_said(zone: objects.Zone) -> None:
    responder = Responder()
    badvers = dns.message.from_wire(_reply(responder, _edns_version_1()))
    assert badvers.rcode() == dns.rcode.BADVERS
    formerr = _reply(responder, _query().to_wire() + b"\x00")
    assert formerr[3] & 0x0F == dns.rcode.FORMERR
    below = dns.message.from_wire(_reply(responder, _query("www.plain.example.").to_wire()))
    assert (below.rcode(), below.answer) == (dns.rcode.NXDOMAIN, [])
    assert below.authority[0].rdtype == dns.rdatatype.SOA  # from the zone's snapshot
    elsewhere = dns.message.from_wire(_reply(responder, _query("elsewhere.example.").to_wire()))
    assert elsewhere.rcode() == dns.rcode.REFUSED


def _notify(
    name: str = ZONE,
    serial: int | None = 7,
    *,
    answers: int = 1,
    answer_type: str = "SOA",
    **edns: Any,
) -> dns.message.Message:
    """A NOTIFY as BIND9 sends it to its also-notify list: AA set, no RD, the SOA of
    ``serial`` in its answer (none if None)."""
    notify = dns.message.make_query(name, "SOA", flags=dns.flags.AA, **edns)
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.id = 4242
    data = {"SOA": "ns1.plain.example. hostmaster.plain.example. {} 3600 600 86400 300"}
    for extra in range(answers if serial is not None else 0):
        text = data.get(answer_type, "192.0.2.{}").format(serial + extra)
        notify.answer.append(dns.rrset.from_text(name, 300, "IN", answer_type, text))
    return notify


def _with_rd(message: dns.message.Message) -> dns.message.Message:
    message.flags |= dns.flags.RD
    return message


NOTIFY_SHAPES = {
    "BIND9's": lambda: _notify(),
    "no serial": lambda: _notify(serial=None),
    "the highest serial": lambda: _notify(serial=4294967295),
    "EDNS": lambda: _notify(use_edns=0, payload=1232),
    "RD": lambda: _with_rd(_notify()),
    "mixed case": lambda: _notify("PlAiN.ExAmPlE."),
}


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("shape", NOTIFY_SHAPES)
def test_a_plain_notify_gets_the_full_paths_reply_and_passes_on_the_same_word(
    zone: objects.Zone, shape: str, tcp: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    said: list[tuple[Any, ...]] = []
    monkeypatch.setattr(served, "announce", lambda *word: said.append(word))
    responder = Responder()
    notify = NOTIFY_SHAPES[shape]()
    wire = notify.to_wire()
    plain = plain_soa.read(wire)
    assert plain is not None and plain.notify
    first = list(responder.answer(wire, tcp=tcp, peer="test", address="127.0.0.1"))
    again = list(responder.answer(wire, tcp=tcp, peer="test", address="127.0.0.1"))
    assert first == again == _full_path(responder, wire, tcp=tcp)
    reply = dns.message.from_wire(first[0])
    assert notify.is_response(reply) and reply.id == 4242
    assert (reply.rcode(), bool(reply.flags & dns.flags.AA)) == (dns.rcode.NOERROR, True)
    serial = notify.answer[0][0].serial if notify.answer else None
    assert said == [(zone.id, serial, "127.0.0.1")] * 3


@pytest.mark.parametrize(
    ("name", "address", "rcode"),
    [
        ("elsewhere.example.", "127.0.0.1", dns.rcode.NOTAUTH),
        (ZONE, "192.0.2.9", dns.rcode.REFUSED),  # outside [mdns] allow_notify
    ],
    ids=["a zone mdns does not hold", "from outside allow_notify"],
)
def test_a_plain_notify_mdns_does_not_take_is_refused_as_the_full_path_refuses_it(
    zone: objects.Zone,
    name: str,
    address: str,
    rcode: dns.rcode.Rcode,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said: list[tuple[Any, ...]] = []
    monkeypatch.setattr(served, "announce", lambda *word: said.append(word))
    responder = Responder()
    wire = _notify(name).to_wire()
    assert plain_soa.read(wire) is not None
    (reply,) = responder.answer(wire, tcp=False, peer="test", address=address)
    (full,) = list(responder._answer(wire, tcp=False, peer="test", address=address))  # noqa: SLF001
    assert reply == full
    assert dns.message.from_wire(reply).rcode() == rcode
    assert said == []
