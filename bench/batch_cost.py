"""What a batch of zone changes costs the processes that carry it out, on BIND9
targets: this checkout against a revision before it, in turn, in one run.

The load benchmark (bench/load.py) cannot compare two revisions' CPU a change:
a run that keeps up makes smaller jobs than one that falls behind, and a job's
own cost is shared by fewer changes, so the better code can show the higher
figure. Here every job has the same shape. Each setup has its own PostgreSQL,
ZooKeeper and ``--targets`` BIND9 servers (each NOTIFYing mdns of the serials it
loads, as doc/backends.md recommends), and ``zoneflow mdns``, ``zoneflow api``
(``[api] relay = false``) and one ``zoneflow conductor`` (``[conductor]
batch_zones = --batch``) as processes of that revision's code. ``--zones``
zones with one A recordset each are made first. Then ``--rounds`` rounds: the
conductor is stopped (SIGSTOP), every zone's recordset gets a new address
through the API, the conductor goes on (SIGCONT), its relay finds every change
at once and posts ``--zones / --batch`` update-zones jobs of ``--batch`` zones,
and the round ends when the database holds every zone ACTIVE again. The CPU
each process used over the rounds (/proc), per zone changed.

The setups are up at once and take their rounds in turn (the order swapped
each round), so that a change in the machine's speed (its other work) falls
on all alike. TaskFlow's own floor per job (bench/taskflow_floor.py, 12
no-op tasks shaped like create-zone, nothing persisted) is measured in the
same run, for the issue's bar: orchestration CPU a change at most 1.2 × the
floor divided by the batch's size.

``--without-copies`` adds a setup of this checkout whose mdns sends no copies
of its answers to ports that ask two questions at once (``[mdns]
repeat_to_shared_ports = false``; zoneflow.mdns.shared_ports says why it does).

    python bench/batch_cost.py [--before REV] [--without-copies] [--zones 40] [--batch 10]
                               [--rounds 20] [--targets 8] [--statements N] [--no-write]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import os
import pathlib
import signal
import statistics
import sys
import tempfile
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench import report, taskflow_floor  # noqa: E402
from bench.api_write import descendants  # noqa: E402
from bench.backfill_priority import _archive, _revision, _running_code  # noqa: E402
from bench.load import STATEMENT_STATS, _sql, pool, top_statements  # noqa: E402
from bench.orchestration import CpuMeter, cpu_seconds  # noqa: E402
from tests.functional.deployment import Deployment  # noqa: E402
from tests.functional.fixtures.bind9 import Bind9Server  # noqa: E402
from tests.functional.fixtures.ports import HOST, wait_for  # noqa: E402
from tests.support import ADMIN  # noqa: E402

SUFFIX = "cost.example."
EMAIL = f"admin@{SUFFIX}"
# The processes reported, in the table's order.
GROUPS = ("conductor", "mdns", "API", "PostgreSQL", "ZooKeeper", "BIND9")


@dataclasses.dataclass(frozen=True)
class Run:
    label: str
    changes: int
    jobs: int
    round_seconds: list[float]  # SIGCONT until every zone is ACTIVE again
    cpu: dict[str, float]  # seconds over the rounds, by group (and "other processes")


class Database:
    """The setup's database as this script reads it: one connection kept for every
    read (a wait asks every 50 ms, and a connection a read would have PostgreSQL fork
    a backend each time, charged to PostgreSQL's CPU)."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, pool_size=1, max_overflow=0)

    def count(self, query: str) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(sa.text(query)).scalar() or 0)

    def all_active(self, zones: int, timeout: float) -> None:
        wait_for(
            lambda: self.count("SELECT count(*) FROM zones WHERE status = 'ACTIVE'") == zones,
            timeout=timeout,
            what=f"all {zones} zones to be ACTIVE",
        )


