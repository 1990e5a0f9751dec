"""A subscriber's place in the event stream: the events after the last it saw.

The events committed lately are read once for all of a process's subscribers
(:class:`zoneflow.events.recent.Recent`, one per driver); a subscriber resuming
from further back than those reads the table itself.
"""

from __future__ import annotations

import time

from zoneflow import objects
from zoneflow.events import base, options
from zoneflow.storage import events as stored

CONF = options.CONF


class Subscription:
    """Reads the events ``wanted`` matches after ``after`` (default: from now on).

    Where it stands is an event id, so a client that reconnects with the last
    id it received (SSE's Last-Event-ID) gets every event committed since,
    as long as they are younger than ``[events] retention``.
    """

    def __init__(
        self, driver: base.Driver, wanted: objects.EventFilter, *, after: int | None = None
    ) -> None:
        self._driver = driver
        self._wanted = wanted
        driver.hear(stored.CHANNEL)
        self.last_id = driver.recent.newest() if after is None else after

    def next(self, timeout: float) -> list[objects.Event]:
        """The next events, oldest first; waits up to ``timeout`` seconds for some."""
        deadline = time.monotonic() + timeout
        seen = self._driver.generation
        while True:
            found = self._read()
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            # The driver wakes us at a commit; the poll interval bounds the wait
            # for what it cannot see (another process's commit on SQLite).
            seen = self._driver.wait(seen, min(remaining, CONF.events.poll_interval))

    def _read(self) -> list[objects.Event]:
        shared = self._driver.recent.after(self.last_id, self._wanted)
        if shared is not None:
            found, self.last_id = shared
            return found
        # Ids are in commit order: every event up to the newest id is committed and
        # in the table, so once those that match are read the rest can be skipped.
        newest = stored.last_id()
        if newest <= self.last_id:
            return []
        found = stored.after(self.last_id, self._wanted, upto=newest)
        self.last_id = found[-1].id if len(found) == stored.PAGE else newest
        return found
