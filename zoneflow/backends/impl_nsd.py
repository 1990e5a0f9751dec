"""NSD through nsd-control: the zone is added with a pattern that pulls it from mdns.

Target options:

``host``, ``port``          the DNS server (polled and NOTIFY'd by the flows)
``nsd_control_config``      the nsd.conf nsd-control reads (its remote-control
                            address and certificates), default /etc/nsd/nsd.conf
``pattern``                 the pattern new zones get, default ``zoneflow``
``nsd_control_timeout``     seconds an nsd-control call may take, default 10

NSD cannot be told a zone's primaries per zone, so the operator defines the
pattern in nsd.conf, and it is where NSD's masters live::

    pattern:
        name: "zoneflow"
        request-xfr: 192.0.2.1@5354 NOKEY    # mdns
        allow-notify: 192.0.2.1 NOKEY        # whoever sends NOTIFY (the conductors)

The target's ``masters`` are not read; NOTIFY brings updates, so
``update_zone`` does nothing.
"""

from __future__ import annotations

import re
from typing import Any

from zoneflow import exceptions, objects
from zoneflow.backends.base import Backend

# nsd-control lives in /usr/sbin, which a service account's PATH may lack.

# "error: connect (127.0.0.1@8952): Connection refused"
_CONNECT = re.compile(r"connect \(([^)]*)\): *(.*)")


class NSDBackend(Backend):
    def __init__(self, target: objects.PoolTarget) -> None:
        super().__init__(target)
        options: dict[str, Any] = target.options
        self.config = str(options.get("nsd_control_config", "/etc/nsd/nsd.conf"))
        self.pattern = str(options.get("pattern", "zoneflow"))
        self.timeout = float(options.get("nsd_control_timeout", 10))

    # --- the contract --------------------------------------------------------

    def create_zone(self, zone: objects.Zone) -> None:
        self._control("addzone", zone.name, self.pattern, ok_errors=("already exists",))
        # NSD would try on its own schedule; a zone re-created after a failed
        # transfer may be waiting out a back-off, so ask for the transfer now.
        self._control("transfer", zone.name)

    def delete_zone(self, zone: objects.Zone) -> None:
        self._control("delzone", zone.name, ok_errors=("not present", "not found"))

    # --- nsd-control -----------------------------------------------------------

    def _control(self, *args: str, ok_errors: tuple[str, ...] = ()) -> str:
        def no_answer() -> exceptions.BackendError:
            return exceptions.BackendUnreachable(
                self.target.label,
                f"nsd-control {args[0]} got no answer in {self.timeout:g}s from the "
                f"remote-control address in {self.config}: is nsd there and answering?",
            )

        status, output = self.run_control(
            "nsd-control",
            "nsd",
            ["-c", self.config, *args],
            timeout=self.timeout,
            no_answer=no_answer,
        )
        # nsd-control says "error ..." and exits non-zero; warnings ("zone not
        # present") and notes ("already exists") come with status 0.
        if status == 0 or any(text in output for text in ok_errors):
            return output
        raise self._error(args[0], output)

    def _error(self, command: str, output: str) -> exceptions.BackendError:
        first = output.splitlines()[0] if output else "no output"
        connect = _CONNECT.search(output)
        if connect is not None:
            where, why = connect.group(1), connect.group(2).lower() or "refused"
            return exceptions.BackendUnreachable(
                self.target.label,
                f"nsd-control cannot connect to {where} ({why}): is nsd running with "
                f"remote-control enabled on {where}?",
            )
        if "could not read config file" in output or "Could not open" in output:
            return exceptions.BackendError(
                self.target.label,
                f"nsd-control cannot read {self.config} ({first}): check the target's "
                "nsd_control_config option",
            )
        if "SSL" in output:
            # The second line names the file or the check that failed.
            detail = " ".join(output.splitlines()[:2])
            return exceptions.BackendError(
                self.target.label,
                f"nsd-control and nsd do not agree on TLS ({detail}): the key and certificate "
                f"files named in {self.config} must be the ones nsd-control-setup made for "
                "this nsd, and readable by zoneflow",
            )
        if "pattern" in output and "does not exist" in output:
            return exceptions.BackendError(
                self.target.label,
                f"nsd has no pattern {self.pattern!r}: define it in nsd.conf (with request-xfr "
                "pointing at mdns and allow-notify for the conductors) and run nsd-control "
                "reconfig, or set the target's pattern option",
            )
        return exceptions.BackendError(self.target.label, f"nsd-control {command} failed: {first}")
