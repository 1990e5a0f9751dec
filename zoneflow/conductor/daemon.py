"""The conductor daemon: claims zone jobs from the jobboard and runs their flows.

Built on TaskFlow's non-blocking conductor: each claimed job runs its flow
on a parallel engine whose tasks share the process's one thread pool (and
whose flow is compiled once for all its jobs: zoneflow.taskflow_adapter.engine),
and a job is given up after too many failed runs, or runs lost with their
conductor (see bounded.py).
Several conductors may watch one ZooKeeper board; each job is claimed by
exactly one, and a dead conductor's jobs are freed when its ZooKeeper
session ends and resumed by another from their persisted atom states.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import signal
import socket
import threading
from concurrent import futures
from typing import Any

from taskflow import exceptions as tf_exc
from taskflow import states
from taskflow.engines.action_engine import compiler

from zoneflow import events, exceptions, heartbeat, jobs, objects
from zoneflow.conductor import bounded, options
from zoneflow.engine import executor, metrics
from zoneflow.engine.relay import OutboxRelay
from zoneflow.flows.scratch import Scratch
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import engine as adapter_engine
from zoneflow.taskflow_adapter import fencing, jobboard, persistence

LOG = logging.getLogger(__name__)
# The table named by task events: a job's tasks, keyed by the job's id.
TASKS_TABLE = "tasks"
CONF = options.CONF


class Conductor:
    """One conductor, runnable in its own thread or as a process's main loop."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or CONF.conductor.name or f"{socket.gethostname()}-{os.getpid()}"
        self.persistence = persistence.get_backend()
        # The conductor's own ZooKeeper session: its claims, its watch of the
        # board's locks and its fence all live on it.
        self._client = jobboard.client()
        self.board = jobboard.connect(
            self.persistence, name=f"board-{self.name}", client=self._client
        )
        self.relay = (
            OutboxRelay(self.board, self.persistence, interval=CONF.conductor.relay_interval)
            if CONF.conductor.relay
            else None
        )
        self._conductor = bounded.BoundedConductor(
            self.name,
            self.board,
            limits=jobs.Limits(
                failed=CONF.conductor.max_job_attempts,
                lost=CONF.conductor.max_lost_attempts,
                same_step=CONF.conductor.max_lost_at_same_step,
            ),
            client=self._client,
            persistence=self.persistence,
            engine=adapter_engine.NAME,
            engine_options=executor.engine_options(),
            wait_timeout=CONF.conductor.wait_timeout,
            max_simultaneous_jobs=CONF.conductor.max_jobs,
            upkeep_slots=_upkeep_slots(),
            # The standard library's pool: its idle threads leave as soon as
            # it shuts down, where futurist's each poll for a second first,
            # and a stopping conductor waited for them.
            executor_factory=lambda: futures.ThreadPoolExecutor(
                max_workers=CONF.conductor.max_jobs, thread_name_prefix="job"
            ),
        )
        if CONF.jobboard.backend == "zookeeper":
            # Claims live as long as the board's ZooKeeper session: each job's
            # flow carries that session's id, and its tasks stop if it ends.
            fencing.install(self._client, CONF.jobboard.session_timeout)
        self._conductor.notifier.register("running_start", _on_running_start)
        self._conductor.notifier.register("job_consumed", publish_job_end)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._purger: threading.Thread | None = None

    @property
    def notifier(self) -> Any:
        """TaskFlow's conductor notifier: job_consumed, job_abandoned, job_failed, ..."""
        return self._conductor.notifier

    def run(self) -> None:
        """Claim and run jobs until stop() (blocks)."""
        if self.relay is not None:
            self.relay.start()
        if CONF.conductor.purge_interval:
            self._purger = threading.Thread(target=self._purge, name="purge", daemon=True)
            self._purger.start()
        LOG.info("conductor %s watching %s", self.name, jobboard.describe())
        self._conductor.run()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"conductor-{self.name}", daemon=True)
        self._thread.start()

    def _purge(self) -> None:
        """Remove old ended jobs' logbooks every ``[conductor] purge_interval`` seconds."""
        retention = datetime.timedelta(seconds=CONF.conductor.job_retention)
        while not self._stopping.wait(CONF.conductor.purge_interval):
            try:
                removed = jobs.purge(self.persistence, older_than=retention)
            except exceptions.ServiceUnavailable as exc:
                LOG.warning("job purge skipped: %s", exc)
                continue
            if removed:
                LOG.info("purged the logbooks of %d ended jobs", removed)

    def stop(self) -> None:
        """Stop claiming, suspend and hand back the jobs running, and close the board.

        Fencing goes before the board's ZooKeeper session: the session ends
        because the conductor stops, which is no loss to report (the fence
        would say this conductor's jobs "belong to other conductors now").
        """
        self._stopping.set()
        if self.relay is not None:
            self.relay.stop()
        self._conductor.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
        events.flush()
        fencing.uninstall()
        jobboard.close(self.board, self._client)
        LOG.info("conductor %s stopped", self.name)


