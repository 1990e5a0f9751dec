"""TaskFlow's non-blocking conductor with its dispatch re-implemented.

:class:`DispatchingConductor` keeps TaskFlow's loop (claim, dispatch on a
pool, consume or abandon) but replaces what happens around one job:

- **waking up**: TaskFlow's loop looks at the board, then sleeps
  ``wait_timeout``; a job posted meanwhile waited for the sleep to end. Here
  the wait ends as soon as the board sees a job posted or a slot frees up;
- **what it looks at**: the loop claims from :class:`~zoneflow.taskflow_adapter.
  jobboard.ClaimableJobs`, a view of the board that skips the jobs it cannot
  claim without reading each one's state, lists a user's change before
  upkeep, and keeps upkeep to ``upkeep_slots`` of the conductor's jobs;
- **running a job**: the stages and events of TaskFlow's ``_dispatch_job``
  (compile, prepare, validate, run), with every way a run can end told apart
  (:class:`Ended`), so the subclass decides what a failed run means
  (``zoneflow.conductor.bounded`` counts attempts) and a stopping conductor
  suspends its engines between two tasks;
- **taking a job off the board**: retried while ZooKeeper cannot be reached
  and the job is still ours (TaskFlow tries once).

A subclass implements :meth:`DispatchingConductor.dispatch`, which uses no
private TaskFlow name. The private names this module relies on are listed
in the package docstring and watched by tests/unit/test_taskflow_canaries.py.
"""

from __future__ import annotations

import abc
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
from zoneflow.taskflow_adapter import fencing
from zoneflow.taskflow_adapter import jobboard as zoneflow_jobboard

LOG = logging.getLogger(__name__)

# Pauses between tries to take a job off the board (or hand it back) while
# ZooKeeper cannot be reached: doubling from the first, up to the last.
FINISH_RETRY_PAUSES = (0.1, 5.0)


class Ended(enum.Enum):
    """How one run of a job's flow ended."""

    DONE = "done"  # the flow finished (or reverted as designed): consume the job
    SUSPENDED = "suspended"  # the conductor is stopping: hand the job back, uncounted
    RETRY = "retry"  # TaskFlow would hand the job back: try again while attempts last
    BROKEN = "broken"  # failed without reverting; TaskFlow consumes it: end it as failed
    FENCED = "fenced"  # another conductor owns the job now: write nothing about it
    # Its flow is not in this conductor's code (a newer zoneflow posted it, during a
    # rolling upgrade): hand it back uncounted, for a conductor that has the flow.
    FOREIGN = "foreign"


class DispatchingConductor(impl_nonblocking.NonBlockingConductor, abc.ABC):
    """TaskFlow's non-blocking conductor; what one claimed job means is :meth:`dispatch`'s."""

    def __init__(
        self,
        name: str,
        jobboard: Any,
        *,
        client: Any,
        upkeep_slots: int | None = None,
        **options: Any,
    ) -> None:
        """``client``: the KazooClient the board was connected with (its lock watch);
        ``upkeep_slots``: how many upkeep jobs it runs at once (None: no limit)."""
        super().__init__(name, jobboard, **options)
        self._wait_timeout = WakeableTimeout(
            float(options.get("wait_timeout") or self.WAIT_TIMEOUT)
        )
        jobboard.notifier.register(jobs_base.POSTED, self._wake)
        self._jobboard = zoneflow_jobboard.ClaimableJobs(
            jobboard,
            client=client,
            running=self._running_jobs,
            on_change=self._wake,
            upkeep_slots=upkeep_slots,
        )

    @property
    def name(self) -> str:
        return str(self._name)

    @property
    def persistence(self) -> Any:
        return self._persistence

    @abc.abstractmethod
    def dispatch(self, job: Any) -> bool:
        """Run a claimed job (with :meth:`run`); True consumes it, False hands it back."""

    def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the conductor is stopping."""
        self._wait_timeout.pause(seconds)

    def _running_jobs(self) -> set[str]:
        return {future.job.uuid for future in list(self._dispatched)}

    def _wake(self, *_: Any, **__: Any) -> None:
        self._wait_timeout.wake()

    def _on_job_done(self, job: Any, fut: Any) -> None:
        super()._on_job_done(job, fut)
        self._wake()

    def _dispatch_job(self, job: Any) -> bool:
        return self.dispatch(job)

    def run_job(self, job: Any) -> tuple[Ended, str | None]:
        """Run the job's flow through the stages and events TaskFlow's conductor uses."""
        engine = None
        try:
            try:
                engine = self._engine_from_job(job)
            except ImportError as exc:
                # TaskFlow's word for a flow factory this code does not have.
                return Ended.FOREIGN, str(exc)
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
                return Ended.FENCED, error
            retry = all(f.check(*self.NO_CONSUME_EXCEPTIONS) for f in exc)
        except fencing.JobFenced as exc:
            return Ended.FENCED, str(exc)
        except self.NO_CONSUME_EXCEPTIONS as exc:
            error, retry = _describe(exc), True
        except Exception as exc:
            error, retry = _describe(exc), False
        else:
            if engine.storage.get_flow_state() == states.SUSPENDED:
                LOG.info("job %s suspended: its conductor is stopping", job.book_uuid)
                return Ended.SUSPENDED, None
            return Ended.DONE, None
        LOG.warning("job %s: its run failed: %s", job.book_uuid, error, exc_info=True)
        if retry:
            return Ended.RETRY, error
        if engine is not None and engine.storage.get_flow_state() == states.REVERTED:
            # The ordinary failure: the revert put the zone in ERROR with the reason.
            return Ended.DONE, None
        return Ended.BROKEN, error

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


class WakeableTimeout(timing.Timeout):
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


def _describe(exc: BaseException) -> str:
    """An exception as a reason: its type when that is all it says, and its cause."""
    text = str(exc) if isinstance(exc, exceptions.ZoneflowError) else f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text += f" ({cause})"
    return text
