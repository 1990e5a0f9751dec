"""The producer daemon: one loop running the passes over the shards it holds.

One thread does everything in turn: it asks the shard keeper what it holds
(which also releases shards when the producers' party changes), then runs
each pass that is due. Running the passes in the keeper's thread is what
makes "no shard worked by two producers" hold: shards are released only
between passes (or between an audit's batches, which ask), never while
this producer works on them.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from zoneflow import exceptions, heartbeat
from zoneflow.producer import audit, purge, recovery, settings, shards
from zoneflow.taskflow_adapter import jobboard

LOG = logging.getLogger(__name__)
CONF = settings.CONF

PRODUCER = "producer"

# Longest the loop sleeps: how soon it sees the party change or a stop.
_TICK = 0.25


class Producer:
    def __init__(self, *, name: str | None = None, config: settings.Settings | None = None):
        self.settings = config or settings.read()
        self.name = name or heartbeat.default_hostname()
        self.keeper = shards.ShardKeeper(
            jobboard.client(),
            path=self.settings.shard_path,
            shards=self.settings.shards,
            identifier=self.name,
            rebalance_wait=self.settings.rebalance_wait,
        )
        self.counters: dict[str, float] = {
            "shards_held": 0,
            "audits": 0,
            "audit_checks": 0,
            "last_audit_checks_per_second": 0,
            "recoveries_posted": 0,
            "removals_posted": 0,
            "zones_purged": 0,
            "jobs_purged": 0,
        }
        self.heartbeat = heartbeat.Heartbeat(
            PRODUCER,
            hostname=self.name,
            capabilities={"shards": self.settings.shards},
            stats=lambda: dict(self.counters),
        )
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._passes: list[tuple[str, float, Callable[[frozenset[int]], None]]] = [
            (name, interval, run)
            for name, interval, run in (
                ("recovery", self.settings.recovery_interval, self._recover),
                ("audit", self.settings.audit_interval, self._audit),
                ("purge", self.settings.purge_interval, self._purge),
            )
            if interval > 0
        ]
        # Each pass first runs one interval after start: a fleet restarted at once
        # does not audit everything at the same moment, and the shards have
        # settled among the producers by then.
        started = time.monotonic()
        self._due = {name: started + interval for name, interval, _ in self._passes}

    def start(self) -> None:
        """Join the producers' party and start the loop (in a thread of its own)."""
        self.keeper.start(timeout=CONF.jobboard.connect_timeout)
        self._thread = threading.Thread(target=self.run, name="producer", daemon=True)
        self._thread.start()
        self.heartbeat.start()
        LOG.info("producer %s started on %s", self.name, jobboard.describe())

    def run(self) -> None:
        while not self._stopping.is_set():
            owned = self.keeper.owned(wait=_TICK)
            self.counters["shards_held"] = len(owned)
            if owned:
                self._run_due(owned)
            self._stopping.wait(self._sleep() if owned else _TICK)

    def _run_due(self, owned: frozenset[int]) -> None:
        for name, interval, run in self._passes:
            if self._stopping.is_set() or not self.keeper.holds():
                return
            if time.monotonic() < self._due[name]:
                continue
            try:
                run(owned)
            except exceptions.ZoneflowError as exc:
                LOG.warning("producer %s: the %s pass failed, will retry: %s", self.name, name, exc)
            except Exception:
                LOG.exception("producer %s: the %s pass failed, will retry", self.name, name)
            self._due[name] = time.monotonic() + interval

    def _carry_on(self) -> bool:
        """Whether a pass under way goes on: its shards still held, no stop asked."""
        return self.keeper.holds() and not self._stopping.is_set()

    def _sleep(self) -> float:
        soonest = min(self._due.values(), default=time.monotonic() + _TICK)
        return max(0.0, min(_TICK, soonest - time.monotonic()))

    def _recover(self, owned: frozenset[int]) -> None:
        report = recovery.recover(self.settings, owned, still_owned=self._carry_on)
        self.counters["recoveries_posted"] += report.posted

    def _audit(self, owned: frozenset[int]) -> None:
        report = audit.audit(self.settings, owned, still_owned=self._carry_on)
        self.counters["audits"] += 1
        self.counters["audit_checks"] += report.checks
        self.counters["last_audit_checks_per_second"] = round(report.rate)
        self.counters["recoveries_posted"] += report.recoveries
        self.counters["removals_posted"] += report.removals

    def _purge(self, owned: frozenset[int]) -> None:
        report = purge.purge(self.settings, owned)
        self.counters["zones_purged"] += report.zones
        self.counters["jobs_purged"] += report.jobs

    def stop(self) -> None:
        """Finish the pass under way, give the shards back at once and say DOWN."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.keeper.stop()
        self.heartbeat.stop()


def run_forever(**kwargs: Any) -> None:
    producer = Producer(**kwargs)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    producer.start()
    stopping.wait()
    producer.stop()
