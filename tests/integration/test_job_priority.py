"""A user's change goes before a backfill: posted first by the relay, claimed first by
the conductors, and the backfill still goes on while changes keep coming.

A pool that gains a target backfills every zone with upkeep jobs
(objects.JobPriority.UPKEEP); a recordset change posts a change's job. The
outbox rows and the board are read as they are, and a conductor running
the backfill on a slow target shows which job it really ran first.
"""

from __future__ import annotations

import itertools
import json
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from taskflow import exceptions as tf_exc
from taskflow.jobs import base as tf_jobs

from tests import support
from tests.integration.conftest import fake_pool_yaml, load_pool, wait_settled
from zoneflow import jobs, objects
from zoneflow.backends.impl_fake import FakeBackend
from zoneflow.central import pools
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.conductor import daemon
from zoneflow.engine import relay as relay_module
from zoneflow.engine.relay import OutboxRelay
from zoneflow.storage import db, models
from zoneflow.storage import outbox as stored_outbox
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import status as stored_status
from zoneflow.taskflow_adapter import jobboard, persistence

ZONES = [f"zone{i}.priority.example." for i in range(30)]


@pytest.fixture(autouse=True)
def _backfill_at_once(override: Callable[..., None]) -> None:
    # Every backfill row is released within a few milliseconds: the relay's and
    # the board's order alone decide what goes first.
    override("central", backfill_jobs_per_second=10000)
    override("flows", target_retry_delay=0)
    # Nor the board's room for upkeep (test_upkeep_waits_for_room_on_the_board).
    override("conductor", max_upkeep_jobs=0)


def _active_zones(names: list[str] = ZONES) -> list[objects.Zone]:
    """Zones on a pool of one fake target, ACTIVE as if their create jobs had run."""
    load_pool({})
    zones = [central_zones.create_zone(name, "hostmaster@example.com") for name in names]
    for job in stored_outbox.claim_pending_jobs(limit=len(names)):
        stored_outbox.remove_pending_job(job.id)
    for zone in zones:
        stored_status.set_zone_status(zone.id, serial=zone.serial, status=objects.Status.ACTIVE)
    return zones


def _grow_pool(*added: dict[str, object]) -> None:
    """A target added to the pool: every zone gets its backfill row, released at once."""
    (update,) = pools.store(pools.parse(fake_pool_yaml({}, *added)))
    assert update.backfill == len(ZONES)
    support.eventually(
        lambda: _released() == len(ZONES), 10, what="every backfill row to be released"
    )


def _released() -> int:
    """Outbox rows any relay may claim now."""
    outbox = models.JobOutbox
    with db.reader() as session:
        return int(
            session.scalar(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(
                    sa.or_(outbox.claimed_until.is_(None), outbox.claimed_until <= models.utcnow())
                )
            )
            or 0
        )


def _released_last() -> str:
    """The zone whose outbox row is released last."""
    outbox = models.JobOutbox
    with db.reader() as session:
        return str(
            session.scalars(
                sa.select(outbox.zone_id).order_by(outbox.claimed_until.desc()).limit(1)
            ).one()
        )


def _change(zone: objects.Zone, name: str = "www") -> objects.Zone:
    """A user's change to ``zone`` (a recordset created); the zone after it."""
    central_recordsets.create_recordset(zone.id, name, "A", ["192.0.2.1"])
    return stored_reads.get_zone(zone.id)


def _job(job_id: str) -> tuple[str, str | None]:
    job = jobs.get_job(persistence.get_backend(), job_id)
    return job.kind, job.zone_id


def test_a_change_is_posted_before_the_backfill_rows_queued_ahead_of_it(
    board: Any, override: Callable[..., None]
) -> None:
    # Jobs of two zones: a claim takes ten jobs' worth of backfill rows, 20 of the 30.
    override("conductor", upkeep_batch_zones=2)
    zones = _active_zones()
    _grow_pool({})
    changed = _change(zones[-1])

    relay = OutboxRelay(board, persistence.get_backend())
    posted = relay.flush()

    assert _job(posted[0]) == (objects.JobKind.UPDATE_ZONE, changed.id)
    # The backfill goes on beside it, a claim's share at a time, in batches.
    assert [_job(p)[0] for p in posted[1:]] == [objects.JobKind.RECOVER_ZONES] * 10
    assert _zones_carried(posted[1:]) == 20
    assert support.count_pending_jobs() == len(ZONES) - 20


def _zones_carried(job_ids: list[str]) -> int:
    return sum(len(jobs.get_job(persistence.get_backend(), j).zones) for j in job_ids)


