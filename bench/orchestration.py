"""Orchestration overhead and throughput: conductors on PostgreSQL and ZooKeeper.

A real PostgreSQL 15 and a real ZooKeeper (started by the test fixtures), a
pool of 8 ``fake`` targets (no delay, no failures) and no nameservers, so no
DNS polling: what is measured is the orchestration alone (outbox, posting,
claiming, running the 11-task flow with its persisted atom states, writing
the status). The conductors are ``zoneflow conductor`` processes configured
as tests/functional/deployment.py does; this script plays the API: it calls
``central_zones.create_zone`` and posts the job from the outbox at once, as the
CLI does.

* **overhead**: one job at a time, with 1 conductor, from ``create_zone``
  returning until the zone is ACTIVE in the database, broken down by what
  ZooKeeper shows (the job node appearing, its lock appearing);
* **throughput**: a burst of zone creates posted as fast as a few poster
  threads can, until all are ACTIVE, with 1 and then 2 conductors; and the
  CPU each process used per job, from /proc, which says who the bottleneck
  is (a conductor's Python cannot use more than one core).

ACTIVE is seen without polling: a trigger this script adds to the bench
database sends a PostgreSQL NOTIFY when a zone's status becomes ACTIVE, which
arrives when that UPDATE commits. ZooKeeper's view comes from a child watch on
the board.

    python bench/orchestration.py [--jobs 100] [--burst 300]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import select
import sys
import tempfile
import threading
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kazoo.client import KazooClient  # noqa: E402

from bench import report, taskflow_floor  # noqa: E402
from tests.functional.deployment import Deployment  # noqa: E402
from tests.functional.fixtures.ports import wait_for  # noqa: E402
from tests.functional.fixtures.postgres import PostgresServer  # noqa: E402
from tests.functional.fixtures.zookeeper import ZooKeeperServer  # noqa: E402

TARGETS = 8
EMAIL = "hostmaster@bench.example"
WARMUP = 5
POSTERS = 4
MACHINE = ("processes", "interrupts")
ACTIVE_CHANNEL = "bench_zone_active"
TRIGGER_SQL = f"""
CREATE FUNCTION bench_zone_active() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{ACTIVE_CHANNEL}', NEW.id);
    RETURN NEW;
END $$;
CREATE TRIGGER bench_zone_active AFTER UPDATE OF status ON zones FOR EACH ROW
    WHEN (NEW.status = 'ACTIVE' AND OLD.status <> 'ACTIVE')
    EXECUTE FUNCTION bench_zone_active();
"""


class ActiveListener:
    """When each zone turned ACTIVE, from the trigger's NOTIFY (LISTEN in a thread)."""

    def __init__(self, postgres: PostgresServer, dbname: str) -> None:
        self._conn = postgres.connect(dbname)
        self._conn.autocommit = True
        with self._conn.cursor() as cur:
            cur.execute(TRIGGER_SQL)
            cur.execute(f"LISTEN {ACTIVE_CHANNEL}")
        self.times: dict[str, float] = {}
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="active-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            if not select.select([self._conn], [], [], 0.2)[0]:
                continue
            self._conn.poll()
            now = time.perf_counter()
            with self._cond:
                while self._conn.notifies:
                    self.times.setdefault(self._conn.notifies.pop(0).payload, now)
                self._cond.notify_all()

    def wait(self, zone_ids: list[str], timeout: float) -> float:
        """Block until every zone is ACTIVE; return when the last one became so."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while missing := [z for z in zone_ids if z not in self.times]:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"{len(missing)} zones not ACTIVE after {timeout:g} s")
                self._cond.wait(left)
            return max(self.times[z] for z in zone_ids)

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        self._conn.close()


class BoardWatch:
    """When each child of the board (job node, job lock) first appeared."""

    def __init__(self, hosts: str, path: str) -> None:
        self.seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._client = KazooClient(hosts=hosts)
        self._client.start(timeout=10)
        self._client.ensure_path(path)
        self._client.ChildrenWatch(path, self._changed)

    def _changed(self, children: list[str]) -> None:
        now = time.perf_counter()
        with self._lock:
            for child in children:
                self.seen.setdefault(child, now)

    def first_after(self, since: float, *, lock: bool) -> float | None:
        """When the first job node (or job lock) appeared after ``since``."""
        with self._lock:
            times = [
                t
                for name, t in self.seen.items()
                if t >= since and name.startswith("job") and name.endswith(".lock") == lock
            ]
        return min(times) if times else None

    def close(self) -> None:
        self._client.stop()
        self._client.close()


def _stat(pid: int | str) -> list[str] | None:
    try:
        text = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields from the state on (the name may hold spaces)


def cpu_seconds(pids: list[int]) -> float:
    """CPU (user + system, all threads) the processes have used so far, with that of
    their children that have ended: a PostgreSQL backend whose connection closed
    during a measurement is in its postmaster's count, not lost to "other"."""
    ticks = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            # utime, stime, cutime, cstime (proc(5), fields 14-17)
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def with_children(pid: int) -> list[int]:
    """``pid`` and its direct children (PostgreSQL's backends are the postmaster's)."""
    pids = [pid]
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(entry.name)) and int(fields[1]) == pid:
            pids.append(int(entry.name))
    return pids


