"""Knot DNS through knotc: the zone is added to knotd's configuration as a secondary of mdns.

Target options:

``host``, ``port``        the DNS server (polled and NOTIFY'd by the flows)
``knotc_socket``          knotd's control socket, default /run/knot/knot.sock
``knotc_timeout``         seconds a knotc call may take, default 10
``tsig_key_name``         a key defined in knotd's own configuration (its
                          ``key:`` section); transfers from the masters are
                          signed with it. Default: unsigned transfers
``notify_masters``        whether each zone NOTIFYs its masters (mdns) as it
                          loads a new serial, which mdns passes on to the polls
                          waiting for it (zoneflow.events.served). Default true

knotd must run from a configuration database (``knotd -C confdb``, filled
once with ``knotc conf-import``): started from a text file (``-c``) it still
takes the changes, but forgets them at its next reload or restart. knotc
speaks to a UNIX socket, so this backend runs on the Knot host.

Zones are written in one confdb transaction, a batch's together: each master
as a remote, an acl allowing NOTIFY from it, then the zones naming them (as
their masters, and, unless ``notify_masters`` is false, as whom they NOTIFY of
each serial they load), the commands read by one knotc from its standard
input. Any failure aborts the transaction, so knotd is never left with half
a zone or an open transaction (unless knotd hangs too long to take the
abort: the next change then ends the empty transaction a timed-out
conf-begin leaves behind). Updates need
nothing: the flows' NOTIFY makes knotd fetch the new serial.
Remote and acl ids are made from the master's address (and key), so zones
share them; they are never removed, since other zones may still use them.

The NOTIFY acl names the master's address, not the key: zoneflow's NOTIFYs
are unsigned, and a NOTIFY only makes knotd ask its master (with the key)
for the serial sooner.

Deleting freezes the zone and purges its data (zone file, journal, timers)
before the zone leaves the configuration: knotd cannot purge the zone file of
a zone it no longer has configured, and an unfrozen zone transfers itself
again right after the purge. A stale zone file would otherwise be loaded if
the zone came back, and served as long as its serial beat the new one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

from zoneflow import exceptions, objects
from zoneflow.backends.base import Backend

LOG = logging.getLogger(__name__)

DEFAULT_SOCKET = "/run/knot/knot.sock"

# knotc's own words for the outcomes the backend expects.
_EXISTS = "(duplicate identifier)"
_MISSING_ITEM = "(invalid identifier)"
_NO_SUCH_ZONE = "(no such zone found)"
_BUSY = "(too many transactions)"
_NOT_DEFINED = "(not exists)"

# How often conf-begin is retried while another client's transaction is open.
_BUSY_INTERVAL = 0.1


def _flag(value: object, name: str, target: objects.PoolTarget) -> bool:
    """A target option that is true or false (YAML's booleans, or their words)."""
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "yes", "1"):
        return True
    if str(value).lower() in ("false", "no", "0"):
        return False
    raise exceptions.BackendError(
        target.label, f"option {name} must be true or false, not {value!r}"
    )


