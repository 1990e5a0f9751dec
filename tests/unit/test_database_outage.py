"""A database outage of a moment (a restart, a failover) does not revert a zone job."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.conftest import load_pool, wait_settled
from zoneflow import exceptions, objects
from zoneflow.backends.impl_fake import FakeBackend
from zoneflow.central import api as central
from zoneflow.conductor import persistence
from zoneflow.engine import jobs
from zoneflow.storage import api as storage


def _down_for(calls: int, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function``, failing as an unreachable database does for its first ``calls`` calls."""
    failed = 0

    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal failed
        if failed < calls:
            failed += 1
            raise exceptions.DatabaseUnavailable("the database at test is unreachable")
        return function(*args, **kwargs)

    return call


@pytest.mark.usefixtures("conductor")
def test_a_create_whose_tasks_meet_the_database_down_waits_instead_of_reverting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool = load_pool({}, {})
    # The task on each target, and the status write, find the database down at first.
    monkeypatch.setattr(storage, "get_target_action", _down_for(3, storage.get_target_action))
    monkeypatch.setattr(storage, "set_target_statuses", _down_for(2, storage.set_target_statuses))
    zone = central.create_zone("outage.example", "hostmaster@example.com")

    assert wait_settled(zone.id).status == objects.ACTIVE
    for target in pool.targets:
        assert FakeBackend.served(target.id) == {"outage.example.": zone.serial}
    # The zone's status is written by a task; the job ends a moment later.
    deadline = time.monotonic() + 10
    while (job := jobs.list_jobs(persistence.get_backend())[0]).state != "SUCCESS":
        assert time.monotonic() < deadline, f"the job did not succeed: {job}"
        time.sleep(0.02)
    assert job.attempts == 1
