"""Attempts: what conductors record in a job's logbook about the runs of the job.

How many runs conductors started, which conductor runs it now, the last
error; and how zoneflow ended a job itself (:func:`end`), which puts a zone
job's zone in ERROR with the reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from oslo_utils import timeutils
from taskflow import exceptions as tf_exc

from zoneflow import exceptions, objects
from zoneflow.jobs.records import Outcome, logbooks
from zoneflow.storage import status as stored_status


@dataclasses.dataclass(frozen=True)
class Attempt:
    """What a conductor learns about a job it has just claimed.

    ``number`` counts the run about to start (from 1); it is one more than
    the limit when the job has used up its attempts and must not run again.
    ``outcome`` is set when the job has already been failed or cancelled.
    """

    number: int
    previous_error: str | None
    outcome: str | None = None


def update_meta(
    persistence: Any, job_id: str, change: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Apply ``change`` to a job's logbook metadata; save it if ``change`` says it changed."""
    with logbooks(persistence) as connection:
        try:
            if hasattr(connection, "update_logbook_meta"):
                return connection.update_logbook_meta(job_id, change)
            # TaskFlow's own backends (the benchmarks' in-memory one): read, change, save.
            # lazy: without flow details, saving the book touches its own row only.
            book = connection.get_logbook(job_id, lazy=True)
        except tf_exc.NotFound:
            raise exceptions.JobNotFound(f"job {job_id} does not exist") from None
        meta = dict(book.meta or {})
        if change(meta):
            book.meta = meta
            book.updated_at = timeutils.utcnow()
            connection.save_logbook(book)
        return meta


def begin_attempt(persistence: Any, job_id: str, *, conductor: str, limit: int) -> Attempt:
    """Count the run of a job that ``conductor`` is about to start.

    A run is counted before it starts because a conductor that dies during
    it cannot count it afterwards: the next claim finds the run still marked
    as running, and that becomes the previous error. Once ``limit`` runs
    have been counted nothing more is written, and the number returned is
    ``limit + 1``.
    """
    attempt: Attempt | None = None

    def change(meta: dict[str, Any]) -> bool:
        nonlocal attempt
        runs = int(meta.get("attempts", 0))
        previous_error = meta.get("last_error")
        if meta.get("running_on"):
            previous_error = f"conductor {meta['running_on']} stopped while running attempt {runs}"
        if meta.get("outcome"):
            attempt = Attempt(runs, meta.get("error"), meta["outcome"])
            return False
        if runs >= limit:
            attempt = Attempt(runs + 1, previous_error)
            return False
        attempt = Attempt(runs + 1, previous_error)
        meta.update(attempts=runs + 1, running_on=conductor, last_error=previous_error)
        return True

    update_meta(persistence, job_id, change)
    assert attempt is not None
    return attempt


def end_attempt(persistence: Any, job_id: str, *, error: str | None) -> None:
    """Record that a run ended without finishing the job.

    With an ``error`` the run counts and the error is kept; without one the
    run was suspended (its conductor is stopping) and is not counted.
    """

    def change(meta: dict[str, Any]) -> bool:
        runs = int(meta.get("attempts", 0))
        if error is None:
            meta.update(attempts=max(0, runs - 1), running_on=None)
        else:
            meta.update(running_on=None, last_error=error)
        return True

    update_meta(persistence, job_id, change)


def fail(persistence: Any, job_id: str, reason: str) -> str:
    """End a job as failed: record why, and put its zone in ERROR with the reason.
    Returns the job's kind."""
    return str(end(persistence, job_id, Outcome.FAILURE, reason).get("kind", ""))


def end(persistence: Any, job_id: str, outcome: Outcome, reason: str) -> dict[str, Any]:
    """Record how zoneflow ended a job; the job's metadata after."""

    def change(meta: dict[str, Any]) -> bool:
        meta.update(outcome=outcome, error=reason, running_on=None)
        return True

    meta = update_meta(persistence, job_id, change)
    if "zone_id" not in meta or outcome == Outcome.SUPERSEDED:
        # Not a zone job, or a newer job speaks for the zone.
        return meta
    # Only if the zone is still at the job's serial: a newer job speaks for it otherwise.
    stored_status.set_zone_status(
        str(meta["zone_id"]),
        serial=int(meta.get("serial", 0)),
        status=objects.Status.ERROR,
        error=reason,
    )
    return meta
