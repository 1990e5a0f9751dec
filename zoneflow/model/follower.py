"""A long-running process's model: built from storage at start, then kept fresh by
the event stream in a thread of its own.

The follower remembers where the stream was when it read storage, so what was
committed while it read is applied after (twice at worst, which the picture
takes: every event carries a whole state). A reader asks for the model
:meth:`settled` first: it waits (briefly) until the follower has applied every
event committed before the read began, so a status read after a change's commit
shows that change, as a read of storage would.

Every ``[events] model_sweep_interval`` seconds another thread reads storage
again (:meth:`Follower.sweep`) and puts what it read in the running picture's
place: what reached storage without an event is shown from then on.
"""

from __future__ import annotations

import logging
import threading
import time

from zoneflow import events, exceptions, objects
from zoneflow.events import options
from zoneflow.model.picture import Picture
from zoneflow.storage import events as stored_events

LOG = logging.getLogger(__name__)
CONF = options.CONF

# What the model is fed: the serial wanted (zones, recordsets), what targets
# serve (propagation), and the targets' health (target, the inspector's).
FEED = objects.EventFilter(
    topics=frozenset(
        {
            objects.EventTopic.ZONE,
            objects.EventTopic.RECORDSET,
            objects.EventTopic.PROPAGATION,
            objects.EventTopic.TARGET,
        }
    )
)
# Seconds a read waits for the follower to apply what was committed before it; past
# that it answers from the picture as it is (the follower stalled, the database away).
SETTLE_WAIT = 2.0


class Follower:
    """Builds the picture in its thread, then follows the stream. Until it is built
    (the database away when the process started), :func:`running` says there is
    no model, and readers read storage."""

    def __init__(self) -> None:
        self.picture = Picture()
        self.ready = threading.Event()
        self._subscription: events.Subscription | None = None
        self._driver = events.get_driver()
        self._applied = threading.Condition()
        self._applied_id = 0
        self._reading = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-follow", daemon=True)
        self._sweeper = threading.Thread(target=self._sweep_loop, name="model-sweep", daemon=True)
        # How many zones and rows the sweeps found differing, all told.
        self.drift_found = 0

    def start(self) -> None:
        self._thread.start()
        self._sweeper.start()

    def _build(self) -> None:
        started = time.monotonic()
        # Where the stream stands first: what commits while storage is read is applied after.
        start = stored_events.last_id()
        self.picture = Picture.load()
        self._subscription = events.subscribe(FEED, after=start)
        with self._applied:
            self._applied_id = start
        self.ready.set()
        LOG.info(
            "propagation model built from storage in %.2f s: %d zones",
            time.monotonic() - started,
            len(self.picture.zones()),
        )

    def sweep(self) -> int:
        """Read storage again, and put the picture read in place of the running one
        once it has applied what was committed meanwhile: what reached storage
        without an event (a write that publishes none, a lost event) is shown from
        now on. How many zones and rows the two pictures differed by."""
        start = stored_events.last_id()
        fresh = Picture.load()  # outside the lock: the running picture goes on meanwhile
        subscription = events.subscribe(FEED, after=start)
        with self._reading:
            assert self._subscription is not None, "the model is not built yet"
            # The running picture is at its own place in the stream: it takes what
            # comes after that too, so the two are compared at the same place.
            running_at = self._subscription.last_id
            while found := subscription.next(timeout=0):
                for event in found:
                    fresh.apply(event)
                    if event.id > running_at:
                        self.picture.apply(event)
            fresh.take_queries(self.picture)
            # Compared once the lock is let go (a second at 100,000 zones): the
            # running picture is left behind as it is, the new one as it is now.
            before, after = self.picture, fresh.frozen()
            self.picture, self._subscription = fresh, subscription
            with self._applied:
                self._applied_id = subscription.last_id
                self._applied.notify_all()
        drift = before.drift(after)
        self.drift_found += drift
        if drift:
            LOG.warning(
                "propagation model: storage read again, %d zone(s) and row(s) differed "
                "from what the events had said",
                drift,
            )
        return drift

    def _sweep_loop(self) -> None:
        while not self._stopping.wait(CONF.events.model_sweep_interval):
            if not self.ready.is_set():
                continue
            try:
                self.sweep()
            except exceptions.ServiceUnavailable as exc:
                LOG.warning("propagation model: storage not read again: %s", exc)
            except Exception:  # the running picture goes on, fed by the events
                LOG.exception("propagation model: storage not read again")

    def stop(self) -> None:
        self._stopping.set()
        self._driver.wake()
        self._thread.join(timeout=5)
        self._sweeper.join(timeout=5)

    @property
    def applied_id(self) -> int:
        """The id of the last event the picture has taken into account."""
        with self._applied:
            return self._applied_id

    def settled(self, timeout: float = SETTLE_WAIT) -> Picture:
        """The picture once every event committed before this call is applied (or at
        the timeout)."""
        wanted = stored_events.last_id()
        with self._applied:
            if not self._applied.wait_for(lambda: self._applied_id >= wanted, timeout):
                LOG.warning(
                    "propagation model: event %d not applied within %.1f s (at %d); "
                    "answering from what it has",
                    wanted,
                    timeout,
                    self._applied_id,
                )
        return self.picture

    def catch_up(self) -> int:
        """Apply every event committed so far; how many were."""
        applied = 0
        with self._reading:
            assert self._subscription is not None, "the model is not built yet"
            while True:
                found = self._subscription.next(timeout=0)
                for event in found:
                    self.picture.apply(event)
                applied += len(found)
                with self._applied:
                    self._applied_id = self._subscription.last_id
                    self._applied.notify_all()
                if not found:
                    return applied

    def _run(self) -> None:
        seen = self._driver.generation
        while not self._stopping.is_set():
            try:
                if not self.ready.is_set():
                    self._build()
                self.catch_up()
            except exceptions.ServiceUnavailable as exc:
                LOG.warning("propagation model: storage not read: %s", exc)
                self._stopping.wait(CONF.events.poll_interval)
            except Exception:  # an event it cannot apply must not end the model
                LOG.exception("propagation model: an event was not applied")
            # Woken by a commit (this process's, or a NOTIFY); the poll interval
            # bounds the wait for what the driver cannot see.
            seen = self._driver.wait(seen, CONF.events.poll_interval)


_lock = threading.Lock()
_running: Follower | None = None
# start_when_read() was called: the first running() starts the model.
_when_read = False


def start() -> Follower:
    """Build this process's model and follow the stream (a long-running process), in a
    thread: wait for ``ready`` to know it is built."""
    with _lock:
        return _started()


def start_when_read() -> None:
    """Start this process's model once a read first asks for it (:func:`running`),
    which reads storage meanwhile.

    For a process that may never serve a status read (an API worker taking
    changes): following the stream costs a read of the events table after every
    commit, in each process that follows it.
    """
    global _when_read
    with _lock:
        _when_read = True


def _started() -> Follower:
    global _running
    if _running is None:
        _running = Follower()
        _running.start()
    return _running


def drift_found() -> int:
    """How many zones and rows this process's sweeps found its model to differ by from
    storage, all told (0 without a model); read by ``/metrics``, which starts none."""
    with _lock:
        follower = _running
    return 0 if follower is None else follower.drift_found


def running() -> Follower | None:
    """This process's model, if it keeps one and has built it."""
    with _lock:
        follower = _started() if _when_read else _running
    return follower if follower is not None and follower.ready.is_set() else None


def stop() -> None:
    global _running, _when_read
    with _lock:
        follower, _running, _when_read = _running, None, False
    if follower is not None:
        follower.stop()
