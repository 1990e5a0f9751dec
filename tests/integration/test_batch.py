"""Under load one job carries the creates, the updates or the deletes of several zones
of one pool (create-zones, update-zones, delete-zones: zoneflow.flows.batch), each
zone with its own job's semantics (create-zone, update-zone, delete-zone)."""

from __future__ import annotations

import contextlib
import datetime
import json
import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import dns.message
import pytest
import sqlalchemy as sa
from taskflow import exceptions as tf_exc
from taskflow import states
from taskflow.persistence import models

from tests import support
from tests.integration.conftest import BoardDown, fake_pool_yaml, load_pool, wait_settled
from zoneflow import events, exceptions, jobs, objects
from zoneflow.backends.impl_fake import FakeBackend
from zoneflow.central import jobs as central_jobs
from zoneflow.central import pools
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.conductor import daemon
from zoneflow.config import CONF
from zoneflow.engine import relay as relay_module
from zoneflow.engine.relay import OutboxRelay
from zoneflow.flows import batch
from zoneflow.jobs import posting, steps
from zoneflow.storage import catalogs as stored_catalogs
from zoneflow.storage import db, tables
from zoneflow.storage import models as stored_models
from zoneflow.storage import outbox as stored_outbox
from zoneflow.storage import status as stored_status
from zoneflow.taskflow_adapter import persistence

NAMES = ["a.batch.example.", "b.batch.example.", "c.batch.example."]


@pytest.fixture
def idle_conductor() -> Iterator[daemon.Conductor]:
    """A conductor on the zake board, not started yet."""
    conductor = daemon.Conductor("batch")
    yield conductor
    conductor.stop()


@pytest.fixture
def batches_of_three(override: Callable[..., None]) -> None:
    override("conductor", batch_zones=3)


def _updated_zones(
    *targets: dict[str, object], projects: tuple[str | None, ...] = (None, None, None)
) -> tuple[list[objects.PoolTarget], dict[str, int]]:
    """Zones ACTIVE as if their create jobs had run, then each updated: zone id -> serial."""
    pool = load_pool(*targets)
    zones = _active_zones(NAMES, projects)
    return list(pool.targets), {zone.id: _update(zone.id) for zone in zones}


def _active_zones(
    names: list[str], projects: tuple[str | None, ...] | None = None
) -> list[objects.Zone]:
    """Zones of the pool loaded, ACTIVE as if their create jobs had run."""
    zones = [
        central_zones.create_zone(name, "hostmaster@batch.example", project_id=project)
        for name, project in zip(names, projects or (None,) * len(names), strict=True)
    ]
    for pending in stored_outbox.claim_pending_jobs():
        stored_outbox.remove_pending_job(pending.id)
    for zone in zones:
        stored_status.set_zone_status(zone.id, serial=zone.serial, status=objects.Status.ACTIVE)
    return zones


def _update(zone_id: str) -> int:
    """A recordset created in the zone: its new serial."""
    return central_recordsets.create_recordset(zone_id, "www", "A", ["192.0.2.1"]).serial


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
    # 'job show': the failing target's step says why, for the zone that failed there.
    (job_id,) = [
        j.id for j in jobs.list_jobs(persistence.get_backend()) if j.kind == "update-zones"
    ]
    # Once the job is over: the zones' statuses are written before the job's last
    # step is stored.
    job = support.eventually(
        lambda: (j := jobs.get_job(persistence.get_backend(), job_id)).state in jobs.OVER and j,
        what="the batch to end",
    )
    atoms = {a.name: a for a in job.atoms}
    on_bad = atoms[steps.on_target(objects.Action.UPDATE, bad.id).name]
    assert on_bad.error is not None and "injected failure of b.batch.example." in on_bad.error
    assert atoms[steps.on_target(objects.Action.UPDATE, good.id).name].error is None


def test_a_zone_goes_once_in_a_batch_and_its_second_row_in_the_next_job() -> None:
    """Two rows of one zone of one kind (upkeep rows ride on nothing) never make one
    job carry the zone twice: its record of zones would refuse the second."""
    load_pool({})
    first, second = _created_zones(NAMES[:2])
    update = objects.JobKind.UPDATE_ZONE
    rows = [
        objects.PendingJob(n, update, zone.id, zone.serial + n)
        for n, zone in enumerate([first, second, first, second, first])
    ]

    grouped = posting.group_changes(rows, size=10)

    assert [[row.id for row in job] for job in grouped] == [[0, 1], [2, 3], [4]]


def test_upkeep_rows_go_in_jobs_of_their_own_size() -> None:
    """[conductor] upkeep_batch_zones: nobody waits on each zone of a backfill, so its
    jobs carry more zones than a job of users' changes."""
    load_pool({})
    zones = _created_zones([f"z{i}.batch.example." for i in range(6)])
    rows = [
        objects.PendingJob(n, objects.JobKind.UPDATE_ZONE, zone.id, zone.serial + 1)
        for n, zone in enumerate(zones)
    ] + [
        objects.PendingJob(
            10 + n,
            objects.JobKind.RECOVER_ZONE,
            zone.id,
            zone.serial,
            priority=objects.JobPriority.UPKEEP,
        )
        for n, zone in enumerate(zones)
    ]

    grouped = posting.group_changes(rows, size=2, upkeep_size=4)

    assert [[row.id for row in job] for job in grouped] == [
        [0, 1],
        [2, 3],
        [4, 5],
        [10, 11, 12, 13],
        [14, 15],
    ]


