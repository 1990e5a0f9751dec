"""A plain SOA query or NOTIFY read by hand, and its reply kept rendered.

Every target asks mdns for a zone's SOA (a refresh, the check a NOTIFY
prompts): under load about two requests in five. Parsing the query with
dnspython and rendering the reply cost more CPU than the rest of the answer.
A query of the plainest shape is read here instead, and the reply dnspython
renders for it is kept by all it depends on (``Responder.soa_replies``); the
next query of that shape for that zone row gets the same bytes under its own id.
A target that tells mdns of each serial it loads (its NOTIFY, about one
request in three) is read so too, its SOA's serial with it, and acknowledged
from a reply kept by shape (``Responder.notify_replies``).

The plain shape, and nothing else: a QUERY, its header's counts one
question and at most one additional record, or a NOTIFY, which may have an
answer record too; the question ``IN SOA``, its name in labels (no
compression pointer); a NOTIFY's answer, an ``IN SOA`` record whose owner is
a name or a pointer; the additional record, if any, an OPT of EDNS version 0
(its options are read as far as the padding option, which the reply depends
on); and not a byte more. A TSIG, another EDNS version, trailing bytes, a
name pointer in the question: each takes the full path
(:mod:`zoneflow.mdns.responder`), which also refuses or corrects them.
"""

from __future__ import annotations

import dataclasses
import struct

_HEADER = struct.Struct("!HHHHHH")
_TYPE_CLASS = struct.Struct("!HH")
_OPT_FIXED = struct.Struct("!HHBBHH")  # type, payload, extended rcode, version, flags, rdlength
_OPTION = struct.Struct("!HH")
_RECORD = struct.Struct("!HHIH")  # type, class, TTL, rdlength
_SERIAL = struct.Struct("!I")
_SOA, _IN, _OPT, _PADDING = 6, 1, 41, 12
_QR, _OPCODE, _RD = 0x8000, 0x7800, 0x0100
_NOTIFY = 4 << 11  # the NOTIFY opcode, in place in the header's flags
# An SOA's data: two names of a byte at least, then its five 32-bit numbers.
_SOA_NUMBERS = 20
_SOA_SHORTEST = 2 + _SOA_NUMBERS
# The longest name in wire form (RFC 1035 section 3.1).
_MAX_NAME = 255
# The bytes of a label whose text needs no escape.
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*")


@dataclasses.dataclass(frozen=True)
class PlainSoa:
    """What a plain SOA query (or NOTIFY) asks, and what its reply depends on."""

    # The name asked, absolute and lower case ("example.com.").
    name: str
    # The query's RD flag, its question in wire form (the reply repeats its case),
    # whether it has an OPT record, its UDP payload and whether it asks for padding.
    shape: tuple[int, bytes, bool, int, bool]
    # A NOTIFY: a nameserver's word that it serves ``serial`` (None: not said).
    notify: bool = False
    serial: int | None = None


def read(wire: bytes) -> PlainSoa | None:
    """The plain SOA query or NOTIFY ``wire`` is, or None: the full path answers it."""
    if len(wire) < _HEADER.size:
        return None
    _, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    notify = flags & _OPCODE == _NOTIFY
    if flags & _QR or (flags & _OPCODE and not notify):
        return None
    if (qdcount, nscount) != (1, 0) or ancount > int(notify) or arcount > 1:
        return None
    labels = []
    offset = _HEADER.size
    try:
        while (length := wire[offset]) != 0:
            if length > 63:  # a compression pointer, or an extended label type
                return None
            label = wire[offset + 1 : offset + 1 + length]
            if len(label) != length:
                return None
            labels.append(label)
            offset += 1 + length
        offset += 1
        if offset - _HEADER.size > _MAX_NAME:
            return None
        rtype, rclass = _TYPE_CLASS.unpack_from(wire, offset)
    except (IndexError, struct.error):
        return None
    if (rtype, rclass) != (_SOA, _IN):
        return None
    question = wire[_HEADER.size : offset + _TYPE_CLASS.size]
    name = _text(labels)
    if name is None:
        return None
    offset += _TYPE_CLASS.size
    serial = None
    if ancount:
        found = _read_soa_serial(wire, offset)
        if found is None:
            return None
        serial, offset = found
    if arcount == 0:
        if offset != len(wire):
            return None
        return PlainSoa(name, (flags & _RD, question, False, 0, False), notify, serial)
    edns = _read_opt(wire, offset)
    if edns is None:
        return None
    payload, padding = edns
    return PlainSoa(name, (flags & _RD, question, True, payload, padding), notify, serial)


def _read_soa_serial(wire: bytes, offset: int) -> tuple[int, int] | None:
    """(its serial, the offset past it) of the ``IN SOA`` record at ``offset``, whose
    owner is a name in labels or a pointer; None if it is not such a record."""
    try:
        while (length := wire[offset]) != 0:
            if length >= 0xC0:  # a pointer ends the name
                offset += 1
                break
            if length > 63:
                return None
            offset += 1 + length
        offset += 1
        rtype, rclass, _, rdlength = _RECORD.unpack_from(wire, offset)
    except (IndexError, struct.error):
        return None
    end = offset + _RECORD.size + rdlength
    if (rtype, rclass) != (_SOA, _IN) or rdlength < _SOA_SHORTEST or end > len(wire):
        return None
    (serial,) = _SERIAL.unpack_from(wire, end - _SOA_NUMBERS)
    return int(serial), end


def _text(labels: list[bytes]) -> str | None:
    """The name's text, or None for one whose labels hold what dnspython's text
    would escape (a dot, a space, a byte outside ASCII letters and digits)."""
    if any(not _PLAIN.issuperset(label) for label in labels):
        return None
    return b".".join(labels).decode("ascii").lower() + "." if labels else "."


def _read_opt(wire: bytes, offset: int) -> tuple[int, bool] | None:
    """(UDP payload, whether the padding option is asked for) of the OPT record at
    ``offset``, the message's last bytes; None if it is not such a record."""
    if wire[offset : offset + 1] != b"\x00":  # its owner: the root
        return None
    try:
        rtype, payload, _, version, _, rdlength = _OPT_FIXED.unpack_from(wire, offset + 1)
    except struct.error:
        return None
    start = offset + 1 + _OPT_FIXED.size
    if rtype != _OPT or version != 0 or start + rdlength != len(wire):
        return None
    padding = False
    at = start
    while at < len(wire):
        try:
            code, length = _OPTION.unpack_from(wire, at)
        except struct.error:
            return None
        at += _OPTION.size + length
        padding = padding or code == _PADDING
    if at != len(wire):
        return None
    return payload, padding
