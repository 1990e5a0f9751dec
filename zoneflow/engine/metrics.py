"""Metrics of the jobs a conductor runs, in Prometheus's format.

Fed by TaskFlow's own notifications: every engine a conductor starts gets
callbacks on its flow's and its atoms' state changes, so the figures are what
the engines did, not what zoneflow believes they did.

- ``zoneflow_jobs_total{kind, state}``: jobs that ended SUCCESS, REVERTED,
  FAILURE or SUSPENDED, and jobs started (``state="STARTED"``), per flow kind;
- ``zoneflow_job_seconds{kind, state}``: how long each took, claim to end;
- ``zoneflow_tasks_total{task, state}`` and ``zoneflow_task_seconds{task}``:
  the same per task kind (``zone-action``, ``poll``, ``notify``, ...);
- ``zoneflow_jobs_running``: jobs running now.

``[conductor] metrics_port`` serves them over HTTP on ``metrics_host``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

import prometheus_client
from taskflow import states

from zoneflow import options

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
# Task names end with a target id or a nameserver's address: the kind is
# what comes before (a label per target would grow without bound).
_TASK_KIND = re.compile(r"-(on-target-[0-9a-f-]+|[^-]+:\d+)$")


def task_kind(name: str) -> str:
    """``create-zone-on-target-<id>`` → ``create-zone``; ``send-notify-<host:port>`` →
    ``send-notify``."""
    return _TASK_KIND.sub("", name)


class _EngineWatch:
    """The callbacks one engine gets; they time its flow and its tasks."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.started: float | None = None
        self.task_started: dict[str, float] = {}
        self.lock = threading.Lock()

    def on_flow(self, state: str, details: dict[str, Any]) -> None:
        now = time.monotonic()
        if state == states.RUNNING and self.started is None:
            self.started = now
            JOBS.labels(self.kind, "STARTED").inc()
            RUNNING.inc()
        elif state in _ENDED and self.started is not None:
            JOBS.labels(self.kind, state).inc()
            JOB_SECONDS.labels(self.kind, state).observe(now - self.started)
            RUNNING.dec()
            self.started = None

    def on_task(self, state: str, details: dict[str, Any]) -> None:
        name = str(details.get("task_name", ""))
        now = time.monotonic()
        with self.lock:
            if state == states.RUNNING:
                self.task_started[name] = now
                return
            started = self.task_started.pop(name, None)
        if state in (states.SUCCESS, states.FAILURE, states.REVERTED):
            kind = task_kind(name)
            TASKS.labels(kind, state).inc()
            if started is not None and state != states.REVERTED:
                TASK_SECONDS.labels(kind).observe(now - started)


def watch(engine: Any, kind: str) -> None:
    """Count and time what ``engine`` does (call before it runs)."""
    watcher = _EngineWatch(kind)
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