@pytest.mark.usefixtures("batches_of_three")
def test_a_batch_that_took_a_zone_twice_is_posted_carrying_it_once(
    board: Any, idle_conductor: daemon.Conductor
) -> None:
    """Before a batch took each zone once, a relay could group two rows of a zone;
    the post failed on the batch's record of zones, and the rows kept the batch's id,
    to be grouped as that batch again at every try. Such rows go out now as one job
    carrying each zone once, and every zone of it settles."""
    _, serials = _updated_zones({})
    first = next(iter(serials))
    stuck = str(uuid.uuid4())
    with db.writer() as session:
        (row,) = session.execute(
            sa.select(stored_models.JobOutbox).where(stored_models.JobOutbox.zone_id == first)
        ).scalars()
        # Upkeep's row of the same zone, riding on nothing; then the batch they all got.
        session.execute(
            sa.insert(stored_models.JobOutbox).values(
                kind=row.kind, zone_id=first, serial=row.serial, priority=row.priority
            )
        )
        session.execute(sa.update(stored_models.JobOutbox).values(batch=stuck))
    backend = persistence.get_backend()

    assert OutboxRelay(board, backend).flush() == [stuck]

    job = jobs.get_job(backend, stuck)
    assert sorted(zone.id for zone in job.zones) == sorted(serials)
    idle_conductor.start()
    for zone_id, serial in serials.items():
        settled = wait_settled(zone_id)
        assert (settled.status, settled.serial) == (objects.Status.ACTIVE, serial)
    assert support.count_pending_jobs() == 0


def _created_zones(names: list[str]) -> list[objects.Zone]:
    """Zones created, their create jobs waiting in the outbox."""
    return [central_zones.create_zone(name, "hostmaster@batch.example") for name in names]


def _created_batch_settled(
    board: Any, conductor: daemon.Conductor
) -> tuple[list[objects.Zone], dict[str, objects.Zone]]:
    """NAMES created, posted as one create-zones job and run by ``conductor``: the zones
    as created, and each as it settled, by name."""
    zones = _created_zones(NAMES)
    _posted_alone(board, objects.JobKind.CREATE_ZONES)
    conductor.start()
    return zones, {zone.name: wait_settled(zone.id) for zone in zones}


# A batch of NAMES whose second zone failed.
SECOND_FAILED = {
    NAMES[0]: objects.Status.ACTIVE,
    NAMES[1]: objects.Status.ERROR,
    NAMES[2]: objects.Status.ACTIVE,
}


def _posted_alone(board: Any, kind: objects.JobKind) -> jobs.JobInfo:
    """The one job a relay posts for what waits in the outbox: of ``kind``."""
    backend = persistence.get_backend()
    (job_id,) = OutboxRelay(board, backend).flush()
    job = jobs.get_job(backend, job_id)
    assert job.kind == kind
    return job


@pytest.mark.usefixtures("batches_of_three")
def test_creates_of_zones_of_one_pool_go_in_one_job(
    board: Any, idle_conductor: daemon.Conductor
) -> None:
    targets = load_pool({}, {}).targets
    zones = _created_zones(NAMES)
    # An update made while the create waits rides on it, in the batch too.
    serial = _update(zones[1].id)
    job = _posted_alone(board, objects.JobKind.CREATE_ZONES)
    assert [z.name for z in job.zones] == NAMES

    idle_conductor.start()
    serials = {zones[0].name: zones[0].serial, NAMES[1]: serial, NAMES[2]: zones[2].serial}
    for zone in zones:
        settled = wait_settled(zone.id)
        assert (settled.status, settled.action) == (objects.Status.ACTIVE, objects.Action.NONE)
        assert settled.serial == serials[zone.name]
        rows = stored_status.list_target_status(zone.id)
        assert sorted((r.target_id, r.serial, r.status) for r in rows) == sorted(
            (t.id, serials[zone.name], objects.Status.ACTIVE) for t in targets
        )
    for target in targets:
        assert FakeBackend.served(target.id) == serials


@pytest.mark.usefixtures("batches_of_three")
def test_a_create_below_the_threshold_is_removed_again_and_the_others_of_its_batch_go_on(
    board: Any, idle_conductor: daemon.Conductor
) -> None:
    good, bad = load_pool({}, {"fail_zones": NAMES[1]}).targets
    zones, settled = _created_batch_settled(board, idle_conductor)
    # What create-zone's revert leaves: the zone ERROR, its action kept for a
    # recovery, and removed again from the target that got it.
    _second_created_then_removed(settled, zones, good, bad)


