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
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence

from zoneflow import exceptions, objects

# Control programs live in /usr/sbin, which a service user's PATH may lack.
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])


class Backend(abc.ABC):
    """One configured target. Instances are cheap and may be cached per target."""

    def __init__(self, target: objects.PoolTarget) -> None:
        self.target = target

    @abc.abstractmethod
    def create_zone(self, zone: objects.Zone) -> None:
        """Make the target serve ``zone`` (a secondary of the target's masters)."""

    #: True where :meth:`create_zones` and :meth:`delete_zones` do several zones in one
    #: step of the server's (the flows then hand them a batch's zones at once).
    batches = False

    def create_zones(self, zones: Sequence[objects.Zone]) -> None:
        """Make the target serve every one of ``zones``, in one step where the server
        has one. A BackendError says nothing of any single zone: the caller then
        creates each alone (:meth:`create_zone`), which names the one refused.
        Default: :meth:`create_zone` for each."""
        for zone in zones:
            self.create_zone(zone)

    def delete_zones(self, zones: Sequence[objects.Zone]) -> None:
        """Make the target stop serving every one of ``zones``, in one step where the
        server has one; a BackendError as for :meth:`create_zones`. Default:
        :meth:`delete_zone` for each."""
        for zone in zones:
            self.delete_zone(zone)

    def update_zone(self, zone: objects.Zone) -> None:  # noqa: B027 - optional hook
        """Tell the target the zone changed. Default: nothing, NOTIFY does it."""

    @abc.abstractmethod
    def delete_zone(self, zone: objects.Zone) -> None:
        """Make the target stop serving ``zone``."""

    # --- for backends driving a control program (rndc, knotc, nsd-control) -------

    def run_control(
        self,
        program: str,
        package: str,
        args: list[str],
        *,
        timeout: float,
        no_answer: Callable[[], exceptions.BackendError],
        commands: str | None = None,
    ) -> tuple[int, str]:
        """Run ``program args`` for at most ``timeout`` seconds: exit status and output.
        ``commands``: text for its standard input (none by default).

        Raises BackendError naming the Debian ``package`` when the program is
        missing, and what ``no_answer()`` makes when it does not finish in time.
        """
        path = shutil.which(program, path=_SEARCH_PATH)
        if path is None:
            raise exceptions.BackendError(
                self.target.label, f"{program} is not installed here: apt-get install {package}"
            )
        try:
            done = subprocess.run(
                [path, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                input=commands,
                stdin=None if commands is not None else subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise no_answer() from None
        return done.returncode, (done.stdout + done.stderr).strip()
