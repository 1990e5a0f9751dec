"""What every task of a zone flow shares: the base class, waiting out a
database restart, and the words a revert records.

Every task is idempotent, because a resumed job runs the tasks that were in
flight when its conductor died a second time: creating a zone a target
already has succeeds, deleting one it lacks succeeds, and a status write
only ever moves a served serial forward.

Tasks read the zone from storage when they run instead of trusting a
snapshot taken when the job was posted, so a job that runs late acts on
the zone as it is now (a zone deleted meanwhile is not created again).

What a task needs besides the job's inputs reaches it through the flow's
store, injected by the conductor for each run: ``fence`` (the claim the job
runs under, zoneflow.taskflow_adapter.fencing.Claim), ``scratch``
(zoneflow.flows.scratch) and ``job_id`` (the job's own id, for a begin
telling its outbox rows from another job's).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from taskflow import task
from taskflow.types import failure as tf_failure

from zoneflow import exceptions, objects
from zoneflow.flows import options
from zoneflow.jobs import steps

LOG = logging.getLogger(__name__)
CONF = options.CONF


F = TypeVar("F", bound=Callable[..., Any])


def waits_for_database(method: F) -> F:
    """Run a task's method again while the database is unreachable, for a while.

    Failing instead would revert a whole job (remove a created zone from its
    targets again) over a database restart of a second. Running it again is
    safe: tasks are idempotent, as a resumed job runs them again anyway.
    """

    @functools.wraps(method)
    def run(self: task.Task, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + CONF.flows.database_wait
        delay = 0.1
        while True:
            try:
                return method(self, *args, **kwargs)
            except exceptions.DatabaseUnavailable as exc:
                if time.monotonic() + delay > deadline:
                    raise
                LOG.warning("%s waits %.1fs for the database: %s", self.name, delay, exc)
            time.sleep(delay)
            delay = min(2 * delay, 2.0)

    return run  # type: ignore[return-value]


def reason(failures: dict[str, tf_failure.Failure]) -> str:
    """Why a flow failed, from the failures its reverts receive."""
    return "; ".join(str(f.exception_str) for f in failures.values()) or "the job failed"


def in_service(target: objects.PoolTarget | None) -> bool:
    return target is not None and target.retired_at is None


#: What a task of a create, update or delete job is given as ``serial``: the
#: serial its begin read (steps.ZONE_SERIAL), not the one the job was posted with.
LATEST_SERIAL = {"serial": steps.ZONE_SERIAL}


class Task(task.Task):
    """A task of a zone flow, which may run in several jobs at once.

    Its name is its :class:`~zoneflow.jobs.steps.Step`'s, which it keeps as
    ``step`` so that readers of a job's record learn what it was about from
    the flow, never from the name.

    Jobs on one pool shape share their flow's task objects (see
    zoneflow.flows.zone): a task keeps nothing of a run on itself, and it
    reports no progress, because TaskFlow hangs each run's progress listener
    on the task object itself.
    """

    TASK_EVENTS = ()

    def __init__(self, step: steps.Step, **kwargs: Any) -> None:
        super().__init__(name=step.name, **kwargs)
        self.step = step
