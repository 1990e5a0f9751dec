"""Attempts: what conductors record in a job's logbook about the runs of the job.

How many runs conductors started, which conductor runs it now, each run and
how it ended (:mod:`zoneflow.jobs.runs`: failed, or lost with its
conductor), the last error; and how zoneflow ended a job itself
(:func:`end`), which puts a zone job's zone in ERROR with the reason.

A run whose conductor died, or lost its ZooKeeper session, cannot record
its own end: the next conductor to claim the job finds it still marked as
running and records it as lost, with the step its flow was at (the atoms
its logbook shows running). Lost runs in a row with no step finished
between them made no progress: the same step took their conductors down,
which is what a poison job does.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Callable
from typing import Any

from oslo_utils import timeutils
from taskflow import exceptions as tf_exc
from taskflow import states

from zoneflow import exceptions, objects
from zoneflow.jobs.records import TASKFLOW_INTERNAL, Outcome, logbook, logbooks, zones_of
from zoneflow.jobs.runs import Run, RunEnd, runs_of
from zoneflow.storage import status as stored_status

# Runs kept in a job's metadata, newest last: the bounds keep fewer unless raised.
RUNS_KEPT = 50


class Bound(enum.Enum):
    """Which bound a job reached, to be given up."""

    FAILED = "failed"  # [conductor] max_job_attempts runs failed
    LOST = "lost"  # [conductor] max_lost_attempts runs lost with their conductor
    SAME_STEP = "same-step"  # [conductor] max_lost_at_same_step lost in a row, no progress


@dataclasses.dataclass(frozen=True)
class Limits:
    """How many runs of each kind a job may have before it is given up."""

    failed: int
    lost: int
    same_step: int


@dataclasses.dataclass(frozen=True)
class Attempt:
    """What a conductor learns about a job it has just claimed.

    ``number`` counts the run about to start (from 1). ``outcome`` is set
    when the job has already been failed or cancelled; ``given_up`` when it
    has reached one of its bounds and must not run again (``number`` is then
    the run that was not started). ``failed`` and ``lost`` count the runs
    before this one; ``lost_in_a_row`` the lost ones since the last that
    made progress, the last of them lost ``step``.
    """

    number: int
    previous_error: str | None
    outcome: str | None = None
    given_up: Bound | None = None
    failed: int = 0
    lost: int = 0
    lost_in_a_row: int = 0
    step: str | None = None


@dataclasses.dataclass(frozen=True)
class _Progress:
    """How far a job's flow got, read from its logbook after its run was lost.

    Read for the run ``number`` of ``conductor``: it must still be the one
    marked as running when the count is written."""

    conductor: str
    number: int
    signature: str
    step: str


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


def begin_attempt(persistence: Any, job_id: str, *, conductor: str, limits: Limits) -> Attempt:
    """Count the run of a job that ``conductor`` is about to start.

    A run is counted before it starts because a conductor that dies during
    it cannot count it afterwards: the next claim finds the run still marked
    as running, records it as lost, and that becomes the previous error.
    Once the job has reached one of ``limits`` no run is started, and the
    attempt returned says which (``given_up``).
    """
    progress: _Progress | None = None
    while True:
        attempt, lost_run = _begin(persistence, job_id, conductor, limits, progress)
        if attempt is not None:
            return attempt
        assert lost_run is not None
        # Read outside the row's lock, so the count is written with it after; the
        # flow is read only after a lost run, so the ordinary claim reads no atom.
        progress = _progress(persistence, job_id, lost_run)


def _begin(
    persistence: Any,
    job_id: str,
    conductor: str,
    limits: Limits,
    progress: _Progress | None,
) -> tuple[Attempt | None, Run | None]:
    """One try at counting: the attempt, or the lost run whose progress must be read first."""
    attempt: Attempt | None = None
    lost_run: Run | None = None

    def change(meta: dict[str, Any]) -> bool:
        nonlocal attempt, lost_run
        runs = int(meta.get("attempts", 0))
        if meta.get("outcome"):
            attempt = Attempt(runs, meta.get("error"), meta["outcome"])
            return False
        changed = False
        if meta.get("running_on"):
            running = Run(runs, str(meta["running_on"]))
            if progress is None or (progress.conductor, progress.number) != (
                running.conductor,
                running.number,
            ):
                lost_run = running
                return False
            _record_lost(meta, progress)
            changed = True
        failed, lost, in_a_row = _counts(meta)
        bound = _reached(failed, lost, in_a_row, limits)
        attempt = Attempt(
            runs + 1,
            meta.get("last_error"),
            given_up=bound,
            failed=failed,
            lost=lost,
            lost_in_a_row=in_a_row,
            step=meta.get("lost_step"),
        )
        if bound is not None:
            return changed
        kept = [*meta.get("runs", ()), Run(runs + 1, conductor).to_meta()][-RUNS_KEPT:]
        meta.update(attempts=runs + 1, running_on=conductor, runs=kept)
        return True

    update_meta(persistence, job_id, change)
    return attempt, lost_run


def _counts(meta: dict[str, Any]) -> tuple[int, int, int]:
    """Failed runs, lost runs, and lost runs in a row without progress."""
    return (
        int(meta.get("failed_attempts", 0)),
        int(meta.get("lost_attempts", 0)),
        int(meta.get("lost_in_a_row", 0)),
    )


def _reached(failed: int, lost: int, in_a_row: int, limits: Limits) -> Bound | None:
    if failed >= limits.failed:
        return Bound.FAILED
    if in_a_row >= limits.same_step:
        return Bound.SAME_STEP
    if lost >= limits.lost:
        return Bound.LOST
    return None


def _record_lost(meta: dict[str, Any], progress: _Progress) -> None:
    """Record the run marked as running as lost with its conductor, at ``progress``."""
    same_as_last = meta.get("lost_progress") == progress.signature
    in_a_row = int(meta.get("lost_in_a_row", 0)) if same_as_last else 0
    meta.update(
        running_on=None,
        lost_attempts=int(meta.get("lost_attempts", 0)) + 1,
        lost_in_a_row=in_a_row + 1,
        lost_progress=progress.signature,
        lost_step=progress.step,
        last_error=(
            f"conductor {progress.conductor} was lost (it died or lost its ZooKeeper session) "
            f"while running attempt {progress.number}, {progress.step}"
        ),
        runs=_ended(meta, progress.number, ended=RunEnd.LOST, step=progress.step),
    )


def _ended(meta: dict[str, Any], number: int, **how: Any) -> list[dict[str, Any]]:
    """The metadata's runs with run ``number`` ended ``how``."""
    return [
        dataclasses.replace(run, **how).to_meta() if run.number == number else run.to_meta()
        for run in runs_of(meta)
    ]