def _upkeep_slots() -> int:
    """How many upkeep jobs the conductor runs at once ([conductor] upkeep_jobs)."""
    if CONF.conductor.upkeep_jobs is not None:
        return int(CONF.conductor.upkeep_jobs)
    return max(1, CONF.conductor.max_jobs * 3 // 4)


def _on_running_start(_event: str, details: dict[str, Any]) -> None:
    """Before a claimed job's engine runs: metrics watch it, and it gets the claim
    it runs under (``fence``) and an empty scratch (zoneflow.flows.scratch)."""
    engine = details["engine"]
    metrics.watch(engine, engine.storage.flow_name)
    # The session its claim is held under (see fencing); unfenced on zake.
    claim = fencing.claim()
    if claim.token is not None:
        atoms = [
            engine.storage.get_atom_uuid(node.name)
            for node, kind in engine.compilation.execution_graph.nodes(data="kind")
            if kind in compiler.ATOMS
        ]
        fencing.bind(claim, [engine.storage.flow_uuid, *atoms])
    # A fresh scratch each run: a resumed job's tasks read storage themselves. The
    # job's id, for a begin telling its own outbox rows from another job's.
    engine.storage.inject(
        {"fence": claim, "scratch": Scratch(), "job_id": details["job"].book_uuid},
        transient=True,
    )
    publish_task_states(engine, details["job"].book_uuid)


def publish_job_end(_event: str, details: dict[str, Any]) -> None:
    """A job taken off the board has ended: publish its outcome as a job event; a
    batch's, one event for each zone it carries (keyed ``JOB_ID/ZONE_ID``), so that
    a subscriber to any of those zones sees it."""
    try:
        info = jobs.get_job(details["persistence"], details["job"].book_uuid)
        project_id = (
            stored_zones.zone_projects([info.zone_id]).get(info.zone_id) if info.zone_id else None
        )
    except exceptions.ZoneflowError as exc:
        LOG.warning("job %s: its end not published: %s", details["job"].book_uuid, exc)
        return
    value = events.jsonable(dataclasses.replace(info, atoms=()))
    value["atoms"] = {atom.name: atom.state for atom in info.atoms}
    # One project per batch (jobs.group_changes): the first zone's is every zone's.
    about = (
        [(f"{info.id}/{zone.id}", zone.id) for zone in info.zones]
        if len(info.zones) > 1
        else [(info.id, info.zone_id or None)]
    )
    for key, zone_id in about:
        events.publish(
            events.NewEvent(
                objects.EventTopic.JOB, "jobs", key, info.state, value, project_id, zone_id
            )
        )


def publish_task_states(engine: Any, job_id: str) -> None:
    """Publish the state of each task as the job's engine moves it, as the job's task
    events (see task_states): all the states a job's tasks reached while its last
    event waited for its turn (``[events] rate_limit``) go in one event, so that a
    busy conductor is never held up by them and writes a few rows a job, not two
    for each task."""
    zone_id = _job_zone(engine)
    project_id = stored_zones.zone_projects([zone_id]).get(zone_id) if zone_id else None
    started: dict[str, str] = {}

    # TaskFlow passes ``details`` by name; a retry atom names itself retry_name.
    def on_task(state: str, details: dict[str, Any]) -> None:
        name = str(details.get("task_name") or details.get("retry_name") or "")
        # The event's own created_at is when the publisher writes it, a little later;
        # changed_at is when the engine changed the state.
        changed_at = datetime.datetime.now(datetime.UTC).isoformat()
        if state == states.RUNNING:
            started[name] = changed_at
        task = {"state": state, "changed_at": changed_at, "started_at": started.get(name)}
        events.publish(
            task_states(job_id, state, {name: task}, project_id, zone_id),
            merge=_merged_task_states,
        )

    engine.atom_notifier.register(engine.atom_notifier.ANY, on_task)


def task_states(
    job_id: str,
    newest: str,
    tasks: dict[str, dict[str, Any]],
    project_id: str | None,
    zone_id: str | None,
) -> events.NewEvent:
    """A job's task event: topic ``task``, key the job's id, action the ``newest``
    state reached, and the ``tasks`` whose state changed since the job's last one:
    each task's newest ``state``, when the engine changed it (``changed_at``) and
    when it last began RUNNING (``started_at``, None if not seen)."""
    return events.NewEvent(
        objects.EventTopic.TASK,
        TASKS_TABLE,
        job_id,
        newest,
        {"job_id": job_id, "tasks": tasks},
        project_id,
        zone_id,
    )


def _merged_task_states(waiting: events.NewEvent, newer: events.NewEvent) -> events.NewEvent:
    """One task event with the tasks of both, each task's newest state winning."""
    tasks = {**waiting.value["tasks"], **newer.value["tasks"]}
    return task_states(newer.key, newer.action, tasks, newer.project_id, newer.zone_id)


def _job_zone(engine: Any) -> str | None:
    """The zone a job is about, as its record names it (a batch's first zone; None
    for a target's job): one of its inputs."""
    for name, first in (("zone_id", False), ("zone_ids", True)):
        try:
            found = engine.storage.fetch(name)
        except tf_exc.NotFound:
            continue
        return str(found[0] if first else found)
    return None  # a job about a target has neither


def conductor_heartbeat(conductor: Conductor) -> heartbeat.Heartbeat:
    """A conductor's heartbeat, under its name: the jobs it runs and has run."""

    def stats() -> dict[str, Any]:
        counts: dict[str, Any] = {
            "jobs_running": int(metrics.REGISTRY.get_sample_value("zoneflow_jobs_running") or 0)
        }
        for family in metrics.REGISTRY.collect():
            if family.name != "zoneflow_jobs":
                continue
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    key = f"jobs_{sample.labels['state'].lower()}"
                    counts[key] = counts.get(key, 0) + int(sample.value)
        return counts

    return heartbeat.Heartbeat(
        heartbeat.CONDUCTOR,
        hostname=conductor.name,
        capabilities={"jobboard": jobboard.describe(), "max_jobs": CONF.conductor.max_jobs},
        stats=stats,
    )


def run_forever() -> None:
    """`zoneflow conductor`: run until SIGINT or SIGTERM."""
    conductor = Conductor()
    stopping = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    metrics.serve()
    conductor.start()
    beat = conductor_heartbeat(conductor)
    beat.start()
    stopping.wait()
    LOG.info("conductor %s stopping", conductor.name)
    beat.stop()
    conductor.stop()
    _exit_now()


def _exit_now() -> None:
    """End the process once the conductor has stopped in order.

    What is left to the interpreter is teardown: futurist's exit hook joins
    every idle thread of the engines' shared pool, each of which polls its
    queue once a second, and finalizing took seconds more; a restart or a
    deploy waited 3-8 s for nothing. The job records are written (flushed
    before each job left the board) and the ZooKeeper session is closed.
    """
    persistence.get_backend().flush()
    logging.shutdown()
    os._exit(0)
