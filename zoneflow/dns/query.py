"""Small DNS clients the flows use: SOA serial polling, NOTIFY, "is the zone gone?".

What a nameserver answers is a result, never an exception: a zone that is not
served (yet, or any more) gives ``None`` from :func:`soa_serial`. Exceptions
mean there was no usable answer at all:

- ``dns.exception.Timeout``: nothing came back within ``timeout`` (each of the
  UDP query and, after a truncated reply, the TCP retry has its own timeout);
- ``OSError``: the network said no. Queries go out on a *connected* UDP
  socket so that an ICMP port-unreachable surfaces at once as
  ``ConnectionRefusedError`` instead of as a timeout; a refused or reset TCP
  retry is an ``OSError`` too;
- another ``dns.exception.DNSException`` (``BadResponse``, ``FormError``...):
  what came back was not a well-formed reply to our query.

Callers (``SendNotify``, ``PollForSerial``) treat all three as "no answer,
try again", which is why they share the ``DNSException``/``OSError`` base.
"""

from __future__ import annotations

import dataclasses
import selectors
import socket
import struct
import time
from collections.abc import Sequence

import dns.flags
import dns.inet
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset

# A server that answers one of these about a zone does not hold it.
_NOT_HELD = frozenset({dns.rcode.REFUSED, dns.rcode.NOTAUTH, dns.rcode.NXDOMAIN})

# What send_notifies reads of a reply: its id and flags, the QR bit and opcode among them.
_HEADER = struct.Struct("!HH")
_REPLY_OPCODE = 0xF800
_NOTIFY_REPLY = 0x8000 | (dns.opcode.NOTIFY << 11)


@dataclasses.dataclass(frozen=True)
class _SoaAnswer:
    """What a server said about a zone's SOA.

    ``serial`` is set when it serves the zone with authority; ``gone`` when it
    clearly does not hold the zone at all. Neither (SERVFAIL, FORMERR...)
    means the zone may be configured there but is not served right now: BIND
    answers SERVFAIL for a secondary zone that has not loaded yet, which is
    neither "served" nor "removed".
    """

    serial: int | None
    gone: bool


