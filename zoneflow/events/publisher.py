"""A process's publisher: events that report no change of a zoneflow table (a job's
end, a target's health), rate limited per key, and its row in the publishers table.

The rate limit coalesces: a key (one job, one target) publishes at most
``[events] rate_limit`` events a second; a state published before its turn
waits, and a newer state of the same key replaces it, so a subscriber always
gets the newest state of every key, only not each state between (or, for a
job's task states, is merged with it: each task's newest state). The
publisher's own thread writes what is due, many events in one transaction,
so publishing never makes its caller wait for the database.

The publisher's heartbeat refreshes its row of ``event_publishers`` every
``[events] heartbeat_interval`` seconds, reaps the rows of publishers silent for
``[events] publisher_timeout`` (a process that died) and prunes the events
older than ``[events] retention``.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from zoneflow import exceptions
from zoneflow.events import options
from zoneflow.storage import events as stored
from zoneflow.storage import models

LOG = logging.getLogger(__name__)
CONF = options.CONF

Key = tuple[str, str]
# How an event combines with the one of its key still waiting for its turn.
Merge = Callable[[stored.NewEvent, stored.NewEvent], stored.NewEvent]


class Publisher:
    def __init__(
        self,
        name: str | None = None,
        *,
        rate_limit: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name or stored.publisher_name()
        self._interval = 1.0 / (rate_limit or CONF.events.rate_limit)
        self._clock = clock
        self._lock = threading.Condition()
        # When each key may publish next, and the newest state waiting for that turn.
        self._next_turn: dict[Key, float] = {}
        self._waiting: dict[Key, stored.NewEvent] = {}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.beat()
        for target, name in ((self._flush_loop, "flush"), (self._beat_loop, "heartbeat")):
            thread = threading.Thread(target=target, name=f"events-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Publish what waits for its turn, then leave the publishers table."""
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
        self.flush()
        stored.forget_publisher(self.name)

    def flush(self) -> None:
        """Publish now what waits for its turn (a service stopping)."""
        with self._lock:
            waiting, self._waiting = list(self._waiting.values()), {}
        self._write(waiting)

    def publish(self, event: stored.NewEvent, *, merge: Merge | None = None) -> None:
        """Queue ``event`` for the publisher's thread, which writes it as soon as its key
        has its turn; a newer state of the same key waiting replaces it (the newest
        wins), or with ``merge`` is combined with it (``merge(waiting, event)``).

        Never waits for the database: a job's engine calls this for each task."""
        key = (event.table, event.key)
        with self._lock:
            waiting = self._waiting.get(key)
            if waiting is not None and merge is not None:
                event = merge(waiting, event)
            self._waiting[key] = event
            self._lock.notify_all()

    def _due(self) -> tuple[list[stored.NewEvent], float | None]:
        """The waiting events whose turn has come, and when the next one's comes."""
        now = self._clock()
        due, soonest = [], None
        for key in list(self._waiting):
            turn = self._next_turn.get(key, 0.0)
            if turn <= now:
                due.append(self._waiting.pop(key))
                self._next_turn[key] = now + self._interval
            elif soonest is None or turn < soonest:
                soonest = turn
        # Keys that had their turn long ago need no entry any more.
        for key in [k for k, t in self._next_turn.items() if t <= now and k not in self._waiting]:
            del self._next_turn[key]
        return due, soonest

    def _flush_loop(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                due, soonest = self._due()
                if not due:
                    wait = None if soonest is None else max(soonest - self._clock(), 0.0)
                    self._lock.wait(wait)
                    continue
            self._write(due)
            # What comes meanwhile goes in the next transaction: fewer takes of the
            # events' order lock, which every publishing transaction waits for.
            self._stopping.wait(CONF.events.flush_interval)

    def _write(self, events: list[stored.NewEvent]) -> None:
        if not events:
            return
        try:
            stored.append(events, publisher=self.name)
        except exceptions.ServiceUnavailable as exc:
            LOG.warning("events: %d not published: %s", len(events), exc)

    def beat(self) -> None:
        """Refresh this publisher's row; reap stale publishers; prune old events."""
        try:
            stored.touch_publisher(self.name, hostname=socket.gethostname(), pid=os.getpid())
            now = models.utcnow()
            timeout = datetime.timedelta(seconds=CONF.events.publisher_timeout)
            reaped = stored.reap_publishers(now - timeout)
            if reaped:
                LOG.info("events: reaped stale publishers %s", ", ".join(reaped))
            stored.prune(now - datetime.timedelta(seconds=CONF.events.retention))
        except exceptions.ServiceUnavailable as exc:
            LOG.warning("events: heartbeat of %s not written: %s", self.name, exc)

    def _beat_loop(self) -> None:
        while not self._stopping.wait(CONF.events.heartbeat_interval):
            self.beat()
