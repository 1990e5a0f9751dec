"""Orchestration capacity: how many changes a second zoneflow carries to ACTIVE on
2 cores when its jobs carry batches, beside TaskFlow's floor of one job a change.

The load benchmark (bench/load.py) puts 8 BIND9 servers on the same 2 cores,
and they alone cost more CPU a change than 200 changes a second leave. This
one asks what zoneflow itself carries: the same deployment, each part its own
process (``--conductors`` ``zoneflow conductor``, ``zoneflow api`` with
``--api-workers`` processes, PostgreSQL 15, ZooKeeper), its pool of
``--targets`` ``fake`` targets (each applies a change in memory, in the
conductor's process) and no nameservers, so that a job ends at its consensus
and status: the API's accept, the outbox, the relay's batches, the jobboard,
the flows with their persisted states, the statuses and events.

The load is bench/load.py's: Designate's mix (20 % zone creates, 6 % deletes,
74 % recordset creates or changes) on the API's v2 routes, open loop (Poisson
arrivals), each latency counted from its arrival. A change is done when the
API's event stream (``/v2/events``) reports its zone ACTIVE at its serial
(DELETED for a delete): what a client of zoneflow sees. ``--zones`` zones are
made first. Then a ramp of ``--rates``, ``--step-seconds`` each; after each
step the next waits until every change of it is done (at most ``--drain``
seconds), so that each step's CPU covers all the work of its changes. The
ramp stops after the first step past the knee: more than 1 % of the step's
changes done later than 2 s after they arrived.

TaskFlow's floor is measured in the same run (bench/taskflow_floor.py: 12
no-op tasks shaped like create-zone, nothing persisted, on TaskFlow's own
ZooKeeper jobboard and conductor): one job a change cannot go past
2000 ms / floor changes a second on 2 cores; the issue's bar for the
conductors' CPU a change is 1.2 × floor / the zones a job carried.

    python bench/capacity.py [--rates 50,100,200,300,400] [--step-seconds 30]
                             [--zones 200] [--targets 8] [--conductors 2]
                             [--api-workers 2] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import pathlib
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report, taskflow_floor  # noqa: E402
from bench.load import (  # noqa: E402
    STATEMENT_STATS,
    ActiveWatch,
    JobRecord,
    Rig,
    _sql,
    add_deployment_options,
    arrivals,
    deployment_conf,
    gather_statistics,
    job_records,
    lost,
    rates,
    start_daemons,
    top_statements,
)
from bench.load_report import DESIGNATE_MIX, KNEE  # noqa: E402
from bench.load_traffic import Api, Change, Load, Step, mix_shares  # noqa: E402
from bench.orchestration import CpuMeter, cpu_seconds, with_children  # noqa: E402
from tests.functional.deployment import Deployment  # noqa: E402
from tests.functional.fixtures.ports import HOST  # noqa: E402
from tests.functional.fixtures.postgres import PostgresServer  # noqa: E402
from tests.functional.fixtures.zookeeper import ZooKeeperServer  # noqa: E402
from tests.support import ADMIN  # noqa: E402

#: How many requests the load keeps in flight at most (keep-alive connections).
CONNECTIONS = 64


@dataclasses.dataclass
class StepRun:
    """One step of the ramp: its changes and what they cost."""

    rate: float
    seconds: float
    changes: list[Change]
    cpu: dict[str, float]  # CPU seconds by group, from the step's start until its last change
    jobs: list[JobRecord]

    @property
    def accepted(self) -> list[Change]:
        return [c for c in self.changes if c.accepted]

    def done_after(self) -> list[float]:
        """Seconds from arrival to ACTIVE (DELETED) of each change accepted and not
        superseded; a change never reported counts as never done (infinite)."""
        return [
            (c.active - c.due) if c.active is not None else float("inf")
            for c in self.accepted
            if not c.superseded
        ]

    def past_knee(self) -> bool:
        done = self.done_after()
        return sum(1 for after in done if after > KNEE) > 0.01 * max(1, len(done))

    def per_change(self, group: str) -> float:
        return self.cpu[group] / max(1, len(self.accepted)) * 1000

    @property
    def zones_a_job(self) -> float:
        return sum(job.zones for job in self.jobs) / max(1, len(self.jobs))


def _done(active: ActiveWatch, changes: Sequence[Change]) -> int:
    """Set ``active`` on each change the stream has reported, and ``superseded`` on each
    whose zone was deleted before it was done (a delete of this load picks any zone
    with no request in flight, its changes done or not); how many still wait."""
    waiting = 0
    for change in changes:
        if change.accepted and change.active is None and not change.superseded:
            change.active = active.first(change)
            change.superseded = change.active is None and any(
                status == "DELETED" for _, status, _ in active.seen.get(change.zone, [])
            )
            waiting += change.active is None and not change.superseded
    return waiting


async def run_step(
    rig: Rig,
    load: Load,
    active: ActiveWatch,
    groups: dict[str, Callable[[], list[int]]],
    step: Step,
    *,
    drain: float,
) -> StepRun:
    """Offer one step of the mix, open loop; wait until each change is done."""
    actions, shares = mix_shares(DESIGNATE_MIX)
    changes: list[Change] = []
    jobs_before = job_records(rig)
    sent: set[asyncio.Task[None]] = set()
    started = time.monotonic() + 0.1
    with CpuMeter(groups) as meter:
        for _, due in arrivals([step], load.rng, started):
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            change = Change(len(changes), 0, load.choose(actions, shares), due)
            changes.append(change)
            task = asyncio.create_task(load.send(change, give_up=drain))
            sent.add(task)
            task.add_done_callback(sent.discard)
        if sent:
            await asyncio.wait(sent)
        deadline = time.monotonic() + drain
        while _done(active, changes) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    jobs = [job for uuid, job in job_records(rig).items() if uuid not in jobs_before]
    return StepRun(step.rate, step.seconds, changes, meter.used, jobs)


def cpu_groups(
    deployment: Deployment, postgres: PostgresServer, zookeeper: ZooKeeperServer
) -> dict[str, Callable[[], list[int]]]:
    assert postgres.process is not None and zookeeper.process is not None
    pg_pid, zk_pid = postgres.process.pid, zookeeper.process.pid
    groups: dict[str, Callable[[], list[int]]] = {
        f"zoneflow {name}": (lambda pid=p.pid: with_children(pid))  # type: ignore[misc]
        for name, p in deployment.processes.items()
    }
    groups["PostgreSQL"] = lambda: with_children(pg_pid)
    groups["ZooKeeper"] = lambda: [zk_pid]
    groups["load generator (this process)"] = lambda: [os.getpid()]
    return groups


async def measure(
    rig: Rig, groups: dict[str, Callable[[], list[int]]], args: argparse.Namespace
) -> tuple[list[StepRun], list[str]]:
    """Seed the zones, then the ramp; and what the database lost of what was accepted."""
    api = Api(HOST, rig.deployment.api_port, ADMIN, CONNECTIONS)
    load = Load(api, random.Random(args.seed))
    active = ActiveWatch()
    follower = asyncio.create_task(active.follow(HOST, rig.deployment.api_port))
    steps: list[StepRun] = []
    try:
        await asyncio.wait_for(active.ready.wait(), 30)
        print(f"seeding {args.zones} zones ...", flush=True)
        seeded = await _seed(load, active, args.zones, drain=args.drain)
        if seeded:
            raise SystemExit(f"{seeded} of the {args.zones} zones made first never became ACTIVE")
        gather_statistics(rig.deployment.database)
        if args.statements:  # the ramp's statements alone, and how each table was read
            _sql(rig.deployment.database, "SELECT pg_stat_statements_reset()")
            _sql(rig.deployment.database, "SELECT pg_stat_reset()")
        for rate in args.rates:
            print(f"{rate:g} changes/s for {args.step_seconds:g} s ...", flush=True)
            made = await run_step(
                rig, load, active, groups, Step(rate, args.step_seconds), drain=args.drain
            )
            steps.append(made)
            print(step_row(made, _groups(made)), flush=True)
            if made.past_knee():
                break
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await api.close()
    return steps, lost(rig, load)


async def _seed(load: Load, active: ActiveWatch, zones: int, *, drain: float) -> int:
    """``zones`` zone creates, 20 at a time; how many never became ACTIVE."""
    made = [Change(i, 0, "create", time.monotonic()) for i in range(zones)]
    for first in range(0, zones, 20):
        await asyncio.gather(*(load.send(change) for change in made[first : first + 20]))
    deadline = time.monotonic() + drain
    while (waiting := _done(active, made)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return waiting + sum(1 for change in made if not change.accepted)


def _groups(run: StepRun) -> list[str]:
    shown = [g for g in run.cpu if g not in ("other processes", "kernel interrupts")]
    return [*shown, "other processes", "kernel interrupts"]


def step_row(run: StepRun, groups: list[str]) -> str:
    done = run.done_after()
    accepted = len(run.accepted)
    answered = [c.answered - c.due for c in run.accepted if c.answered is not None]
    finite = [d for d in done if d != float("inf")]
    zoneflow = sum(run.per_change(g) for g in groups if g.startswith("zoneflow "))
    whole = sum(run.per_change(g) for g in groups if g != "other processes")
    conductors = sum(run.per_change(g) for g in groups if g.startswith("zoneflow conductor"))
    return (
        f"| {run.rate:g} | {len(run.changes)} | {accepted / run.seconds:.1f} | "
        f"{_seconds(answered, 50)} / {_seconds(answered, 99)} | "
        f"{_seconds(done, 50)} | {_seconds(done, 90)} | {_seconds(done, 99)} | "
        f"{max(finite, default=0):.2f} | {len(done) - len(finite)} | "
        f"{sum(1 for c in run.accepted if c.superseded)} | "
        f"{len(run.jobs)} | {run.zones_a_job:.1f} | "
        + " | ".join(f"{run.per_change(g):.1f}" for g in groups)
        + f" | {conductors:.1f} | {zoneflow:.1f} | {whole:.1f} |"
    )


def _seconds(values: list[float], q: float) -> str:
    if not values:
        return "–"
    value = report.percentile(values, q)
    return "never" if value == float("inf") else f"{value:.2f}"


def describe(
    args: argparse.Namespace,
    steps: list[StepRun],
    floor: taskflow_floor.Floor,
    problems: list[str],
    load: tuple[float, float],
) -> str:
    groups = _groups(steps[0])
    floor_ms = floor.cpu_ms_per_job["TaskFlow (poster + conductor)"]
    knee = next((s.rate for s in steps if s.past_knee()), None)
    last_good = max((s.rate for s in steps if not s.past_knee()), default=None)
    lines = [
        f"{args.targets} fake targets and no nameservers (a job ends at its consensus and "
        f"status), {args.conductors} `zoneflow conductor`, `zoneflow api` with "
        f"{args.api_workers} processes, PostgreSQL 15 and ZooKeeper, each its own process, "
        "with their defaults (bench/capacity.py). Designate's mix (20 % zone creates, 6 % "
        "deletes, 74 % recordset creates or changes) on the API's v2 routes, open loop "
        f"(Poisson arrivals, at most {CONNECTIONS} requests in flight), after {args.zones} "
        "zones were made and the database's statistics gathered (ANALYZE, as autovacuum "
        "keeps them in a deployment that has run a while). Done: the API's event stream "
        "reported the change's zone ACTIVE at its serial (DELETED for a delete), timed from "
        "the change's arrival; a change whose zone a later delete of this load removed "
        "first is left out (its zone deleted first: a delete picks any zone with no "
        "request in flight). Each step of "
        f"{args.step_seconds:g} s, then its changes waited for (at most {args.drain:g} s); "
        "its CPU from its first arrival until its last change was done, per change the API "
        "accepted. The 1-minute load average was "
        f"{load[0]:.1f} when the run began and {load[1]:.1f} when it ended, on 2 cores.",
        "",
        "| offered (changes/s) | arrived | accepted/s | API answered p50 / p99 (s) | "
        "done p50 (s) | p90 | p99 | max (s) | never done | zone deleted first | jobs | "
        "zones a job | "
        + " | ".join(f"CPU ms/change: {g}" for g in groups)
        + " | CPU ms/change: conductors | CPU ms/change: zoneflow | "
        "CPU ms/change: all but other processes |",
        "| " + " | ".join(["---:"] * (15 + len(groups))) + " |",
        *(step_row(s, groups) for s in steps),
        "",
        f"The knee (more than 1 % of a step's changes done later than {KNEE:g} s after they "
        "arrived): "
        + (
            f"between {last_good:g} and {knee:g} changes/s."
            if knee is not None and last_good is not None
            else f"below {knee:g} changes/s."
            if knee is not None
            else f"not reached at {steps[-1].rate:g} changes/s."
        ),
        "",
        "TaskFlow's floor in the same run (bench/taskflow_floor.py: 12 no-op tasks shaped like "
        "create-zone, nothing persisted, 200 jobs at once on TaskFlow's ZooKeeper jobboard and "
        f"conductor): {floor_ms:.1f} ms of CPU a job (ZooKeeper "
        f"{floor.cpu_ms_per_job['ZooKeeper']:.1f} more), {floor.jobs_per_second:.1f} jobs/s "
        f"with one conductor: one job a change could carry at most {2000 / floor_ms:.0f} "
        "changes/s on 2 cores with nothing else running. The issue's bar for the conductors' "
        "CPU a change, 1.2 × floor / zones a job, in each step: "
        + "; ".join(
            f"{s.rate:g}/s: {1.2 * floor_ms / max(1.0, s.zones_a_job):.1f} ms against "
            f"{sum(s.per_change(g) for g in groups if g.startswith('zoneflow conductor')):.1f}"
            for s in steps
        )
        + ".",
        "",
        "Nothing lost: every zone and recordset accepted is in the database with its latest "
        "records, and each deleted zone is gone."
        if not problems
        else f"**Lost** ({len(problems)}): " + "; ".join(problems[:10]),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates",
        type=rates,
        default=[50.0, 100.0, 200.0, 300.0, 400.0],
        help="changes/s of each step",
    )
    parser.add_argument("--step-seconds", type=float, default=30.0)
    parser.add_argument("--zones", type=int, default=200, help="zones made before the ramp")
    parser.add_argument("--targets", type=int, default=8, help="fake targets in the pool")
    parser.add_argument("--conductors", type=int, default=2)
    parser.add_argument("--api-workers", type=int, default=2, help="[api] workers")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait for a step")
    parser.add_argument("--seed", type=int, default=17, help="of the arrivals and choices")
    add_deployment_options(parser)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    began = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="zoneflow-capacity-") as tmp,
        PostgresServer(settings=STATEMENT_STATS if args.statements else None) as postgres,
        ZooKeeperServer() as zookeeper,
    ):
        conf = deployment_conf(args.set)
        conf.setdefault("api", {}).setdefault("workers", args.api_workers)
        deployment = Deployment(
            pathlib.Path(tmp),
            database=postgres.create_database("capacity"),
            zookeeper_hosts=zookeeper.hosts,
            extra_conf=conf,
        )
        try:
            start(deployment, args)
            if args.statements:
                _sql(deployment.database, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            groups = cpu_groups(deployment, postgres, zookeeper)
            steps, problems = asyncio.run(measure(Rig(deployment, []), groups, args))
            if args.statements:
                print(top_statements(deployment.database, args.statements), flush=True)
        finally:
            deployment.close()
        assert zookeeper.process is not None
        floor = taskflow_floor.burst_floor(zookeeper.hosts, zookeeper.process.pid, cpu_seconds)
    body = describe(args, steps, floor, problems, (began, os.getloadavg()[0]))
    print(body)
    if not args.no_write:
        report.write_section(
            "capacity", "Orchestration capacity: changes a second without nameservers", body
        )
    return 1 if problems else 0


def start(deployment: Deployment, args: argparse.Namespace) -> None:
    """The pool of fake targets loaded, the conductors and the API started."""
    deployment.load_pool(
        {
            "name": "default",
            "ns_records": [{"hostname": "ns1.load.example.", "priority": 1}],
            "targets": [{"type": "fake", "description": f"fake{i}"} for i in range(args.targets)],
        }
    )
    start_daemons(deployment, conductors=args.conductors)


if __name__ == "__main__":
    raise SystemExit(main())
