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

import contextlib
import selectors
import socket
import struct
import time
from collections.abc import Sequence

import dns.entropy
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

# What send_notifies reads of a reply: its id and flags, the QR bit and opcode among them.
_HEADER = struct.Struct("!HH")
_REPLY_OPCODE = 0xF800
_NOTIFY_REPLY = 0x8000 | (dns.opcode.NOTIFY << 11)

# A NOTIFY as send_notifies writes it (_notify_wire): id, flags (opcode NOTIFY,
# authoritative, no recursion asked) and the four section counts; then the
# question (the zone's name, SOA, IN); then the hint: the question's name again
# (a pointer to where it begins, after the 12-byte header), SOA, IN, TTL 0, the
# rdata's length, and an SOA whose two names are the root (one byte each) and
# whose five numbers are the serial and four zeroes.
_NOTIFY_HEADER = struct.Struct("!HHHHHH")
_NOTIFY_FLAGS = (dns.opcode.NOTIFY << 11) | dns.flags.AA
_SOA_IN = struct.pack("!HH", dns.rdatatype.SOA, dns.rdataclass.IN)
_QUESTION_NAME = 0xC000 | _NOTIFY_HEADER.size
_SERIAL_HINT = struct.Struct("!HHHIHBBIIIII")


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
    nothing comes back (nothing listens there, too), ``OSError`` when the network
    refuses to send.

    Sent and read as wire bytes, as :func:`send_notifies` sends a batch's: a
    dnspython message made, rendered and its reply parsed cost a conductor
    about half of each NOTIFY it repeats to a nameserver that lags.
    """
    rcodes: list[int | None] = [None]
    _notify_each([(zone_name, serial)], host, port, timeout, rcodes)
    if rcodes[0] is None:
        raise dns.exception.Timeout(timeout=timeout)
    return rcodes[0]


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
    rcodes: list[int | None] = [None] * len(zones)
    # Refused: an earlier NOTIFY's port-unreachable, nothing listens there.
    with contextlib.suppress(ConnectionRefusedError):
        _notify_each(zones, host, port, timeout, rcodes)
    return rcodes


def _notify_each(
    zones: Sequence[tuple[str, int | None]],
    host: str,
    port: int,
    timeout: float,
    rcodes: list[int | None],
) -> None:
    """Send every NOTIFY, then set each one's ``rcodes`` entry as its reply comes, until
    all have come or ``timeout`` passes. Raises ``ConnectionRefusedError`` when
    nothing listens at ``host:port`` (the replies read by then are set)."""
    messages: list[bytes] = []
    waiting: dict[int, int] = {}  # DNS id -> index in zones
    for index, (name, serial) in enumerate(zones):
        qid = dns.entropy.random_16()
        while qid in waiting:
            qid = (qid + 1) & 0xFFFF
        waiting[qid] = index
        messages.append(_notify_wire(name, serial, qid))
    deadline = time.monotonic() + timeout
    with _udp_socket(host, port) as sock, selectors.DefaultSelector() as selector:
        for message in messages:
            sock.send(message)
        selector.register(sock, selectors.EVENT_READ)
        while waiting and (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                continue
            try:
                wire = sock.recv(65535)
            except BlockingIOError:
                continue
            if len(wire) < _HEADER.size:
                continue
            qid, flags = _HEADER.unpack_from(wire)
            asked = waiting.get(qid)
            if asked is not None and flags & _REPLY_OPCODE == _NOTIFY_REPLY:
                del waiting[qid]
                rcodes[asked] = flags & 0x000F


def _notify_wire(zone_name: str, serial: int | None, qid: int) -> bytes:
    """A NOTIFY of ``zone_name`` as it goes on the wire, its id ``qid``; with
    ``serial``, an SOA in the answer carrying it as a hint.

    Written by hand, as dnspython would render it (tests/unit/test_notify.py):
    making and rendering dnspython's message took a conductor about a
    millisecond of CPU a NOTIFY under profiling, and a batch on 8 nameservers
    sends each zone's 8 times.
    """
    name = dns.name.from_text(zone_name).to_wire()
    assert name is not None  # written to no file: returned
    question = name + _SOA_IN
    header = _NOTIFY_HEADER.pack(qid, _NOTIFY_FLAGS, 1, 0 if serial is None else 1, 0, 0)
    if serial is None:
        return header + question
    # Only the serial means anything in a NOTIFY's SOA (RFC 1996 section 3.7).
    hint = _SERIAL_HINT.pack(
        _QUESTION_NAME, dns.rdatatype.SOA, dns.rdataclass.IN, 0, 22, 0, 0, serial, 0, 0, 0, 0
    )
    return header + question + hint
