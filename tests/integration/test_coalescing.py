"""Changes to one zone coalesce: an update rides on the zone's job not begun yet
(zoneflow.storage.outbox), which brings the zone to its latest serial."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import support
from tests.integration.conftest import load_pool, wait_settled
from zoneflow import jobs, objects
from zoneflow.backends.impl_fake import FakeBackend
from zoneflow.central import changes as central_changes
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.conductor import daemon
from zoneflow.engine.relay import OutboxRelay
from zoneflow.storage import outbox as stored_outbox
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import jobboard, persistence


@pytest.fixture
def board() -> Iterator[Any]:
    """A board of this test's own, for posting jobs while no conductor runs."""
    connected = jobboard.connect(persistence.get_backend(), name="coalescing-test")
    yield connected
    jobboard.close(connected)


@pytest.fixture
def idle_conductor() -> Iterator[daemon.Conductor]:
    """A conductor on the zake board, not started yet."""
    conductor = daemon.Conductor("coalescing")
    yield conductor
    conductor.stop()


def _change(zone: objects.Zone, name: str) -> int:
    """A user's change to ``zone`` (a recordset created); its serial."""
    return central_recordsets.create_recordset(zone.id, name, "A", ["192.0.2.1"]).serial


def test_updates_to_a_zone_whose_job_has_not_begun_ride_on_it(
    board: Any, idle_conductor: daemon.Conductor
) -> None:
    (target,) = load_pool({}).targets
    zone = central_zones.create_zone("ride.example", "hostmaster@example.com")
    relay = OutboxRelay(board, persistence.get_backend())

    # Waiting in the outbox, then posted and waiting on the board: both ways
    # the zone's create carries each update made meanwhile.
    for i in range(3):
        _change(zone, f"before{i}")
    assert len(relay.flush()) == 1
    last = max(_change(zone, f"after{i}") for i in range(3))
    assert relay.flush() == [], "an update to a zone whose job waits on the board posts none"

    idle_conductor.start()
    settled = wait_settled(zone.id)
    assert (settled.status, settled.serial) == (objects.Status.ACTIVE, last)
    assert FakeBackend.served(target.id) == {"ride.example.": last}
    assert len(jobs.list_jobs(persistence.get_backend())) == 1

    # Begun, the job carries no more: the next change has its own.
    newer = _change(zone, "later")
    # Posted by this relay, or by the running conductor's own if it looked first
    # (a busy machine found that race): either way a second job, counted below.
    relay.flush()
    support.eventually(
        lambda: FakeBackend.served(target.id) == {"ride.example.": newer},
        20,
        what="the later change served",
    )
    assert wait_settled(zone.id).serial == newer
    assert len(jobs.list_jobs(persistence.get_backend())) == 2


def test_an_update_that_rides_wakes_no_relay_and_one_that_writes_a_job_does() -> None:
    load_pool({})
    woken: list[int] = []
    central_changes.on_change(lambda: woken.append(1))
    try:
        zone = central_zones.create_zone("quiet.example", "hostmaster@example.com")
        assert len(woken) == 1  # its create job, to post
        _change(zone, "rides")
        _change(zone, "rides-too")
        assert len(woken) == 1, "an update riding on the create not begun posts nothing"
        stored_outbox.begin_zone_jobs([zone.id])
        _change(zone, "own-job")
        assert len(woken) == 2, "once the job began, an update writes its own: a relay posts it"
        assert len(stored_outbox.claim_pending_jobs()) == 1
    finally:
        central_changes._listeners.clear()


def test_a_delete_never_rides_on_the_update_waiting_before_it(
    board: Any, idle_conductor: daemon.Conductor
) -> None:
    (target,) = load_pool({}).targets
    zone = central_zones.create_zone("gone.example", "hostmaster@example.com")
    relay = OutboxRelay(board, persistence.get_backend())
    relay.flush()
    _change(zone, "www")
    central_zones.delete_zone(zone.id)

    kinds = sorted(jobs.get_job(persistence.get_backend(), j).kind for j in relay.flush())
    assert kinds == [objects.JobKind.DELETE_ZONE]

    idle_conductor.start()
    support.eventually(
        lambda: stored_zones.zone_is_deleted(zone.id), 20, what="the zone's delete finished"
    )
    support.eventually(
        lambda: FakeBackend.served(target.id) == {}, 20, what="the target to serve nothing"
    )
