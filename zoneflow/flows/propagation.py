"""Propagation: NOTIFY a nameserver, and poll it until it serves the serial.

A poll returns what it saw as a :class:`~zoneflow.jobs.outcomes.Served`
rather than raising, so a lagging nameserver is recorded as such and
weighed against the threshold; when it lags, the poll's error says why, from
the two witnesses zoneflow has (the zone's data, mdns's transfer log).
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import time
from typing import Any

import dns.exception

from zoneflow import exceptions, objects
from zoneflow.dns import query, rules
from zoneflow.flows.base import CONF, LATEST_SERIAL, Task, waits_for_database
from zoneflow.jobs import steps
from zoneflow.jobs.outcomes import Served
from zoneflow.storage import health as stored_health
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import transfers as stored_transfers
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import fencing

LOG = logging.getLogger(__name__)


def notify(zone_name: str, host: str, port: int, serial: int) -> None:
    try:
        query.send_notify(zone_name, host, port, serial=serial, timeout=CONF.flows.query_timeout)
    except (dns.exception.DNSException, OSError) as exc:
        # Not fatal: polling re-sends NOTIFY and decides whether it is served.
        LOG.info("NOTIFY of %s to %s:%s got no answer: %s", zone_name, host, port, exc)


class SendNotify(Task):
    """NOTIFY one nameserver so it fetches the new serial from mdns now."""

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(steps.notify(host, port), **options)
        self.host, self.port = host, port

    def execute(self, zone_name: str, serial: int, fence: fencing.Claim = fencing.UNFENCED) -> None:
        fence.check()
        notify(zone_name, self.host, self.port, serial)


class _Poll(Task):
    """Ask one nameserver for the zone's SOA until it serves ``serial`` or later
    (or, ``expect_removed``, until it refuses the zone).

    Returns what was seen rather than raising, so a lagging nameserver is
    recorded as such and weighed against the threshold.
    """

    def __init__(self, what: str, host: str, port: int, **options: Any) -> None:
        super().__init__(
            steps.poll(what, host, port), provides=steps.served_result(host, port), **options
        )
        self.host, self.port = host, port

    def _poll(
        self,
        zone_id: str,
        zone_name: str,
        serial: int,
        *,
        expect_removed: bool,
        fence: fencing.Claim,
        in_maintenance: bool | None = None,
    ) -> dict[str, Any]:
        return self._watch(
            zone_id,
            zone_name,
            serial,
            expect_removed=expect_removed,
            fence=fence,
            in_maintenance=in_maintenance,
        ).to_result()

    def _in_maintenance(self) -> bool:
        """Whether this nameserver's target is in maintenance: read once by a task that
        polls it for many zones, for each zone's first miss (see _watch)."""
        # Every poll asks, at its first miss and at each NOTIFY again: an answer
        # read up to a second ago will do (see in_maintenance_addresses).
        return (self.host, self.port) in stored_health.in_maintenance_addresses(within=1.0)

    @waits_for_database
    def _watch(
        self,
        zone_id: str,
        zone_name: str,
        serial: int,
        *,
        expect_removed: bool,
        fence: fencing.Claim,
        in_maintenance: bool | None = None,
    ) -> Served:
        """``in_maintenance``: the maintenance state read for the first miss (None:
        read it then); each re-NOTIFY reads it again."""
        started = time.monotonic()
        deadline = started + CONF.flows.poll_timeout
        renotify = CONF.flows.renotify_interval
        next_notify = started + renotify
        interval = CONF.flows.poll_interval
        seen: int | None = None
        error = "no answer"
        # Looked for at the first miss and at each re-NOTIFY (not at every query).
        look_for_maintenance = True
        while True:
            try:
                if expect_removed:
                    if query.zone_is_refused(
                        zone_name, self.host, self.port, timeout=CONF.flows.query_timeout
                    ):
                        return Served(ok=True)
                    error = "still answers for the zone"
                else:
                    seen = query.soa_serial(
                        zone_name, self.host, self.port, timeout=CONF.flows.query_timeout
                    )
                    error = "zone not served" if seen is None else f"serves serial {seen}"
                    # RFC 1982 arithmetic is not needed: zoneflow serials only grow
                    # and stay below 2**32 (see storage.zones.next_serial).
                    if seen is not None and seen >= serial:
                        return Served(ok=True, serial=seen)
            except (dns.exception.DNSException, OSError) as exc:
                error = f"no answer to SOA query ({exc or type(exc).__name__})"
            if look_for_maintenance and (
                self._in_maintenance() if in_maintenance is None else in_maintenance
            ):
                # Thresholds do not count it: no reason to hold the job up for it.
                return Served(
                    ok=False, serial=seen, error=f"in maintenance, not waited for: {error}"
                )
            look_for_maintenance = False
            in_maintenance = None  # a re-NOTIFY's look reads it afresh
            now = time.monotonic()
            if now >= deadline:
                if not expect_removed:
                    error += _why_not_served(zone_id, zone_name, serial, seen, self.host, self.port)
                return Served(
                    ok=False,
                    serial=seen,
                    error=f"{self.host}:{self.port} after {CONF.flows.poll_timeout:g}s: {error}",
                )
            if now >= next_notify:
                look_for_maintenance = True
                state = stored_zones.poll_state(zone_id, self.host, self.port)
                if state.zone_deleted and not expect_removed:
                    return Served(ok=False, serial=seen, error="zone deleted meanwhile")
                if not state.nameserver_in_pool:
                    # A pool update removed it: not ours to wait for, nor to count.
                    return Served(ok=True, serial=seen, dropped=True)
                if not expect_removed:
                    # A poll lasts up to poll_timeout: each NOTIFY is a change made
                    # under the job's claim, which may have ended meanwhile.
                    fence.check()
                    notify(zone_name, self.host, self.port, serial)
                renotify = min(renotify * 2, CONF.flows.renotify_interval_max)
                next_notify = now + renotify
            if now - started >= CONF.flows.renotify_interval:
                # Lagging past its first NOTIFY: it is busy, ask less often.
                interval = min(interval * 1.5, CONF.flows.poll_interval_max)
            time.sleep(interval)


