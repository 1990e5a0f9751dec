"""Asking nameservers for the SOA serial of many zones at once, fast.

The producer's audit asks every target for every zone it should serve:
100,000 zones on two targets is 200,000 questions per audit. One
dnspython query at a time waits a round trip each (a few thousand a
second at best); here each nameserver gets one non-blocking UDP socket
with up to ``in_flight`` questions outstanding on it, answers are matched
to questions by their DNS id (and checked against the question's name), and
one thread drives every socket through a selector. Questions are built from
a fixed template and answers read as far as the SOA serial, without
dnspython's full message parse: most of a check's cost was that parse.

What a nameserver says of a zone (:data:`Finding`):
- an int: it serves the zone, at that serial (an authoritative SOA answer);
- :data:`NOT_SERVED`: it answered that it does not hold the zone (REFUSED,
  NOTAUTH, NXDOMAIN, or a NOERROR without the zone's authoritative SOA: a
  referral, a parent zone's answer);
- :data:`NOT_LOADED`: it answered with another error (SERVFAIL, most
  often): it may hold the zone but cannot serve it, as BIND9 does for a
  secondary zone not yet transferred;
- :data:`NO_ANSWER`: it never answered, after ``retries`` more tries. The
  server is down or overloaded, which says nothing of the zone.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import enum
import errno
import random
import selectors
import socket
import struct
import time
from collections.abc import Iterable, Mapping, Sequence

import dns.name


class Silence(enum.Enum):
    NOT_SERVED = "not served"
    NOT_LOADED = "not loaded"
    NO_ANSWER = "no answer"


NOT_SERVED = Silence.NOT_SERVED
NOT_LOADED = Silence.NOT_LOADED
NO_ANSWER = Silence.NO_ANSWER

#: What a nameserver said of one zone: the serial it serves, or why none.
Finding = int | Silence

# A query: no flags (no recursion wanted), one question.
_HEADER = struct.Struct("!HHHHHH")
_SOA_IN = b"\x00\x06\x00\x01"
_RR_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength
_SOA = 6
_QR, _AA, _TC = 0x8000, 0x0400, 0x0200
_NOERROR = 0
# A server that answers one of these about a zone does not hold it.
_NOT_HELD = frozenset({3, 5, 9})  # NXDOMAIN, REFUSED, NOTAUTH
# Big enough that a burst of answers is not dropped while the loop sends.
_SOCKET_BUFFER = 4 * 1024 * 1024


def wire_name(name: str) -> bytes:
    """A zone name (absolute text) in wire form, lower case: how it is asked and how
    the answer's question is compared."""
    if "\\" in name:  # escaped labels: leave their decoding to dnspython
        return dns.name.from_text(name).to_wire().lower()  # type: ignore[union-attr]
    labels = name.rstrip(".").lower().encode("ascii").split(b".")
    return b"".join(bytes((len(label),)) + label for label in labels if label) + b"\x00"


def query(qid: int, qname: bytes) -> bytes:
    """The SOA query for ``qname`` (wire form) with DNS id ``qid``."""
    return qid.to_bytes(2, "big") + _after_id(qname)


def _after_id(qname: bytes) -> bytes:
    """A query but its first two bytes (the id): made once per name, sent per try."""
    return _HEADER.pack(0, 0, 1, 0, 0, 0)[2:] + qname + _SOA_IN


