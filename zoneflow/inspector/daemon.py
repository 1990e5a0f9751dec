"""The inspector's daemon: health checks every ``[inspector] interval``, the map of
targets and zones it keeps, and what it does when a target goes DOWN or comes back.

Every tick checks every target at once (``[inspector] concurrency`` in
flight) and feeds each result to the target's :class:`~zoneflow.inspector.watch.Watch`;
a change of health is recorded through central (zoneflow.central.health),
which writes the state, the rows, the events and any recovery jobs in one
transaction. The ticks keep a fixed rate: a slow round is not followed by
a full interval of nothing.

The targets and each pool's zones are read once and kept (the map), read
again every ``[inspector] refresh_interval`` and as soon as the event stream
says a zone was created or deleted (at most once every MAP_SETTLE seconds:
under a load of creates it was read several times a second), not at every
tick.

Flows report failures too: a zone settled ERROR names, in its per-target
rows, the targets its job failed on. Each such report counts as one miss
of the target (its next answer wipes it out, as after any miss), so a
target that both fails its jobs and stops answering is DOWN one check
sooner, and one that answers DNS is never DOWN for a job's failure alone
(its zone is recovered as any failed zone is). The producer's audit reports
too: a batch of SOA questions a target answered none of is one miss
(a target event, AUDIT_UNANSWERED).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from zoneflow import events, exceptions, heartbeat, objects
from zoneflow.central import health as central_health
from zoneflow.inspector import options, probe
from zoneflow.inspector.watch import Watch, Went
from zoneflow.storage import models

LOG = logging.getLogger(__name__)
CONF = options.CONF

SERVICE = "inspector"

# Zone events that change the map: a zone added to or gone from a pool.
_MAP_CHANGES = frozenset({objects.Action.CREATE, objects.Action.DELETE, objects.Status.DELETED})
# Seconds at least between two reads of the map that zone creates and deletes ask for.
MAP_SETTLE = 1.0
# Seconds between looks for targets that ended maintenance and may count again.
CATCH_UP_CHECK = 1.0
# Seconds at least between two reads of the event stream. Each read is a query or
# two, and under load a commit wakes the reader many times a second: read at each,
# they were most of the inspector's CPU. A job's failures so count up to this late
# (its probes, every [inspector] interval, are what find a target down).
READ_EVERY = 0.2

Check = Callable[[str, int], "str | None"]


@dataclasses.dataclass
class Counters:
    checks: int = 0
    misses: int = 0
    alarms: int = 0
    recoveries: int = 0
    # Targets' failures reported by jobs (ERROR rows of a zone settled ERROR).
    reported: int = 0


class Inspector:
    def __init__(self, *, check: Check | None = None) -> None:
        self._check: Check = check or (
            lambda host, port: probe.check(host, port, timeout=CONF.inspector.timeout)
        )
        self._lock = threading.Lock()
        self._targets: dict[str, central_health.Watched] = {}
        self._zones: dict[str, list[str]] = {}
        self._watches: dict[str, Watch] = {}
        # Changes of health seen but not recorded yet (the database was away).
        self._unrecorded: dict[str, Went] = {}
        # Targets a failed job was counted against since the last check.
        self._job_missed: set[str] = set()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._subscription: events.Subscription | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=CONF.inspector.concurrency, thread_name_prefix="inspector-check"
        )
        self._last_catch_up = 0.0
        # When recovery was last posted for each target catching up (monotonic).
        self._catch_up_posted: dict[str, float] = {}
        self.counters = Counters()
        self.heartbeat = heartbeat.Heartbeat(
            SERVICE,
            capabilities={
                "interval": CONF.inspector.interval,
                "timeout": CONF.inspector.timeout,
                "misses": CONF.inspector.misses,
            },
            stats=self.stats,
        )

    # --- the map ----------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the targets, their stored health and each pool's zones again."""
        targets = {w.target.id: w for w in central_health.watched_targets()}
        zones = central_health.zones_by_pool()
        stored = central_health.states()
        with self._lock:
            for target_id in targets.keys() - self._watches.keys():
                state = stored.get(target_id)
                self._watches[target_id] = Watch(
                    misses=CONF.inspector.misses,
                    answers=CONF.inspector.answers,
                    # A target recorded DOWN (by an inspector before this one) is
                    # DOWN until it answers, which then recovers what it missed.
                    health=objects.TargetHealth(state.health)
                    if state is not None
                    else objects.TargetHealth.UP,
                )
            for target_id, watch in self._watches.items():
                # Another inspector (all-in-one beside a `zoneflow inspector`) may
                # have recorded a change this one has not seen: follow the store,
                # so that a return is noticed whoever recorded the failure.
                state = stored.get(target_id)
                if target_id not in self._unrecorded:
                    watch.follow(
                        objects.TargetHealth(state.health) if state else objects.TargetHealth.UP
                    )
            for target_id in self._watches.keys() - targets.keys():
                del self._watches[target_id]
                self._unrecorded.pop(target_id, None)
            self._targets, self._zones = targets, zones

    def zones_of(self, target_id: str) -> list[str]:
        """The live zones of the target's pool, as the map holds them."""
        with self._lock:
            watched = self._targets.get(target_id)
            return list(self._zones.get(watched.target.pool_id, [])) if watched else []

    # --- a tick ------------------------------------------------------------------------

    def tick(self) -> list[tuple[objects.PoolTarget, Went]]:
        """Check every target once and record any change of health; the changes."""
        with self._lock:
            probed = [w for w in self._targets.values() if w.host is not None]
        at = models.utcnow()
        results = list(self._pool.map(lambda w: (w, self._check(str(w.host), w.port)), probed))
        changes: list[tuple[objects.PoolTarget, Went]] = []
        with self._lock:
            self._job_missed.clear()
            for watched, failure in results:
                self.counters.checks += 1
                self.counters.misses += failure is not None
                watch = self._watches.get(watched.target.id)
                went = watch.observe(failure, at) if watch is not None else None
                if went is not None:
                    self._unrecorded[watched.target.id] = went
            pending = [
                (self._targets[t].target, went)
                for t, went in self._unrecorded.items()
                if t in self._targets
            ]
        for target, went in pending:
            if self._record(target, went):
                changes.append((target, went))
        self._catch_up_if_due()
        return changes

    def reported_failures(self, zone_id: str) -> None:
        """Count, as one miss each, the targets a job recorded failing for the zone.

        Once per target between two checks: the zones of a batch whose poll timed
        out there fail together, and counted one each they made a target that was
        only slow DOWN at once (three misses), then UP at the next two answers.
        Under load that flapped every target of the benchmark's pool."""
        at = models.utcnow()
        for target_id, error in central_health.failed_targets(zone_id).items():
            with self._lock:
                if target_id in self._job_missed:
                    continue
                self._job_missed.add(target_id)
            self._report_miss(target_id, f"a job failed there: {error}", at)

    def _report_miss(self, target_id: str, why: str, at: datetime.datetime) -> None:
        with self._lock:
            watched, watch = self._targets.get(target_id), self._watches.get(target_id)
            # A target never checked would never be seen answering again.
            if watched is None or watched.host is None or watch is None:
                return
            self.counters.reported += 1
            went = watch.observe(why, at)
            if went is not None:
                self._unrecorded[target_id] = went

    def audit_unanswered(self, target_id: str) -> None:
        """Count, as one miss, an audit's batch the target answered none of."""
        self._report_miss(target_id, "the audit got no answer", models.utcnow())

    def _record(self, target: objects.PoolTarget, went: Went) -> bool:
        try:
            if went.health == objects.TargetHealth.DOWN:
                behind = central_health.target_down(
                    target,
                    since=went.since,
                    reason=went.reason or "no answer",
                    zones=len(self.zones_of(target.id)),
                )
                if behind is not None:
                    self.counters.alarms += 1
                    LOG.warning(
                        "ALARM target %s DOWN since %s: %s (%d zone row(s) now behind)",
                        target.label,
                        went.since.isoformat(),
                        went.reason,
                        behind,
                    )
            else:
                recovering = central_health.target_up(target)
                if recovering is not None:
                    self.counters.recoveries += recovering
                    LOG.warning(
                        "target %s UP again: %d zone(s) it missed being recovered",
                        target.label,
                        recovering,
                    )
        except exceptions.ZoneflowError as exc:
            LOG.warning("target %s %s not recorded yet: %s", target.label, went.health, exc)
            return False
        with self._lock:
            if self._unrecorded.get(target.id) is went:
                del self._unrecorded[target.id]
        return True

    def _catch_up_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_catch_up < CATCH_UP_CHECK:
            return
        self._last_catch_up = now
        try:
            waiting = central_health.catching_up()
            with self._lock:
                targets = [self._targets[t].target for t in waiting if t in self._targets]
            for gone in self._catch_up_posted.keys() - set(waiting):
                del self._catch_up_posted[gone]
            for target in targets:
                self._catch_up(target, now)
        except exceptions.ZoneflowError as exc:
            LOG.warning("targets catching up not checked: %s", exc)

    def _catch_up(self, target: objects.PoolTarget, now: float) -> None:
        """Count ``target`` again if it missed nothing more; else, every
        ``[inspector] catch_up_retry`` seconds, post recovery again for what it still
        misses (a job of the last round may have failed)."""
        if central_health.finish_catch_up(target):
            LOG.info("target %s caught up after maintenance: counted again", target.label)
            return
        # Its maintenance's end posted the first round: wait from when it was seen.
        posted = self._catch_up_posted.setdefault(target.id, now)
        if now - posted >= CONF.inspector.catch_up_retry:
            self._catch_up_posted[target.id] = now
            again = central_health.retry_catch_up(target)
            LOG.info("target %s still catching up: %d zone(s) posted again", target.label, again)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            down = sorted(
                self._targets[t].target.label
                for t, w in self._watches.items()
                if w.health == objects.TargetHealth.DOWN and t in self._targets
            )
            watched = len(self._targets)
        return {"targets": watched, "down": down, **dataclasses.asdict(self.counters)}

    # --- the threads ---------------------------------------------------------------------

    def start(self) -> None:
        self.refresh()
        try:
            # Subscribed before start returns: what is reported from then on is heard.
            self._subscription = events.subscribe(_HEARD)
        except exceptions.ZoneflowError as exc:
            LOG.warning("inspector not subscribed to events yet: %s", exc)
        for target, name in ((self._tick_loop, "ticks"), (self._map_loop, "map")):
            thread = threading.Thread(target=target, name=f"inspector-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.heartbeat.start()
        LOG.info(
            "inspector watching %d target(s) every %g s",
            len(self._targets),
            CONF.inspector.interval,
        )

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.heartbeat.stop()

    def _tick_loop(self) -> None:
        interval = CONF.inspector.interval
        due = time.monotonic()
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception:
                LOG.exception("inspector tick failed")
            due += interval
            # Fixed rate; after a round longer than the interval, start again at once.
            due = max(due, time.monotonic())
            self._stopping.wait(due - time.monotonic())

    def _map_loop(self) -> None:
        subscription = self._subscription
        while not self._stopping.is_set():
            try:
                if subscription is None:
                    subscription = events.subscribe(_HEARD)
                refreshed = read = time.monotonic()
                deadline = refreshed + CONF.inspector.refresh_interval
                while not self._stopping.is_set() and time.monotonic() < deadline:
                    self._stopping.wait(read + READ_EVERY - time.monotonic())
                    read = time.monotonic()
                    found = subscription.next(timeout=max(0.0, min(1.0, deadline - read)))
                    for event in found:
                        if event.topic == objects.EventTopic.TARGET:
                            if event.action == objects.AUDIT_UNANSWERED:
                                self.audit_unanswered(event.key)
                        elif event.action == objects.Status.ERROR:
                            self.reported_failures(event.key)
                    if any(e.action in _MAP_CHANGES for e in found):
                        # At once after a quiet while; under a stream of creates and
                        # deletes once every MAP_SETTLE seconds, not at each (the
                        # map is every live zone: a read of all of them).
                        deadline = min(deadline, refreshed + MAP_SETTLE)
                if not self._stopping.is_set():
                    self.refresh()
            except exceptions.ZoneflowError as exc:
                LOG.warning("inspector map not refreshed: %s", exc)
                self._stopping.wait(CONF.inspector.refresh_interval)
            except Exception:
                LOG.exception("inspector map refresh failed")
                self._stopping.wait(CONF.inspector.refresh_interval)


# Zones created, deleted or settled ERROR; targets the audit got no answer from.
_HEARD_TOPICS = frozenset({objects.EventTopic.ZONE, objects.EventTopic.TARGET})
_HEARD = objects.EventFilter(topics=_HEARD_TOPICS)


def run_forever() -> None:
    # Its own process: nothing here subscribes to more than the map's events, so
    # the events of other topics (most of them: jobs, tasks, propagation) are not
    # read at all. In all-in-one the process reads everything for its API.
    events.get_driver().recent.narrow(_HEARD_TOPICS)
    inspector = Inspector()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    inspector.start()
    stopping.wait()
    inspector.stop()
