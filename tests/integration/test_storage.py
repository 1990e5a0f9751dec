"""Storage: serials, the outbox, status writes and deletes."""

from __future__ import annotations

import concurrent.futures
import time

import pytest

from tests import support
from zoneflow import exceptions, objects
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.storage import outbox as stored_outbox
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import status as stored_status
from zoneflow.storage import targets as stored_targets
from zoneflow.storage import zones as stored_zones

pytestmark = pytest.mark.usefixtures("fake_pool")


def _zone() -> objects.Zone:
    return central_zones.create_zone("example.com", "hostmaster@example.com")


def test_every_change_bumps_the_serial_and_rides_on_the_job_not_begun() -> None:
    """Nothing runs the zone's create here: each update raises the serial its job
    brings the zone to (zoneflow.storage.outbox) instead of writing a job of its own."""
    zone = _zone()
    assert zone.serial >= int(time.time()) - 5
    serials = [zone.serial]
    rs = central_recordsets.create_recordset("example.com", "www", "A", ["192.0.2.1"])
    serials.append(stored_reads.get_zone(zone.id).serial)
    central_recordsets.update_recordset("example.com", rs.id, records=["192.0.2.2"])
    serials.append(stored_reads.get_zone(zone.id).serial)
    central_recordsets.delete_recordset("example.com", rs.id)
    serials.append(stored_reads.get_zone(zone.id).serial)
    assert serials == sorted(set(serials))
    jobs = stored_outbox.claim_pending_jobs()
    assert [(j.kind, j.serial) for j in jobs] == [("create-zone", serials[3])]


def test_a_refused_change_leaves_serial_records_and_outbox_untouched() -> None:
    zone = _zone()
    central_recordsets.create_recordset("example.com", "www", "A", ["192.0.2.1"])
    before = stored_reads.get_zone(zone.id).serial
    pending = support.count_pending_jobs()
    with pytest.raises(exceptions.InvalidRecordSetLocation):
        central_recordsets.create_recordset(
            "example.com", "www", "CNAME", ["elsewhere.example.net."]
        )
    with pytest.raises(exceptions.DuplicateRecordSet):
        central_recordsets.create_recordset("example.com", "www", "A", ["192.0.2.9"])
    assert stored_reads.get_zone(zone.id).serial == before
    assert support.count_pending_jobs() == pending
    assert [rs.records for rs in stored_reads.list_recordsets(zone.id)] == [("192.0.2.1",)]


def test_concurrent_changes_to_one_zone_never_share_a_serial() -> None:
    zone = _zone()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        made = list(
            pool.map(
                lambda i: central_recordsets.create_recordset(
                    "example.com", f"host{i}", "A", [f"192.0.2.{i}"]
                ),
                range(40),
            )
        )
    serials = [rs.serial for rs in made]
    assert len(set(serials)) == 40
    assert stored_reads.get_zone(zone.id).serial == max(serials)
    assert len(stored_reads.list_recordsets(zone.id)) == 40


def test_the_serial_never_goes_back_even_if_the_clock_does(monkeypatch: pytest.MonkeyPatch) -> None:
    zone = _zone()
    monkeypatch.setattr(time, "time", lambda: 1_000_000.0)
    central_recordsets.create_recordset("example.com", "www", "A", ["192.0.2.1"])
    assert stored_reads.get_zone(zone.id).serial == zone.serial + 1


def test_a_job_for_an_old_serial_does_not_set_the_status() -> None:
    zone = _zone()
    central_recordsets.create_recordset("example.com", "www", "A", ["192.0.2.1"])
    assert not stored_status.set_zone_status(
        zone.id, serial=zone.serial, status=objects.Status.ACTIVE
    )
    newest = stored_reads.get_zone(zone.id)
    assert newest.status == objects.Status.PENDING
    assert stored_status.set_zone_status(
        zone.id, serial=newest.serial, status=objects.Status.ACTIVE, action=objects.Action.NONE
    )
    assert stored_reads.get_zone(zone.id).status == objects.Status.ACTIVE
    assert {rs.status for rs in stored_reads.list_recordsets(zone.id)} == {objects.Status.ACTIVE}


