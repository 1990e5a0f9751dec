"""IP addresses as zoneflow compares them: one spelling for each address.

A pool's target names its nameserver by an address as an operator wrote it;
mdns sees the same server as the source of its packets, which an IPv6
socket reports as ``::ffff:192.0.2.1`` for an IPv4 client, with a scope
(``fe80::1%eth0``) for a link-local one.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse(address: str) -> IPAddress | None:
    """The IP address ``address`` is (its scope dropped, an IPv4-mapped IPv6 address as
    IPv4), or None when it is none (a host name)."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def spelled(address: str) -> str:
    """``address`` in its one spelling (2001:DB8::1 and 2001:db8:0::1 alike,
    ::ffff:192.0.2.1 as 192.0.2.1); a host name as written."""
    ip = parse(address)
    return address if ip is None else str(ip)
