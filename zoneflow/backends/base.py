"""The contract every nameserver backend implements.

A backend configures one pool target (a BIND9, Knot, PowerDNS or NSD
server) to serve a zone as a secondary of mdns. It does as little as it can:
the zone's data travels by zone transfer from mdns, so most backends need
nothing on update.

Every method is idempotent, because a resumed job may call it again:
creating a zone the server already has succeeds, deleting one it does not
have succeeds. Failures raise :class:`zoneflow.exceptions.BackendError`
(or a subclass) naming the target and what to check.
"""

from __future__ import annotations

import abc

from zoneflow import objects


class Backend(abc.ABC):
    """One configured target. Instances are cheap and may be cached per target."""

    def __init__(self, target: objects.PoolTarget) -> None:
        self.target = target

    @abc.abstractmethod
    def create_zone(self, zone: objects.Zone) -> None:
        """Make the target serve ``zone`` (a secondary of the target's masters)."""

    def update_zone(self, zone: objects.Zone) -> None:  # noqa: B027 - optional hook
        """Tell the target the zone changed. Default: nothing, NOTIFY does it."""

    @abc.abstractmethod
    def delete_zone(self, zone: objects.Zone) -> None:
        """Make the target stop serving ``zone``."""

    def check(self) -> None:  # noqa: B027 - optional hook
        """Raise BackendError when the target cannot take commands. Default: nothing."""
