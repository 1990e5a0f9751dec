"""Under load one job carries the updates of several zones of one pool (update-zones,
zoneflow.flows.batch), each zone with update-zone's semantics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.conftest import load_pool, wait_settled
from zoneflow import jobs, objects
from zoneflow.backends.impl_fake import FakeBackend
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.conductor import daemon
from zoneflow.engine.relay import OutboxRelay
from zoneflow.storage import outbox as stored_outbox
from zoneflow.storage import status as stored_status
from zoneflow.taskflow_adapter import jobboard, persistence

NAMES = ["a.batch.example.", "b.batch.example.", "c.batch.example."]


@pytest.fixture
def board() -> Iterator[Any]:
    """A board of this test's own, for posting jobs while no conductor runs."""
    connected = jobboard.connect(persistence.get_backend(), name="batch-test")
    yield connected
    jobboard.close(connected)


@pytest.fixture
def idle_conductor() -> Iterator[daemon.Conductor]:
    """A conductor on the zake board, not started yet."""
    conductor = daemon.Conductor("batch")
    yield conductor
    conductor.stop()


@pytest.fixture
def batches_of_three(override: Callable[..., None]) -> None:
    override("conductor", batch_zones=3)


def _updated_zones(*targets: dict[str, object]) -> tuple[list[objects.PoolTarget], dict[str, int]]:
    """Zones ACTIVE as if their create jobs had run, then each updated: zone id -> serial."""
    pool = load_pool(*targets)
    zones = [central_zones.create_zone(name, "hostmaster@batch.example") for name in NAMES]
    for pending in stored_outbox.claim_pending_jobs():
        stored_outbox.remove_pending_job(pending.id)
    for zone in zones:
        stored_status.set_zone_status(zone.id, serial=zone.serial, status=objects.Status.ACTIVE)
    serials = {
        zone.id: central_recordsets.create_recordset(zone.id, "www", "A", ["192.0.2.1"]).serial
        for zone in zones
    }
    return list(pool.targets), serials


@pytest.mark.usefixtures("batches_of_three")
def test_updates_of_zones_of_one_pool_go_in_one_job(
    board: Any, idle_conductor: daemon.Conductor
) -> None:
    targets, serials = _updated_zones({}, {})
    (job_id,) = OutboxRelay(board, persistence.get_backend()).flush()
    assert jobs.get_job(persistence.get_backend(), job_id).kind == objects.JobKind.UPDATE_ZONES

    idle_conductor.start()
    for zone_id, serial in serials.items():
        settled = wait_settled(zone_id)
        assert (settled.status, settled.serial) == (objects.Status.ACTIVE, serial)
        rows = stored_status.list_target_status(zone_id)
        assert sorted((r.target_id, r.serial, r.status) for r in rows) == sorted(
            (t.id, serial, objects.Status.ACTIVE) for t in targets
        )
    for target in targets:
        assert FakeBackend.served(target.id) == {
            name: serials[zone_id] for name, zone_id in zip(NAMES, serials, strict=True)
        }


@pytest.mark.usefixtures("batches_of_three")
def test_one_zone_failing_on_a_target_leaves_the_others_of_its_batch_active(
    board: Any, idle_conductor: daemon.Conductor
) -> None:
    (good, bad), serials = _updated_zones({}, {"fail_zones": NAMES[1]})
    assert len(OutboxRelay(board, persistence.get_backend()).flush()) == 1

    idle_conductor.start()
    failed_id = list(serials)[1]
    for zone_id, serial in serials.items():
        settled = wait_settled(zone_id)
        assert settled.serial == serial
        if zone_id != failed_id:
            assert settled.status == objects.Status.ACTIVE
            continue
        # What update-zone's revert leaves: the new data kept, the zone ERROR with
        # the reason, the failed target behind, the other sent but not verified.
        assert settled.status == objects.Status.ERROR
        assert "1 of 2 targets succeeded" in str(settled.error)
        rows = {r.target_id: r for r in stored_status.list_target_status(zone_id)}
        assert rows[bad.id].status == objects.Status.ERROR
        assert "injected failure of b.batch.example." in str(rows[bad.id].error)
        assert (rows[good.id].status, rows[good.id].serial) == (objects.Status.PENDING, 0)
    assert FakeBackend.served(bad.id) == {
        NAMES[0]: serials[list(serials)[0]],
        NAMES[2]: serials[list(serials)[2]],
    }


def test_one_zone_a_job_by_default(board: Any) -> None:
    """``[conductor] batch_zones`` is 1: every zone's update has its own update-zone job."""
    _updated_zones({})
    posted = OutboxRelay(board, persistence.get_backend()).flush()
    kinds = [jobs.get_job(persistence.get_backend(), j).kind for j in posted]
    assert kinds == [objects.JobKind.UPDATE_ZONE] * 3
