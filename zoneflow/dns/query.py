"""Small DNS clients the flows use: one zone's SOA serial, NOTIFY (one, or a batch's at
once). A poll asks many zones through :mod:`zoneflow.dns.soa_probe`.

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

Callers (``SendNotify``, a recovery's look at a target) treat all three as "no
answer, try again", which is why they share the ``DNSException``/``OSError`` base.
"""

from __future__ import annotations

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

# What send_notifies reads of a reply: its id and flags, the QR bit and opcode among them.
_HEADER = struct.Struct("!HH")
_REPLY_OPCODE = 0xF800
_NOTIFY_REPLY = 0x8000 | (dns.opcode.NOTIFY << 11)


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


def soa_serial(zone_name: str, host: str, port: int = 53, *, timeout: float = 1.0) -> int | None:
    """The SOA serial ``host`` serves for ``zone_name`` with authority, else None.

    None covers every answer that is not an authoritative SOA for exactly
    that name: REFUSED, NOTAUTH, NXDOMAIN, SERVFAIL, no AA bit, a referral.
    A truncated UDP reply is retried over TCP. Raises ``dns.exception.Timeout``
    or ``OSError`` when there is no answer (see the module docstring). Many
    zones at once, or "not held" told from "not loaded": :mod:`soa_probe`.
    """
    name = dns.name.from_text(zone_name)
    query = dns.message.make_query(name, dns.rdatatype.SOA)
    # We ask nameservers about their own data; asking for recursion only
    # invites a resolver-style answer from a server that also recurses.
    query.flags &= ~dns.flags.RD
    response = _exchange(query, host, port, timeout, tcp_on_tc=True)
    if response.rcode() != dns.rcode.NOERROR or not response.flags & dns.flags.AA:
        return None
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.name == name and len(rrset):
            soa = rrset[0]
            assert isinstance(soa, dns.rdtypes.ANY.SOA.SOA)
            return int(soa.serial)
    return None


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