@pytest.mark.usefixtures("batches_of_three")
def test_a_target_that_never_answers_is_tried_for_one_zone_of_a_batch_not_each(
    board: Any, idle_conductor: daemon.Conductor
) -> None:
    good, dead = load_pool({}, {"fail": "create", "unreachable": True}, threshold=50).targets
    zones, settled = _created_batch_settled(board, idle_conductor)

    # Every zone is ACTIVE at the pool's threshold of 50 %, served by the other target.
    assert {z.status for z in settled.values()} == {objects.Status.ACTIVE}
    assert FakeBackend.served(good.id) == {z.name: z.serial for z in zones}
    # The first zone's every try found the target silent; the others were not tried.
    assert FakeBackend._failures[(dead.id, "create")] == CONF.flows.target_attempts
    assert FakeBackend.served(dead.id) == {}
    errors = {
        zone.name: str(row.error)
        for zone in zones
        for row in stored_status.list_target_status(zone.id)
        if row.target_id == dead.id
    }
    assert "injected no answer to create" in errors[NAMES[0]]
    for name in NAMES[1:]:
        assert errors[name].startswith(f"not tried: the target did not answer for {NAMES[0]}")


def _second_created_then_removed(
    settled: dict[str, objects.Zone],
    zones: list[objects.Zone],
    good: objects.PoolTarget,
    bad: objects.PoolTarget,
) -> None:
    """NAMES' second zone left as a failed create: ERROR with its action kept, and
    removed again from ``good``, which ``bad`` (failing it) never served; the others
    ACTIVE on both."""
    assert {name: z.status for name, z in settled.items()} == SECOND_FAILED
    failed = settled[NAMES[1]]
    assert failed.action == objects.Action.CREATE
    assert "1 of 2 targets succeeded" in str(failed.error)
    expected = {NAMES[0]: zones[0].serial, NAMES[2]: zones[2].serial}
    assert FakeBackend.served(good.id) == FakeBackend.served(bad.id) == expected
    rows = {r.target_id: r for r in stored_status.list_target_status(failed.id)}
    assert rows[good.id].status == objects.Status.ERROR
    assert "created, then removed again" in str(rows[good.id].error)
    assert "injected failure of b.batch.example." in str(rows[bad.id].error)


@pytest.mark.usefixtures("batches_of_three")
def test_a_batch_s_end_is_published_for_each_zone_it_carries(
    board: Any, idle_conductor: daemon.Conductor
) -> None:
    """A subscriber to any zone of a batch sees the job end; its tasks' states are
    published under the zone its record names (its first)."""
    load_pool({})
    zones = _created_zones(NAMES)
    second_zone = events.subscribe(objects.EventFilter(zone_id=zones[1].id, topics=_JOB))
    every_job = events.subscribe(objects.EventFilter(topics=frozenset({"job", "task"})))
    job = _posted_alone(board, objects.JobKind.CREATE_ZONES)
    idle_conductor.start()

    (end,) = support.eventually(
        lambda: second_zone.next(timeout=1), what="the batch's end, for its second zone"
    )
    assert (end.key, end.action) == (f"{job.id}/{zones[1].id}", "SUCCESS")
    assert end.value["kind"] == objects.JobKind.CREATE_ZONES
    seen: list[objects.Event] = []
    support.eventually(
        lambda: seen.extend(every_job.next(timeout=1)) or _ends(seen) == len(NAMES),
        what=lambda: f"an end for each zone in {seen}",
    )
    assert {e.zone_id for e in seen if e.topic == "job"} == {z.id for z in zones}
    assert {e.zone_id for e in seen if e.topic == "task"} == {zones[0].id}


_JOB = frozenset({"job"})


def _ends(seen: list[objects.Event]) -> int:
    return sum(1 for e in seen if e.topic == "job")


def test_a_zone_whose_delete_is_asked_while_its_batch_creates_it_is_taken_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (target,) = load_pool({}).targets
    racing, calm = _created_zones(NAMES[:2])
    create_zone = FakeBackend.create_zone

    def slow_create(self: FakeBackend, what: objects.Zone) -> None:
        # While the target works on the create, the user deletes the zone and
        # the delete job removes it from the target (there is nothing yet).
        if what.name == racing.name:
            central_zones.delete_zone(racing.name)
            self.delete_zone(what)
        create_zone(self, what)

    monkeypatch.setattr(FakeBackend, "create_zone", slow_create)
    zones = {z.id: [z.name, z.serial] for z in (racing, calm)}
    outcomes = batch.ZonesOnTarget(objects.Action.CREATE, target.id).execute(zones)
    assert FakeBackend.served(target.id) == {racing.name: racing.serial, calm.name: calm.serial}

    taken_back = batch.TakeBackBatch([target.id]).execute(
        zones, **{steps.target_result(target.id): outcomes}
    )
    assert taken_back == {racing.id: [target.id]}
    assert FakeBackend.served(target.id) == {calm.name: calm.serial}


def _zones_served(names: list[str]) -> tuple[list[objects.PoolTarget], list[objects.Zone]]:
    """Zones ACTIVE and on every target of a pool of two, as if created: the targets, the zones."""
    targets = list(load_pool({}, {}).targets)
    zones = _active_zones(names)
    for target in targets:
        for zone in zones:
            FakeBackend(target).create_zone(zone)
    return targets, zones


