"""Crash safety at scale: the chaos test's scenario, larger, with its figures.

The scenario of tests/functional/chaos.py (real PostgreSQL, ZooKeeper and 3
BIND9 targets; ``zoneflow conductor`` processes SIGKILLed at random moments
and started again; ZooKeeper and PostgreSQL each restarted once in the
middle) with about 1000 zone jobs and 3 conductors, over a few minutes. It
reports how many jobs ran,
how many conductors were killed, how many jobs were resumed after a lost run,
how long everything took to settle once the chaos stopped, the jobs per
second over the whole run, and every failure the checks found (none is the
only good answer). Exits 1 if there was any.

    python bench/chaos.py [--zones 230] [--conductors 3] [--seed N] [--no-write]
"""

from __future__ import annotations

import argparse
import pathlib
import random
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from tests.functional import chaos  # noqa: E402
from tests.functional.fixtures.bind9 import Bind9Server  # noqa: E402
from tests.functional.fixtures.postgres import PostgresServer  # noqa: E402
from tests.functional.fixtures.zookeeper import ZooKeeperServer  # noqa: E402

TARGETS = 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, default=230, help="zone scripts (~4.3 jobs each)")
    parser.add_argument("--conductors", type=int, default=3)
    parser.add_argument("--users", type=int, default=8, help="user threads making changes")
    parser.add_argument("--seed", type=int, help="replay a run (default: a random seed)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    plan = chaos.Plan(
        seed=seed,
        zones=args.zones,
        conductors=args.conductors,
        workers=args.users,
        settle_timeout=300.0,
    )
    with (
        tempfile.TemporaryDirectory(prefix="zoneflow-chaos-") as tmp,
        PostgresServer() as postgres,
        ZooKeeperServer() as zookeeper,
    ):
        binds = [Bind9Server() for _ in range(TARGETS)]
        try:
            for bind in binds:
                bind.start()
            deployment = chaos.deployment(
                pathlib.Path(tmp),
                database=postgres.create_database("chaos"),
                zookeeper_hosts=zookeeper.hosts,
                plan=plan,
            )
            try:
                deployment.load_pool(chaos.pool(deployment, binds))
                deployment.start_mdns()
                outcome = chaos.Run(
                    plan,
                    deployment,
                    binds,
                    zookeeper,
                    postgres,
                    replay="replay: python bench/chaos.py --seed {seed}",
                ).run()
            finally:
                deployment.close()
        finally:
            for bind in binds:
                bind.close()

    print(outcome.report())
    if not args.no_write:
        report.write_section("chaos", "Crash safety under chaos", describe(plan, outcome))
    return 1 if outcome.failures else 0


def describe(plan: chaos.Plan, outcome: chaos.Outcome) -> str:
    total = outcome.workload_seconds + outcome.settle_seconds
    rows = [
        ("seed (replay: `python bench/chaos.py --seed N`)", str(outcome.seed)),
        ("zone jobs (creates, recordset changes, deletes)", str(outcome.jobs)),
        ("zones left / deleted", f"{outcome.zones_live} / {outcome.zones_deleted}"),
        ("conductor SIGKILLs", str(outcome.kills)),
        ("ZooKeeper / PostgreSQL restarts", "/".join(
            map(str, (outcome.zookeeper_restarts, outcome.postgres_restarts))
        )),
        ("jobs resumed after a lost run (attempts > 1)", str(outcome.resumed)),
        ("runs lost with their conductor (most for one job)",
         f"{outcome.lost_runs} ({outcome.most_lost})"),
        ("changes made by the users (s)", f"{outcome.workload_seconds:.1f}"),
        ("jobs/s the users asked for (jobs / their time)",
         f"{outcome.jobs / outcome.workload_seconds:.1f}" if outcome.workload_seconds else "-"),
        ("then settled: nothing pending, board and outbox empty (s)",
         f"{outcome.settle_seconds:.1f}"),
        ("jobs/s under chaos (jobs / whole run)", f"{outcome.jobs / total:.1f}" if total else "-"),
        ("failures (lost, stuck or wrong jobs; zones not served right)",
         str(len(outcome.failures))),
    ]  # fmt: skip
    table = "| measured | value |\n| --- | ---: |\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    failures = ""
    if outcome.failures:
        shown = "\n".join(f"- {f.strip()}" for f in outcome.failures[:20])
        failures = f"\nFailures found (first 20):\n\n{shown}\n"
    return (
        f"The chaos test's scenario (tests/functional/chaos.py) at scale: {plan.zones} zone "
        f"scripts played by {plan.workers} user threads through central (create, "
        f"{plan.changes[0]}-{plan.changes[1]} recordset changes, a delete for about "
        f"{plan.delete_share:.0%} of the zones; {plan.gap[0]:g}-{plan.gap[1]:g} s between two "
        f"changes of a zone), {plan.conductors} `zoneflow conductor` processes, one killed "
        f"with SIGKILL every {plan.kill_every[0]:g}-{plan.kill_every[1]:g} s and started again "
        f"{plan.restart_after[0]:g}-{plan.restart_after[1]:g} s later, ZooKeeper restarted a "
        "third of the way in and PostgreSQL two thirds in; real PostgreSQL 15, ZooKeeper "
        f"(session timeout {chaos.SESSION_TIMEOUT} s) and {TARGETS} BIND9 targets; "
        "the `[conductor]` bounds on failed and lost runs at their defaults, but "
        f"max_lost_at_same_step = {chaos.CONDUCTOR_CONF['max_lost_at_same_step']} (three "
        "deaths in a row at one step are chance at this kill rate). Then every job "
        "must have ended in SUCCESS, every zone be ACTIVE at its last serial with its "
        "records in every BIND9, every deleted zone be refused by every BIND9. The users' "
        "pace bounds the jobs per second (compare the two rows): this is no capacity figure, "
        "it says the conductors kept up while dying.\n\n" + table + failures
    )


if __name__ == "__main__":
    sys.exit(main())
