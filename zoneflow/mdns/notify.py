"""NOTIFY to mdns (RFC 1996): a nameserver's word on the serial it serves.

Acknowledged (NOERROR, AA), logged with its source and serial, and passed on
to the polls waiting for the zone on that nameserver (zoneflow.events.served);
NOTAUTH for zones mdns does not hold; REFUSED from outside ``[mdns]
allow_notify``.
The server holds each (source, zone) to ``[mdns] notify_rate``
(:mod:`zoneflow.mdns.notify_limit`), reading which pair a datagram is
with :func:`notify_key` before parsing it.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass

from zoneflow.events import served
from zoneflow.mdns import access, notify_limit, replies

LOG = logging.getLogger(__name__)


def notify_key(wire: bytes, addr: object) -> notify_limit.Key | None:
    """The (source address, zone) of a NOTIFY, read off its wire; None for others.

    Read without parsing the message, so that a NOTIFY past its rate costs
    the event loop next to nothing. Malformed ones (None) go on to be
    answered FORMERR like any message.
    """
    if len(wire) < 12 or dns.opcode.from_flags(struct.unpack("!H", wire[2:4])[0]) != (
        dns.opcode.NOTIFY
    ):
        return None
    address = access.address(addr)
    if address is None or struct.unpack("!H", wire[4:6])[0] != 1:
        return None
    try:
        name, _ = dns.name.from_wire(wire, 12)
    except dns.exception.DNSException:
        return None
    return address, name


def answer(
    query: dns.message.Message,
    *,
    peer: str,
    address: str | None,
    allow_notify: tuple[access.Network, ...],
    zone_id_of: Callable[[str], str | None],
) -> dns.message.Message:
    """Acknowledge a nameserver's NOTIFY: it says which serial it now serves.
    ``zone_id_of`` names the id of the live zone of a name, if any (a
    :meth:`zoneflow.mdns.caches.ZoneRows.id_of`)."""
    question = query.question[0]
    rcode = take(
        question.name,
        question.name.to_text().lower() if question.rdclass == dns.rdataclass.IN else None,
        replies.soa_serial(query.answer),
        peer=peer,
        address=address,
        allow_notify=allow_notify,
        zone_id_of=zone_id_of,
    )
    return reply(query, rcode)


def take(
    shown: object,
    name: str | None,
    serial: int | None,
    *,
    peer: str,
    address: str | None,
    allow_notify: tuple[access.Network, ...],
    zone_id_of: Callable[[str], str | None],
) -> dns.rcode.Rcode:
    """What mdns makes of a NOTIFY of the zone ``name`` (lower case; None for a class
    other than IN), ``shown`` in the log: REFUSED from outside ``allow_notify``,
    NOTAUTH for a zone it does not hold, else NOERROR, and its word is passed on
    (the polls waiting for the zone on that nameserver ask it now)."""
    if not access.allowed(address, allow_notify):
        LOG.warning("REFUSED NOTIFY for %s from %s: not in [mdns] allow_notify", shown, peer)
        return dns.rcode.REFUSED
    zone_id = None if name is None else zone_id_of(name)
    if zone_id is None:
        LOG.info("NOTAUTH to NOTIFY for %s from %s: not a zone mdns holds", shown, peer)
        return dns.rcode.NOTAUTH
    LOG.info("NOTIFY for %s (serial %s) from %s", shown, serial, peer)
    if address is not None:
        served.announce(zone_id, serial, address)
    return dns.rcode.NOERROR


def reply(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    """The reply to a NOTIFY that mdns made ``rcode`` of (see :func:`take`)."""
    if rcode != dns.rcode.NOERROR:
        return replies.error(query, rcode)
    response = dns.message.make_response(query, our_payload=replies.UDP_PAYLOAD)
    response.flags |= dns.flags.AA
    return response