@pytest.mark.usefixtures("batches_of_three")
def test_deletes_of_zones_of_one_pool_go_in_one_job(
    board: Any, idle_conductor: daemon.Conductor
) -> None:
    targets, zones = _zones_served(NAMES)
    for zone in zones:
        central_zones.delete_zone(zone.name)
    job = _posted_alone(board, objects.JobKind.DELETE_ZONES)
    assert [z.name for z in job.zones] == NAMES

    idle_conductor.start()
    for zone in zones:
        assert wait_settled(zone.id).status == objects.Status.DELETED
    for target in targets:
        assert FakeBackend.served(target.id) == {}


@pytest.mark.usefixtures("batches_of_three")
def test_a_delete_below_the_threshold_stays_asked_for_and_the_others_of_its_batch_go_on(
    board: Any, idle_conductor: daemon.Conductor, monkeypatch: pytest.MonkeyPatch
) -> None:
    (good, bad), zones = _zones_served(NAMES)
    delete_zone = FakeBackend.delete_zone

    def refuse_one(self: FakeBackend, what: objects.Zone) -> None:
        if self.target.id == bad.id and what.name == NAMES[1]:
            raise exceptions.BackendError(self.target.label, f"injected failure of {what.name}")
        delete_zone(self, what)

    monkeypatch.setattr(FakeBackend, "delete_zone", refuse_one)
    for zone in zones:
        central_zones.delete_zone(zone.name)
    _posted_alone(board, objects.JobKind.DELETE_ZONES)

    idle_conductor.start()
    settled = {zone.name: wait_settled(zone.id) for zone in zones}
    assert settled[NAMES[0]].status == settled[NAMES[2]].status == objects.Status.DELETED
    # What delete-zone's revert leaves: nothing undone, the zone ERROR, its
    # delete still asked for (a recovery finishes it).
    failed = settled[NAMES[1]]
    assert (failed.status, failed.action) == (objects.Status.ERROR, objects.Action.DELETE)
    assert FakeBackend.served(good.id) == {}
    assert FakeBackend.served(bad.id) == {NAMES[1]: zones[1].serial}
    rows = {r.target_id: r.status for r in stored_status.list_target_status(failed.id)}
    assert rows == {good.id: objects.Status.DELETED, bad.id: objects.Status.ERROR}


def test_one_zone_a_job_when_batches_are_off(board: Any, override: Callable[..., None]) -> None:
    """``[conductor] batch_zones`` is 1: every zone's update has its own update-zone job."""
    override("conductor", batch_zones=1)
    _updated_zones({})
    posted = OutboxRelay(board, persistence.get_backend()).flush()
    kinds = [jobs.get_job(persistence.get_backend(), j).kind for j in posted]
    assert kinds == [objects.JobKind.UPDATE_ZONE] * 3


@pytest.mark.usefixtures("batches_of_three")
def test_a_batch_is_found_by_each_zone_it_carries(board: Any) -> None:
    """``job list --zone``, ``GET /v2/jobs?zone_id=`` and ``--progress`` find a zone's
    job whether the zone is its batch's first or not."""
    _, serials = _updated_zones({})
    backend = persistence.get_backend()
    (job_id,) = OutboxRelay(board, backend).flush()

    job = jobs.get_job(backend, job_id)
    assert job.zones == tuple(
        jobs.JobZone(zone_id, name, serials[zone_id])
        for name, zone_id in zip(NAMES, serials, strict=True)
    )
    for name, (zone_id, serial) in zip(NAMES, serials.items(), strict=True):
        by_id = jobs.find_jobs(backend, jobs.JobFilter(zone_id=zone_id), objects.Paging(10))
        by_name = jobs.find_jobs(backend, jobs.JobFilter(zone_name=name), objects.Paging(10))
        assert [j.id for j in by_id.items] == [j.id for j in by_name.items] == [job_id]
        assert jobs.find_job(backend, name, serial, [objects.JobKind.UPDATE_ZONE]) == job_id
        assert jobs.find_job(backend, name, serial + 1, [objects.JobKind.UPDATE_ZONE]) is None


@pytest.mark.usefixtures("batches_of_three")
def test_a_batch_given_up_puts_every_zone_it_carries_in_error(board: Any) -> None:
    _, serials = _updated_zones({})
    backend = persistence.get_backend()
    (job_id,) = OutboxRelay(board, backend).flush()

    jobs.fail(backend, job_id, "given up after 3 attempts")
    for zone_id, serial in serials.items():
        zone = central_zones.get_zone(zone_id)
        assert (zone.status, zone.serial) == (objects.Status.ERROR, serial)
        assert zone.error == "given up after 3 attempts"


@pytest.mark.usefixtures("batches_of_three")
def test_a_purged_batch_leaves_no_zone_pointing_at_it(board: Any) -> None:
    _, serials = _updated_zones({})
    backend = persistence.get_backend()
    (job_id,) = OutboxRelay(board, backend).flush()
    jobs.fail(backend, job_id, "given up")

    assert jobs.purge(backend, older_than=datetime.timedelta(0)) == 1
    with db.connection() as conn:
        assert conn.execute(sa.select(tables.job_zones)).all() == []
    for name, serial in zip(NAMES, serials.values(), strict=True):
        assert jobs.find_job(backend, name, serial, [objects.JobKind.UPDATE_ZONE]) is None


