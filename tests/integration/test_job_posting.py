"""Posting a job: a post the board refuses leaves nothing behind but the outbox row."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from taskflow import exceptions as tf_exc
from taskflow import storage as tf_storage

from tests import support
from tests.integration.conftest import BoardDown, load_pool, wait_settled
from zoneflow import exceptions, flows, jobs, objects
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.conductor import daemon
from zoneflow.engine.relay import OutboxRelay
from zoneflow.storage import outbox as stored_outbox
from zoneflow.taskflow_adapter import jobboard, persistence


@pytest.mark.parametrize("ridden", [False, True], ids=["alone", "an-update-rode-on-it"])
def test_a_job_whose_post_failed_half_way_is_posted_again_under_the_same_id(
    ridden: bool,
) -> None:
    load_pool({}, {})
    zone = central_zones.create_zone("refused.example", "hostmaster@example.com")
    backend = persistence.get_backend()
    board = jobboard.connect(backend)
    try:
        # The logbook is written, the board refuses the job (or the relay dies).
        with pytest.raises(tf_exc.JobFailure):
            OutboxRelay(BoardDown(board), backend).flush()
        (written,) = jobs.list_jobs(backend)
        if ridden:
            # The update rides on the create's row, not posted yet: its serial goes up
            # (with the serial in the job's id, the chaos test found the first logbook
            # left PENDING for good beside a second job).
            central_recordsets.create_recordset(zone.id, "www", "A", ["192.0.2.1"])
        assert support.count_pending_jobs() == 1

        (job_id,) = OutboxRelay(board, backend).flush()
        on_board = [j.book_uuid for j in board.iterjobs(ensure_fresh=True)]
    finally:
        board.close()
    # One job, not a second copy beside one that stays PENDING for good.
    assert job_id == written.id
    assert on_board == [job_id]
    (job,) = jobs.list_jobs(backend)
    assert (job.id, job.zone_id, job.state) == (job_id, zone.id, "PENDING")
    assert support.count_pending_jobs() == 0


def test_a_row_posted_again_after_its_job_reached_the_board_is_not_posted_twice() -> None:
    load_pool({}, {})
    central_zones.create_zone("twice.example", "hostmaster@example.com")
    backend = persistence.get_backend()
    board = jobboard.connect(backend)
    try:
        # A relay posts the job and dies before removing its outbox row;
        # the row's lease runs out and another relay takes it.
        (pending,) = stored_outbox.claim_pending_jobs()
        job_id = jobs.post(board, backend, pending, flow_of=flows.job_flow)
        stored_outbox.release_pending_jobs([pending.id])

        assert OutboxRelay(board, backend).flush() == [job_id]
        on_board = [j.book_uuid for j in board.iterjobs(ensure_fresh=True)]
    finally:
        board.close()
    assert on_board == [job_id]
    assert [j.id for j in jobs.list_jobs(backend)] == [job_id]
    assert support.count_pending_jobs() == 0


def test_a_failed_post_gives_back_every_row_it_had_not_posted_yet() -> None:
    load_pool({}, {})
    for name in ("one.example", "two.example", "three.example"):
        central_zones.create_zone(name, "hostmaster@example.com")
    backend = persistence.get_backend()
    board = jobboard.connect(backend)
    try:
        with pytest.raises(tf_exc.JobFailure):
            OutboxRelay(BoardDown(board), backend).flush()
        # Another relay (the next flush) may post all three at once, without
        # waiting for the failed relay's lease to run out.
        posted = OutboxRelay(board, backend).flush()
        assert _carried(backend, posted) == {"one.example.", "two.example.", "three.example."}
    finally:
        board.close()
    assert support.count_pending_jobs() == 0


@pytest.mark.usefixtures("conductor")
def test_a_job_s_inputs_are_written_with_its_logbook_and_used_as_they_are() -> None:
    load_pool({}, {})
    zone = central_zones.create_zone("inputs.example", "hostmaster@example.com")
    assert wait_settled(zone.id).status == objects.Status.ACTIVE
    backend = persistence.get_backend()
    (job,) = jobs.list_jobs(backend)
    with contextlib.closing(backend.get_connection()) as connection:
        (flow_detail,) = connection.get_logbook(job.id)
    # Posted with the logbook (one write): no conductor has to add them, in
    # two writes a kill could come between, when it first claims the job.
    (inputs,) = [a for a in flow_detail if a.name == tf_storage.Storage.injector_name]
    assert inputs.results == {
        "zone_id": zone.id,
        "serial": zone.serial,
        "if_pool_grows": objects.JobKind.RECOVER_ZONE,  # central's follow-up, carried
        "priority": objects.JobPriority.CHANGE,  # and the priority it goes at
    }


def test_rows_a_relay_could_not_give_back_are_posted_by_it_next_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load_pool({}, {})
    for name in ("one.example", "two.example"):
        central_zones.create_zone(name, "hostmaster@example.com")
    backend = persistence.get_backend()
    board = jobboard.connect(backend)
    relay = OutboxRelay(BoardDown(board), backend)
    try:
        # The post fails, and the database is gone before the rows go back.
        with monkeypatch.context() as down:
            down.setattr(stored_outbox, "release_pending_jobs", _unreachable)
            with pytest.raises(tf_exc.JobFailure):
                relay.flush()
        # Still leased to the relay that claimed them: no other relay takes them yet...
        assert OutboxRelay(board, backend).flush() == []
        # ...but that one posts them at its next flush, not when the lease runs out.
        relay.board = board
        assert _carried(backend, relay.flush()) == {"one.example.", "two.example."}
    finally:
        board.close()
    assert support.count_pending_jobs() == 0


def _carried(backend: Any, job_ids: list[str]) -> set[str]:
    """The names of the zones these jobs carry (several a job, in a batch)."""
    return {zone.name for job_id in job_ids for zone in jobs.get_job(backend, job_id).zones}


def _unreachable(*_: Any) -> None:
    raise exceptions.DatabaseUnavailable("the database at test is unreachable")


def test_a_job_beginning_again_leaves_the_row_of_a_later_job_whose_post_failed(
    board: Any,
) -> None:
    """A resumed job's begin runs again; a later change of its zone may have had its
    job written meanwhile, its post refused: that job is still posted, never left
    PENDING for good with its row gone (the chaos test found it)."""
    zone, first, later = _begun_then_a_later_post_refused(board, "again.example")

    stored_outbox.begin_zone_jobs([zone.id], first)  # the first job's begin, run again
    assert OutboxRelay(board, persistence.get_backend()).flush() == [later]
    assert later in {j.book_uuid for j in board.iterjobs(ensure_fresh=True)}


def test_a_conductor_tells_its_job_s_begin_which_rows_are_its_own(
    board: Any, override: Callable[..., None]
) -> None:
    """The begin of a job run by a conductor leaves the row of another job of its
    zone: the conductor gives the flow the job's id."""
    override("conductor", relay=False)  # nothing posts the other job meanwhile
    _, first, later = _begun_then_a_later_post_refused(board, "own.example")
    backend = persistence.get_backend()

    conductor = daemon.Conductor("own")
    conductor.start()
    try:
        support.eventually(
            lambda: jobs.get_job(backend, first).state in jobs.OVER, what="the first job to end"
        )
    finally:
        conductor.stop()
    assert [p.batch for p in _rows()] == [later]


def _begun_then_a_later_post_refused(board: Any, name: str) -> tuple[objects.Zone, str, str]:
    """A zone whose create job (``first``) is posted and has begun (a run cut short
    after), then a change whose job (``later``) is written but refused by the board."""
    load_pool({}, {})
    zone = central_zones.create_zone(name, "hostmaster@example.com")
    backend = persistence.get_backend()
    (first,) = OutboxRelay(board, backend).flush()
    stored_outbox.begin_zone_jobs([zone.id], first)
    central_recordsets.create_recordset(zone.id, "www", "A", ["192.0.2.1"])
    with pytest.raises(tf_exc.JobFailure):
        OutboxRelay(BoardDown(board), backend).flush()
    (later,) = [j.id for j in jobs.list_jobs(backend) if j.id != first]
    return zone, first, later


def _rows() -> list[objects.PendingJob]:
    """Every outbox row, claimed for a moment and given back."""
    rows = stored_outbox.claim_pending_jobs()
    stored_outbox.release_pending_jobs([p.id for p in rows])
    return rows
