"""Zone flows on the fake backend, run by a real conductor over the zake jobboard."""

from __future__ import annotations

import pytest

from tests.unit.conftest import load_fake_pool as _load
from tests.unit.conftest import settled as _settled
from zoneflow import objects
from zoneflow.backends.impl_fake import FakeBackend
from zoneflow.central import api as central
from zoneflow.storage import api as storage


@pytest.mark.usefixtures("conductor")
def test_create_zone_reaches_every_target_and_goes_active() -> None:
    pool = _load({}, {})
    zone = central.create_zone("example.com", "hostmaster@example.com")
    assert _settled(zone.id).status == objects.ACTIVE
    for target in pool.targets:
        assert FakeBackend.served(target.id) == {"example.com.": zone.serial}
    assert {(s.status, s.serial) for s in storage.list_target_status(zone.id)} == {
        (objects.ACTIVE, zone.serial)
    }


@pytest.mark.usefixtures("conductor")
def test_create_zone_reverts_when_below_threshold() -> None:
    pool = _load({}, {"fail": "create"}, threshold=100)
    zone = central.create_zone("example.com", "hostmaster@example.com")
    settled = _settled(zone.id)
    assert settled.status == objects.ERROR
    assert settled.error is not None and "1 of 2 targets succeeded" in settled.error
    healthy, broken = pool.targets
    assert FakeBackend.served(healthy.id) == {}, "the revert removed the zone again"
    assert FakeBackend.served(broken.id) == {}


@pytest.mark.usefixtures("conductor")
def test_create_zone_succeeds_at_threshold_with_the_failed_target_in_error() -> None:
    pool = _load({}, {"fail": "create"}, threshold=50)
    zone = central.create_zone("example.com", "hostmaster@example.com")
    assert _settled(zone.id).status == objects.ACTIVE
    rows = {s.target_id: s for s in storage.list_target_status(zone.id)}
    healthy, broken = pool.targets
    assert rows[healthy.id].status == objects.ACTIVE
    assert rows[broken.id].status == objects.ERROR
    assert rows[broken.id].error


@pytest.mark.usefixtures("conductor")
def test_a_target_that_fails_twice_then_works_is_retried() -> None:
    pool = _load({"fail": "create", "fail_times": 2})
    zone = central.create_zone("example.com", "hostmaster@example.com")
    assert _settled(zone.id).status == objects.ACTIVE
    assert FakeBackend.served(pool.targets[0].id) == {"example.com.": zone.serial}


@pytest.mark.usefixtures("conductor")
def test_delete_zone_removes_it_from_every_target_and_frees_the_name() -> None:
    pool = _load({}, {})
    zone = central.create_zone("example.com", "hostmaster@example.com")
    _settled(zone.id)
    central.delete_zone("example.com")
    assert _settled(zone.id).status == objects.DELETED
    for target in pool.targets:
        assert FakeBackend.served(target.id) == {}
    assert storage.list_zones() == []


@pytest.mark.usefixtures("conductor")
def test_a_failed_delete_leaves_the_zone_in_error_for_another_try() -> None:
    _load({"fail": "delete"})
    zone = central.create_zone("example.com", "hostmaster@example.com")
    _settled(zone.id)
    central.delete_zone("example.com")
    failed = _settled(zone.id)
    assert (failed.status, failed.action) == (objects.ERROR, objects.DELETE)
    assert storage.get_zone("example.com").id == zone.id


@pytest.mark.usefixtures("conductor")
def test_only_the_newest_job_sets_the_zone_status() -> None:
    _load({"delay": 0.2})
    zone = central.create_zone("example.com", "hostmaster@example.com")
    for i in range(3):
        central.create_recordset("example.com", f"h{i}", "A", [f"192.0.2.{i}"])
    newest = storage.get_zone(zone.id).serial
    settled = _settled(zone.id)
    assert settled.status == objects.ACTIVE
    assert settled.serial == newest
    assert {rs.status for rs in storage.list_recordsets(zone.id)} == {objects.ACTIVE}
