"""Small DNS clients the flows use: SOA serial polling and NOTIFY.

Timeouts raise ``dns.exception.Timeout``; network errors raise ``OSError``.
"Not served" is an answer, not an error: ``soa_serial`` returns None.
"""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


def soa_serial(zone_name: str, host: str, port: int = 53, *, timeout: float = 1.0) -> int | None:
    """The SOA serial ``host`` serves for ``zone_name`` with authority, else None.

    REFUSED, NOTAUTH, NXDOMAIN, SERVFAIL or an answer without the AA bit all
    mean the server does not serve the zone (yet, or any more).
    """
    query = dns.message.make_query(zone_name, dns.rdatatype.SOA)
    response = dns.query.udp(query, host, port=port, timeout=timeout)
    if response.flags & dns.flags.TC:
        response = dns.query.tcp(query, host, port=port, timeout=timeout)
    if response.rcode() != dns.rcode.NOERROR or not response.flags & dns.flags.AA:
        return None
    name = dns.name.from_text(zone_name)
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.name == name:
            return int(rrset[0].serial)
    return None


def zone_is_refused(zone_name: str, host: str, port: int = 53, *, timeout: float = 1.0) -> bool:
    """True when ``host`` no longer serves ``zone_name`` (the end of a delete)."""
    return soa_serial(zone_name, host, port, timeout=timeout) is None


def send_notify(
    zone_name: str, host: str, port: int = 53, *, serial: int | None = None, timeout: float = 1.0
) -> int:
    """Send a NOTIFY for ``zone_name`` and return the response's rcode."""
    notify = dns.message.make_query(zone_name, dns.rdatatype.SOA)
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.flags |= dns.flags.AA
    notify.flags &= ~dns.flags.RD
    if serial is not None:
        soa = dns.rrset.from_text(
            zone_name,
            0,
            dns.rdataclass.IN,
            dns.rdatatype.SOA,
            f". . {serial} 0 0 0 0",
        )
        notify.answer.append(soa)
    response = dns.query.udp(notify, host, port=port, timeout=timeout)
    return int(response.rcode())