@pytest.mark.usefixtures("batches_of_three")
def test_one_job_carries_zones_of_one_project(board: Any) -> None:
    """Whoever may see a job may see every zone it carries (a project's job list)."""
    _, serials = _updated_zones({}, projects=("p1", "p2", "p1"))
    backend = persistence.get_backend()
    posted = OutboxRelay(board, backend).flush()

    carried = sorted([z.name for z in jobs.get_job(backend, j).zones] for j in posted)
    assert carried == [[NAMES[0], NAMES[2]], [NAMES[1]]]
    found = central_jobs.find_jobs({}, objects.Paging(10), project_id="p2").items
    assert [[z.name for z in job.info.zones] for job in found] == [[NAMES[1]]]


@pytest.mark.usefixtures("batches_of_three")
def test_a_batch_lost_with_its_board_before_it_began_runs_again(board: Any) -> None:
    """An all-in-one restarting takes back the jobs its board lost. A batch that
    had not begun carries the updates made since (they rode on it): it runs
    again, though its zones are at later serials than it was posted with."""
    _, serials = _updated_zones({})
    backend = persistence.get_backend()
    (job_id,) = OutboxRelay(board, backend).flush()
    for zone_id in serials:
        central_recordsets.create_recordset(zone_id, "mail", "A", ["192.0.2.2"])
    assert OutboxRelay(board, backend).flush() == []  # they rode on the batch

    _lose_every_job(board)
    (taken,) = jobs.take_back_unfinished(board, backend)
    assert (taken[0].id, taken[1]) == (job_id, "PENDING")
    assert [posted.book_uuid for posted in board.iterjobs(ensure_fresh=True)] == [job_id]


@pytest.mark.usefixtures("batches_of_three")
def test_a_batch_lost_after_it_began_is_superseded_once_every_zone_moved_on(
    board: Any,
) -> None:
    """Once begun, a batch brings each zone to the serial its begin read; a zone's
    later update has a job of its own. Taken back, the batch runs again while
    one zone still needs it, and is SUPERSEDED once none does."""
    targets, serials = _updated_zones({})
    backend = persistence.get_backend()
    (job_id,) = OutboxRelay(board, backend).flush()
    began = batch.BeginBatch(objects.Action.UPDATE, [t.id for t in targets]).execute(
        list(serials), list(serials.values())
    )
    _stored_done(backend, job_id, steps.BEGIN.name, began)
    first, second, third = serials
    for zone_id in (first, second):
        central_recordsets.create_recordset(zone_id, "mail", "A", ["192.0.2.2"])

    _lose_every_job(board)
    (taken,) = jobs.take_back_unfinished(board, backend)
    assert (taken[0].id, taken[1]) == (job_id, "PENDING")

    _lose_every_job(board)
    central_recordsets.create_recordset(third, "mail", "A", ["192.0.2.2"])
    (taken,) = jobs.take_back_unfinished(board, backend)
    assert (taken[0].id, taken[1]) == (job_id, jobs.Outcome.SUPERSEDED)
    assert "carried by a newer job" in str(jobs.get_job(backend, job_id).error)


@pytest.mark.usefixtures("batches_of_three")
def test_a_batch_whose_post_failed_is_posted_again_as_the_same_job(board: Any) -> None:
    """A relay whose post fails after the job's logbook is written gives the rows
    back; the next relay posts them as that same job, whatever else it claims
    with them. Regrouped into a new job (the chaos test found it), the first
    logbook stayed PENDING for good."""
    backend = persistence.get_backend()
    _, serials = _updated_zones({})
    failing = OutboxRelay(BoardDown(board), backend)
    failing.changes_per_claim = 2
    with pytest.raises(tf_exc.JobFailure):
        failing.flush()
    (first,) = jobs.list_jobs(backend)
    assert [z.name for z in first.zones] == NAMES[:2]

    _posted_again_first(board, backend, first.id)


@pytest.mark.usefixtures("batches_of_three")
def test_a_change_whose_post_failed_alone_is_posted_again_alone(board: Any) -> None:
    """A change whose job was written alone, then not posted, goes out again as that
    job, never in a batch with changes claimed with it later: the batch would carry
    it beside its first job, left waiting for good (the chaos test found it)."""
    backend = persistence.get_backend()
    _updated_zones({})
    failing = OutboxRelay(BoardDown(board), backend)
    failing.changes_per_claim = 1
    with pytest.raises(tf_exc.JobFailure):
        failing.flush()
    (first,) = jobs.list_jobs(backend)
    assert first.kind == objects.JobKind.UPDATE_ZONE

    _posted_again_first(board, backend, first.id)


def _posted_again_first(board: Any, backend: Any, first_id: str) -> None:
    """The next relay posts job ``first_id`` again first, with the other changes in
    jobs of their own: every job written is on the board, every zone carried once."""
    posted = OutboxRelay(board, backend).flush()
    assert posted[0] == first_id
    on_board = {str(job.book_uuid) for job in board.iterjobs(ensure_fresh=True)}
    assert on_board == {job.id for job in jobs.list_jobs(backend)} == set(posted)
    carried = sorted(z.name for j in posted for z in jobs.get_job(backend, j).zones)
    assert carried == NAMES