def _udp_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(dns.inet.af_for_address(host), socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _exchange(
    message: dns.message.Message, host: str, port: int, timeout: float, *, tcp_on_tc: bool
) -> dns.message.Message:
    with _udp_socket(host, port) as sock:
        response = dns.query.udp(message, host, port=port, timeout=timeout, sock=sock)
    if tcp_on_tc and response.flags & dns.flags.TC:
        response = dns.query.tcp(message, host, port=port, timeout=timeout)
    return response


def _ask_soa(zone_name: str, host: str, port: int, timeout: float) -> _SoaAnswer:
    name = dns.name.from_text(zone_name)
    query = dns.message.make_query(name, dns.rdatatype.SOA)
    # We ask nameservers about their own data; asking for recursion only
    # invites a resolver-style answer from a server that also recurses.
    query.flags &= ~dns.flags.RD
    response = _exchange(query, host, port, timeout, tcp_on_tc=True)
    rcode = response.rcode()
    if rcode in _NOT_HELD:
        return _SoaAnswer(serial=None, gone=True)
    if rcode != dns.rcode.NOERROR:
        return _SoaAnswer(serial=None, gone=False)
    if response.flags & dns.flags.AA:
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.SOA and rrset.name == name and len(rrset):
                soa = rrset[0]
                assert isinstance(soa, dns.rdtypes.ANY.SOA.SOA)
                return _SoaAnswer(serial=int(soa.serial), gone=False)
    # NOERROR without our SOA: a referral, a parent zone's NODATA, or an
    # answer from a cache. Whatever it is, the zone is not held there.
    return _SoaAnswer(serial=None, gone=True)


def soa_serial(zone_name: str, host: str, port: int = 53, *, timeout: float = 1.0) -> int | None:
    """The SOA serial ``host`` serves for ``zone_name`` with authority, else None.

    None covers every answer that is not an authoritative SOA for exactly
    that name: REFUSED, NOTAUTH, NXDOMAIN, SERVFAIL, no AA bit, a referral.
    A truncated UDP reply is retried over TCP. Raises ``dns.exception.Timeout``
    or ``OSError`` when there is no answer (see the module docstring).
    """
    return _ask_soa(zone_name, host, port, timeout).serial


def zone_is_refused(zone_name: str, host: str, port: int = 53, *, timeout: float = 1.0) -> bool:
    """True when ``host`` no longer holds ``zone_name``: the end of a delete.

    That is REFUSED, NOTAUTH or NXDOMAIN, or a NOERROR without an
    authoritative SOA for the zone (a referral, a parent zone's answer).
    SERVFAIL is *not* refused: the server still has the zone configured but
    cannot serve it (not loaded yet, expired), so it has not been removed.
    Raises like :func:`soa_serial`.
    """
    return _ask_soa(zone_name, host, port, timeout).gone


def send_notify(
    zone_name: str, host: str, port: int = 53, *, serial: int | None = None, timeout: float = 1.0
) -> int:
    """Send a NOTIFY (RFC 1996) for ``zone_name`` to ``host`` and return the reply's rcode.

    With ``serial``, the SOA goes in the answer section as a hint; secondaries
    check the primary's SOA themselves anyway. NOERROR means the NOTIFY was
    accepted; NOTAUTH or REFUSED usually mean the zone is not configured there
    (or this address may not notify it). Raises ``dns.exception.Timeout`` when
    nothing comes back, ``OSError`` when the network refuses.
    """
    notify = _notify_message(zone_name, serial)
    response = _exchange(notify, host, port, timeout, tcp_on_tc=False)
    return int(response.rcode())


def send_notifies(
    zones: Sequence[tuple[str, int]], host: str, port: int = 53, *, timeout: float = 1.0
) -> list[int | None]:
    """NOTIFY ``host`` of each (zone name, serial) at once: every NOTIFY goes out on one
    socket before any reply is awaited. The reply's rcode per zone, in the order
    given; None for a zone whose reply did not come within ``timeout`` (or when
    nothing listens at ``host:port``).

    What a batch's poll sends (zoneflow.flows.batch): one NOTIFY after another,
    each waiting for its reply, made a batch of 25 wait 25 round trips of a busy
    server. Raises ``OSError`` when the network refuses to send.
    """
    messages = [_notify_message(name, serial) for name, serial in zones]
    waiting: dict[int, int] = {}  # DNS id -> index in zones
    for index, message in enumerate(messages):
        while message.id in waiting:
            message.id = (message.id + 1) & 0xFFFF
        waiting[message.id] = index
    rcodes: list[int | None] = [None] * len(messages)
    deadline = time.monotonic() + timeout
    with _udp_socket(host, port) as sock, selectors.DefaultSelector() as selector:
        try:
            for message in messages:
                sock.send(message.to_wire())
        except ConnectionRefusedError:
            return rcodes  # an earlier NOTIFY's port-unreachable: nothing listens there
        selector.register(sock, selectors.EVENT_READ)
        while waiting and (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                continue
            try:
                wire = sock.recv(65535)
            except BlockingIOError:
                continue
            except ConnectionRefusedError:
                break  # nothing listens there
            if len(wire) < _HEADER.size:
                continue
            qid, flags = _HEADER.unpack_from(wire)
            asked = waiting.get(qid)
            if asked is not None and flags & _REPLY_OPCODE == _NOTIFY_REPLY:
                del waiting[qid]
                rcodes[asked] = flags & 0x000F
    return rcodes


def _notify_message(zone_name: str, serial: int | None) -> dns.message.Message:
    """A NOTIFY of ``zone_name``; with ``serial``, its SOA in the answer as a hint."""
    name = dns.name.from_text(zone_name)
    notify = dns.message.make_query(name, dns.rdatatype.SOA)
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.flags = (notify.flags | dns.flags.AA) & ~dns.flags.RD
    if serial is not None:
        soa = dns.rrset.RRset(name, dns.rdataclass.IN, dns.rdatatype.SOA)
        # Only the serial means anything in a NOTIFY's SOA (RFC 1996 section 3.7).
        soa.add(
            dns.rdtypes.ANY.SOA.SOA(
                dns.rdataclass.IN,
                dns.rdatatype.SOA,
                dns.name.root,
                dns.name.root,
                serial,
                0,
                0,
                0,
                0,
            ),
            0,
        )
        notify.answer.append(soa)
    return notify