def machine_seconds() -> dict[str, float]:
    """CPU seconds the machine has spent in processes, and in interrupts (the kernel's
    network work on loopback is largely softirq, which no process is charged for)."""
    first = pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in first[1:8])
    tick = os.sysconf("SC_CLK_TCK")
    return {"processes": (user + nice + system) / tick, "interrupts": (irq + softirq) / tick}


@dataclasses.dataclass
class CpuMeter:
    """CPU used per group of processes (and by everything else) over one measurement."""

    groups: dict[str, Any]  # name -> callable returning the pids now
    start: dict[str, float] = dataclasses.field(default_factory=dict)

    def __enter__(self) -> CpuMeter:
        self.start = self._now()
        return self

    def __exit__(self, *_: object) -> None:
        end = self._now()
        machine = {k: end.pop(k) - self.start[k] for k in MACHINE}
        # A group that had no process at the start (a conductor started since) began at 0.
        self.used = {name: end[name] - self.start.get(name, 0.0) for name in end}
        self.used["other processes"] = machine["processes"] - sum(self.used.values())
        self.used["kernel interrupts"] = machine["interrupts"]

    def _now(self) -> dict[str, float]:
        now = {name: cpu_seconds(pids()) for name, pids in self.groups.items()}
        now.update(machine_seconds())
        return now