def _why_not_served(
    zone_id: str, zone_name: str, serial: int, seen: int | None, host: str, port: int
) -> str:
    """Why a nameserver does not serve ``serial``, as clauses to add to a poll's error,
    or "" when nothing more is known.

    Two witnesses: the stored data, when it breaks a rule a nameserver loads
    zones by (:mod:`zoneflow.dns.rules`); and mdns, which records the
    transfers it served each target (:mod:`zoneflow.mdns.transfers`). A
    nameserver that refuses the data transfers it again and again and keeps
    its old serial; one that cannot reach mdns never transfers at all.
    """
    try:
        problem = _rule_problem(zone_id, zone_name)
        target = _target_at(zone_id, host, port)
        transfers = stored_transfers.list_transfers(zone_id) if target is not None else []
    except exceptions.ZoneflowError:
        return ""  # the poll's own error stands; the job's status write tells the rest
    refusal = (
        f"the nameserver refuses to load the zone's data (see its log): {problem}"
        if problem
        else ""
    )
    said = _transfer_witness(target, transfers, serial, seen, refusal) if target else None
    if said is not None:
        return f"; {said}"
    return f"; {refusal}" if refusal else ""


def _rule_problem(zone_id: str, zone_name: str) -> str | None:
    """The first rule the zone's stored data breaks, or None.

    Central refuses such data now, but a zone written before the rules, or
    changed behind central, still holds it.
    """
    recordsets = stored_reads.list_recordsets(zone_id)
    problems = rules.problems(zone_name, [rules.Shape(rs.name, rs.type) for rs in recordsets])
    return problems[0].message if problems else None


def _target_at(zone_id: str, host: str, port: int) -> objects.PoolTarget | None:
    """The zone's pool target whose nameserver is ``host:port`` (options host and
    port), or None: a nameserver that is no target transfers from one, not from mdns."""
    zone = stored_zones.get_zone_any(zone_id)
    if zone is None:
        return None
    for target in stored_pools.get_pool(zone.pool_id).targets:
        if str(target.options.get("host")) == host and int(target.options.get("port", 53)) == port:
            return target
    return None


def _address(text: str) -> str:
    """An address in one spelling (2001:DB8::1 and 2001:db8:0::1 alike)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text  # a host name: compared as written


def _utcnow() -> datetime.datetime:
    """Now, as storage writes its times (UTC, naive)."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _transfer_witness(
    target: objects.PoolTarget,
    transfers: list[objects.ZoneTransfer],
    serial: int,
    seen: int | None,
    refusal: str,
) -> str:
    """What mdns saw of ``target`` transferring the zone, as a clause of an error."""
    who = f"target {target.label}"
    source = _address(str(target.options.get("host")))
    last = next((t for t in transfers if _address(t.source) == source), None)
    if last is None:
        masters = ", ".join(str(m) for m in target.masters) or "its masters"
        said = (
            f"{who} never transferred the zone from mdns at {masters}: check its "
            "primaries, allow-transfer and TSIG key, and mdns's log for REFUSED transfers"
        )
        return f"{said}; {refusal}" if refusal else said
    ago = f"{max(0.0, (_utcnow() - last.last_at).total_seconds()):.0f} s ago"
    ended = "" if last.completed else ", which it closed before the end"
    if last.serial < serial:
        said = (
            f"{who} last transferred serial {last.serial} from mdns ({ago}{ended}), never "
            f"serial {serial}: it has not asked for it (check that NOTIFYs reach it)"
        )
        return f"{said}; {refusal}" if refusal else said
    serves = "does not serve the zone" if seen is None else f"still serves {seen}"
    times = "once" if last.count == 1 else f"{last.count} times"
    said = (
        f"{who} transferred serial {last.serial} from mdns {times} (last {ago}{ended}) but {serves}"
    )
    if not last.completed:
        return f"{said}; {refusal}" if refusal else said
    return (
        f"{said}: {refusal}"
        if refusal
        else f"{said}: the nameserver refuses the zone data; its log says why"
    )


class PollForSerial(_Poll):
    """Poll one nameserver for the serial, or for the zone's removal."""

    def __init__(self, host: str, port: int, *, expect_removed: bool = False) -> None:
        super().__init__(
            "removal" if expect_removed else "serial", host, port, rebind=LATEST_SERIAL
        )
        self.expect_removed = expect_removed

    def execute(
        self,
        zone_id: str,
        zone_name: str,
        serial: int,
        fence: fencing.Claim = fencing.UNFENCED,
    ) -> dict[str, Any]:
        return self._poll(
            zone_id, zone_name, serial, expect_removed=self.expect_removed, fence=fence
        )


class PollForWantedState(_Poll):
    """Poll one nameserver for the serial, or for the zone's removal if it is wanted DELETED."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__("wanted-state", host, port)

    def execute(
        self,
        zone_id: str,
        zone_name: str,
        serial: int,
        wanted: str,
        fence: fencing.Claim = fencing.UNFENCED,
    ) -> dict[str, Any]:
        return self._poll(
            zone_id,
            zone_name,
            serial,
            expect_removed=wanted == objects.Status.DELETED,
            fence=fence,
        )
