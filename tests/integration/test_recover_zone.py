"""The recover-zone flow on the fake backend: a zone in ERROR, or with a target
behind, is brought to its stored state, and targets already there are left alone.

Fake targets have no nameserver to ask, so recovery decides from their rows;
a ``record_file`` counts the backend calls each target really received.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

import pytest

from tests.integration.conftest import load_pool, wait_settled
from zoneflow import exceptions, objects
from zoneflow.backends.impl_fake import FakeBackend
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import status as stored_status

ZONE = "example.com."
# A target that fails the first job's every try (3 by default), then works.
FAILS_ONCE = 3


@pytest.fixture(autouse=True)
def _fast_retries(override: Callable[..., None]) -> None:
    override("flows", target_retry_delay=0)


def _calls(path: pathlib.Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["op"] for line in path.read_text().splitlines()]


def _rows(zone_id: str) -> dict[str, objects.TargetStatus]:
    return {row.target_id: row for row in stored_status.list_target_status(zone_id)}


@pytest.mark.usefixtures("conductor")
def test_recover_creates_the_zone_on_the_target_that_missed_it_only(
    tmp_path: pathlib.Path,
) -> None:
    calls = tmp_path / "healthy.jsonl"
    healthy, broken = load_pool(
        {"record_file": str(calls)},
        {"fail": "create", "fail_times": FAILS_ONCE},
        threshold=50,
    ).targets
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    assert wait_settled(zone.id).status == objects.Status.ACTIVE
    assert _rows(zone.id)[broken.id].status == objects.Status.ERROR
    healthy_row = _rows(zone.id)[healthy.id]

    recovering = central_zones.recover_zone(ZONE)
    assert (recovering.status, recovering.serial) == (objects.Status.PENDING, zone.serial)
    recovered = wait_settled(zone.id)

    assert (recovered.status, recovered.action, recovered.error) == (
        objects.Status.ACTIVE,
        objects.Action.NONE,
        None,
    )
    assert FakeBackend.served(broken.id) == {ZONE: zone.serial}
    rows = _rows(zone.id)
    assert (rows[broken.id].status, rows[broken.id].serial, rows[broken.id].error) == (
        objects.Status.ACTIVE,
        zone.serial,
        None,
    )
    assert _calls(calls) == ["create"], "the healthy target got no second call"
    assert rows[healthy.id] == healthy_row, "nor was its row rewritten"


@pytest.mark.usefixtures("conductor")
def test_recover_after_a_reverted_create_creates_the_zone_everywhere() -> None:
    targets = load_pool({}, {"fail": "create", "fail_times": FAILS_ONCE}).targets
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    assert wait_settled(zone.id).status == objects.Status.ERROR

    central_zones.recover_zone(ZONE)
    assert wait_settled(zone.id).status == objects.Status.ACTIVE
    for target in targets:
        assert FakeBackend.served(target.id) == {ZONE: zone.serial}
    assert {(r.status, r.serial) for r in stored_status.list_target_status(zone.id)} == {
        (objects.Status.ACTIVE, zone.serial)
    }


@pytest.mark.usefixtures("conductor")
def test_recover_pushes_an_update_that_fell_below_the_threshold() -> None:
    targets = load_pool({}, {"fail": "update", "fail_times": FAILS_ONCE}).targets
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    wait_settled(zone.id)
    central_recordsets.create_recordset(ZONE, "www", "A", ["192.0.2.1"])
    failed = wait_settled(zone.id)
    assert failed.status == objects.Status.ERROR

    central_zones.recover_zone(ZONE)
    recovered = wait_settled(zone.id)
    assert (recovered.status, recovered.action) == (objects.Status.ACTIVE, objects.Action.NONE)
    for target in targets:
        assert FakeBackend.served(target.id) == {ZONE: failed.serial}
    assert {(r.status, r.serial) for r in stored_status.list_target_status(zone.id)} == {
        (objects.Status.ACTIVE, failed.serial)
    }
    assert {rs.status for rs in stored_reads.list_recordsets(zone.id)} == {objects.Status.ACTIVE}


@pytest.mark.usefixtures("conductor")
def test_recover_finishes_a_delete_that_fell_below_the_threshold() -> None:
    targets = load_pool({}, {"fail": "delete", "fail_times": FAILS_ONCE}).targets
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    wait_settled(zone.id)
    central_zones.delete_zone(ZONE)
    assert wait_settled(zone.id).action == objects.Action.DELETE

    central_zones.recover_zone(ZONE)
    assert wait_settled(zone.id).status == objects.Status.DELETED
    for target in targets:
        assert FakeBackend.served(target.id) == {}
    assert stored_reads.list_zones() == []


@pytest.mark.usefixtures("conductor")
def test_a_recovery_still_below_the_threshold_says_why_and_undoes_its_creates() -> None:
    healthy, broken = load_pool({}, {"fail": "create"}).targets
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    wait_settled(zone.id)

    central_zones.recover_zone(ZONE)
    failed = wait_settled(zone.id)
    assert (failed.status, failed.action) == (objects.Status.ERROR, objects.Action.CREATE)
    assert failed.error is not None and "1 of 2 targets succeeded" in failed.error
    # A zone never made ACTIVE is taken off again, as its create was.
    assert FakeBackend.served(healthy.id) == {}
    rows = _rows(zone.id)
    assert (rows[healthy.id].error or "").startswith("created, then removed again:")
    assert "injected failure of create" in (rows[broken.id].error or "")


def test_a_zone_whose_job_is_still_running_is_not_recovered() -> None:
    load_pool({})
    central_zones.create_zone(ZONE, "hostmaster@example.com")  # PENDING: no conductor runs
    with pytest.raises(exceptions.ZoneBusy, match="has a job in progress"):
        central_zones.recover_zone(ZONE)
