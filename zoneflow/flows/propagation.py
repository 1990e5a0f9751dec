"""Propagation: NOTIFY a nameserver, and poll it until it serves the serial.

A poll returns what it saw as a :class:`~zoneflow.jobs.outcomes.Served`
rather than raising, so a lagging nameserver is recorded as such and
weighed against the threshold; when it lags, the poll's error says why, from
the two witnesses zoneflow has (the zone's data, mdns's transfer log).
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

import dns.exception

from zoneflow import exceptions, objects
from zoneflow.dns import addresses, query, rules, soa_probe
from zoneflow.events import served as served_word
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


def notify_all(zones: list[tuple[str, int]], host: str, port: int) -> None:
    """NOTIFY one nameserver of each (zone name, serial) at once (query.send_notifies)."""
    if not zones:
        return
    try:
        rcodes = query.send_notifies(zones, host, port, timeout=CONF.flows.query_timeout)
    except OSError as exc:
        LOG.info("NOTIFY of %d zones to %s:%s could not be sent: %s", len(zones), host, port, exc)
        return
    unanswered = [name for (name, _), rcode in zip(zones, rcodes, strict=True) if rcode is None]
    if unanswered:
        # Not fatal: polling re-sends NOTIFY and decides whether it is served.
        LOG.info("NOTIFY to %s:%s got no answer for %s", host, port, ", ".join(unanswered))


class SendNotify(Task):
    """NOTIFY one nameserver so it fetches the new serial from mdns now."""

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(steps.notify(host, port), **options)
        self.host, self.port = host, port

    def execute(self, zone_name: str, serial: int, fence: fencing.Claim = fencing.UNFENCED) -> None:
        fence.check()
        notify(zone_name, self.host, self.port, serial)


@dataclasses.dataclass
class _Watched:
    """One zone a poll waits for: what it wants, and what it last saw."""

    name: str
    serial: int
    wire: bytes  # the name as soa_probe asks it
    seen: int | None = None
    error: str = "no answer"

    def judge(self, found: soa_probe.Finding, *, expect_removed: bool) -> Served | None:
        """The zone's outcome if ``found`` ends its wait, else None (its error noted)."""
        if found is soa_probe.NO_ANSWER:
            self.error = f"no answer to SOA query within {CONF.flows.query_timeout:g}s"
        elif expect_removed:
            if found is soa_probe.NOT_SERVED:
                return Served(ok=True)
            self.error = "still answers for the zone"
        else:
            self.seen = found if isinstance(found, int) else None
            # RFC 1982 arithmetic is not needed: zoneflow serials only grow and
            # stay below 2**32 (see storage.zones.next_serial).
            if self.seen is not None and self.seen >= self.serial:
                return Served(ok=True, serial=self.seen)
            self.error = "zone not served" if self.seen is None else f"serves serial {self.seen}"
        return None


