"""Old ended jobs' logbooks are purged; waiting and running ones never are."""

from __future__ import annotations

import datetime

import pytest

from tests.integration.conftest import load_pool, wait_settled
from tests.support import eventually
from zoneflow import cli, jobs, objects
from zoneflow.central import zones as central_zones
from zoneflow.engine.relay import OutboxRelay
from zoneflow.taskflow_adapter import jobboard, persistence


def _ids() -> set[str]:
    return {job.id for job in jobs.list_jobs(persistence.get_backend())}


@pytest.mark.usefixtures("conductor")
def test_ended_jobs_are_purged_once_old_enough() -> None:
    load_pool({}, {})
    zone = central_zones.create_zone("old.example", "hostmaster@example.com")
    assert wait_settled(zone.id).status == objects.Status.ACTIVE
    backend = persistence.get_backend()
    # The zone's status is written by a task; the job ends a moment later.
    eventually(lambda: jobs.list_jobs(backend)[0].state == "SUCCESS", 10, what="the job to end")
    assert jobs.purge(backend, older_than=datetime.timedelta(hours=1)) == 0
    assert len(_ids()) == 1
    assert jobs.purge(backend, older_than=datetime.timedelta(0)) == 1
    assert _ids() == set()


def test_a_job_no_conductor_has_run_yet_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    load_pool({}, {})
    central_zones.create_zone("waiting.example", "hostmaster@example.com")
    backend = persistence.get_backend()
    # Posted as the relay posts it, but never run: no conductor here.
    board = jobboard.connect(backend)
    try:
        OutboxRelay(board, backend).flush()
    finally:
        board.close()
    waiting = _ids()
    assert len(waiting) == 1
    assert cli.main(["job", "purge", "--older-than", "0"]) == 0
    assert "purged the logbooks of 0 ended jobs" in capsys.readouterr().out
    assert _ids() == waiting


def test_purge_refuses_a_negative_age(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["job", "purge", "--older-than", "-5"])
    assert "not a number of seconds" in capsys.readouterr().err
