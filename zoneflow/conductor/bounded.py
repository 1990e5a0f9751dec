"""A conductor that gives up on a job after a bounded number of runs.

TaskFlow's conductor consumes a job whose flow failed the ordinary way: a
task raised, the flow reverted and its first task's revert put the zone in
ERROR. But it hands the job back to the board (abandons it) when the engine
raises StorageFailure or ExecutionFailure, hoping another try will not meet
them, and a conductor that dies leaves its job to the next one. If the cause
stays, the job is claimed again and again without end, taking conductor time
from every other job.

:class:`BoundedConductor` counts each job's runs in the job's logbook, which
every conductor shares, and counts a run before it starts, so that one whose
conductor died is still known. Runs end two ways, bounded apart:

- **failed**: the flow raised an error TaskFlow hands the job back for.
  ``[conductor] max_job_attempts`` of them and the job is given up;
- **lost with its conductor**: the conductor died or lost its ZooKeeper
  session mid-run (the next claim finds the run still marked as running).
  That says nothing against a healthy job whose conductors are killed under
  it, so the bound is larger, ``[conductor] max_lost_attempts``; but a job
  that takes its conductor down at the same step every time (a poison job:
  out of memory in one task, say) must not take a conductor per claim
  forever: ``[conductor] max_lost_at_same_step`` lost runs in a row that
  left its flow where the one before had left it, and it is given up.

A job given up is consumed as failed (``zoneflow job list`` shows it as
FAILURE) and its zone goes to ERROR with a reason naming the job, the bound
and the last error or step. A run that ends because its conductor is
stopping (the engine is suspended) is not counted, and a conductor fenced off
its job (see zoneflow.taskflow_adapter.fencing) writes nothing about it: the
job's new owner records it as lost.

Nor is a run that cannot start because this conductor's code lacks the job's
flow: a newer zoneflow posted it (a new kind of job, while the conductors are
upgraded one by one). It is handed back and this conductor claims it no more,
so a conductor of the newer code runs it; until one does, it waits on the
board, and this conductor's log says to upgrade it.

How a run is carried out and how it ended is TaskFlow's business, re-done
in zoneflow.taskflow_adapter.conductor; this module is the policy alone.
"""

from __future__ import annotations

import logging
from typing import Any

from taskflow import exceptions as tf_exc

from zoneflow import exceptions, jobs
from zoneflow.engine import metrics
from zoneflow.taskflow_adapter.conductor import DispatchingConductor, Ended

LOG = logging.getLogger(__name__)

# How long a conductor waits before handing back a job it could not start
# (its attempt could not be counted): the database is likely down.
HAND_BACK_PAUSE = 1.0