def test_a_batch_settles_each_zone_as_alone_and_says_which_were_written() -> None:
    moved_on = central_zones.create_zone("b.example.com", "hostmaster@example.com")
    settled = central_zones.create_zone("a.example.com", "hostmaster@example.com")
    gone = central_zones.create_zone("c.example.com", "hostmaster@example.com")
    central_recordsets.create_recordset("b.example.com", "www", "A", ["192.0.2.1"])
    central_zones.delete_zone("c.example.com")
    deleting = stored_zones.get_zone_any(gone.id)
    target_id = stored_pools.get_pool("default").targets[0].id
    active = objects.Status.ACTIVE

    written = stored_status.settle_zones(
        [
            # Given out of the order of their ids, as a batch may hold them.
            stored_status.Settlement(moved_on.id, serial=moved_on.serial, status=active),
            stored_status.Settlement(
                settled.id,
                serial=settled.serial,
                status=active,
                action=objects.Action.NONE,
                targets=[(target_id, settled.serial, active, None)],
            ),
            stored_status.Settlement(
                gone.id, serial=deleting.serial, status=objects.Status.DELETED, delete=True
            ),
        ]
    )

    assert written == [False, True, True]
    assert stored_reads.get_zone(moved_on.id).status == objects.Status.PENDING
    assert stored_reads.get_zone(settled.id).status == active
    assert [(r.target_id, r.serial) for r in stored_status.list_target_status(settled.id)] == [
        (target_id, settled.serial)
    ]
    assert stored_zones.get_zone_any(gone.id).status == objects.Status.DELETED


def test_a_batch_of_zones_is_settled_in_the_statements_one_zone_takes() -> None:
    """A batch's end writes its zones together: ten zones, their recordsets and their
    targets' rows take the statements one zone does, and each is written as alone."""
    pool = stored_pools.get_pool("default")
    target_id = pool.targets[0].id
    active = objects.Status.ACTIVE

    def settle(names: list[str]) -> tuple[list[objects.Zone], list[str]]:
        zones = [central_zones.create_zone(name, "hostmaster@example.com") for name in names]
        for zone in zones:
            central_recordsets.create_recordset(zone.name, "www", "A", ["192.0.2.1"])
        zones = [stored_reads.get_zone(zone.id) for zone in zones]
        with support.statements_sent() as sent:
            written = stored_status.settle_zones(
                [
                    stored_status.Settlement(
                        zone.id,
                        serial=zone.serial,
                        status=active,
                        action=objects.Action.NONE,
                        covered_targets=[target.id for target in pool.targets],
                        covered_nameservers=[(ns.host, ns.port) for ns in pool.nameservers],
                        targets=[(target_id, zone.serial, active, None)],
                    )
                    for zone in zones
                ]
            )
        assert written == [True] * len(zones)
        return zones, list(sent)

    _, alone = settle(["alone.example.com."])
    zones, together = settle([f"z{i}.example.com." for i in range(10)])

    assert len(together) == len(alone), (alone, together)
    for zone in zones:
        assert stored_reads.get_zone(zone.id).status == active
        assert [rs.status for rs in stored_reads.list_recordsets(zone.id) if rs.type == "A"] == [
            active
        ]
        assert [(r.target_id, r.serial) for r in stored_status.list_target_status(zone.id)] == [
            (target_id, zone.serial)
        ]


def test_a_served_serial_is_never_recorded_as_going_back() -> None:
    zone = _zone()
    target_id = stored_pools.get_pool("default").targets[0].id
    stored_status.set_target_status(zone.id, target_id, serial=10, status=objects.Status.ACTIVE)
    stored_status.set_target_status(zone.id, target_id, serial=5, status=objects.Status.ACTIVE)
    (row,) = stored_status.list_target_status(zone.id)
    assert row.serial == 10


