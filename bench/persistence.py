"""What persisting flow state costs per job: stock TaskFlow vs zoneflow's backend.

One 9-task job (8 no-op tasks in parallel, like a pool of 8 no-op targets,
plus the flow's own bookkeeping) run on a parallel engine with a shared
executor, its logbook saved first as a posted job's is. Side by side in one
run, on SQLite and on a real PostgreSQL (started by the test fixture):

* in memory: no persistence at all (no resumption possible), the baseline;
* stock: TaskFlow's SQLAlchemy backend as ``persistence.backends.fetch`` builds it;
* zoneflow: ``zoneflow.taskflow_adapter.persistence`` (one shared connection object,
  changes written behind the engine in batches, a pooled WAL engine on
  SQLite), which persists the same atom states; its time includes the flush
  that makes the job's record whole, as a conductor's does.

And on PostgreSQL alone, what the writer's batches of atom rows cost: each row
its own statement (SQLAlchemy's upsert, which psycopg2 runs once per row)
against the rows of a batch in one statement (zoneflow's writer), CPU a row of
the PostgreSQL server and of this process, batches of several sizes.

    python bench/persistence.py [--jobs 50]
"""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import futurist  # noqa: E402
from taskflow import engines, task  # noqa: E402
from taskflow.patterns import graph_flow, unordered_flow  # noqa: E402
from taskflow.persistence import backends, models  # noqa: E402

from bench import report  # noqa: E402
from bench.orchestration import cpu_seconds, with_children  # noqa: E402
from tests.functional.fixtures.postgres import PostgresServer  # noqa: E402
from zoneflow.storage import db  # noqa: E402
from zoneflow.taskflow_adapter import persistence, writer  # noqa: E402

#: Rows a batch of the writer holds in each measurement, and how many rows each writes.
BATCH_SIZES = (1, 3, 11, 30)
ROWS = 3300


class NoOp(task.Task):
    def execute(self) -> int:
        return 1


def nine_task_flow() -> graph_flow.Flow:
    targets = unordered_flow.Flow("targets").add(*(NoOp(name=f"target-{i}") for i in range(8)))
    return graph_flow.Flow("job").add(NoOp(name="begin"), targets)


def time_jobs(backend: Any, jobs: int, executor: futurist.ThreadPoolExecutor) -> list[float]:
    samples = []
    for _ in range(jobs + 3):
        started = time.perf_counter()
        book = models.LogBook("job")
        detail = models.FlowDetail("job", uuid.uuid4().hex)
        book.add(detail)
        with contextlib.closing(backend.get_connection()) as connection:
            connection.save_logbook(book)
        engine = engines.load(
            nine_task_flow(),
            flow_detail=detail,
            book=book,
            backend=backend,
            engine="parallel",
            executor=executor,
        )
        engine.run()
        # zoneflow writes behind the engine; a job is done once its record is
        # written (a conductor flushes before it lets the job go), so count that.
        if hasattr(backend, "flush"):
            backend.flush()
        samples.append(time.perf_counter() - started)
    return samples[3:]  # the first runs warm caches and create tables


def measure(url: str, jobs: int, executor: futurist.ThreadPoolExecutor) -> dict[str, list[float]]:
    stock = backends.fetch({"connection": url})
    with contextlib.closing(stock.get_connection()) as connection:
        connection.upgrade()
    db.configure(url)
    persistence.reset()
    ours = persistence.get_backend()
    variants: dict[str, Callable[[], Any]] = {
        "in memory (no resumption)": lambda: backends.fetch({"connection": "memory://"}),
        "stock TaskFlow SQLAlchemy": lambda: stock,
        "zoneflow": lambda: ours,
    }
    return {name: time_jobs(make(), jobs, executor) for name, make in variants.items()}


def writer_batches(postgres: PostgresServer, url: str) -> list[list[str]]:
    """CPU a row of batches of atom rows replacing stored ones, each way, on ``url``."""
    assert postgres.process is not None
    db.configure(url)
    persistence.reset()
    persistence.upgrade()
    connection = persistence.get_backend().get_connection()
    atoms = connection._tables.atomdetails
    engine = db.get_engine()
    ways: dict[str, Callable[[Any, list[dict[str, Any]]], Any]] = {
        "a statement a row (SQLAlchemy's upsert)": lambda conn, rows: conn.execute(
            writer.upsert("postgresql", atoms), rows
        ),
        "a statement a batch (zoneflow's writer)": writer.Upsert(engine.dialect, atoms),
    }
    table = []
    for size in BATCH_SIZES:
        book = models.LogBook("writer")
        flow = models.FlowDetail("writer", uuid.uuid4().hex)
        book.add(flow)
        for i in range(size):
            flow.add(models.TaskDetail(f"task-{i}", uuid.uuid4().hex))
        connection.add_logbook(book)
        # What a task's end writes: its state and its result, per zone of a batch.
        rows = [
            dict(
                atom.to_dict(),
                state="SUCCESS",
                results={"zone-id": {"ok": True, "error": None, "serial": 1796671706}},
                meta={"progress": 1.0},
                parent_uuid=flow.uuid,
                atom_type=models.atom_detail_type(atom),
            )
            for atom in flow
        ]
        for name, write in ways.items():
            for batches in (20, ROWS // size):  # the first warms caches and plans
                server = cpu_seconds(with_children(postgres.process.pid))
                mine = time.process_time()
                for _ in range(batches):
                    with engine.begin() as conn:
                        write(conn, rows)
                server = cpu_seconds(with_children(postgres.process.pid)) - server
                mine = time.process_time() - mine
            per_row = 1e6 / (ROWS // size * size)
            table.append([str(size), name, f"{server * per_row:.0f}", f"{mine * per_row:.0f}"])
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    executor = futurist.ThreadPoolExecutor(16)
    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="zoneflow-bench-") as tmp:
        for name, samples in measure(f"sqlite:///{tmp}/bench.sqlite", args.jobs, executor).items():
            rows.append((f"SQLite: {name}", samples))
    with PostgresServer() as postgres:
        postgres.start()
        url = postgres.create_database("bench")
        for name, samples in measure(url, args.jobs, executor).items():
            rows.append((f"PostgreSQL 15: {name}", samples))
        batches = writer_batches(postgres, postgres.create_database("writer"))
    executor.shutdown()
    text = (
        f"One 9-task job (8 parallel no-op tasks + 1), {args.jobs} jobs one after another: "
        "save the logbook, then load and run the flow on a parallel engine with a shared "
        "executor. Every persisted variant writes the same atom states; zoneflow's time "
        "includes flushing its queued writes.\n\n"
        + report.latency_table(rows)
        + "\n\n**The writer's batches on PostgreSQL 15**: atom rows replacing stored ones (a "
        f"task's end: its state and result), {ROWS} rows in batches of each size, each batch a "
        "transaction; CPU a row of the PostgreSQL server (all its processes) and of the "
        "process writing, from /proc.\n\n"
        + report.markdown_table(
            ["rows a batch", "written as", "PostgreSQL µs a row", "writer µs a row"], batches
        )
    )
    print(text)
    if not args.no_write:
        report.write_section("persistence", "Persistence cost per job", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
