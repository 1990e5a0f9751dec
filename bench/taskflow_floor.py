"""The floor under zoneflow's orchestration: stock TaskFlow alone, nothing persisted.

The same pieces a zoneflow job goes through, with none of zoneflow's code and
no database: a job posted on TaskFlow's ZooKeeper jobboard (real ZooKeeper),
claimed by TaskFlow's non-blocking conductor, whose parallel engine (on a
shared thread pool) runs the job's flow with TaskFlow's in-memory
persistence. Two flows (SHAPES): one shaped like create-zone on 8 targets
(begin, 8 no-op target tasks in parallel, take-back, consensus, status: 12
atoms), and a single no-op task, which leaves what TaskFlow costs per job
whatever the flow. Whatever zoneflow's overhead per job, it cannot go below
the first without leaving TaskFlow.

Used by bench/orchestration.py, which prints it beside zoneflow's figures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
import uuid
from collections.abc import Callable

import futurist
from taskflow import engines, task
from taskflow.conductors import backends as conductors
from taskflow.jobs import backends as jobboards
from taskflow.patterns import linear_flow, unordered_flow
from taskflow.persistence import backends as persistence_backends
from taskflow.persistence import models

TARGETS = 8
# The stock conductor polls the board; 1 ms keeps its pickup from counting.
WAIT_TIMEOUT = 0.001

# Job key -> event set by the job's last task.
_DONE: dict[str, threading.Event] = {}


class NoOp(task.Task):
    def execute(self) -> None:
        pass


class Last(task.Task):
    """The flow's last task: tells the benchmark its job is done."""

    def execute(self, key: str) -> None:
        _DONE.pop(key).set()


def create_zone_shape() -> linear_flow.Flow:
    targets = unordered_flow.Flow("targets").add(*(NoOp(f"target-{i}") for i in range(TARGETS)))
    return linear_flow.Flow("create-zone").add(
        NoOp("begin"), targets, NoOp("take-back"), NoOp("consensus"), Last("status")
    )


def one_task() -> linear_flow.Flow:
    return linear_flow.Flow("one-task").add(Last("status"))


# What is measured: a name, and the flow factory its jobs run.
SHAPES: dict[str, Callable[[], linear_flow.Flow]] = {
    f"12 no-op tasks shaped like create-zone on {TARGETS} targets": create_zone_shape,
    "one no-op task (TaskFlow's cost per job whatever the flow)": one_task,
}


@dataclasses.dataclass(frozen=True)
class Floor:
    latencies: list[float]  # seconds from posting a job until its last task ran
    jobs_per_second: float
    cpu_ms_per_job: dict[str, float]  # "TaskFlow (poster + conductor)", "ZooKeeper"


def burst_floor(
    zookeeper_hosts: str, zookeeper_pid: int, cpu_seconds: Callable[[list[int]], float]
) -> Floor:
    """The floor the batch benchmarks compare with: 200 jobs shaped like create-zone
    posted at once, their CPU a job."""
    return measure(
        zookeeper_hosts, zookeeper_pid, cpu_seconds, create_zone_shape, jobs=0, burst=200
    )


def measure(
    zookeeper_hosts: str,
    zookeeper_pid: int,
    cpu_seconds: Callable[[list[int]], float],
    flow: Callable[[], linear_flow.Flow],
    *,
    jobs: int,
    burst: int,
) -> Floor:
    """Jobs running ``flow``: ``jobs`` posted one at a time, then ``burst`` at once;
    ``cpu_seconds(pids)`` reads the CPU time processes used."""
    backend = persistence_backends.fetch({"connection": "memory://"})
    config = {"board": "zookeeper", "hosts": zookeeper_hosts, "path": "/taskflow-floor"}
    board = jobboards.fetch("floor-conductor", config, persistence=backend)
    poster = jobboards.fetch("floor-poster", config, persistence=backend)
    board.connect()
    poster.connect()
    executor = futurist.ThreadPoolExecutor(max_workers=64)
    conductor = conductors.fetch(
        "nonblocking",
        "floor",
        board,
        persistence=backend,
        engine="parallel",
        engine_options={"executor": executor},
        wait_timeout=WAIT_TIMEOUT,
    )
    runner = threading.Thread(target=conductor.run, daemon=True)
    runner.start()

    def post() -> threading.Event:
        key = uuid.uuid4().hex
        done = _DONE[key] = threading.Event()
        book = models.LogBook(f"floor {key}")
        detail = models.FlowDetail(flow.__name__, uuid.uuid4().hex)
        engines.save_factory_details(detail, flow, [], {})
        book.add(detail)
        with contextlib.closing(backend.get_connection()) as connection:
            connection.save_logbook(book)
        poster.post(book.name, book=book, details={"store": {"key": key}})
        return done

    def waited(done: threading.Event) -> None:
        if not done.wait(30):
            raise RuntimeError("a TaskFlow floor job did not finish in 30 s")

    try:
        for _ in range(5):
            waited(post())
        latencies = []
        for _ in range(jobs):
            started = time.perf_counter()
            waited(post())
            latencies.append(time.perf_counter() - started)
        cpu_before = cpu_seconds([os.getpid()]), cpu_seconds([zookeeper_pid])
        started = time.perf_counter()
        for done in [post() for _ in range(burst)]:
            waited(done)
        elapsed = time.perf_counter() - started
        cpu_after = cpu_seconds([os.getpid()]), cpu_seconds([zookeeper_pid])
    finally:
        conductor.stop()
        runner.join(timeout=10)
        board.close()
        poster.close()
        executor.shutdown()
    return Floor(
        latencies,
        burst / elapsed,
        {
            "TaskFlow (poster + conductor)": (cpu_after[0] - cpu_before[0]) / burst * 1000,
            "ZooKeeper": (cpu_after[1] - cpu_before[1]) / burst * 1000,
        },
    )
