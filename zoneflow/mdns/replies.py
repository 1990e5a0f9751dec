"""Reply messages mdns builds the same way whatever the request: errors,
replies to messages it could not parse, and the fitting of a reply to UDP or
TCP."""

from __future__ import annotations

import struct

import dns.flags
import dns.message
import dns.rcode
import dns.rdtypes.ANY.SOA
import dns.rrset

# The EDNS UDP payload recommended since DNS Flag Day 2020: replies that never
# fragment. Larger answers are truncated and the client retries over TCP.
UDP_PAYLOAD = 1232
_OPCODE_AND_RD = 0x7800 | dns.flags.RD


def error(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    """A reply to ``query`` carrying only ``rcode``."""
    response = dns.message.make_response(query, our_payload=UDP_PAYLOAD)
    response.set_rcode(rcode)
    return response


def header_reply(wire: bytes, rcode: dns.rcode.Rcode) -> bytes:
    """A bare reply echoing the id and opcode of a message we could not parse."""
    query_id, flags = struct.unpack("!HH", wire[:4])
    flags = dns.flags.QR | (flags & _OPCODE_AND_RD) | int(rcode)
    return struct.pack("!HHHHHH", query_id, flags, 0, 0, 0, 0)


def to_wire(response: dns.message.Message, query: dns.message.Message, tcp: bool) -> bytes:
    """``response`` in wire form, truncated to what the transport and client take."""
    if tcp:
        limit = 65535
    elif query.edns >= 0:
        limit = max(512, min(query.payload, UDP_PAYLOAD))
    else:
        limit = 512
    # Past the limit, truncate and set TC: over UDP the client retries over
    # TCP; over TCP (an RRset of thousands of records) it at least gets
    # what fits rather than a SERVFAIL.
    return bytes(response.to_wire(max_size=limit, prefer_truncation=True))


def soa_serial(section: list[dns.rrset.RRset]) -> int | None:
    """The serial of the first SOA in a message section (a NOTIFY's or an IXFR query's)."""
    for rrset in section:
        for rdata in rrset:
            if isinstance(rdata, dns.rdtypes.ANY.SOA.SOA):
                return int(rdata.serial)
    return None