class Setup:
    """One revision's deployment, brought up in ``stack``: its own servers, its
    daemons started from ``code``, its zones made and ACTIVE."""

    def __init__(
        self,
        label: str,
        code: pathlib.Path,
        workdir: pathlib.Path,
        args: Any,
        stack: contextlib.ExitStack,
        mdns_conf: dict[str, str] | None = None,
    ) -> None:
        from tests.functional.fixtures.postgres import PostgresServer
        from tests.functional.fixtures.zookeeper import ZooKeeperServer

        self.label, self.args = label, args
        workdir.mkdir(parents=True)
        settings = STATEMENT_STATS if args.statements else None
        postgres = stack.enter_context(PostgresServer(settings=settings))
        self.zookeeper = stack.enter_context(ZooKeeperServer())
        # The CLI's and the daemons' zoneflow is ``code``'s while they start.
        with _running_code(code, workdir):
            self.deployment = deployment = Deployment(
                workdir,
                database=postgres.create_database("cost"),
                zookeeper_hosts=self.zookeeper.hosts,
                extra_conf={
                    "events": {"driver": "postgres"},
                    "api": {"relay": "false"},
                    "conductor": {"batch_zones": args.batch},
                    "mdns": mdns_conf or {},
                },
            )
            binds = [
                stack.enter_context(
                    Bind9Server(
                        workdir=workdir / f"bind9-{i}",
                        also_notify=[(HOST, deployment.mdns_port)],
                    )
                )
                for i in range(args.targets)
            ]
            stack.callback(deployment.close)  # zoneflow stops before the targets it feeds
            self.database = Database(deployment.database)
            stack.callback(self.database.engine.dispose)
            deployment.load_pool(pool(deployment, binds))
            self.conductor = deployment.start_conductor("conductor")
            deployment.start_mdns()
            deployment.start_api()
        wait_for(lambda: "watching" in deployment.log("conductor"), timeout=60, what="a conductor")
        project = ADMIN["X-Auth-Project-ID"]
        deployment.api("PATCH", f"/v2/quotas/{project}", {"zones": -1, "zone_recordsets": -1})
        names = [f"z{i}.{SUFFIX}" for i in range(args.zones)]
        zone_ids = deployment.api_create_zones(names, EMAIL)
        self.database.all_active(args.zones, timeout=120)
        self.recordsets = {
            zone_id: deployment.api(
                "POST",
                f"/v2/zones/{zone_id}/recordsets",
                {"name": f"www.{name}", "type": "A", "records": ["192.0.2.1"]},
            )["id"]
            for name, zone_id in zone_ids.items()
        }
        self.database.all_active(args.zones, timeout=120)

        assert postgres.process is not None and self.zookeeper.process is not None
        pg_pid, zk_pid = postgres.process.pid, self.zookeeper.process.pid
        api_pid = deployment.processes["api"].pid
        mdns_pid = deployment.processes["mdns"].pid
        conductor_pid = self.conductor.pid
        self.groups = {
            "conductor": lambda: [conductor_pid],
            "mdns": lambda: [mdns_pid],
            "API": lambda: descendants(api_pid),
            "PostgreSQL": lambda: descendants(pg_pid),
            "ZooKeeper": lambda: [zk_pid],
            "BIND9": lambda: [b.process.pid for b in binds if b.process is not None],
        }
        if args.statements:
            _sql(deployment.database, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            _sql(deployment.database, "SELECT pg_stat_statements_reset()")
        self.jobs_before = self.database.count("SELECT count(*) FROM logbooks")
        self.rounds: list[float] = []
        self.cpu: collections.Counter[str] = collections.Counter()

    def round(self, number: int) -> None:
        """Every zone's recordset changed while the conductor is stopped; then timed
        from letting it go until every zone is ACTIVE again."""
        with CpuMeter(self.groups) as meter:
            os.kill(self.conductor.pid, signal.SIGSTOP)
            try:
                for zone_id, recordset_id in self.recordsets.items():
                    self.deployment.api(
                        "PUT",
                        f"/v2/zones/{zone_id}/recordsets/{recordset_id}",
                        {"records": [f"198.51.100.{number % 250 + 1}"]},
                    )
            finally:
                os.kill(self.conductor.pid, signal.SIGCONT)
            went_on = time.monotonic()
            self.database.all_active(self.args.zones, timeout=300)
            self.rounds.append(time.monotonic() - went_on)
        self.cpu.update(meter.used)

    def run(self) -> Run:
        jobs = self.database.count("SELECT count(*) FROM logbooks") - self.jobs_before
        changes = self.args.zones * len(self.rounds)
        if self.args.statements:
            url = self.deployment.database
            calls = _sql(url, "SELECT sum(calls) FROM pg_stat_statements")[0][0]
            print(f"{self.label}: {calls / changes:.1f} statements a change")
            print(top_statements(url, self.args.statements), flush=True)
        return Run(self.label, changes, jobs, self.rounds, dict(self.cpu))


def table(runs: list[Run]) -> str:
    head = (
        "| code | zone changes | jobs | zones a job | round: p50 / max (s) | "
        + " | ".join(f"CPU ms/change: {g}" for g in GROUPS)
        + " | CPU ms/change: zoneflow (conductor, mdns, API) |"
    )
    lines = [head, "| --- " + "| ---: " * (len(GROUPS) + 5) + "|"]
    for run in runs:
        per = {g: run.cpu[g] * 1000 / run.changes for g in GROUPS}
        zoneflow = per["conductor"] + per["mdns"] + per["API"]
        lines.append(
            f"| {run.label} | {run.changes} | {run.jobs} | {run.changes / max(run.jobs, 1):.1f} | "
            f"{statistics.median(run.round_seconds):.2f} / {max(run.round_seconds):.2f} | "
            + " | ".join(f"{per[g]:.1f}" for g in GROUPS)
            + f" | {zoneflow:.1f} |"
        )
    return "\n".join(lines)


def describe(runs: list[Run], args: Any) -> str:
    bar = 1.2 * args.floor / args.batch
    return (
        f"{args.zones} zones, one A recordset each, on a pool of {args.targets} BIND9 targets "
        f"(bench/batch_cost.py): {args.rounds} rounds, each changing every zone's recordset "
        f"through the API while the conductor is stopped, then letting it go: its relay posts "
        f"update-zones jobs of {args.batch} zones (`[conductor] batch_zones`). Each setup "
        "has its own PostgreSQL 15, ZooKeeper and BIND9 servers and runs `zoneflow conductor`, "
        "`zoneflow mdns` and `zoneflow api` of its code as processes; all are up at once "
        "and take their rounds in turn, the order swapped each round. CPU from /proc over "
        "each setup's rounds, per zone changed; a round is timed from letting the conductor "
        "go until every zone is ACTIVE in the database. BIND9 does the same work in every "
        "setup: its CPU a change shows how fast the machine was for that setup.\n\n"
        f"{table(runs)}\n\n"
        f"TaskFlow's floor in the same run (bench/taskflow_floor.py: 12 no-op tasks shaped "
        f"like create-zone, nothing persisted, 200 jobs at once): {args.floor:.1f} ms of CPU a "
        f"job; the issue's bar for orchestration CPU a change in jobs of {args.batch} zones, "
        f"1.2 × floor / {args.batch}: {bar:.1f} ms.\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", metavar="REV", help="a git revision to compare with")
    parser.add_argument(
        "--without-copies",
        action="store_true",
        help="also this checkout with [mdns] repeat_to_shared_ports = false",
    )
    parser.add_argument("--zones", type=int, default=40)
    parser.add_argument("--batch", type=int, default=10, help="zones a job")
    parser.add_argument("--rounds", type=int, default=20, help="of each setup, in turn")
    parser.add_argument("--targets", type=int, default=8, help="BIND9 servers in the pool")
    parser.add_argument(
        "--statements",
        type=int,
        default=0,
        metavar="N",
        help="print the N statements PostgreSQL spent most time on over each setup's rounds",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    # `kill` stops the run as Ctrl-C does: its servers and daemons go with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with (
        tempfile.TemporaryDirectory(prefix="zoneflow-batch-cost-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        here = f"this checkout ({_revision('HEAD')})"
        codes: list[tuple[str, pathlib.Path, dict[str, str]]] = [(here, ROOT, {})]
        if args.before:
            before = _archive(args.before, pathlib.Path(tmp) / "before-code")
            codes.insert(0, (f"before ({_revision(args.before)})", before, {}))
        if args.without_copies:
            no_copies = {"repeat_to_shared_ports": "false"}
            codes.append((f"{here}, mdns sending no copies", ROOT, no_copies))
        setups = []
        for i, (label, code, mdns_conf) in enumerate(codes):
            print(f"{label}: starting ...", flush=True)
            workdir = pathlib.Path(tmp) / f"setup-{i}"
            setups.append(Setup(label, code, workdir, args, stack, mdns_conf))
        # Rounds in turn, the order swapped each time: a change in the machine's speed
        # (its other work) falls on every setup alike.
        for number in range(args.rounds):
            for setup in setups if number % 2 == 0 else setups[::-1]:
                setup.round(number)
            took = ", ".join(f"{setup.label} {setup.rounds[-1]:.2f} s" for setup in setups)
            print(f"round {number + 1} of {args.rounds}: {took}", flush=True)
        runs = [setup.run() for setup in setups]
        zookeeper = setups[0].zookeeper
        assert zookeeper.process is not None
        floor = taskflow_floor.burst_floor(zookeeper.hosts, zookeeper.process.pid, cpu_seconds)
        args.floor = floor.cpu_ms_per_job["TaskFlow (poster + conductor)"]
    body = describe(runs, args)
    print(body)
    if not args.no_write:
        report.write_section("batch-cost", "What a batch job costs, on BIND9 targets", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