def _stored_done(backend: Any, job_id: str, step: str, result: Any) -> None:
    """Record in job ``job_id``'s logbook that ``step`` ran with ``result``, as a
    conductor that then died would have left it."""
    with contextlib.closing(backend.get_connection()) as connection:
        book = connection.get_logbook(job_id)
        flow = next(iter(book))
        atom = models.TaskDetail(step, uuid.uuid4().hex)
        atom.state, atom.results = states.SUCCESS, result
        flow.add(atom)
        connection.save_logbook(book)


def _lose_every_job(board: Any) -> None:
    """Take every job off the board, its logbook left as it is: what a zake board
    loses with its process."""
    for posted in list(board.iterjobs(ensure_fresh=True)):
        board.claim(posted, "gone")
        board.consume(posted, "gone")


def test_past_max_change_jobs_changes_wait_for_a_job_to_end_then_go_together(
    board: Any, override: Callable[..., None]
) -> None:
    override("conductor", max_change_jobs=1)
    override("central", backfill_jobs_per_second=10000)
    load_pool({})
    first, *others, idle = _active_zones([*NAMES, "d.batch.example.", "idle.batch.example."])
    backend = persistence.get_backend()
    relay = OutboxRelay(board, backend, interval=3600)
    _update(first.id)
    (alone,) = relay.flush()  # the board had room: posted at once, alone
    assert [z.id for z in jobs.get_job(backend, alone).zones] == [first.id]

    serials = {zone.id: _update(zone.id) for zone in others}
    assert relay.flush() == [], "the board holds max_change_jobs jobs of changes"
    assert support.count_pending_jobs() == 3
    # Upkeep is not held back: a target added to the pool gets its backfill (of the
    # zone not PENDING: the others' jobs will find the pool grown).
    pools.store(pools.parse(fake_pool_yaml({}, {})))
    (backfill,) = relay.flush()
    assert jobs.get_job(backend, backfill).zone_id == idle.id

    # The first job ends: the relay (its thread waits an hour between looks) is
    # woken by the board and posts the three waiting zones in one job.
    relay.start()
    try:
        (job,) = [j for j in board.iterjobs() if j.book_uuid == alone]
        board.claim(job, "test")
        board.consume(job, "test")
        batch = support.eventually(
            lambda: next(
                (j for j in jobs.list_jobs(backend) if j.kind == objects.JobKind.UPDATE_ZONES),
                None,
            ),
            what="the waiting changes posted in one job",
        )
    finally:
        relay.stop()
    assert {(z.id, z.serial) for z in batch.zones} == set(serials.items())
    assert support.count_pending_jobs() == 0


def test_the_apis_relay_posts_while_the_board_is_quiet_and_leaves_the_rest_to_a_conductors(
    board: Any, override: Callable[..., None]
) -> None:
    """As ``zoneflow api`` makes its relay ([api] relay_max_change_jobs, upkeep left to
    the conductors): a change goes at once while no job of changes is on the board;
    past that it stays in the outbox, unclaimed, and so does upkeep, until a
    conductor's relay takes them all, the changes in one job."""
    override("central", backfill_jobs_per_second=10000)
    load_pool({})
    first, *others, idle = _active_zones([*NAMES, "d.batch.example.", "idle.batch.example."])
    backend = persistence.get_backend()
    api_relay = OutboxRelay(board, backend, max_change_jobs=1, upkeep=False)
    _update(first.id)
    (alone,) = api_relay.flush()
    assert [z.id for z in jobs.get_job(backend, alone).zones] == [first.id]

    serials = {zone.id: _update(zone.id) for zone in others}
    pools.store(pools.parse(fake_pool_yaml({}, {})))  # a new target: the idle zone's backfill
    assert api_relay.flush() == []
    with db.connection() as conn:
        outbox = stored_models.JobOutbox
        leased = conn.execute(
            sa.select(sa.func.count()).where(
                outbox.priority == objects.JobPriority.CHANGE,
                outbox.posted.is_(sa.false()),
                outbox.claimed_until.is_not(None),
            )
        ).scalar_one()
    assert leased == 0, "the API's relay leased changes it does not post"

    posted = OutboxRelay(board, backend).flush()
    made = [jobs.get_job(backend, job_id) for job_id in posted]
    assert {(z.id, z.serial) for j in made for z in j.zones if z.id != idle.id} == set(
        serials.items()
    )
    assert [j.kind for j in made if any(z.id != idle.id for z in j.zones)] == [
        objects.JobKind.UPDATE_ZONES
    ]
    assert any(z.id == idle.id for j in made for z in j.zones), "the backfill is posted too"
    assert support.count_pending_jobs() == 0


