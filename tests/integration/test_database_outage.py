"""A database outage of a moment (a restart, a failover) does not revert a zone job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import load_pool, wait_settled
from tests.support import eventually
from zoneflow import exceptions, jobs, objects
from zoneflow.backends.impl_fake import FakeBackend
from zoneflow.central import zones as central_zones
from zoneflow.storage import status as stored_status
from zoneflow.storage import targets as stored_targets
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import persistence


class _DownFor:
    """``function``, failing as an unreachable database does for its first ``failures`` calls."""

    def __init__(self, failures: int, function: Callable[..., Any]) -> None:
        self.failures = failures
        self.function = function
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise exceptions.DatabaseUnavailable("the database at test is unreachable")
        return self.function(*args, **kwargs)


@pytest.mark.usefixtures("conductor")
def test_a_create_whose_tasks_meet_the_database_down_waits_instead_of_reverting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool = load_pool({}, {})
    # Each read and write of the job finds the database down at first: the
    # begin task's read of the targets, the targets' tasks' check that the
    # zone was not deleted meanwhile, and the status write.
    outages = {
        (module, name): _DownFor(failures, getattr(module, name))
        for module, name, failures in (
            (stored_targets, "get_target_actions", 3),
            (stored_zones, "zone_wanted_gone", 2),
            (stored_status, "settle_zones", 2),
        )
    }
    for (module, name), outage in outages.items():
        monkeypatch.setattr(module, name, outage)
    zone = central_zones.create_zone("outage.example", "hostmaster@example.com")

    assert wait_settled(zone.id).status == objects.Status.ACTIVE
    for target in pool.targets:
        assert FakeBackend.served(target.id) == {"outage.example.": zone.serial}
    for (_, name), outage in outages.items():
        assert outage.calls > outage.failures, f"{name} was not tried again after the outage"
    # The zone's status is written by a task; the job ends a moment later.
    job = eventually(
        lambda: (job := jobs.list_jobs(persistence.get_backend())[0]).state == "SUCCESS" and job,
        10,
        what=lambda: f"the job to succeed: {jobs.list_jobs(persistence.get_backend())[0]}",
    )
    assert job.attempts == 1
