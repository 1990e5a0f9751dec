"""A job page's task timings: from when the engine changed each state, not when the
event carrying it was written (the publisher writes later, and merges a job's task
states into one event)."""

from __future__ import annotations

import datetime
from typing import Any

from zoneflow import objects
from zoneflow.dashboard import pages

WRITTEN = datetime.datetime(2026, 12, 5, 1, 0, 0)


def _event(tasks: dict[str, dict[str, Any]], *, written: float, job: str = "job") -> objects.Event:
    return objects.Event(
        id=1,
        topic="task",
        table="tasks",
        key=job,
        action="SUCCESS",
        value={"job_id": job, "tasks": tasks},
        project_id=None,
        zone_id=None,
        publisher="conductor",
        created_at=WRITTEN + datetime.timedelta(seconds=written),
    )


def test_timings_come_from_the_engines_state_changes() -> None:
    running = {"state": "RUNNING", "started_at": "2026-12-05T01:00:00.100000+00:00"}
    shown = pages.timings(
        "job",
        [
            _event({"create": running | {"changed_at": running["started_at"]}}, written=0.5),
            _event(
                {"create": running | {"state": "SUCCESS", "changed_at": "2026-12-05T01:00:00.35Z"}},
                written=0.9,
            ),
        ],
    )
    assert shown["create"].seconds == 0.25


def test_a_task_that_began_and_ended_between_two_events_is_timed_from_one() -> None:
    poll = {
        "state": "SUCCESS",
        "started_at": "2026-12-05T01:00:01+00:00",
        "changed_at": "2026-12-05T01:00:03.5+00:00",
    }
    shown = pages.timings("job", [_event({"poll": poll}, written=4.0)])
    assert shown["poll"].seconds == 2.5
    assert shown["poll"].started == WRITTEN + datetime.timedelta(seconds=1)


def test_a_task_whose_times_are_missing_is_timed_by_when_its_events_were_written() -> None:
    shown = pages.timings(
        "job",
        [
            _event({"poll": {"state": "RUNNING", "started_at": "not a time"}}, written=1.0),
            _event({"poll": {"state": "SUCCESS"}}, written=3.5),
        ],
    )
    assert shown["poll"].seconds == 2.5


def test_another_jobs_tasks_are_left_out() -> None:
    done = {"state": "SUCCESS", "started_at": None, "changed_at": "2026-12-05T01:00:01+00:00"}
    assert pages.timings("job", [_event({"poll": done}, written=1.0, job="other")]) == {}
