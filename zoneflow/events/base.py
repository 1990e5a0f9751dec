"""What an event driver is: the way subscribers learn that new events were committed.

Publishing is the same whatever the driver: an event is a row of ``events``
written in the transaction of the change it reports (zoneflow.storage.events),
with a NOTIFY on PostgreSQL. A driver only wakes subscribers, who then read
the rows after the last one they saw; so a wake-up lost or doubled loses or
doubles no event, and a subscriber that reconnects resumes from the table.
"""

from __future__ import annotations

import abc
import threading

from zoneflow.events import recent


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
