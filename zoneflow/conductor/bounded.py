"""A conductor that gives up on a job after a bounded number of attempts.

TaskFlow's conductor consumes a job whose flow failed the ordinary way: a
task raised, the flow reverted and its first task's revert put the zone in
ERROR. But it hands the job back to the board (abandons it) when the engine
raises StorageFailure or ExecutionFailure, hoping another try will not meet
them, and a conductor that dies leaves its job to the next one. If the cause
stays, the job is claimed again and again without end, taking conductor time
from every other job.

:class:`BoundedConductor` counts each job's runs in the job's logbook, which
every conductor shares, and counts a run before it starts, so that one whose
conductor died still counts. A job that has used up ``[conductor]
max_job_attempts`` is consumed as failed (``zoneflow job list`` shows it as
FAILURE) and its zone goes to ERROR with a reason naming the job and its last
error. A run that ends because its conductor is stopping (the engine is
suspended) is not counted, and a conductor fenced off its job (see
fencing.py) writes nothing about it: the job's new owner keeps the count.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
from typing import Any

from taskflow import exceptions as tf_exc
from taskflow import states
from taskflow.conductors.backends import impl_nonblocking
from taskflow.jobs import base as jobs_base
from taskflow.types import timing

from zoneflow import exceptions
from zoneflow.conductor import fencing
from zoneflow.conductor import jobboard as zoneflow_jobboard
from zoneflow.engine import jobs, metrics

LOG = logging.getLogger(__name__)

# How long a conductor waits before handing back a job it could not start
# (its attempt could not be counted): the database is likely down.
HAND_BACK_PAUSE = 1.0
# Pauses between tries to take a job off the board (or hand it back) while
# ZooKeeper cannot be reached: doubling from the first, up to the last.
FINISH_RETRY_PAUSES = (0.1, 5.0)


class _Ended(enum.Enum):
    DONE = "done"  # the flow finished (or reverted as designed): consume the job
    SUSPENDED = "suspended"  # the conductor is stopping: hand the job back, uncounted
    RETRY = "retry"  # TaskFlow would hand the job back: try again while attempts last
    BROKEN = "broken"  # failed without reverting; TaskFlow consumes it: end it as failed
    FENCED = "fenced"  # another conductor owns the job now: write nothing about it


class BoundedConductor(impl_nonblocking.NonBlockingConductor):
    """TaskFlow's non-blocking conductor, running a job at most ``max_attempts`` times."""

    #: Also notified: ``job_failed`` (details: job, conductor, reason) when a job is given up.
    EVENTS_EMITTED = (*impl_nonblocking.NonBlockingConductor.EVENTS_EMITTED, "job_failed")

    def __init__(self, name: str, jobboard: Any, *, max_attempts: int, **options: Any) -> None:
        super().__init__(name, jobboard, **options)
        self.max_attempts = max_attempts
        # TaskFlow's loop looks at the board, then sleeps wait_timeout; a job
        # posted meanwhile waited for the sleep to end. Wake it up instead
        # when the board sees a job posted, or a slot frees up.
        self._wait_timeout = _WakeableTimeout(
            float(options.get("wait_timeout") or self.WAIT_TIMEOUT)
        )
        jobboard.notifier.register(jobs_base.POSTED, self._wake)
        # The loop claims from a view of the board that skips the jobs it
        # cannot claim without reading each one's state (see ClaimableJobs).
        self._jobboard = zoneflow_jobboard.ClaimableJobs(
            jobboard, running=self._running_jobs, on_change=self._wake
        )

    def _running_jobs(self) -> set[str]:
        return {future.job.uuid for future in list(self._dispatched)}

    def _wake(self, *_: Any, **__: Any) -> None:
        self._wait_timeout.wake()

    def _on_job_done(self, job: Any, fut: Any) -> None:
        super()._on_job_done(job, fut)
        self._wake()

    def _dispatch_job(self, job: Any) -> bool:
        """Run a claimed job; True consumes it, False hands it back to the board."""
        job_id = str(job.book_uuid)
        try:
            attempt = jobs.begin_attempt(
                self._persistence, job_id, conductor=self._name, limit=self.max_attempts
            )
        except exceptions.JobNotFound:
            LOG.warning("job %s has no logbook, so nothing to run: removing it", job_id)
            return True
        except Exception as exc:
            # Without the count there is no bound: run nothing until it can be kept.
            LOG.warning("job %s handed back: cannot count its attempt: %s", job_id, exc)
            # Not at once: this conductor would claim it again in a tight loop.
            self._wait_timeout.pause(HAND_BACK_PAUSE)
            return False
        if attempt.outcome is not None:
            LOG.info("job %s ended as %s: removing it from the board", job_id, attempt.outcome)
            return True
        if attempt.number > self.max_attempts:
            runs = attempt.number - 1
            return self._give_up(
                job, _exhausted(job_id, runs, attempt.previous_error), why=metrics.ATTEMPTS
            )

        ended, error = self._run(job)
        if ended is not _Ended.FENCED:
            try:
                # The job's record is written behind its engine (persistence.py):
                # it must be whole before the job leaves the board.
                self._persistence.flush()
            except tf_exc.StorageFailure as exc:
                LOG.warning("job %s handed back: its record cannot be written: %s", job_id, exc)
                return self._hand_back(job_id, error=str(exc))
        if ended is _Ended.DONE:
            return True
        if ended is _Ended.FENCED:
            LOG.warning("job %s: this conductor lost it to another: %s", job_id, error)
            return False
        if ended is _Ended.SUSPENDED:
            return self._hand_back(job_id, error=None)
        if ended is _Ended.RETRY and attempt.number < self.max_attempts:
            LOG.warning(
                "job %s: attempt %d of %d failed, it will be tried again: %s",
                job_id,
                attempt.number,
                self.max_attempts,
                error,
            )
            return self._hand_back(job_id, error=error)
        if ended is _Ended.RETRY:
            return self._give_up(
                job, _exhausted(job_id, attempt.number, error), why=metrics.ATTEMPTS
            )
        return self._give_up(job, f"job {job_id} failed and its flow was not reverted: {error}")

    def _run(self, job: Any) -> tuple[_Ended, str | None]:
        """Run the job's flow through the stages and events TaskFlow's conductor uses."""
        engine = None
        try:
            engine = self._engine_from_job(job)
            details = {"job": job, "engine": engine, "conductor": self}
            with contextlib.ExitStack() as stack:
                for listener in self._listeners_from_job(job, engine):
                    stack.enter_context(listener)
                for stage, event in (
                    (engine.compile, "compilation"),
                    (engine.prepare, "preparation"),
                    (engine.validate, "validation"),
                    (lambda: self._run_engine(job, engine), "running"),
                ):
                    self._notifier.notify(f"{event}_start", details)
                    stage()
                    self._notifier.notify(f"{event}_end", details)
        except tf_exc.WrappedFailure as exc:
            error = "; ".join(f"{f.exception_str}" for f in exc)
            if any(f.check(fencing.JobFenced) for f in exc):
                return _Ended.FENCED, error
            retry = all(f.check(*self.NO_CONSUME_EXCEPTIONS) for f in exc)
        except fencing.JobFenced as exc:
            return _Ended.FENCED, str(exc)
        except self.NO_CONSUME_EXCEPTIONS as exc:
            error, retry = _describe(exc), True
        except Exception as exc:
            error, retry = _describe(exc), False
        else:
            if engine.storage.get_flow_state() == states.SUSPENDED:
                LOG.info("job %s suspended: its conductor is stopping", job.book_uuid)
                return _Ended.SUSPENDED, None
            return _Ended.DONE, None
        LOG.warning("job %s: its run failed: %s", job.book_uuid, error, exc_info=True)
        if retry:
            return _Ended.RETRY, error
        if engine is not None and engine.storage.get_flow_state() == states.REVERTED:
            # The ordinary failure: the revert put the zone in ERROR with the reason.
            return _Ended.DONE, None
        return _Ended.BROKEN, error

    def _run_engine(self, job: Any, engine: Any) -> None:
        suspending = False
        for _state in engine.run_iter():
            if not suspending and self._wait_timeout.is_stopped():
                LOG.info("conductor %s stopping: suspending job %s", self._name, job.book_uuid)
                engine.suspend()
                suspending = True

    def _try_finish_job(self, job: Any, consume: bool, trash: bool = False) -> None:
        """Take a job off the board (consume), trash it, or hand it back (abandon);
        tried again while ZooKeeper cannot be reached and the job is still ours.

        TaskFlow's conductor tries once. When that try met ZooKeeper
        restarting as the job ended, the job stayed on the board with this
        conductor's lock, which outlives a restart with the session: no other
        conductor could take it, and this one never looked at it again (the
        chaos test found a finished job stuck so). Nothing is retried once the
        job is gone or another conductor holds it; nor once this one stops,
        since its locks go with its session.
        """
        if consume:
            finish, doing, event = self._jobboard.consume, "take it off the board", "job_consumed"
        elif trash:
            finish, doing, event = self._jobboard.trash, "trash it", "job_trashed"
        else:
            finish, doing, event = self._jobboard.abandon, "hand it back", "job_abandoned"
        pause, longest = FINISH_RETRY_PAUSES
        while True:
            try:
                finish(job, self._name)
            except tf_exc.NotFound:
                return  # off the board already
            except tf_exc.JobFailure as exc:
                if self._wait_timeout.is_stopped() or not self._holds(job):
                    LOG.warning("job %s: could not %s: %s", job.book_uuid, doing, exc)
                    return
                LOG.warning(
                    "job %s: could not %s, trying again in %.1fs: %s",
                    job.book_uuid,
                    doing,
                    pause,
                    exc,
                )
                self._wait_timeout.pause(pause)
                pause = min(2 * pause, longest)
                continue
            details = {"job": job, "conductor": self, "persistence": self._persistence}
            self._notifier.notify(event, details)
            return

    def _holds(self, job: Any) -> bool:
        """Whether this conductor still holds a job's lock (True while ZooKeeper
        cannot say)."""
        try:
            return bool(self._jobboard.find_owner(job) == self._name)
        except tf_exc.JobFailure:
            return True

    def _hand_back(self, job_id: str, *, error: str | None) -> bool:
        try:
            jobs.end_attempt(self._persistence, job_id, error=error)
        except Exception as exc:
            # The next claim finds the run still marked as running and counts it anyway.
            LOG.warning("job %s: cannot record how its attempt ended: %s", job_id, exc)
        return False

    def _give_up(self, job: Any, reason: str, *, why: str = metrics.TASK_FAILED) -> bool:
        """End a job as FAILURE; ``why`` labels it in zoneflow_jobs_failed_total."""
        try:
            kind = jobs.fail(self._persistence, str(job.book_uuid), reason)
        except Exception as exc:
            # Hand it back: the next claim finds the attempts used up and tries again.
            LOG.warning("job %s: cannot record that it failed: %s", job.book_uuid, exc)
            return False
        LOG.error("%s", reason)
        metrics.job_ended(kind, jobs.FAILED, why)
        self._notifier.notify("job_failed", {"job": job, "conductor": self, "reason": reason})
        return True


class _WakeableTimeout(timing.Timeout):
    """TaskFlow's conductor timeout, whose wait can also end early without stopping."""

    def __init__(self, value: float) -> None:
        super().__init__(value)
        self._woken = threading.Event()

    def wake(self) -> None:
        self._woken.set()

    def interrupt(self) -> None:
        super().interrupt()
        self._woken.set()

    def wait(self) -> None:
        self._woken.wait(self.value)
        self._woken.clear()

    def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the conductor is stopping."""
        self._event.wait(seconds)


def _exhausted(job_id: str, runs: int, error: str | None) -> str:
    return (
        f"job {job_id} given up after {runs} attempts ([conductor] max_job_attempts); "
        f"last error: {error}"
    )


def _describe(exc: BaseException) -> str:
    """An exception as a reason: its type when that is all it says, and its cause."""
    text = str(exc) if isinstance(exc, exceptions.ZoneflowError) else f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text += f" ({cause})"
    return text