def test_backfill_goes_on_while_changes_keep_coming(board: Any) -> None:
    zones = _active_zones()
    _grow_pool({})
    relay = OutboxRelay(board, persistence.get_backend())
    relay.changes_per_claim = 3
    names = (f"host{i}" for i in itertools.count())

    backfilled = 0
    for flush in range(3):
        # More changes than a claim takes, before every flush: the outbox never
        # runs out of changes, and the backfill still gets its share of each claim.
        # Zones not changed before: a change to a zone whose update waits on the
        # board rides on it (zoneflow.storage.outbox) and posts no job.
        for zone in zones[5 * flush : 5 * flush + 5]:
            _change(zone, next(names))
        posted = relay.flush()
        kinds = [_job(p)[0] for p in posted]
        # The claim's three changes first, in one job (update-zones), then the backfill.
        assert kinds[0] == objects.JobKind.UPDATE_ZONES, f"flush {flush}: {kinds}"
        assert len(jobs.get_job(persistence.get_backend(), posted[0]).zones) == 3
        assert set(kinds[1:]) <= {objects.JobKind.RECOVER_ZONES}, f"flush {flush}: {kinds}"
        backfilled += _zones_carried(posted[1:])

    assert backfilled == len(ZONES)
    assert support.count_pending_jobs() == 3 * 5 - 3 * 3, "only changes wait"


def test_upkeep_waits_for_room_on_the_board_and_goes_on_as_each_job_ends(
    board: Any, override: Callable[..., None]
) -> None:
    """[conductor] max_upkeep_jobs: the relay keeps that many backfill jobs on the board,
    the rest released but waiting in the outbox; a change is not held back by them;
    and each backfill job that ends makes room for the next, the relay woken for it."""
    override("conductor", upkeep_batch_zones=5, max_upkeep_jobs=2)
    zones = _active_zones()
    _grow_pool({})
    relay = OutboxRelay(board, persistence.get_backend(), interval=3600)

    first = relay.flush()
    assert [_job(p)[0] for p in first] == [objects.JobKind.RECOVER_ZONES] * 2
    assert support.count_pending_jobs() == len(ZONES) - 10
    changed = _change(zones[-1])
    (posted,) = relay.flush()
    assert _job(posted) == (objects.JobKind.UPDATE_ZONE, changed.id), "the change goes at once"

    # Each backfill job taken off the board: the relay (whose own look is an hour
    # away) is woken and posts the next, never more than two on the board.
    relay.start()
    try:
        for left in range(len(ZONES) - 10, 0, -5):
            (done, *_) = [j for j in board.iterjobs() if j.priority in jobboard.UPKEEP]
            board.claim(done, "test")
            board.consume(done, "test")
            support.eventually(
                lambda left=left: support.count_pending_jobs() == left - 5,
                what=f"the next backfill job posted ({left} zones waiting)",
            )
            assert len(jobboard.upkeep_on(board)) <= 2
    finally:
        relay.stop()
    assert len(jobboard.upkeep_on(board)) == 2


