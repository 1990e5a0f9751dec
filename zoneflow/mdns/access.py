"""Who may ask mdns for what: the ``[mdns] allow_transfer`` and
``allow_notify`` networks, and the TSIG keys a pool's transfers require."""

from __future__ import annotations

import ipaddress

import dns.message
import dns.name

from zoneflow import exceptions, objects
from zoneflow.dns import addresses, tsig
from zoneflow.mdns import options

CONF = options.CONF

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(option: str) -> tuple[Network, ...]:
    """The networks of the ``[mdns]`` access list ``option``."""
    found = []
    for entry in getattr(CONF.mdns, option):
        try:
            found.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise exceptions.InvalidConfig(
                f"[mdns] {option}: {entry!r} is not a network; write addresses or CIDR "
                "prefixes such as 192.0.2.53 or 10.0.0.0/8"
            ) from None
    return tuple(found)


def allowed(address: str | None, within: tuple[Network, ...]) -> bool:
    """Whether ``address`` (None when unknown: never) is in one of ``within``."""
    ip = None if address is None else addresses.parse(address)
    return ip is not None and any(ip in network for network in within)


def pool_keys(pool: objects.Pool) -> frozenset[dns.name.Name]:
    """The TSIG keys a pool's targets transfer with (their ``tsig_key_name``)."""
    return frozenset(
        tsig.key_name(str(target.options["tsig_key_name"]))
        for target in pool.targets
        if target.options.get("tsig_key_name")
    )


def transfer_refusal(
    query: dns.message.Message,
    pool: objects.Pool,
    address: str | None,
    allow_transfer: tuple[Network, ...],
) -> str | None:
    """Why this client may not transfer the pool's zones, or None when it may."""
    if not allowed(address, allow_transfer):
        return f"{address} is not in [mdns] allow_transfer"
    keys = pool_keys(pool)
    if not keys and not CONF.mdns.require_tsig:
        return None
    wanted = ", ".join(sorted(k.to_text() for k in keys)) or "any key ([mdns] require_tsig)"
    if not query.had_tsig:
        return f"the request is unsigned and the pool's transfers require TSIG: {wanted}"
    if keys and query.keyname not in keys:
        return f"signed with key {query.keyname} but the pool's targets use {wanted}"
    return None


def address(addr: object) -> str | None:
    """The IP address of a socket peer, None when it has none."""
    if isinstance(addr, tuple) and addr:
        return str(addr[0])
    return None


def peer(addr: object) -> str:
    """A socket peer as logs name it: ``address:port``."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return str(addr)
