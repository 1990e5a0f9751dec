"""The events committed lately, read once for all of a process's subscribers.

A hundred SSE clients woken by one commit then make one query of the events
table, not a hundred (``bench/event_fanout.py`` measured the difference: see
doc/benchmarks.md), and each takes what it wants from memory.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from zoneflow import objects
from zoneflow.storage import events as stored


def matches(event: objects.Event, wanted: objects.EventFilter) -> bool:
    """Whether ``wanted`` takes ``event`` (as storage's query of the table would)."""
    return (
        (wanted.scope is None or event.project_id == wanted.scope)
        and (wanted.project_id is None or event.project_id == wanted.project_id)
        and (wanted.zone_id is None or event.zone_id == wanted.zone_id)
        and (wanted.topics is None or event.topic in wanted.topics)
    )


_EVERYTHING = objects.EventFilter()


def _within(wanted: objects.EventFilter, read: objects.EventFilter) -> bool:
    """Whether the events ``read`` takes hold every event ``wanted`` takes."""
    return read.topics is None or (wanted.topics is not None and wanted.topics <= read.topics)


# Seconds a read of the table stands for all subscribers while no wake-up comes.
STALE = 0.05


class Recent:
    """The last ``size`` events committed, read from the table once for every
    subscriber of the process.

    It holds every event with an id in (``floor``, ``read_upto``]: ids are in
    commit order, so reading after ``read_upto`` up to the newest id misses none.
    A read is made under the lock, so subscribers woken together wait for the
    first one's query and then take their events from memory.
    """

    def __init__(
        self, generation: Callable[[], int] = lambda: 0, size: int = 10 * stored.PAGE
    ) -> None:
        # The driver's wake-up count: a read after the last wake-up finds nothing new
        # that the driver could have told of.
        self._generation = generation
        self._read_at: tuple[int, float] | None = None
        self._lock = threading.Lock()
        self._events: collections.deque[objects.Event] = collections.deque(maxlen=size)
        self._floor: int | None = None
        self._read_upto = 0
        # What is read: every event, or those of these topics alone (:meth:`narrow`).
        self._reading = _EVERYTHING

    def narrow(self, topics: frozenset[str]) -> None:
        """Read only the events of ``topics`` from now on: for a process whose
        subscribers want no others (the inspector's, a few percent of all events),
        which then reads and decodes no more. A subscriber that wants another topic
        reads the table itself, as one resuming from further back does."""
        with self._lock:
            self._reading = objects.EventFilter(topics=frozenset(topics))
            self._events.clear()
            self._floor = self._read_at = None

    def newest(self) -> int:
        """The newest event's id: where a subscriber from now on starts."""
        with self._lock:
            self._refresh()
            return self._read_upto

    def after(
        self, last_id: int, wanted: objects.EventFilter
    ) -> tuple[list[objects.Event], int] | None:
        """The events after ``last_id`` that ``wanted`` takes, and the id read up to;
        None when ``last_id`` is older than what is kept (read the table instead)."""
        with self._lock:
            self._refresh()
            assert self._floor is not None
            if last_id < self._floor or not _within(wanted, self._reading):
                return None
            return self._newer(last_id, wanted), max(last_id, self._read_upto)

    def _newer(self, last_id: int, wanted: objects.EventFilter) -> list[objects.Event]:
        """The events kept after ``last_id`` that ``wanted`` takes, oldest first: read
        from the newest end, as a subscriber is seldom far behind (a scan of all
        that is kept, at each commit, was most of the API's CPU under load)."""
        found = []
        for event in reversed(self._events):
            if event.id <= last_id:
                break
            if matches(event, wanted):
                found.append(event)
        found.reverse()
        return found

    def _refresh(self) -> None:
        # Subscribers woken together: the first reads, the others take its read. What
        # no wake-up tells of (another process's commit on SQLite) is read once
        # STALE seconds have passed, for all of them.
        generation, now = self._generation(), time.monotonic()
        if self._read_at is not None:
            read_generation, read_time = self._read_at
            if generation == read_generation and now - read_time < STALE:
                return
        self._read_at = (generation, now)
        if self._floor is None:
            self._floor = self._read_upto = stored.last_id()
            return
        # Ids are in commit order: what is after the last id read is complete as
        # read, so one query answers both "anything new?" and "what?".
        if self._reading is _EVERYTHING:
            fresh = stored.after(self._read_upto, _EVERYTHING)
            upto = fresh[-1].id if fresh else self._read_upto
        else:
            # Some topics only: the newest id says how far the read went (else each
            # read would start again after the last event of these topics).
            newest = stored.last_id()
            fresh = stored.after(self._read_upto, self._reading, upto=newest)
            upto = fresh[-1].id if len(fresh) == stored.PAGE else newest
        if upto == self._read_upto:
            return
        full = len(self._events) + len(fresh) > (self._events.maxlen or 0)
        self._events.extend(fresh)
        self._read_upto = upto
        if len(fresh) == stored.PAGE:
            self._read_at = None  # more to read: the next call reads on
        if full and self._events:
            # What was pushed out is older than the first one kept.
            self._floor = max(self._floor, self._events[0].id - 1)
