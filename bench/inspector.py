"""The inspector: how soon a killed target raises the alarm, and how soon a target
that comes back serves every zone changed while it was down.

Real PostgreSQL (events by LISTEN/NOTIFY), ZooKeeper, BIND9 targets behind
``zoneflow mdns``, with ``zoneflow conductor``, ``zoneflow api`` and
``zoneflow inspector`` as processes (the scenario of
tests/functional/outage.py, as tests/functional/test_inspector.py runs it).
Each round SIGKILLs one BIND9 and times the ALARM event's arrival at a
``GET /v2/events`` client; then changes a few zones (one new A recordset
each), waits until each has failed under the pool's 100% threshold, starts
the BIND9 again and times, from the moment it answers again, until it
serves every changed zone at its new serial (recovered by the inspector's
recover-zone jobs; nobody asks for it), and until the UP event arrives.

``--before REV`` runs the same first with the daemons of this repository's
revision REV (``git archive``), each with its own servers.

    python bench/inspector.py [--kills 20] [--zones 10] [--changes 3] [--targets 2]
                              [--before REV] [--no-write]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench.backfill_priority import each_revision  # noqa: E402
from tests.functional import outage  # noqa: E402
from tests.functional.deployment import Deployment  # noqa: E402
from tests.functional.fixtures.bind9 import Bind9Server  # noqa: E402
from tests.functional.fixtures.postgres import PostgresServer  # noqa: E402
from tests.functional.fixtures.zookeeper import ZooKeeperServer  # noqa: E402
from tests.support import eventually  # noqa: E402
from zoneflow.inspector.options import CONF  # noqa: E402

EMAIL = "hostmaster@outage.example"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--zones", type=int, default=10)
    parser.add_argument("--changes", type=int, default=3, help="zones changed per outage")
    parser.add_argument("--targets", type=int, default=2)
    parser.add_argument("--before", metavar="REV", help="a git revision to measure first")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="zoneflow-inspector-") as tmp:
        for label, workdir in each_revision(args.before, pathlib.Path(tmp)):
            alarms, ups, served = _measure(args, workdir)
            prefix = f"{label}: " if args.before else ""
            rows += [
                (f"{prefix}target SIGKILLed → ALARM event received by an SSE client", alarms),
                (f"{prefix}target answers again → UP event received", ups),
                (
                    f"{prefix}target answers again → serves all {args.changes} zones changed "
                    "meanwhile",
                    served,
                ),
            ]
    table = report.latency_table(rows)
    print(table)
    if not args.no_write:
        report.write_section(
            "inspector", "Inspector: alarm latency and recovery", describe(args, table)
        )
    return 0


def _measure(
    args: argparse.Namespace, workdir: pathlib.Path
) -> tuple[list[float], list[float], list[float]]:
    """The rounds, on servers of their own, with the daemons of the code imported from
    the working directory (see _running_code)."""
    with PostgresServer() as postgres, ZooKeeperServer() as zookeeper:
        binds = [Bind9Server() for _ in range(args.targets)]
        try:
            for bind in binds:
                bind.start()
            running = outage.deployment(
                workdir,
                database=postgres.create_database("inspector"),
                zookeeper_hosts=zookeeper.hosts,
                binds=binds,
            )
            try:
                return run(args, running, binds)
            finally:
                running.close()
        finally:
            for bind in binds:
                bind.close()


def run(
    args: argparse.Namespace, running: Deployment, binds: list[Bind9Server]
) -> tuple[list[float], list[float], list[float]]:
    names = [f"z{i}.outage." for i in range(args.zones)]
    ids = running.api_create_zones(names, EMAIL)
    _wait_active(running, names)
    stream = outage.EventStream(running.api_url, types="alarm,target")
    alarms: list[float] = []
    ups: list[float] = []
    served: list[float] = []
    try:
        for round_ in range(args.kills):
            changed = [names[(round_ * args.changes + i) % len(names)] for i in range(args.changes)]
            alarm, up, all_served = _outage(
                running, stream, binds[round_ % len(binds)], round_, {n: ids[n] for n in changed}
            )
            alarms.append(alarm)
            ups.append(up)
            served.append(all_served)
            _wait_active(running, names)
            print(
                f"round {round_ + 1}: alarm {alarm:.3f} s, UP {up:.3f} s, "
                f"served {all_served:.3f} s",
                flush=True,
            )
    finally:
        stream.close()
    return alarms, ups, served


def _outage(
    running: Deployment,
    stream: outage.EventStream,
    dead: Bind9Server,
    round_: int,
    changed: dict[str, str],
) -> tuple[float, float, float]:
    """One outage: (kill → alarm, answers → UP event, answers → every change served)."""
    dead_id = outage.target_id(running, dead)
    killed_at = time.monotonic()
    dead.kill()
    arrived, _ = stream.next(outage.is_target_event(dead_id, "alarm", "DOWN"), 30)
    alarm = arrived - killed_at

    for name, zone_id in changed.items():
        running.api(
            "POST",
            f"/v2/zones/{zone_id}/recordsets",
            {"name": f"r{round_}.{name}", "type": "A", "records": ["192.0.2.1"]},
        )
    eventually(
        lambda: all(running.api_zone_statuses()[n] == "ERROR" for n in changed),
        timeout=120,
        what="the changes to fail under the 100% threshold",
    )
    serials = {n: running.api("GET", f"/v2/zones/{z}")["serial"] for n, z in changed.items()}

    dead.start()
    back_at = time.monotonic()
    arrived, _ = stream.next(outage.is_target_event(dead_id, "target", "UP"), 60)
    up = arrived - back_at
    eventually(
        lambda: all(outage.served_everywhere([dead], n, s) for n, s in serials.items()),
        timeout=120,
        interval=0.01,
        what="the changed zones on the target that came back",
    )
    return alarm, up, time.monotonic() - back_at


def _wait_active(running: Deployment, names: list[str]) -> None:
    eventually(
        lambda: all(running.api_zone_statuses().get(n) == "ACTIVE" for n in names),
        timeout=120,
        what="every zone ACTIVE",
    )


def describe(args: argparse.Namespace, table: str) -> str:
    return (
        f"{args.kills} outages of one of {args.targets} BIND9 targets (SIGKILL, taken in "
        f"turn) in a pool at threshold 100% with {args.zones} zones; `zoneflow inspector` "
        f"with its defaults (a check every {CONF.inspector.interval:g} s, timeout "
        f"{CONF.inspector.timeout:g} s, DOWN after {CONF.inspector.misses} misses, UP after "
        f"{CONF.inspector.answers} answers), events through PostgreSQL LISTEN/NOTIFY to a "
        "`zoneflow api` serving `GET /v2/events` to this script's SSE client; a conductor, "
        "mdns, PostgreSQL 15 and ZooKeeper as processes (bench/inspector.py, the scenario of "
        f"tests/functional/test_inspector.py). In each outage {args.changes} zones get a new "
        "recordset and fail under the threshold; the BIND9 is then started again and timed "
        "from the moment it answers (its start returned) until it serves all of them at their "
        "new serials, through the recovery jobs the inspector posted when it saw the "
        "target UP (no operator action), and until the UP event reached the client. With "
        "`--before`, the same rounds first with the daemons of an earlier revision. The "
        "recovery figure includes the UP judgement (two answers, 0.25 s apart), the jobs' "
        "relay, a conductor's claim and BIND9's transfer from mdns (about 0.25 s at best on "
        "this machine, see propagation).\n\n" + table
    )


if __name__ == "__main__":
    sys.exit(main())
