"""A job page's task timings: from when the engine changed each state, not when the
event carrying it was written (the publisher writes later, and coalesces)."""

from __future__ import annotations

import datetime

from zoneflow import objects
from zoneflow.dashboard import pages

WRITTEN = datetime.datetime(2026, 12, 5, 1, 0, 0)


def _event(task: str, state: str, *, changed: str | None, written: float) -> objects.Event:
    value = {"job_id": "job", "task": task, "state": state}
    if changed is not None:
        value["changed_at"] = changed
    return objects.Event(
        id=1,
        topic="task",
        table="tasks",
        key=f"job/{task}",
        action=state,
        value=value,
        project_id=None,
        zone_id=None,
        publisher="conductor",
        created_at=WRITTEN + datetime.timedelta(seconds=written),
    )


def test_timings_come_from_the_engines_state_changes() -> None:
    shown = pages.timings(
        "job",
        [
            _event("create", "RUNNING", changed="2026-12-05T01:00:00.100000+00:00", written=0.5),
            _event("create", "SUCCESS", changed="2026-12-05T01:00:00.350000+00:00", written=0.9),
        ],
    )
    assert shown["create"].seconds == 0.25


def test_events_without_a_change_time_fall_back_to_when_they_were_written() -> None:
    shown = pages.timings(
        "job",
        [
            _event("poll", "RUNNING", changed=None, written=1.0),
            _event("poll", "SUCCESS", changed=None, written=3.5),
        ],
    )
    assert shown["poll"].seconds == 2.5
