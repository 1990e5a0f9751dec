"""Zone transfer messages (AXFR, IXFR), packed straight into wire format.

A transfer of a large zone is mostly the same few operations repeated for
every record: the owner name, type, class, TTL and the record's data. Going
through dnspython's RRset objects costs about 150 µs a record (parse the
text, build objects, render them); packing the bytes here costs a few µs, so
a 100k-record zone leaves mdns about as fast as it leaves BIND.

Names are compressed against the zone's origin only: every owner in a zone
ends with it, so that one pointer saves most of what full compression would,
without a table of every suffix seen.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Iterator

import dns.flags
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

# What one record is here: owner (absolute text), type, TTL, data in wire form.
WireRecord = tuple[str, dns.rdatatype.RdataType, int, bytes]

_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")  # type, class, TTL, rdata length
_IN = dns.rdataclass.IN
_A = dns.rdatatype.A
_AAAA = dns.rdatatype.AAAA
_PTR = dns.rdatatype.PTR
# An OPT record without options: root owner, type 41, class = our payload.
_OPT = b"\x00" + struct.pack("!HHIH", dns.rdatatype.OPT, 1232, 0, 0)
_MAX_POINTER = 0x3FFF


def rdata_wire(rtype: dns.rdatatype.RdataType, text: str) -> bytes:
    """A record's data, from its stored canonical text, in (uncompressed) wire form."""
    if rtype == _A:
        return socket.inet_aton(text)
    if rtype == _AAAA:
        return socket.inet_pton(socket.AF_INET6, text)
    return _wire(dns.rdata.from_text(_IN, rtype, text))


def _wire(rdata: dns.rdata.Rdata) -> bytes:
    wire = rdata.to_wire()
    assert wire is not None  # to_wire() without a file returns the bytes
    return wire


def _name_wire(name: dns.name.Name) -> bytes:
    wire = name.to_wire()
    assert wire is not None  # to_wire() without a file returns the bytes
    return wire


def rrset_records(rrset: dns.rrset.RRset) -> Iterator[WireRecord]:
    """The records of a dnspython RRset (the SOA, the apex NS) as wire records."""
    owner = rrset.name.to_text()
    for rdata in rrset:
        yield owner, rrset.rdtype, rrset.ttl, _wire(rdata)


def stored_records(
    rows: Iterable[tuple[str, str, int | None, str]], default_ttl: int
) -> Iterator[WireRecord]:
    """Storage rows (owner, type text, TTL or None, data text) as wire records."""
    types: dict[str, dns.rdatatype.RdataType] = {}
    for owner, type_text, ttl, data in rows:
        rtype = types.get(type_text)
        if rtype is None:
            rtype = types[type_text] = dns.rdatatype.from_text(type_text)
        yield owner, rtype, default_ttl if ttl is None else ttl, rdata_wire(rtype, data)


def name_wire(text: str) -> bytes:
    """An absolute name's text in (uncompressed) wire form.

    Plain ASCII labels (every zone name zoneflow stores) are packed here, in
    a few µs; anything else (escapes, a label too long) goes through dnspython,
    which packs it or says what is wrong with it.
    """
    if text.endswith(".") and text.isascii() and "\\" not in text:
        labels = [label.encode() for label in text[:-1].split(".")] if text != "." else []
        if all(0 < len(label) < 64 for label in labels) and len(text) < 255:
            return b"".join(bytes((len(label),)) + label for label in labels) + b"\0"
    return _name_wire(dns.name.from_text(text))


def ptr_records(pairs: Iterable[tuple[str, str]], ttl: int) -> Iterator[WireRecord]:
    """(owner, target) pairs of absolute names' text as PTR wire records (a catalog's members)."""
    for owner, target in pairs:
        yield owner, _PTR, ttl, name_wire(target)


class _Names:
    """Owner names in wire form, compressed against the zone's origin."""

    def __init__(self, origin: dns.name.Name) -> None:
        self.origin_text = origin.to_text()
        self.suffix = "." + self.origin_text
        self.origin_wire: bytes = origin.to_digestable()
        self._last: tuple[str, bytes] = ("", b"")

    def relative(self, owner: str) -> bytes | None:
        """The labels of ``owner`` above the origin, or None if it is not below it."""
        if owner == self._last[0]:
            return self._last[1]
        if owner == self.origin_text:
            labels = b""
        elif owner.endswith(self.suffix) and "\\" not in owner:
            text = owner[: -len(self.suffix)].encode()
            if b"." not in text and 0 < len(text) < 64:
                labels = bytes((len(text),)) + text  # the common case: one label
            else:
                parts = text.split(b".")
                if any(not 0 < len(part) < 64 for part in parts):
                    return None
                labels = b"".join(bytes((len(part),)) + part for part in parts)
        else:
            return None
        self._last = (owner, labels)
        return labels


def messages(
    query: dns.message.Message,
    origin: dns.name.Name,
    records: Iterable[WireRecord],
    max_size: int,
) -> Iterator[bytes]:
    """``records`` (a whole transfer, SOA first and last) as messages of at most ``max_size``.

    Only the first message repeats the question (RFC 5936 section 2.2.1); a
    large RRset simply continues in the next message, which RFC 5936
    section 2.2 allows.
    """
    question = query.question[0]
    flags = dns.flags.QR | dns.flags.AA | (query.flags & dns.flags.RD)
    edns = query.edns >= 0
    limit = max_size - (len(_OPT) if edns else 0)
    names = _Names(origin)
    qname = _name_wire(question.name)

    first = True
    body = bytearray()
    count = 0
    origin_at: int | None = None

    def start() -> None:
        nonlocal body, count, origin_at
        body = bytearray(12)
        count = 0
        origin_at = None
        if first:
            body += qname + struct.pack("!HH", question.rdtype, question.rdclass)
            if question.name == origin:
                origin_at = 12

    def finish() -> bytes:
        _HEADER.pack_into(body, 0, query.id, flags, int(first), count, 0, int(edns))
        if edns:
            body.extend(_OPT)
        return bytes(body)

    pointer_to, pointer = -1, b""
    start()
    for owner, rtype, ttl, rdata in records:
        relative = names.relative(owner)
        while True:
            mark, pointer_before = len(body), origin_at
            if relative is None:
                body += dns.name.from_text(owner).to_digestable()
            elif origin_at is not None:
                if pointer_to != origin_at:
                    pointer_to, pointer = origin_at, struct.pack("!H", 0xC000 | origin_at)
                body += relative + pointer
            else:
                body += relative
                if len(body) <= _MAX_POINTER:
                    origin_at = len(body)
                body += names.origin_wire
            body += _RR_FIXED.pack(rtype, _IN, ttl, len(rdata)) + rdata
            if len(body) <= limit:
                count += 1
                break
            del body[mark:]
            origin_at = pointer_before
            if count == 0:
                raise ValueError(
                    f"a {dns.rdatatype.to_text(rtype)} record of {owner} is larger than a "
                    f"transfer message ({max_size} bytes)"
                )
            yield finish()
            first = False
            start()
    yield finish()