@dataclasses.dataclass
class Bench:
    """This process as the API: central plus a poster on the shared board."""

    listener: ActiveListener
    watch: BoardWatch
    relay: Any
    made: int = 0
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def create(self, prefix: str) -> str:
        from zoneflow.central import zones as central_zones

        with self._lock:
            self.made += 1
            name = f"{prefix}{self.made}.bench.example."
        return central_zones.create_zone(name, EMAIL).id

    def one_job(self, prefix: str) -> dict[str, float | None]:
        started = time.perf_counter()
        zone_id = self.create(prefix)
        created = time.perf_counter()
        self.relay.flush()
        active = self.listener.wait([zone_id], timeout=30)
        on_board = self.watch.first_after(created, lock=False)
        claimed = self.watch.first_after(created, lock=True)
        return {
            "create_zone call": created - started,
            "total": active - created,
            "post": on_board - created if on_board else None,
            "pickup": claimed - on_board if claimed and on_board else None,
            "run": active - claimed if claimed else None,
        }

    def burst(self, count: int, prefix: str, meter: CpuMeter) -> Burst:
        """Post ``count`` creates from POSTERS threads at once, until all are ACTIVE."""
        zone_ids: list[str] = []
        errors: list[BaseException] = []

        def post(n: int) -> None:
            try:
                for _ in range(n):
                    zone_ids.append(self.create(prefix))
                    self.relay.flush()
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        shares = [count // POSTERS + (i < count % POSTERS) for i in range(POSTERS)]
        posters = [threading.Thread(target=post, args=(n,)) for n in shares]
        with meter:
            started = time.perf_counter()
            for poster in posters:
                poster.start()
            for poster in posters:
                poster.join()
            posted = time.perf_counter() - started
            if errors:
                raise errors[0]
            done = self.listener.wait(zone_ids, timeout=150) - started
        return Burst(count, posted, done, meter.used)


@dataclasses.dataclass(frozen=True)
class Burst:
    jobs: int
    posting: float
    done: float
    cpu: dict[str, float]


def pool() -> dict[str, Any]:
    return {
        "name": "default",
        "ns_records": [{"hostname": "ns1.bench.example.", "priority": 1}],
        "targets": [{"type": "fake", "description": f"fake{i}"} for i in range(TARGETS)],
    }


def start_conductor(deployment: Deployment, name: str) -> None:
    deployment.start_conductor(name)
    wait_for(
        lambda: "watching" in deployment.log(name),
        timeout=30,
        what=f"{name} to watch the board (see {deployment.workdir}/{name}.log)",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100, help="jobs timed one at a time")
    parser.add_argument("--burst", type=int, default=300, help="creates per throughput burst")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    from zoneflow import config
    from zoneflow.engine.relay import OutboxRelay
    from zoneflow.taskflow_adapter import jobboard, persistence

    with (
        tempfile.TemporaryDirectory(prefix="zoneflow-bench-") as tmp,
        PostgresServer() as postgres,
        ZooKeeperServer() as zookeeper,
    ):
        url = postgres.create_database("bench")
        deployment = Deployment(pathlib.Path(tmp), database=url, zookeeper_hosts=zookeeper.hosts)
        deployment.load_pool(pool())
        config.setup([str(deployment.conf)])
        listener = ActiveListener(postgres, "bench")
        watch = BoardWatch(zookeeper.hosts, config.CONF.jobboard.path)
        board = jobboard.connect(persistence.get_backend(), name="bench-poster")
        bench = Bench(listener, watch, OutboxRelay(board, persistence.get_backend()))
        assert postgres.process is not None and zookeeper.process is not None
        pg_pid, zk_pid = postgres.process.pid, zookeeper.process.pid

        def meter() -> CpuMeter:
            return CpuMeter(
                {
                    "conductors": lambda: [p.pid for p in deployment.processes.values()],
                    "PostgreSQL": lambda: with_children(pg_pid),
                    "ZooKeeper": lambda: [zk_pid],
                    "posters (this script)": lambda: [os.getpid()],
                }
            )

        try:
            start_conductor(deployment, "conductor-1")
            for _ in range(WARMUP):
                bench.one_job("warm")
            with meter() as serial_cpu:
                serial_started = time.perf_counter()
                samples = [bench.one_job("serial") for _ in range(args.jobs)]
                serial_seconds = time.perf_counter() - serial_started
            one = bench.burst(args.burst, "burst-one", meter())
            start_conductor(deployment, "conductor-2")
            for _ in range(WARMUP):
                bench.one_job("warm")
            two = bench.burst(args.burst, "burst-two", meter())
            deployment.close()  # its conductors idle, but not on this measure's time
            floors = {
                shape: taskflow_floor.measure(
                    zookeeper.hosts, zk_pid, cpu_seconds, flow, jobs=args.jobs, burst=args.burst
                )
                for shape, flow in taskflow_floor.SHAPES.items()
            }
        finally:
            board.close()
            watch.close()
            listener.close()
            deployment.close()

    others = serial_cpu.used["other processes"] / serial_seconds
    text = describe(args, samples, others, {"1 conductor": one, "2 conductors": two}, floors)
    print(text)
    if not args.no_write:
        report.write_section("orchestration", "Orchestration: overhead and throughput", text)
    return 0


def describe(
    args: argparse.Namespace,
    samples: list[dict[str, float | None]],
    serial_others: float,
    bursts: dict[str, Burst],
    floors: dict[str, taskflow_floor.Floor],
) -> str:
    def column(key: str) -> list[float]:
        return [s[key] for s in samples if s[key] is not None]  # type: ignore[misc]

    rows = [
        ("create_zone returned → ACTIVE in the database", column("total")),
        ("of which: create_zone returned → job on the board (post)", column("post")),
        ("of which: job on the board → claimed (pickup)", column("pickup")),
        ("of which: claimed → ACTIVE (run the flow)", column("run")),
        ("create_zone itself (zone + outbox row, before the above)", column("create_zone call")),
    ]
    groups = list(next(iter(bursts.values())).cpu)
    lines = [
        "| burst | jobs | posting (s) | all ACTIVE (s) | jobs/s | "
        + " | ".join(f"CPU ms/job: {g}" for g in groups)
        + " |",
        "| --- | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in groups) + " |",
    ]
    for label, burst in bursts.items():
        lines.append(
            f"| {label} | {burst.jobs} | {burst.posting:.1f} | {burst.done:.1f} | "
            f"{burst.jobs / burst.done:.1f} | "
            + " | ".join(f"{burst.cpu[g] / burst.jobs * 1000:.0f}" for g in groups)
            + " |"
        )
    return (
        f"Pure orchestration on PostgreSQL 15 and ZooKeeper: a pool of {TARGETS} fake targets "
        "(no delay, no failures) and no nameservers, so no NOTIFY and no polling; conductors "
        "are `zoneflow conductor` processes with the default settings. This script posts each "
        "job from the outbox right after `create_zone`, as the CLI does. ACTIVE is seen by "
        "LISTEN on a NOTIFY a bench-only trigger sends when the status UPDATE commits; the "
        "post/pickup breakdown is when a ZooKeeper child watch saw the job node and its lock "
        "appear (rows with no such sighting are left out).\n\n"
        f"Overhead per job, {args.jobs} jobs one at a time, 1 conductor (processes outside "
        f"this benchmark used {serial_others:.2f} of the machine's cores meanwhile):\n\n"
        + report.latency_table(rows)
        + f"\nThroughput: {args.burst} creates posted by {POSTERS} threads of this script "
        "at once, timed until every zone is ACTIVE; then the CPU time each part used, per "
        "job (from /proc; one conductor process is one core at most, Python's GIL). "
        '"Other processes" ran outside this benchmark over the same time: other work on a '
        'shared machine slows every figure here. "Kernel interrupts" is charged to no '
        "process; here it is mostly the loopback network traffic between all of them.\n\n"
        + "\n".join(lines)
        + "\n\n"
        + describe_floors(args, floors)
    )


def describe_floors(args: argparse.Namespace, floors: dict[str, taskflow_floor.Floor]) -> str:
    some = next(iter(floors.values()))
    rows = [
        f"| {shape} | {report.percentile(floor.latencies, 50) * 1000:.0f} | "
        f"{report.percentile(floor.latencies, 99) * 1000:.0f} | {floor.jobs_per_second:.1f} | "
        + " | ".join(f"{ms:.0f}" for ms in floor.cpu_ms_per_job.values())
        + " |"
        for shape, floor in floors.items()
    ]
    return (
        "The floor, in the same run: stock TaskFlow alone (bench/taskflow_floor.py), no "
        "zoneflow code and nothing persisted. Jobs on TaskFlow's ZooKeeper jobboard, "
        "TaskFlow's non-blocking conductor polling every 1 ms, its parallel engine on a shared "
        "thread pool, in-memory persistence; the poster and the conductor are this process. "
        f"Latency over {args.jobs} jobs posted one at a time (posted → last task done), "
        f"throughput and CPU over {args.burst} posted at once:\n\n"
        "| flow | p50 (ms) | p99 (ms) | jobs/s, 1 conductor | "
        + " | ".join(f"CPU ms/job: {name}" for name in some.cpu_ms_per_job)
        + " |\n| --- | ---: | ---: | ---: | "
        + " | ".join("---:" for _ in some.cpu_ms_per_job)
        + " |\n"
        + "\n".join(rows)
        + "\n"
    )


if __name__ == "__main__":
    sys.exit(main())
