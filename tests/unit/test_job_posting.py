"""Posting a job: a post the board refuses leaves nothing behind but the outbox row."""

from __future__ import annotations

from typing import Any

import pytest
from taskflow import exceptions as tf_exc

from tests.unit.conftest import load_pool
from zoneflow.central import api as central
from zoneflow.conductor import jobboard, persistence
from zoneflow.engine import jobs
from zoneflow.engine.relay import OutboxRelay
from zoneflow.storage import api as storage


class _BoardDown:
    """A board whose ZooKeeper went away while the job was being posted."""

    def __init__(self, board: Any) -> None:
        self._board = board

    def post(self, *args: Any, **kwargs: Any) -> None:
        raise tf_exc.JobFailure("Failed posting job: ConnectionLoss")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._board, name)


def test_a_job_the_board_refused_leaves_no_logbook_and_is_posted_again() -> None:
    load_pool({}, {})
    zone = central.create_zone("refused.example", "hostmaster@example.com")
    backend = persistence.get_backend()
    board = jobboard.connect(backend)
    try:
        with pytest.raises(tf_exc.JobFailure):
            OutboxRelay(_BoardDown(board), backend).flush()
        # No logbook that 'zoneflow job list' would show PENDING for good.
        assert jobs.list_jobs(backend) == []
        assert storage.count_pending_jobs() == 1

        (job_id,) = OutboxRelay(board, backend).flush()
    finally:
        board.close()
    (job,) = jobs.list_jobs(backend)
    assert (job.id, job.zone_id, job.state) == (job_id, zone.id, "PENDING")
    assert storage.count_pending_jobs() == 0


def test_a_failed_post_gives_back_every_row_it_had_not_posted_yet() -> None:
    load_pool({}, {})
    for name in ("one.example", "two.example", "three.example"):
        central.create_zone(name, "hostmaster@example.com")
    backend = persistence.get_backend()
    board = jobboard.connect(backend)
    try:
        with pytest.raises(tf_exc.JobFailure):
            OutboxRelay(_BoardDown(board), backend).flush()
        # Another relay (the next flush) may post all three at once, without
        # waiting for the failed relay's lease to run out.
        assert len(OutboxRelay(board, backend).flush()) == 3
    finally:
        board.close()
    assert storage.count_pending_jobs() == 0
