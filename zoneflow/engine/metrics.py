"""Metrics of the jobs a conductor runs, in Prometheus's format.

Fed by TaskFlow's own notifications: every engine a conductor starts gets
callbacks on its flow's and its atoms' state changes, so the figures are what
the engines did, not what zoneflow believes they did.

- ``zoneflow_jobs_total{kind, state}``: jobs started (``state="STARTED"``)
  and ended, per flow kind, in the words of ``zoneflow job list``: SUCCESS
  (the zone got what the job was for), REVERTED, FAILURE (among them a flow
  that ran to its end with the zone put in ERROR), SUPERSEDED, LOST, and
  SUSPENDED (the conductor stopped; another run resumes it);
- ``zoneflow_jobs_failed_total{kind, reason}``: jobs that ended without the
  zone getting what they were for, by why: ``below-threshold`` (too few
  targets took the change: reverted), ``not-served`` (too few nameservers
  served the serial: zone ERROR), ``task-failed`` (a task failed otherwise),
  ``attempts`` (given up: ``[conductor] max_job_attempts`` failed runs,
  ``max_lost_attempts`` runs lost with their conductor, or
  ``max_lost_at_same_step`` lost in a row at one step),
  ``lost`` (an all-in-one found it lost with its predecessor);
- ``zoneflow_job_seconds{kind, state}``: how long each took, claim to end;
- ``zoneflow_tasks_total{task, state}`` and ``zoneflow_task_seconds{task}``:
  the same per task kind (``zone-action``, ``poll``, ``notify``, ...);
- ``zoneflow_jobs_running``: jobs running now.

``[conductor] metrics_port`` serves them over HTTP on ``metrics_host``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import prometheus_client
from taskflow import states

from zoneflow.engine import options
from zoneflow.jobs import steps

LOG = logging.getLogger(__name__)
CONF = options.CONF


REGISTRY = prometheus_client.CollectorRegistry()
JOBS = prometheus_client.Counter(
    "zoneflow_jobs",
    "Zone jobs started and ended, by flow kind and state.",
    ["kind", "state"],
    registry=REGISTRY,
)
JOB_SECONDS = prometheus_client.Histogram(
    "zoneflow_job_seconds",
    "Time from a job's start to its end, by flow kind and final state.",
    ["kind", "state"],
    registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
JOBS_FAILED = prometheus_client.Counter(
    "zoneflow_jobs_failed",
    "Zone jobs that ended without the zone getting what they were for, by flow kind and why.",
    ["kind", "reason"],
    registry=REGISTRY,
)
TASKS = prometheus_client.Counter(
    "zoneflow_tasks",
    "Tasks that ended, by task kind and state.",
    ["task", "state"],
    registry=REGISTRY,
)
TASK_SECONDS = prometheus_client.Histogram(
    "zoneflow_task_seconds",
    "Time a task took to run, by task kind.",
    ["task"],
    registry=REGISTRY,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RUNNING = prometheus_client.Gauge(
    "zoneflow_jobs_running", "Jobs running in this process now.", registry=REGISTRY
)

# SUSPENDED: the conductor stopped, or the job was fenced; another run resumes it.
_ENDED = (states.SUCCESS, states.REVERTED, states.FAILURE, states.SUSPENDED)
# Why a failed job failed (the label of zoneflow_jobs_failed_total).
BELOW_THRESHOLD = "below-threshold"
NOT_SERVED = "not-served"
TASK_FAILED = "task-failed"
ATTEMPTS = "attempts"
LOST = "lost"
# A task stopped because another conductor owns the job now: no failure of the job.
_FENCED = "fenced"


def job_ended(kind: str, state: str, reason: str | None = None) -> None:
    """Count a job that zoneflow ended rather than its flow (given up, lost, superseded)."""
    JOBS.labels(kind, state).inc()
    if reason is not None:
        JOBS_FAILED.labels(kind, reason).inc()


class _EngineWatch:
    """The callbacks one engine gets; they time its flow and its tasks, and tell
    a job whose flow succeeded but left the zone in ERROR from a real success."""

    def __init__(self, kind: str, families: dict[str, str]) -> None:
        self.kind = kind
        self.families = families  # atom name -> what its step is counted under
        self.started: float | None = None
        self.task_started: dict[str, float] = {}
        self.lock = threading.Lock()
        self.zone_status: str | None = None  # what update-status wrote
        self.cause: str | None = None  # why the first failed task failed

    def on_flow(self, state: str, details: dict[str, Any]) -> None:
        now = time.monotonic()
        if state == states.RUNNING and self.started is None:
            self.started = now
            JOBS.labels(self.kind, "STARTED").inc()
            RUNNING.inc()
        elif state in _ENDED and self.started is not None:
            ended, failed = self._outcome(state)
            JOBS.labels(self.kind, ended).inc()
            if failed is not None:
                JOBS_FAILED.labels(self.kind, failed).inc()
            JOB_SECONDS.labels(self.kind, ended).observe(now - self.started)
            RUNNING.dec()
            self.started = None

    def _outcome(self, state: str) -> tuple[str, str | None]:
        """The job's end as ``zoneflow job list`` words it, and why it failed (None: it did not)."""
        if state == states.SUCCESS:
            if self.zone_status == "ERROR":
                return states.FAILURE, NOT_SERVED
            if self.zone_status in ("PENDING", "SUPERSEDED"):
                return "SUPERSEDED", None
            return state, None
        if state in (states.REVERTED, states.FAILURE) and self.cause != _FENCED:
            return state, self.cause or TASK_FAILED
        return state, None

    def on_task(self, state: str, details: dict[str, Any]) -> None:
        name = str(details.get("task_name", ""))
        now = time.monotonic()
        with self.lock:
            if state == states.RUNNING:
                self.task_started[name] = now
                return
            started = self.task_started.pop(name, None)
            if state == states.SUCCESS and name == steps.STATUS.name:
                self.zone_status = str(details.get("result"))
            elif state == states.FAILURE and self.cause is None:
                self.cause = _cause(details.get("result"))
        if state in (states.SUCCESS, states.FAILURE, states.REVERTED):
            kind = self.families.get(name, name)
            TASKS.labels(kind, state).inc()
            if started is not None and state != states.REVERTED:
                TASK_SECONDS.labels(kind).observe(now - started)