def test_an_upkeep_job_on_the_board_for_long_holds_no_other_upkeep_back(
    board: Any, override: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backfill job no conductor gets through (its target does not answer, its
    conductor is gone) no longer counts after relay.STUCK seconds: the other pools'
    upkeep goes on."""
    override("conductor", upkeep_batch_zones=5, max_upkeep_jobs=1)
    _active_zones()
    _grow_pool({})
    relay = OutboxRelay(board, persistence.get_backend())
    assert len(relay.flush()) == 1
    assert relay.flush() == []
    monkeypatch.setattr(relay_module, "STUCK", 0.0)
    assert [_job(p)[0] for p in relay.flush()] == [objects.JobKind.RECOVER_ZONES]


@pytest.fixture
def one_job_at_a_time(override: Callable[..., None]) -> Iterator[daemon.Conductor]:
    """A conductor that runs one job at a time, not started yet."""
    override("conductor", max_jobs=1)
    conductor = daemon.Conductor("one-at-a-time")
    yield conductor
    conductor.stop()


def test_a_change_is_run_before_the_backfill_jobs_posted_ahead_of_it(
    board: Any, one_job_at_a_time: daemon.Conductor, override: Callable[..., None]
) -> None:
    # A job a zone, so that how many ran first says which job went when.
    override("conductor", batch_zones=1, upkeep_batch_zones=1)
    zones = _active_zones()
    # The added target takes 0.2 s a call: the backfill lasts 6 s, one job at a time.
    _grow_pool({"delay": 0.2})
    relay = OutboxRelay(board, persistence.get_backend())
    while relay.flush():
        pass
    assert support.count_pending_jobs() == 0, "every backfill job is on the board"
    one_job_at_a_time.start()
    support.eventually(
        lambda: sum(stored_reads.get_zone(z.id).status == "ACTIVE" for z in zones) >= 1,
        20,
        what="the backfill to start",
    )

    changed = _change(zones[-1])  # the zone whose backfill job was posted last
    relay.flush()

    def served() -> bool:
        zone = stored_reads.get_zone(changed.id)
        return zone.serial == changed.serial and zone.status == objects.Status.ACTIVE

    support.eventually(served, 20, interval=0.02, what="the change to be ACTIVE")
    waiting = sum(stored_reads.get_zone(z.id).status == "PENDING" for z in zones[:-1])
    # The job running when the change was posted ends first, and maybe one more
    # claimed before the change reached the board; the rest wait behind the change.
    assert waiting >= len(ZONES) - 5, f"{waiting} backfill jobs left when the change ran"


def test_one_claim_in_five_takes_the_oldest_job_while_changes_keep_coming() -> None:
    client = jobboard.client()
    board = jobboard.connect(persistence.get_backend(), name="conductor", client=client)
    # Jobs are posted on the view's own board, which lists them at once.
    view = jobboard.ClaimableJobs(board, client=client, running=lambda: (), on_change=lambda: None)
    for i in range(3):
        view.post(f"upkeep-{i}", priority=tf_jobs.JobPriority.LOW)
    changes = (f"change-{i}" for i in itertools.count())

    claimed = []
    try:
        for _ in range(15):
            # A new change on the board before every look: never a moment without one.
            view.post(next(changes), priority=tf_jobs.JobPriority.HIGH)
            claimed.append(_claim_first(view))
    finally:
        jobboard.close(board, client)

    kinds = [name.split("-")[0] for name in claimed]
    assert kinds == ["change"] * 4 + ["upkeep"] + ["change"] * 4 + ["upkeep"] + ["change"] * 4 + [
        "upkeep"
    ], claimed
    assert [name for name in claimed if name.startswith("upkeep")] == [
        "upkeep-0",
        "upkeep-1",
        "upkeep-2",
    ]


def _claim_first(view: jobboard.ClaimableJobs) -> str:
    """Claim the first job the view lists that can be claimed, as a conductor's loop
    does, and take it off the board; its name."""
    for job in view.iterjobs():
        try:
            view.claim(job, "test")
        except (tf_exc.UnclaimableJob, tf_exc.NotFound):
            continue  # consumed a moment ago, its node not yet seen gone
        view.consume(job, "test")
        return str(job.name)
    raise AssertionError("no job the view listed could be claimed")


def test_a_change_that_overtakes_a_zones_backfill_creates_the_zone_on_the_added_target(
    tmp_path: pathlib.Path, board: Any, override: Callable[..., None]
) -> None:
    calls = tmp_path / "calls.jsonl"
    load_pool({"record_file": str(calls)})
    # The test posts the jobs itself (below), so that the outbox rows it reads stay put.
    override("conductor", relay=False)
    conductor = daemon.Conductor("backfill")
    conductor.start()
    relay = OutboxRelay(board, persistence.get_backend())
    try:
        zones = [central_zones.create_zone(name, "hostmaster@example.com") for name in ZONES[:2]]
        relay.flush()
        assert {wait_settled(z.id).status for z in zones} == {objects.Status.ACTIVE}
        # One backfill row is released now, the other ten seconds later (a batch of one).
        override("central", backfill_jobs_per_second=0.1)
        override("conductor", batch_zones=1, upkeep_batch_zones=1)
        (update,) = pools.store(
            pools.parse(fake_pool_yaml({"record_file": str(calls)}, {"record_file": str(calls)}))
        )
        (added,) = update.added_targets
        late = next(z for z in zones if z.id == _released_last())
        changed = _change(late)
        relay.flush()

        def served() -> bool:
            return FakeBackend.served(added.id).get(late.name) == changed.serial

        support.eventually(served, 20, interval=0.02, what="the change on the added target")
        assert wait_settled(late.id).status == objects.Status.ACTIVE
    finally:
        conductor.stop()
    # Not an update of a zone the target never had: the change creates it there.
    assert (added.id, "create", late.name) in _calls(calls)
    assert (added.id, "update", late.name) not in _calls(calls)
    assert support.count_pending_jobs() == 1, "the late zone's backfill row still waits"


def _calls(path: pathlib.Path) -> list[tuple[str, str, str]]:
    """The calls fake targets with ``record_file: path`` completed: (target, op, zone)."""
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [(c["target"], c["op"], c["zone"]) for c in lines]


def test_a_conductor_keeps_slots_free_for_changes_while_it_runs_upkeep() -> None:
    client = jobboard.client()
    board = jobboard.connect(persistence.get_backend(), name="conductor", client=client)
    running: set[str] = set()  # what the conductor runs: claimed, not finished
    view = jobboard.ClaimableJobs(
        board, client=client, running=lambda: running, on_change=lambda: None, upkeep_slots=2
    )
    try:
        for i in range(5):
            view.post(f"upkeep-{i}", priority=tf_jobs.JobPriority.LOW)

        def claim_all() -> list[Any]:
            claimed = []
            for job in view.iterjobs():
                try:
                    view.claim(job, "test")
                except (tf_exc.UnclaimableJob, tf_exc.NotFound):
                    continue  # claimed at an earlier look
                running.add(job.uuid)
                claimed.append(job)
            return claimed

        first = claim_all()
        assert [job.name for job in first] == ["upkeep-0", "upkeep-1"]
        # Two backfill jobs run: a change is still claimed at once, no more upkeep.
        view.post("change-0", priority=tf_jobs.JobPriority.HIGH)
        assert [job.name for job in claim_all()] == ["change-0"]
        # One backfill job ends: the next one takes its slot.
        view.consume(first[0], "test")
        running.discard(first[0].uuid)
        assert [job.name for job in claim_all()] == ["upkeep-2"]
    finally:
        jobboard.close(board, client)
