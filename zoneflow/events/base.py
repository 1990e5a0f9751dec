"""What an event driver is: the way subscribers learn that new events were committed.

Publishing is the same whatever the driver: an event is a row of ``events``
written in the transaction of the change it reports (zoneflow.storage.events),
with a NOTIFY on PostgreSQL. A driver only wakes subscribers, who then read
the rows after the last one they saw; so a wake-up lost or doubled loses or
doubles no event, and a subscriber that reconnects resumes from the table.
"""

from __future__ import annotations

import abc
import functools
import threading

import sqlalchemy as sa

from zoneflow.events import options, recent
from zoneflow.storage import db

CONF = options.CONF


def driver_name() -> str:
    """``[events] driver``, ``auto`` resolved: ``postgres`` on a PostgreSQL database
    (LISTEN/NOTIFY, heard by every process), ``inprocess`` otherwise."""
    name = str(CONF.events.driver)
    return _auto(db.connection_url()) if name == "auto" else name


@functools.lru_cache(maxsize=8)
def _auto(url: str) -> str:
    backend = sa.engine.make_url(url).get_backend_name()
    return "postgres" if backend == "postgresql" else "inprocess"


class Driver(abc.ABC):
    """Wakes the subscribers of this process when events may have been committed.

    Each wake-up bumps a generation number; :meth:`wait` returns when it has
    moved past the one the caller saw, or at the timeout.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._generation = 0
        # The events committed lately, read once for all this process's subscribers.
        self.recent = recent.Recent(lambda: self.generation)

    @property
    def generation(self) -> int:
        with self._changed:
            return self._generation

    def wake(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        """Block until a wake-up after generation ``seen`` or ``timeout`` seconds; the
        generation now."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation != seen, timeout)
            return self._generation

    def hear(self, channel: str) -> None:
        """Listen from now on for what is sent on ``channel`` (PostgreSQL's: the events',
        zoneflow.storage.events.CHANNEL, or the nameservers' word,
        zoneflow.events.served.CHANNEL). A driver that hears everything its process
        commits, and nothing else, has nothing to do."""
        return None

    def listening(self, timeout: float) -> bool:
        """Whether this process hears what other processes publish now (waiting up to
        ``timeout`` seconds for it): at once, unless the driver listens in a thread."""
        return True

    @abc.abstractmethod
    def start(self) -> None:
        """Begin listening (called once, before the first subscriber waits)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop listening; waiting subscribers are woken once more."""