class KnotBackend(Backend):
    def __init__(self, target: objects.PoolTarget) -> None:
        super().__init__(target)
        options: dict[str, Any] = target.options
        self.socket = str(options.get("knotc_socket", DEFAULT_SOCKET))
        self.timeout = float(options.get("knotc_timeout", 10))
        key = options.get("tsig_key_name")
        self.tsig_key_name = str(key) if key else None
        self.notify_masters = _flag(options.get("notify_masters", True), "notify_masters", target)

    # --- the contract --------------------------------------------------------

    batches = True

    def create_zones(self, zones: Sequence[objects.Zone]) -> None:
        """Every zone in one confdb transaction, its commands given to one knotc.

        knotc reads commands from its standard input and answers each with one
        line; it goes on after a command fails, so any line other than OK
        aborts the whole transaction and raises: the flows then create each
        zone of a batch alone, which names the one knotd refused. "exists" is
        fine: an id knotd has (a remote another zone made, a zone created
        before) cannot be made again, and setting a value it holds changes
        nothing.
        """
        masters = self.target.masters
        if not masters:
            raise exceptions.BackendError(
                self.target.label, "no masters configured: list mdns under the target's masters"
            )
        what = f"adding {len(zones)} zones"
        commands = []
        for master in masters:
            remote, acl = self._remote_id(master), self._acl_id(master)
            commands += [
                (f"remote[{remote}]", ""),
                (f"remote[{remote}].address", f"{master.host}@{master.port}"),
                *([(f"remote[{remote}].key", self.tsig_key_name)] if self.tsig_key_name else []),
                (f"acl[{acl}]", ""),
                (f"acl[{acl}].address", master.host),
                (f"acl[{acl}].action", "notify"),
            ]
        for zone in zones:
            commands.append((f"zone[{zone.name}]", ""))
            for master in masters:
                remote = self._remote_id(master)
                commands.append((f"zone[{zone.name}].master", remote))
                commands.append((f"zone[{zone.name}].acl", self._acl_id(master)))
                if self.notify_masters:
                    commands.append((f"zone[{zone.name}].notify", remote))
        with self._transaction(what):
            lines = [f"conf-set {item} {value}".rstrip() for item, value in commands]
            answers = self._knotc_lines(lines, what)
            said = dict(zip((item for item, _ in commands), answers, strict=True))
        existed = [zone.name for zone in zones if _EXISTS in said[f"zone[{zone.name}]"]]
        for name in existed:
            # A delete that stopped half way leaves the zone frozen; thawed, it
            # refreshes from its master again.
            self._knotc("-b", "zone-thaw", name, ok_errors=(_NO_SUCH_ZONE,))

    def delete_zones(self, zones: Sequence[objects.Zone]) -> None:
        """Every zone frozen, then purged, then taken out of the configuration in one
        transaction: four knotc processes whatever their number. A zone knotd
        does not have is passed over at each step."""
        names = [zone.name for zone in zones]
        what = f"removing {len(zones)} zones"
        self._knotc_lines(
            [f"zone-freeze {name}" for name in names],
            what,
            flags=("-b",),
            ok_errors=(_NO_SUCH_ZONE,),
        )
        self._knotc_lines(
            [f"zone-purge {name}" for name in names],
            what,
            flags=("-b", "-f"),
            ok_errors=(_NO_SUCH_ZONE,),
        )
        with self._transaction(what):
            self._knotc_lines(
                [f"conf-unset zone[{name}]" for name in names], what, ok_errors=(_MISSING_ITEM,)
            )

    def create_zone(self, zone: objects.Zone) -> None:
        self.create_zones([zone])

    def delete_zone(self, zone: objects.Zone) -> None:
        # Alone, one-shot knotc processes cost less than delete_zones' (knotc reading
        # commands on its standard input costs more to start), and a zone knotd does
        # not have costs one.
        if not self._configured(zone.name):
            return
        self._knotc("-b", "zone-freeze", zone.name, ok_errors=(_NO_SUCH_ZONE,))
        self._knotc("-b", "-f", "zone-purge", zone.name, ok_errors=(_NO_SUCH_ZONE,))
        with self._transaction(f"removing zone {zone.name}"):
            self._knotc("conf-unset", f"zone[{zone.name}]", ok_errors=(_MISSING_ITEM,))

    # --- the configuration ---------------------------------------------------

    def _remote_id(self, master: objects.HostPort) -> str:
        base = f"zoneflow-{master.host}@{master.port}"
        return f"{base}-{self.tsig_key_name}" if self.tsig_key_name else base

    @staticmethod
    def _acl_id(master: objects.HostPort) -> str:
        return f"zoneflow-notify-{master.host}"

    def _configured(self, zone_name: str) -> bool:
        output = self._knotc("conf-read", f"zone[{zone_name}]", ok_errors=(_MISSING_ITEM,))
        return _MISSING_ITEM not in output

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[None]:
        """conf-begin ... conf-commit, aborted on any failure in between."""
        self._begin(what)
        try:
            yield
            self._knotc("conf-commit", context=what)
        except BaseException:
            try:
                self._knotc("conf-abort")
            except exceptions.BackendError as exc:
                LOG.warning(
                    "target %s: conf-abort, after %s failed, failed too: %s",
                    self.target.label,
                    what,
                    exc,
                )
            raise

    def _begin(self, what: str) -> None:
        """conf-begin, waiting while another client holds knotd's one transaction.

        A transaction that stays empty for the whole wait is taken for one a
        timed-out conf-begin left behind (knotd ran it after knotc gave up,
        and the abort never got through), and is aborted once: nothing is lost
        with it, and otherwise every later change would fail. One holding
        changes is someone's work, and is only reported.
        """
        deadline = time.monotonic() + self.timeout
        empty_since_start: bool | None = None
        broke_one = False
        while True:
            output = self._knotc("conf-begin", ok_errors=(_BUSY,))
            if _BUSY not in output:
                return
            if empty_since_start is None:
                empty_since_start = self._open_transaction_is_empty()
            if time.monotonic() >= deadline:
                if not broke_one and empty_since_start and self._open_transaction_is_empty():
                    LOG.warning(
                        "target %s: aborting an empty configuration transaction open for "
                        "over %gs, as a timed-out knotc conf-begin leaves behind",
                        self.target.label,
                        self.timeout,
                    )
                    self._knotc("conf-abort")
                    broke_one = True
                    continue
                raise exceptions.BackendError(
                    self.target.label,
                    f"{what}: another configuration transaction stayed open in knotd for "
                    f"{self.timeout:g}s; if no one is changing knotd's configuration, a client "
                    f"died in one: see 'knotc -s {self.socket} conf-diff', then conf-abort it",
                )
            time.sleep(_BUSY_INTERVAL)

    def _open_transaction_is_empty(self) -> bool:
        # "no active transaction": it just ended, which is not "empty and stuck".
        output = self._knotc("conf-diff", ok_errors=("(no active transaction)",))
        return output == ""

    # --- knotc -----------------------------------------------------------------

    def _knotc(self, *args: str, ok_errors: tuple[str, ...] = (), context: str = "") -> str:
        command = next(arg for arg in args if not arg.startswith("-"))
        where = ["-s", self.socket, "-t", str(max(1, math.ceil(self.timeout)))]
        status, output = self.run_control(
            "knotc",
            "knot",
            [*where, *args],
            # knotc's own timeout covers the socket; this one covers knotc.
            timeout=self.timeout + 2,
            no_answer=lambda: self._timeout(command),
        )
        if status == 0:
            return output
        if ok_errors and any(text in output for text in ok_errors):
            return output
        raise self._error(command, args, output, context)

    def _knotc_lines(
        self,
        lines: list[str],
        what: str,
        *,
        flags: tuple[str, ...] = (),
        ok_errors: tuple[str, ...] = (_EXISTS,),
    ) -> list[str]:
        """``lines`` (commands of one kind) given to one knotc, with ``flags``, on its
        standard input: each one's answer line.

        Raises (naming the first line refused) unless each answered OK or with
        one of ``ok_errors``.
        """
        command = lines[0].split()[0]
        status, output = self.run_control(
            "knotc",
            "knot",
            ["-s", self.socket, "-t", str(max(1, math.ceil(self.timeout))), *flags],
            commands="".join(f"{line}\n" for line in lines),
            # One knotc for them all: the first may wait out knotc's timeout on the
            # socket, and a blocking command waits for knotd to do it.
            timeout=self.timeout * 2 + 2,
            no_answer=lambda: self._timeout(command),
        )
        answers = output.splitlines()
        if status != 0 or len(answers) != len(lines):
            # Not one answer a line (knotd unreachable, or a knotc that reads no script).
            raise self._error(command, (command, "", ""), output, what)
        for line, answer in zip(lines, answers, strict=True):
            if answer != "OK" and not any(text in answer for text in ok_errors):
                raise self._error(command, tuple(line.split()), answer, what)
        return answers

    def _timeout(self, command: str) -> exceptions.BackendError:
        return exceptions.BackendUnreachable(
            self.target.label,
            f"knotc {command} got no answer on control socket {self.socket} within "
            f"{self.timeout:g}s: is knotd running and not stuck?",
        )

    def _error(
        self, command: str, args: tuple[str, ...], output: str, context: str
    ) -> exceptions.BackendError:
        first = output.splitlines()[0] if output else "no output"
        first = first.removeprefix("error: ")
        if "failed to connect to socket" in output:
            if "permission denied" in output.lower():
                return exceptions.BackendError(
                    self.target.label,
                    f"no permission to use knotd's control socket {self.socket}: run zoneflow "
                    "as a user in knotd's group",
                )
            return exceptions.BackendUnreachable(
                self.target.label,
                f"cannot reach knotd ({first}): is knotd running with control socket "
                f"{self.socket}?",
            )
        if "connection timeout" in output:
            return self._timeout(command)
        if command == "conf-set" and args[1].endswith(".key") and _NOT_DEFINED in output:
            return exceptions.BackendError(
                self.target.label,
                f"TSIG key {self.tsig_key_name!r} is not defined in knotd's configuration: "
                "add it under 'key:' in knot.conf, or set tsig_key_name to a key knotd has",
            )
        if command == "conf-set" and args[1].endswith(".address"):
            return exceptions.BackendError(
                self.target.label,
                f"knotd refused a master's address ({first}): give the target's masters "
                "as IP addresses in pools.yaml",
            )
        if command == "conf-commit":
            change = context or "the configuration change"
            return exceptions.BackendError(self.target.label, f"knotd rejected {change}: {first}")
        return exceptions.BackendError(self.target.label, f"knotc {command} failed: {first}")