def _cause(failure: Any) -> str:
    """Why a task failed, as a label: its exception's kind, not its text."""
    check = getattr(failure, "check", None)
    if check is None:
        return TASK_FAILED
    if check("zoneflow.exceptions.ConsensusFailure"):
        return BELOW_THRESHOLD
    if check("zoneflow.taskflow_adapter.fencing.JobFenced"):
        return _FENCED
    return TASK_FAILED


def watch(engine: Any, kind: str) -> None:
    """Count and time what ``engine`` does (call before it runs)."""
    # The engine is compiled by now (the conductor loads it before it runs).
    families = {
        node.name: node.step.family
        for node in engine.compilation.execution_graph.nodes
        if isinstance(getattr(node, "step", None), steps.Step)
    }
    watcher = _EngineWatch(kind, families)
    engine.notifier.register(engine.notifier.ANY, watcher.on_flow)
    engine.atom_notifier.register(engine.atom_notifier.ANY, watcher.on_task)


def serve() -> None:
    """Serve the metrics over HTTP if ``[conductor] metrics_port`` is set."""
    port = CONF.conductor.metrics_port
    if port:
        prometheus_client.start_http_server(
            port, addr=CONF.conductor.metrics_host, registry=REGISTRY
        )
        LOG.info("metrics on http://%s:%s/metrics", CONF.conductor.metrics_host, port)


def text() -> str:
    """The metrics in Prometheus's text format."""
    return prometheus_client.generate_latest(REGISTRY).decode()