def test_a_deleted_zone_frees_its_name_once_the_delete_job_is_done() -> None:
    zone = _zone()
    deleting = central_zones.delete_zone("example.com")
    assert (deleting.status, deleting.action) == (objects.Status.PENDING, objects.Action.DELETE)
    with pytest.raises(exceptions.ZoneBusy):
        central_recordsets.create_recordset("example.com", "www", "A", ["192.0.2.1"])
    with pytest.raises(exceptions.DuplicateZone):
        central_zones.create_zone("example.com", "hostmaster@example.com")
    assert stored_status.finish_zone_delete(zone.id, serial=deleting.serial)
    with pytest.raises(exceptions.ZoneNotFound):
        stored_reads.get_zone("example.com")
    again = central_zones.create_zone("example.com", "hostmaster@example.com")
    assert again.id != zone.id


def test_a_target_action_reads_zone_target_and_provisioning_together() -> None:
    zone = _zone()
    target = stored_pools.get_pool(zone.pool_id).targets[0]
    wanted = stored_targets.get_target_action(zone.id, target.id)
    assert (wanted.zone, wanted.zone_deleted) == (zone, False)
    assert (wanted.target, wanted.provisioning) == (target, objects.PER_ZONE)
    stored_status.finish_zone_delete(
        zone.id, serial=central_zones.delete_zone("example.com").serial
    )
    gone = stored_targets.get_target_action(zone.id, target.id)
    assert gone.zone is not None and gone.zone_deleted
    # A target gone since the job was posted: the task does nothing there.
    assert stored_targets.get_target_action(zone.id, "nope").target is None


def test_a_batchs_target_actions_give_each_zone_its_targets_as_stored() -> None:
    """One read for every (zone, target) pair; each target as the pool holds it, its
    masters and options included, whichever zone's row it came on."""
    zones = [_zone(), central_zones.create_zone("example.org", "hostmaster@example.org")]
    targets = stored_pools.get_pool(zones[0].pool_id).targets
    found = stored_targets.get_batch_target_actions(
        [zone.id for zone in zones], [target.id for target in targets]
    )
    assert set(found) == {zone.id for zone in zones}
    for zone in zones:
        assert {t: action.target for t, action in found[zone.id].items()} == {
            target.id: target for target in targets
        }
        assert all(action.zone == zone for action in found[zone.id].values())


def test_a_zones_project_is_read_once_in_a_process() -> None:
    """Nothing changes a zone's project once it is made: the job's listeners and the
    status writes ask it again and again, and only the first asking reads storage."""
    zone = _zone()
    with support.statements_sent() as statements:
        first = stored_zones.zone_projects([zone.id, "no-such-zone"])
        read = len(statements)
        again = stored_zones.zone_projects([zone.id])
    assert first == again == {zone.id: zone.project_id}
    assert read > 0 and len(statements) == read  # the second asking read nothing


def test_outbox_rows_are_leased_to_one_relay_at_a_time() -> None:
    _zone()
    first = stored_outbox.claim_pending_jobs()
    assert len(first) == 1
    assert stored_outbox.claim_pending_jobs() == []
    stored_outbox.release_pending_jobs([first[0].id])
    assert stored_outbox.claim_pending_jobs() == first


def test_unknown_pool_is_refused_before_anything_is_written() -> None:
    with pytest.raises(exceptions.PoolNotFound, match="pool 'nope' does not exist"):
        central_zones.create_zone("example.com", "hostmaster@example.com", pool="nope")
    assert stored_reads.list_zones() == []
    assert support.count_pending_jobs() == 0


def test_a_zone_create_reads_its_pools_id_alone() -> None:
    """A create needs its pool's id, by the name or id given (or the default pool's):
    one statement, not the pool's targets, nameservers and records too."""
    pool = stored_pools.get_pool("default")
    with support.statements_sent() as statements:
        by_name = central_zones.create_zone("example.com", "hostmaster@example.com")
        by_id = central_zones.create_zone("example.org", "hostmaster@example.org", pool=pool.id)
    assert by_name.pool_id == by_id.pool_id == pool.id
    parts = ("pool_targets", "pool_nameservers", "pool_ns_records", "pool_also_notifies")
    assert not [s for s in statements if any(f"FROM {part}" in s for part in parts)]