class _Poll(Task):
    """Ask one nameserver for the SOA of each zone until it serves the zone's serial
    or later (or, ``expect_removed``, until it no longer holds the zone).

    Returns what was seen rather than raising, so a lagging nameserver is
    recorded as such and weighed against the threshold.

    ``wait_for_down``: wait for a nameserver whose target the inspector judged
    DOWN, as for any other. Its pool's threshold needs every target (100 %):
    the zone cannot be ACTIVE without it, and a target judged DOWN for a moment
    under load may well serve the zone by the end of the wait. Below 100 % the
    poll stops waiting for it (it counts as lagging), so a change is ACTIVE as
    soon as the others serve it, and the target's catch-up when it is UP again
    brings it the zone.
    """

    def __init__(
        self, what: str, host: str, port: int, *, wait_for_down: bool = True, **options: Any
    ) -> None:
        super().__init__(
            steps.poll(what, host, port), provides=steps.served_result(host, port), **options
        )
        self.host, self.port = host, port
        self.wait_for_down = wait_for_down

    def _left_alone(self) -> str | None:
        """Why this nameserver is not waited for (in maintenance, or DOWN and
        ``wait_for_down`` false), or None: read once for a poll's first miss, and
        again at each NOTIFY it repeats (see _watch)."""
        # An answer read up to a second ago will do (see left_alone_addresses), but
        # not to stop waiting for a target DOWN: it may have come back UP within that
        # second, its catch-up already posted, and this job's change would miss it.
        address = (self.host, self.port)
        why = stored_health.left_alone_addresses(within=1.0).get(address)
        if why == stored_health.DOWN:
            if self.wait_for_down:
                return None
            why = stored_health.left_alone_addresses().get(address)
        return why

    @waits_for_database
    def _watch(
        self,
        zones: dict[str, tuple[str, int]],
        *,
        expect_removed: bool,
        fence: fencing.Claim,
        on_served: Callable[[dict[str, Served]], None] | None = None,
    ) -> dict[str, Served]:
        """What the nameserver serves of each zone (id -> (name, serial)) by the end of
        the wait, which ``poll_timeout`` bounds for all of them together.

        A nameserver takes a batch's zones in about the order they were
        NOTIFYed, several at once (BIND9 transfers ``transfers-per-ns`` zones
        at a time), so the wait follows the first zone still waited for (the
        head) as a poll of that zone alone would: asked every
        ``poll_interval``, less often once it lags past a second, NOTIFYed
        again at doubling intervals. Each round asks the head and the zones
        after it, ``poll_window`` in all, which the nameserver may serve in
        any order (soa_probe: one socket, every question in flight, answers
        read only as far as the serial). Each time the head is served, every
        zone still waited for is asked at once, which finds the ones served
        meanwhile and the next head. Asking every zone every time instead
        would ask a busy nameserver many times more when a batch is large.
        Between rounds, a zone the nameserver itself says it now serves (its
        NOTIFY to mdns, passed on through :mod:`zoneflow.events.served`) is
        asked at once, alone: a nameserver configured to say so has each zone
        seen served within milliseconds, whatever the round's interval; so for a
        nameserver heard saying so lately (:func:`served_word.tells`) the rounds
        come every ``poll_interval_max`` from the start.
        A nameserver left alone (:meth:`_left_alone`) is not waited for past
        its first miss; one DOWN, when ``wait_for_down`` is false, is not even
        asked. ``on_served`` is handed the zones each round found
        served (their removal, ``expect_removed``), as it finds them.
        """
        started = time.monotonic()
        deadline = started + CONF.flows.poll_timeout
        waiting = {
            zone_id: _Watched(name, serial, soa_probe.wire_name(name))
            for zone_id, (name, serial) in zones.items()
        }
        outcomes: dict[str, Served] = {}
        every = True  # the next round asks every zone waited for, not the window alone
        head = next(iter(waiting), None)
        # No NOTIFY announces a zone's removal: a delete's poll has nothing to hear.
        wanted = (
            {} if expect_removed else {zone_id: serial for zone_id, (_, serial) in zones.items()}
        )
        # A nameserver heard saying what it serves has each zone asked at its word:
        # the rounds only make up for a word lost, and need not come twenty times a
        # second (under load they were most of the SOA queries a change cost).
        first_interval = (
            CONF.flows.poll_interval_max
            if wanted and served_word.tells(self.host)
            else CONF.flows.poll_interval
        )
        lagging_since, interval = started, first_interval
        renotify = CONF.flows.renotify_interval
        next_notify = started + renotify
        if not self.wait_for_down and (why := self._left_alone()) == stored_health.DOWN:
            # Not asked even once: a nameserver that does not answer would cost the
            # first round its whole query timeout, for an answer no one waits for.
            return {
                zone_id: Served(ok=False, error=f"{why}, not waited for: not asked")
                for zone_id in zones
            }
        # Looked for at the first miss and at each re-NOTIFY (not at every round).
        look_for_state = True
        with served_word.Ear(self.host, wanted) as ear:
            while waiting:
                if every:
                    asked = list(waiting.items())
                else:
                    asked = list(itertools.islice(waiting.items(), CONF.flows.poll_window))
                self._ask(asked, waiting, outcomes, expect_removed, on_served)
                if not waiting:
                    break
                if look_for_state and (why := self._left_alone()) is not None:
                    # Thresholds do not count it, or do not need it: no reason to
                    # hold the job up for it.
                    for zone_id, watched in waiting.items():
                        outcomes[zone_id] = Served(
                            ok=False,
                            serial=watched.seen,
                            error=f"{why}, not waited for: {watched.error}",
                        )
                    break
                look_for_state = False
                now = time.monotonic()
                if now >= deadline:
                    if not every:
                        every = True  # a last look at every zone, so that each error is fresh
                        continue
                    for zone_id, watched in waiting.items():
                        outcomes[zone_id] = self._timed_out(zone_id, watched, expect_removed)
                    break
                if head not in waiting:
                    # The head is served: the next zone starts its own wait.
                    head = next(iter(waiting))
                    lagging_since, interval = now, first_interval
                    renotify = CONF.flows.renotify_interval
                    next_notify = now + renotify
                    if not every:
                        every = True  # the zones after it may be served too: ask them now
                        continue
                every = False
                if now >= next_notify:
                    look_for_state = True
                    over = self._notify_again(head, waiting[head], expect_removed, fence)
                    if over is not None:
                        outcomes[head] = over
                        del waiting[head]
                        every = True
                        continue
                    renotify = min(renotify * 2, CONF.flows.renotify_interval_max)
                    next_notify = now + renotify
                if now - lagging_since >= CONF.flows.renotify_interval:
                    # Lagging past its first NOTIFY: it is busy, ask less often.
                    interval = min(interval * 1.5, CONF.flows.poll_interval_max)
                # Until the next round, a zone the nameserver says it serves (its NOTIFY
                # to mdns) is asked at once; the head heard served ends the wait.
                until = now + interval
                while heard := [z for z in ear.wait(until - time.monotonic()) if z in waiting]:
                    self._ask(
                        [(z, waiting[z]) for z in heard],
                        waiting,
                        outcomes,
                        expect_removed,
                        on_served,
                    )
                    if head not in waiting:
                        break
        return outcomes

    def _ask(
        self,
        asked: list[tuple[str, _Watched]],
        waiting: dict[str, _Watched],
        outcomes: dict[str, Served],
        expect_removed: bool,
        on_served: Callable[[dict[str, Served]], None] | None,
    ) -> None:
        """One round: ask the nameserver for each of ``asked`` (zone id, what is waited
        for), all at once; each zone found served leaves ``waiting`` for ``outcomes``,
        and goes to ``on_served``."""
        address = (self.host, self.port)
        found = soa_probe.serials(
            {address: [watched.wire for _, watched in asked]},
            timeout=CONF.flows.query_timeout,
            retries=0,
        )[address]
        served = {}
        for (zone_id, watched), finding in zip(asked, found, strict=True):
            outcome = watched.judge(finding, expect_removed=expect_removed)
            if outcome is not None:
                outcomes[zone_id] = served[zone_id] = outcome
                del waiting[zone_id]
        if served and on_served is not None:
            on_served(served)

    def _notify_again(
        self, zone_id: str, watched: _Watched, expect_removed: bool, fence: fencing.Claim
    ) -> Served | None:
        """NOTIFY the nameserver again of a zone it lags on (of its pool's catalog when
        it learns of zones from one and has yet to add or drop this one); the zone's
        outcome if the wait for it is over (deleted meanwhile, or the nameserver left
        the pool)."""
        state = stored_zones.poll_state(zone_id, self.host, self.port)
        if state.zone_deleted and not expect_removed:
            return Served(ok=False, serial=watched.seen, error="zone deleted meanwhile")
        if not state.nameserver_in_pool:
            # A pool update removed it: not ours to wait for, nor to count.
            return Served(ok=True, serial=watched.seen, dropped=True)
        # A poll lasts up to poll_timeout: each NOTIFY is a change made under the
        # job's claim, which may have ended meanwhile.
        if state.catalog is not None and (expect_removed or watched.seen is None):
            # The nameserver adds or drops the zone when it reads its pool's catalog:
            # the catalog is what it is told of again (its first NOTIFY may be lost).
            fence.check()
            notify(state.catalog[0], self.host, self.port, state.catalog[1])
        elif not expect_removed:
            fence.check()
            notify(watched.name, self.host, self.port, watched.serial)
        return None

    def _timed_out(self, zone_id: str, watched: _Watched, expect_removed: bool) -> Served:
        error = watched.error
        if not expect_removed:
            error += _why_not_served(
                zone_id, watched.name, watched.serial, watched.seen, self.host, self.port
            )
        return Served(
            ok=False,
            serial=watched.seen,
            error=f"{self.host}:{self.port} after {CONF.flows.poll_timeout:g}s: {error}",
        )

    def _poll(
        self,
        zone_id: str,
        zone_name: str,
        serial: int,
        *,
        expect_removed: bool,
        fence: fencing.Claim,
    ) -> dict[str, Any]:
        """One zone's wait, as a task's result."""
        watched = self._watch(
            {zone_id: (zone_name, serial)}, expect_removed=expect_removed, fence=fence
        )
        return watched[zone_id].to_result()


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
    source = addresses.spelled(str(target.options.get("host")))
    last = next((t for t in transfers if addresses.spelled(t.source) == source), None)
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
    """Poll one nameserver for the serial, or for the zone's removal; ``notify_first``
    (an update's), NOTIFY it of the serial first.

    The NOTIFY is part of the poll rather than a task of its own, as a batch's
    is (zoneflow.flows.batch.PollBatch): a task costs the conductor its
    scheduling, two logbook writes and a task event, and an update job had one
    such task more for each nameserver. Sent again when a resumed job runs the
    poll again, which a nameserver takes as any repeated NOTIFY.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        expect_removed: bool = False,
        notify_first: bool = False,
        wait_for_down: bool = True,
    ) -> None:
        super().__init__(
            "removal" if expect_removed else "serial",
            host,
            port,
            wait_for_down=wait_for_down,
            rebind=LATEST_SERIAL,
        )
        self.expect_removed = expect_removed
        self.notify_first = notify_first

    def execute(
        self,
        zone_id: str,
        zone_name: str,
        serial: int,
        fence: fencing.Claim = fencing.UNFENCED,
    ) -> dict[str, Any]:
        if self.notify_first:
            fence.check()
            notify(zone_name, self.host, self.port, serial)
        return self._poll(
            zone_id, zone_name, serial, expect_removed=self.expect_removed, fence=fence
        )


class PollForWantedState(_Poll):
    """Poll one nameserver for the serial, or for the zone's removal if it is wanted DELETED."""

    def __init__(self, host: str, port: int, *, wait_for_down: bool = True) -> None:
        super().__init__("wanted-state", host, port, wait_for_down=wait_for_down)

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