# The states of an atom that has ended, one way or the other.
_FINISHED = frozenset({states.SUCCESS, states.FAILURE, states.REVERTED, states.REVERT_FAILURE})


def _progress(persistence: Any, job_id: str, run: Run) -> _Progress:
    """How far the job's flow got, from its logbook: a signature of the steps it
    finished (each atom that ended, and how), and the step the run was at (the
    atoms left running).

    Only finished steps count as progress. A run killed while it was taking
    the job up, before it reached the step where the one before died, leaves
    atoms reset or running that the run before did not; with every atom's
    state in the signature, that counted as progress, and a job that took
    three conductors down at one step was run a fourth time (seen on a busy
    machine, tests/functional/test_job_attempts.py).
    """
    try:
        book = logbook(persistence, job_id)
    except exceptions.JobNotFound:
        return _Progress(run.conductor, run.number, "", "before its flow was recorded")
    flow = next(iter(book), None)
    atoms = sorted(
        (a.name, a.state or states.PENDING, a.intention or "")
        for a in (flow or ())
        if not a.name.startswith(TASKFLOW_INTERNAL)
    )
    finished = [(name, state) for name, state, _ in atoms if state in _FINISHED]
    seen = json.dumps(finished)
    signature = hashlib.sha256(seen.encode()).hexdigest()[:16]
    running = [name for name, state, _ in atoms if state in (states.RUNNING, states.REVERTING)]
    if running:
        step = "at step " + ", ".join(running)
    elif all(state == states.PENDING for _, state, _ in atoms):
        step = "before its first step"
    else:
        step = "between two steps"
    return _Progress(run.conductor, run.number, signature, step)


def end_attempt(
    persistence: Any, job_id: str, *, conductor: str, number: int, error: str | None
) -> None:
    """Record that run ``number`` of ``conductor`` ended without finishing the job.

    With an ``error`` the run failed and counts against the failed runs;
    without one the run was suspended (its conductor is stopping) and is not
    counted. Nothing is written if the run is no longer the one marked as
    running: another conductor has found it lost and runs the job now.
    """

    def change(meta: dict[str, Any]) -> bool:
        runs = int(meta.get("attempts", 0))
        if meta.get("running_on") != conductor or runs != number:
            return False
        if error is None:
            kept = [run.to_meta() for run in runs_of(meta) if run.number != number]
            meta.update(attempts=max(0, runs - 1), running_on=None, runs=kept)
        else:
            meta.update(
                running_on=None,
                last_error=error,
                failed_attempts=int(meta.get("failed_attempts", 0)) + 1,
                # A run that ended, even failed, was no conductor taken down.
                lost_in_a_row=0,
                runs=_ended(meta, number, ended=RunEnd.FAILED, error=error),
            )
        return True

    update_meta(persistence, job_id, change)


def fail(persistence: Any, job_id: str, reason: str) -> str:
    """End a job as failed: record why, and put its zones in ERROR with the reason.
    Returns the job's kind."""
    return str(end(persistence, job_id, Outcome.FAILURE, reason).get("kind", ""))


def end(persistence: Any, job_id: str, outcome: Outcome, reason: str) -> dict[str, Any]:
    """Record how zoneflow ended a job; the job's metadata after."""

    def change(meta: dict[str, Any]) -> bool:
        meta.update(outcome=outcome, error=reason, running_on=None)
        return True

    meta = update_meta(persistence, job_id, change)
    if outcome == Outcome.SUPERSEDED:
        return meta  # a newer job speaks for the zone
    # Every zone the job carries (none for a job about a target), each only if it
    # is still at the job's serial: a newer job speaks for it otherwise.
    for zone in zones_of(meta):
        stored_status.set_zone_status(
            zone.id, serial=zone.serial, status=objects.Status.ERROR, error=reason
        )
    return meta
