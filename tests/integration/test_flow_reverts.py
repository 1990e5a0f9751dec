"""What a zone job below the pool's threshold leaves behind, on the fake backend.

create: removed again from the targets that got it. update: nothing undone,
storage keeps the new data, the failed targets are behind. delete: nothing
undone, the zone stays ERROR/DELETE. Every time the zone says why, and each
target's row says what it was left with.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.conftest import load_pool, wait_settled
from zoneflow import objects
from zoneflow.backends.impl_fake import FakeBackend
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import status as stored_status

ZONE = "example.com."


@pytest.fixture(autouse=True)
def _fast_retries(override: Callable[..., None]) -> None:
    override("flows", target_retry_delay=0)


def _rows(zone_id: str) -> dict[str, objects.TargetStatus]:
    return {row.target_id: row for row in stored_status.list_target_status(zone_id)}


@pytest.mark.usefixtures("conductor")
def test_create_below_threshold_removes_the_zone_again_and_records_each_target() -> None:
    healthy, broken = load_pool({}, {"fail": "create"}, threshold=100).targets
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")

    failed = wait_settled(zone.id)
    assert (failed.status, failed.action) == (objects.Status.ERROR, objects.Action.CREATE)
    assert failed.error is not None and "1 of 2 targets succeeded" in failed.error
    assert FakeBackend.served(healthy.id) == {}
    assert FakeBackend.served(broken.id) == {}
    rows = _rows(zone.id)
    assert (rows[healthy.id].status, rows[healthy.id].serial) == (objects.Status.ERROR, 0)
    assert rows[healthy.id].error is not None
    assert rows[healthy.id].error.startswith("created, then removed again: 1 of 2 targets")
    assert (rows[broken.id].status, rows[broken.id].serial) == (objects.Status.ERROR, 0)
    assert "injected failure of create" in (rows[broken.id].error or "")
    assert all(row.updated_at is not None for row in rows.values())


@pytest.mark.usefixtures("conductor")
def test_update_below_threshold_keeps_the_new_data_and_marks_failed_targets_behind() -> None:
    healthy, broken = load_pool({}, {"fail": "update"}, threshold=100).targets
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    assert wait_settled(zone.id).status == objects.Status.ACTIVE

    central_recordsets.create_recordset(ZONE, "www", "A", ["192.0.2.1"])
    failed = wait_settled(zone.id)
    assert (failed.status, failed.action) == (objects.Status.ERROR, objects.Action.UPDATE)
    assert failed.serial > zone.serial
    assert failed.error is not None and "1 of 2 targets succeeded" in failed.error
    # Storage keeps the change: mdns serves it, recovery pushes it.
    assert [rs.records for rs in stored_reads.list_recordsets(zone.id) if rs.type == "A"] == [
        ("192.0.2.1",)
    ]
    # Nothing is reverted on the target that took the update.
    assert FakeBackend.served(healthy.id) == {ZONE: failed.serial}
    assert FakeBackend.served(broken.id) == {ZONE: zone.serial}
    rows = _rows(zone.id)
    behind = rows[broken.id]
    assert (behind.status, behind.serial) == (objects.Status.ERROR, zone.serial)
    assert "injected failure of update" in (behind.error or "")
    kept = rows[healthy.id]
    assert (kept.status, kept.serial) == (objects.Status.PENDING, zone.serial)
    assert f"serial {failed.serial} kept (not reverted) but not verified" in (kept.error or "")


@pytest.mark.usefixtures("conductor")
def test_delete_below_threshold_leaves_the_zone_in_error_with_action_delete() -> None:
    healthy, broken = load_pool({}, {"fail": "delete"}, threshold=100).targets
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    assert wait_settled(zone.id).status == objects.Status.ACTIVE

    central_zones.delete_zone(ZONE)
    failed = wait_settled(zone.id)
    assert (failed.status, failed.action) == (objects.Status.ERROR, objects.Action.DELETE)
    assert failed.error is not None and "1 of 2 targets succeeded" in failed.error
    assert stored_reads.get_zone(ZONE).id == zone.id, "the zone is kept for recovery"
    # The delete is not undone where it worked.
    assert FakeBackend.served(healthy.id) == {}
    assert FakeBackend.served(broken.id) == {ZONE: zone.serial}
    rows = _rows(zone.id)
    assert (rows[healthy.id].status, rows[healthy.id].serial) == (
        objects.Status.DELETED,
        failed.serial,
    )
    assert rows[broken.id].status == objects.Status.ERROR
    assert "injected failure of delete" in (rows[broken.id].error or "")


@pytest.mark.usefixtures("conductor")
def test_a_revert_that_cannot_remove_the_zone_records_it_and_still_ends_in_error() -> None:
    sticky, broken = load_pool({"fail": "delete"}, {"fail": "create"}, threshold=100).targets
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")

    failed = wait_settled(zone.id)
    assert (failed.status, failed.action) == (objects.Status.ERROR, objects.Action.CREATE)
    assert FakeBackend.served(sticky.id) == {ZONE: zone.serial}
    row = _rows(zone.id)[sticky.id]
    assert row.status == objects.Status.ERROR
    assert (row.error or "").startswith("created, and could not be removed again:")