def _skip_name(wire: bytes, offset: int) -> int:
    """The offset just past the (possibly compressed) name at ``offset``."""
    while True:
        length = wire[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2
        offset += length + 1


def read_answer(wire: bytes, qname: bytes) -> tuple[int, Finding] | None:
    """(the answer's id, what it says) for an answer to the SOA query of ``qname``;
    None when ``wire`` is not such an answer (another question's, garbage)."""
    if len(wire) < _HEADER.size + len(qname) + 4:
        return None
    qid, flags, qdcount, ancount, _, _ = _HEADER.unpack_from(wire)
    end = _HEADER.size + len(qname)
    if not flags & _QR or qdcount != 1 or wire[_HEADER.size : end].lower() != qname:
        return None
    rcode = flags & 0x000F
    if rcode in _NOT_HELD or (rcode == _NOERROR and not flags & _AA):
        return qid, NOT_SERVED
    if rcode != _NOERROR:
        return qid, NOT_LOADED
    offset = end + 4
    try:
        for _ in range(ancount):
            offset = _skip_name(wire, offset)
            rtype, _, _, rdlength = _RR_FIXED.unpack_from(wire, offset)
            offset += _RR_FIXED.size
            if rtype == _SOA:
                serial_at = _skip_name(wire, _skip_name(wire, offset))
                return qid, int.from_bytes(wire[serial_at : serial_at + 4], "big")
            offset += rdlength
    except (IndexError, struct.error):
        return None
    return qid, NOT_SERVED


@dataclasses.dataclass
class _Flight:
    index: int  # of the name in the server's list
    tries: int
    sent_at: float


class _Server:
    """One nameserver's socket, the names still to ask it and those in flight."""

    def __init__(self, address: tuple[str, int], names: Sequence[str | bytes]) -> None:
        self.address = address
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            # Past the kernel's maximum its default will do.
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER)
        self.sock.connect(address)
        self.qnames = [name if isinstance(name, bytes) else wire_name(name) for name in names]
        self.queries = [_after_id(qname) for qname in self.qnames]
        self.findings: list[Finding] = [NO_ANSWER] * len(names)
        self.to_ask: collections.deque[tuple[int, int]] = collections.deque(
            (index, 0) for index in range(len(names))
        )
        self.flights: dict[int, _Flight] = {}
        # (deadline, id, flight) in the order sent, so the oldest expires first.
        self.deadlines: collections.deque[tuple[float, int, _Flight]] = collections.deque()
        self._next_id = random.randrange(0x10000)

    @property
    def done(self) -> bool:
        return not self.to_ask and not self.flights

    def _free_id(self) -> int:
        while self._next_id in self.flights:
            self._next_id = (self._next_id + 1) & 0xFFFF
        qid, self._next_id = self._next_id, (self._next_id + 1) & 0xFFFF
        return qid

    def send(self, in_flight: int, timeout: float, now: float) -> None:
        while self.to_ask and len(self.flights) < in_flight:
            index, tries = self.to_ask[0]
            qid = self._free_id()
            try:
                self.sock.send(qid.to_bytes(2, "big") + self.queries[index])
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.ENOBUFS):
                    return  # the socket's buffer is full: the rest go next turn
                if exc.errno != errno.ECONNREFUSED:
                    raise
                # An earlier datagram's ICMP "port unreachable", reported on
                # this send, which did not go out: send it again.
                continue
            self.to_ask.popleft()
            flight = _Flight(index, tries, now)
            self.flights[qid] = flight
            self.deadlines.append((now + timeout, qid, flight))

    def receive(self) -> None:
        while True:
            try:
                wire = self.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                continue  # nothing listens there: the questions will time out
            flight_id = struct.unpack_from("!H", wire)[0] if len(wire) >= 2 else None
            flight = self.flights.get(flight_id) if flight_id is not None else None
            if flight is None:
                continue  # late answer to a question given up or asked again
            answer = read_answer(wire, self.qnames[flight.index])
            if answer is None:
                continue
            del self.flights[answer[0]]
            self.findings[flight.index] = answer[1]

    def expire(self, now: float, retries: int) -> None:
        while self.deadlines and self.deadlines[0][0] <= now:
            _, qid, flight = self.deadlines.popleft()
            if self.flights.get(qid) is not flight:
                continue  # answered
            del self.flights[qid]
            if flight.tries < retries:
                self.to_ask.append((flight.index, flight.tries + 1))

    def next_deadline(self) -> float | None:
        return self.deadlines[0][0] if self.deadlines else None


def serials(
    questions: Mapping[tuple[str, int], Sequence[str | bytes]],
    *,
    in_flight: int = 500,
    timeout: float = 1.0,
    retries: int = 2,
) -> dict[tuple[str, int], list[Finding]]:
    """Ask each nameserver ((host, port) -> zone names) for the SOA of its zones.

    A name is its text, or its :func:`wire_name` (a caller asking several
    servers about one zone makes it once).

    Returns, per nameserver, a finding per name in the order given. Every
    nameserver is asked at once, each with up to ``in_flight`` questions
    outstanding; a question unanswered for ``timeout`` seconds is asked again,
    ``retries`` times, before it is :data:`NO_ANSWER`.
    """
    servers = [_Server(address, names) for address, names in questions.items()]
    try:
        _run(servers, in_flight=in_flight, timeout=timeout, retries=retries)
    finally:
        for server in servers:
            server.sock.close()
    return {server.address: server.findings for server in servers}


def _run(servers: Iterable[_Server], *, in_flight: int, timeout: float, retries: int) -> None:
    busy = [server for server in servers if not server.done]
    with selectors.DefaultSelector() as selector:
        for server in busy:
            selector.register(server.sock, selectors.EVENT_READ, server)
        while busy:
            now = time.monotonic()
            for server in busy:
                server.expire(now, retries)
                server.send(in_flight, timeout, now)
            busy = [server for server in busy if not server.done]
            deadlines = [d for d in (s.next_deadline() for s in busy) if d is not None]
            wait = max(0.0, min(deadlines) - time.monotonic()) if deadlines else 0.0
            for key, _ in selector.select(wait):
                key.data.receive()
