"""A posted job is claimed at once, not after the conductor's idle sleep."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.integration.conftest import load_pool, wait_settled
from zoneflow import objects
from zoneflow.central import changes as central_changes
from zoneflow.central import zones as central_zones
from zoneflow.conductor import daemon


def test_a_posted_job_wakes_an_idle_conductor(override: Callable[..., None]) -> None:
    # An idle sleep far longer than the job may take: only the wake-up can explain a fast pickup.
    override("conductor", wait_timeout=30.0)
    load_pool({})
    conductor = daemon.Conductor("sleepy")
    assert conductor.relay is not None
    central_changes.on_change(conductor.relay.wake)
    conductor.start()
    try:
        # Kept, not a wait for a result: it gives the claim loop time to look at
        # the empty board and go to sleep, which makes the pickup below need the
        # wake-up. Were it too short, the test would pass without proving it.
        time.sleep(0.5)
        started = time.monotonic()
        zone = central_zones.create_zone("wake.example.", "h@example.com")
        assert wait_settled(zone.id, timeout=10).status == objects.Status.ACTIVE
        assert time.monotonic() - started < 5
    finally:
        conductor.stop()
        central_changes._listeners.clear()


def test_a_conductor_told_to_stop_as_it_starts_stops_and_leaves_no_thread() -> None:
    # A signal at start-up: stop() may come before run() has started the relay's
    # thread (stop() once raised "cannot join thread before it is started" there,
    # in about one try of five) or even before run() began.
    load_pool({})
    for attempt in range(20):
        conductor = daemon.Conductor(f"brief-{attempt}")
        conductor.start()
        conductor.stop()
        assert conductor._thread is not None
        conductor._thread.join(timeout=10)
        assert not conductor._thread.is_alive(), "the conductor went on after its stop"
    stopped_first = daemon.Conductor("stopped-first")
    stopped_first.stop()
    assert stopped_first.relay is not None
    stopped_first.relay.start()
    assert stopped_first.relay._thread is None, "a relay stopped before it started ran"