def test_a_job_of_changes_on_the_board_for_long_holds_no_change_back(
    board: Any, override: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    override("conductor", max_change_jobs=1)
    load_pool({})
    first, second = _active_zones(NAMES[:2])
    relay = OutboxRelay(board, persistence.get_backend())
    _update(first.id)
    assert len(relay.flush()) == 1
    _update(second.id)
    assert relay.flush() == []
    # No conductor runs the first job: once it has been on the board for
    # relay.STUCK seconds, it no longer counts.
    monkeypatch.setattr(relay_module, "STUCK", 0.0)
    (posted,) = relay.flush()
    assert [z.id for z in jobs.get_job(persistence.get_backend(), posted).zones] == [second.id]


class NotifyRecorder(support.UdpResponder):
    """Answers every NOTIFY and records what it named (zone, serial)."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, int]] = []
        super().__init__()

    def answer(self, message: dns.message.Message) -> dns.message.Message:
        serial = message.answer[0][0].serial if message.answer else 0
        self.heard.append((message.question[0].name.to_text(), serial))
        return dns.message.make_response(message)


@pytest.mark.usefixtures("batches_of_three")
def test_a_batch_of_creates_notifies_each_target_of_its_catalog_once(
    board: Any, idle_conductor: daemon.Conductor
) -> None:
    catalog = "catalog.batch.example."
    recorders = [NotifyRecorder(), NotifyRecorder()]
    try:
        targets = ", ".join(
            f"{{type: fake, description: fake{i}, options: {{host: 127.0.0.1, port: {r.port}}}}}"
            for i, r in enumerate(recorders)
        )
        support.store_pools(
            pools.parse(
                "- name: default\n"
                "  ns_records: [{hostname: ns1.example.org., priority: 1}]\n"
                f"  targets: [{targets}]\n"
                f"  catalog_zone: {{catalog_zone_fqdn: {catalog}}}\n"
                "  provisioning: catalog\n"
            )
        )
        zones = _created_zones(NAMES)
        _posted_alone(board, objects.JobKind.CREATE_ZONES)

        idle_conductor.start()
        for zone in zones:
            assert wait_settled(zone.id).status == objects.Status.ACTIVE
        newest = stored_catalogs.get_catalog(zones[0].pool_id)
        assert newest is not None
        # Three zones joined the catalog: one NOTIFY of it at its newest serial, to each.
        for recorder in recorders:
            assert recorder.heard == [(catalog, newest.serial)]
    finally:
        for recorder in recorders:
            recorder.close()


def _calls(record: pathlib.Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


@pytest.mark.usefixtures("batches_of_three")
def test_a_backend_that_batches_gets_a_batchs_creates_in_one_call(
    board: Any, idle_conductor: daemon.Conductor, tmp_path: pathlib.Path
) -> None:
    record = tmp_path / "calls.jsonl"
    (target,) = load_pool({"batches": True, "record_file": str(record)}).targets
    zones, settled = _created_batch_settled(board, idle_conductor)
    assert {zone.status for zone in settled.values()} == {objects.Status.ACTIVE}
    assert FakeBackend.served(target.id) == {zone.name: zone.serial for zone in zones}
    # One call carried the three creates.
    assert sorted((c["zone"], c["batch"]) for c in _calls(record)) == [(n, 3) for n in NAMES]


@pytest.mark.usefixtures("batches_of_three")
def test_a_batch_call_refused_for_one_zone_makes_the_others_one_by_one(
    board: Any, idle_conductor: daemon.Conductor, tmp_path: pathlib.Path
) -> None:
    record = tmp_path / "calls.jsonl"
    (target,) = load_pool(
        {"batches": True, "fail_zones": NAMES[1], "record_file": str(record)}
    ).targets
    zones, settled = _created_batch_settled(board, idle_conductor)
    # The server refused the whole call; alone, only the zone it refuses fails.
    assert {name: zone.status for name, zone in settled.items()} == SECOND_FAILED
    assert "injected failure of b.batch.example." in (settled[NAMES[1]].error or "")
    assert FakeBackend.served(target.id) == {z.name: z.serial for z in zones if z.name != NAMES[1]}
    assert sorted((c["zone"], c["batch"]) for c in _calls(record)) == [(NAMES[0], 1), (NAMES[2], 1)]


@pytest.mark.usefixtures("batches_of_three")
def test_a_backend_that_batches_gets_a_batchs_deletes_in_one_call(
    board: Any, idle_conductor: daemon.Conductor, tmp_path: pathlib.Path
) -> None:
    record = tmp_path / "calls.jsonl"
    (target,) = load_pool({"batches": True, "record_file": str(record)}).targets
    zones = _active_zones(NAMES)
    FakeBackend(target).create_zones(zones)
    for zone in zones:
        central_zones.delete_zone(zone.name)
    _posted_alone(board, objects.JobKind.DELETE_ZONES)

    idle_conductor.start()
    for zone in zones:
        assert wait_settled(zone.id).status == objects.Status.DELETED
    assert FakeBackend.served(target.id) == {}
    deletes = [(c["zone"], c["batch"]) for c in _calls(record) if c["op"] == "delete"]
    assert sorted(deletes) == [(name, 3) for name in NAMES]


# --- recover-zones ----------------------------------------------------------------------


@pytest.fixture
def conductor_without_relay(override: Callable[..., None]) -> Iterator[daemon.Conductor]:
    """A conductor not started yet, without a relay of its own, and batches of three:
    the test posts each job (_posted_alone, as a relay would)."""
    override("conductor", batch_zones=3, relay=False)
    conductor = daemon.Conductor("batch")
    yield conductor
    conductor.stop()


def _recovered(names: list[str]) -> None:
    for name in names:
        central_zones.recover_zone(name)


def test_recoveries_of_zones_of_one_pool_go_in_one_job_that_acts_only_where_needed(
    tmp_path: pathlib.Path,
    board: Any,
    conductor_without_relay: daemon.Conductor,
    override: Callable[..., None],
) -> None:
    override("flows", target_retry_delay=0)
    healthy_calls, broken_calls = tmp_path / "healthy.jsonl", tmp_path / "broken.jsonl"
    # The broken target fails every try of the first batch's creates (3 zones, 3 tries
    # each), then works; at a threshold of 50 % the zones are ACTIVE without it.
    healthy, broken = load_pool(
        {"record_file": str(healthy_calls)},
        {"record_file": str(broken_calls), "fail": "create", "fail_times": 9},
        threshold=50,
    ).targets
    zones = _created_zones(NAMES)
    _posted_alone(board, objects.JobKind.CREATE_ZONES)
    conductor_without_relay.start()
    for zone in zones:
        assert wait_settled(zone.id).status == objects.Status.ACTIVE
        assert {r.target_id: r.status for r in stored_status.list_target_status(zone.id)} == {
            healthy.id: objects.Status.ACTIVE,
            broken.id: objects.Status.ERROR,
        }

    _recovered(NAMES)
    job = _posted_alone(board, objects.JobKind.RECOVER_ZONES)
    assert sorted(z.name for z in job.zones) == NAMES

    for zone in zones:
        settled = wait_settled(zone.id)
        assert (settled.status, settled.action, settled.error) == (
            objects.Status.ACTIVE,
            objects.Action.NONE,
            None,
        )
        assert sorted(
            (r.target_id, r.status, r.serial) for r in stored_status.list_target_status(zone.id)
        ) == sorted((t.id, objects.Status.ACTIVE, zone.serial) for t in (healthy, broken))
    expected = {zone.name: zone.serial for zone in zones}
    assert FakeBackend.served(broken.id) == FakeBackend.served(healthy.id) == expected
    # The target that had the zones got no second call; the other, one create each.
    assert [(c["op"], c["zone"]) for c in _calls(healthy_calls)] == [("create", n) for n in NAMES]
    assert sorted((c["op"], c["zone"]) for c in _calls(broken_calls)) == [
        ("create", n) for n in NAMES
    ]


def test_a_zone_failing_its_recovery_fails_alone_and_a_zone_never_active_is_undone(
    tmp_path: pathlib.Path,
    board: Any,
    conductor_without_relay: daemon.Conductor,
) -> None:
    calls = tmp_path / "good.jsonl"
    good, bad = load_pool({"record_file": str(calls)}, {"fail_zones": NAMES[1]}).targets
    zones = _created_zones(NAMES)
    _posted_alone(board, objects.JobKind.CREATE_ZONES)
    conductor_without_relay.start()
    assert {z.name: wait_settled(z.id).status for z in zones} == SECOND_FAILED
    made = len(_calls(calls))  # the three creates, and the failed zone's removal

    _recovered(NAMES)
    _posted_alone(board, objects.JobKind.RECOVER_ZONES)

    # Recovered as the create it still is, and undone as one: off the good target.
    _second_created_then_removed({z.name: wait_settled(z.id) for z in zones}, zones, good, bad)
    # The zones already served everywhere were left alone.
    assert [(c["op"], c["zone"]) for c in _calls(calls)[made:]] == [
        ("create", NAMES[1]),
        ("delete", NAMES[1]),
    ]


def test_the_recovery_of_a_zone_whose_delete_was_asked_goes_alone(
    board: Any, conductor_without_relay: daemon.Conductor
) -> None:
    # The second target fails the first delete's every try, then works.
    targets = load_pool({}, {"fail": "delete", "fail_times": 3}).targets
    zones = _created_zones(NAMES)
    _posted_alone(board, objects.JobKind.CREATE_ZONES)
    conductor_without_relay.start()
    assert {wait_settled(z.id).status for z in zones} == {objects.Status.ACTIVE}
    central_zones.delete_zone(NAMES[1])
    _posted_alone(board, objects.JobKind.DELETE_ZONE)
    left = wait_settled(zones[1].id)
    assert (left.status, left.action) == (objects.Status.ERROR, objects.Action.DELETE)

    _recovered(NAMES)
    posted = OutboxRelay(board, persistence.get_backend()).flush()
    carried = {
        (job.kind, tuple(sorted(z.name for z in job.zones)))
        for job in (jobs.get_job(persistence.get_backend(), j) for j in posted)
    }
    assert carried == {
        (objects.JobKind.RECOVER_ZONES, (NAMES[0], NAMES[2])),
        (objects.JobKind.RECOVER_ZONE, (NAMES[1],)),
    }
    assert wait_settled(zones[1].id).status == objects.Status.DELETED
    assert {wait_settled(z.id).status for z in (zones[0], zones[2])} == {objects.Status.ACTIVE}
    for target in targets:
        assert FakeBackend.served(target.id) == {
            NAMES[0]: zones[0].serial,
            NAMES[2]: zones[2].serial,
        }