class BoundedConductor(DispatchingConductor):
    """TaskFlow's non-blocking conductor, giving a job up at one of its ``limits``."""

    #: Also notified: ``job_failed`` (details: job, conductor, reason) when a job is given up.
    EVENTS_EMITTED = (*DispatchingConductor.EVENTS_EMITTED, "job_failed")

    def __init__(self, name: str, jobboard: Any, *, limits: jobs.Limits, **options: Any) -> None:
        super().__init__(name, jobboard, **options)
        self.limits = limits

    def dispatch(self, job: Any) -> bool:
        """Run a claimed job; True consumes it, False hands it back to the board."""
        job_id = str(job.book_uuid)
        try:
            attempt = jobs.begin_attempt(
                self.persistence, job_id, conductor=self.name, limits=self.limits
            )
        except exceptions.JobNotFound:
            LOG.warning("job %s has no logbook, so nothing to run: removing it", job_id)
            return True
        except Exception as exc:
            # Without the count there is no bound: run nothing until it can be kept.
            LOG.warning("job %s handed back: cannot count its attempt: %s", job_id, exc)
            # Not at once: this conductor would claim it again in a tight loop.
            self.pause(HAND_BACK_PAUSE)
            return False
        if attempt.outcome is not None:
            LOG.info("job %s ended as %s: removing it from the board", job_id, attempt.outcome)
            return True
        if attempt.given_up is not None:
            return self._give_up(job, _given_up(job_id, attempt), why=metrics.ATTEMPTS)

        ended, error = self.run_job(job)
        if ended is not Ended.FENCED:
            try:
                # The job's record is written behind its engine (taskflow_adapter's
                # persistence): it must be whole before the job leaves the board.
                self.persistence.flush()
            except tf_exc.StorageFailure as exc:
                LOG.warning("job %s handed back: its record cannot be written: %s", job_id, exc)
                return self._hand_back(job_id, attempt, error=str(exc))
        if ended is Ended.DONE:
            return True
        if ended is Ended.FENCED:
            LOG.warning("job %s: this conductor lost it to another: %s", job_id, error)
            return False
        if ended is Ended.SUSPENDED:
            return self._hand_back(job_id, attempt, error=None)
        if ended is Ended.FOREIGN:
            LOG.error(
                "job %s (%s) is left on the board for another conductor: this conductor's "
                "zoneflow does not have its flow (%s), so a newer zoneflow posted it; "
                "upgrade this conductor",
                job_id,
                job.name,
                error,
            )
            self._jobboard.leave(job.uuid)
            return self._hand_back(job_id, attempt, error=None)
        failed = attempt.failed + 1
        if ended is Ended.RETRY and failed < self.limits.failed:
            LOG.warning(
                "job %s: attempt %d failed (%d of %d failures allowed), it will be tried again: %s",
                job_id,
                attempt.number,
                failed,
                self.limits.failed,
                error,
            )
            return self._hand_back(job_id, attempt, error=error)
        if ended is Ended.RETRY:
            self._hand_back(job_id, attempt, error=error)  # recorded as failed, then given up
            return self._give_up(job, _failed_out(job_id, failed, error), why=metrics.ATTEMPTS)
        return self._give_up(job, f"job {job_id} failed and its flow was not reverted: {error}")

    def _hand_back(self, job_id: str, attempt: jobs.Attempt, *, error: str | None) -> bool:
        try:
            jobs.end_attempt(
                self.persistence, job_id, conductor=self.name, number=attempt.number, error=error
            )
        except Exception as exc:
            # The next claim finds the run still marked as running: it is recorded lost.
            LOG.warning("job %s: cannot record how its attempt ended: %s", job_id, exc)
        return False

    def _give_up(self, job: Any, reason: str, *, why: str = metrics.TASK_FAILED) -> bool:
        """End a job as FAILURE; ``why`` labels it in zoneflow_jobs_failed_total."""
        try:
            kind = jobs.fail(self.persistence, str(job.book_uuid), reason)
        except Exception as exc:
            # Hand it back: the next claim finds the attempts used up and tries again.
            LOG.warning("job %s: cannot record that it failed: %s", job.book_uuid, exc)
            return False
        LOG.error("%s", reason)
        metrics.job_ended(kind, jobs.Outcome.FAILURE, why)
        self.notifier.notify("job_failed", {"job": job, "conductor": self, "reason": reason})
        return True


def _failed_out(job_id: str, failed: int, error: str | None) -> str:
    return (
        f"job {job_id} given up after {failed} failed attempts ([conductor] max_job_attempts); "
        f"last error: {error}"
    )


def _given_up(job_id: str, attempt: jobs.Attempt) -> str:
    """Why a job that reached a bound before its run started is given up."""
    if attempt.given_up is jobs.Bound.SAME_STEP:
        return (
            f"job {job_id} given up: {attempt.lost_in_a_row} runs in a row lost their conductor "
            f"{attempt.step}, without progress in between: a job that takes its conductor down "
            "there every time ([conductor] max_lost_at_same_step); "
            f"last error: {attempt.previous_error}"
        )
    if attempt.given_up is jobs.Bound.LOST:
        return (
            f"job {job_id} given up after {attempt.lost} runs lost with their conductor "
            f"([conductor] max_lost_attempts); last error: {attempt.previous_error}"
        )
    return _failed_out(job_id, attempt.failed, attempt.previous_error)
