"""Changes made while one BIND9 of a pool below 100% is down: how soon each is ACTIVE,
and how soon the BIND9, back, serves them all.

Real PostgreSQL, ZooKeeper, two BIND9 targets behind ``zoneflow mdns``, with
``zoneflow conductor``, ``zoneflow api`` and ``zoneflow inspector`` as processes
(tests/functional/outage.py), the pool at ``--threshold`` percent and every
option at its default (``[flows] poll_timeout`` 30 s among them). ``--zones``
zones are made first. Then one BIND9 is SIGKILLed and, once the inspector's
alarm has reached a ``GET /v2/events`` client:

* ``--changes`` changes, one after another: a new A recordset in a zone, timed
  from its POST until the API shows the zone ACTIVE at its serial;
* ``--creates`` zones created at once (POSTs sent back to back), timed from the
  first POST until every one is ACTIVE: the relays put them in create-zones
  jobs, whose task on the dead BIND9 tries to add each zone there;

then the BIND9 is started again and timed from then until it serves every zone
changed or created meanwhile, with nobody asking for it.

``--before REV`` runs the same first with the daemons of this repository's
revision REV (``git archive``), each with its own servers.

    python bench/outage_changes.py [--zones 10] [--changes 3] [--creates 25]
                                   [--threshold 50] [--before REV] [--no-write]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench.backfill_priority import each_revision  # noqa: E402
from tests.functional import outage  # noqa: E402
from tests.functional.deployment import Deployment  # noqa: E402
from tests.functional.fixtures.bind9 import Bind9Server  # noqa: E402
from tests.functional.fixtures.postgres import PostgresServer  # noqa: E402
from tests.functional.fixtures.zookeeper import ZooKeeperServer  # noqa: E402
from tests.support import ADMIN, eventually  # noqa: E402

EMAIL = "hostmaster@outage.example"
# Longer than any wait a change may have: a job's poll gives up after 30 s by default.
WAIT = 600.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, default=10)
    parser.add_argument("--changes", type=int, default=3)
    parser.add_argument("--creates", type=int, default=25)
    parser.add_argument("--threshold", type=int, default=50)
    parser.add_argument("--before", metavar="REV", help="a git revision to measure first")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="zoneflow-outage-") as tmp:
        for label, workdir in each_revision(args.before, pathlib.Path(tmp)):
            changes, creates, back = _measure(args, workdir)
            prefix = f"{label}: " if args.before else ""
            rows += [
                (f"{prefix}a change → ACTIVE, one BIND9 down", changes),
                (f"{prefix}{args.creates} zones created at once → all ACTIVE", [creates]),
                (f"{prefix}BIND9 started again → serves every change made meanwhile", [back]),
            ]
    table = report.latency_table(rows)
    print(table)
    if not args.no_write:
        report.write_section(
            "outage-changes", "Changes while a target is down", describe(args, table)
        )
    return 0


def _measure(args: argparse.Namespace, workdir: pathlib.Path) -> tuple[list[float], float, float]:
    """One outage, on servers of its own, with the daemons of the code imported from
    the working directory (see _running_code)."""
    with PostgresServer() as postgres, ZooKeeperServer() as zookeeper:
        binds = [Bind9Server(), Bind9Server()]
        try:
            for bind in binds:
                bind.start()
            running = outage.deployment(
                workdir,
                database=postgres.create_database("outage"),
                zookeeper_hosts=zookeeper.hosts,
                binds=binds,
                threshold=args.threshold,
                poll_timeout=30,  # the default
            )
            try:
                return _outage(args, running, binds)
            finally:
                running.close()
        finally:
            for bind in binds:
                bind.close()


def _outage(
    args: argparse.Namespace, running: Deployment, binds: list[Bind9Server]
) -> tuple[list[float], float, float]:
    names = [f"z{i}.outage.example." for i in range(args.zones)]
    ids = running.api_create_zones(names, EMAIL)
    _all_active(running, ids)
    dead = binds[1]
    stream = outage.EventStream(running.api_url, types="alarm")
    try:
        dead.kill()
        stream.next(outage.is_target_event(outage.target_id(running, dead), "alarm", "DOWN"), 60)
    finally:
        stream.close()
    print("BIND9 down, alarm received", flush=True)

    served: dict[str, int] = {}
    changes = []
    for i in range(args.changes):
        name = names[i % len(names)]
        began = time.monotonic()
        serial = running.api(
            "POST",
            f"/v2/zones/{ids[name]}/recordsets",
            {"name": f"www{i}.{name}", "type": "A", "records": ["192.0.2.10"]},
        )["serial"]
        _all_active(running, {name: ids[name]}, serial)
        changes.append(time.monotonic() - began)
        served[name] = serial
        print(f"change {i}: ACTIVE after {changes[-1]:.2f} s", flush=True)

    quota = {"zones": args.zones + args.creates + 10}
    running.api("PATCH", f"/v2/quotas/{ADMIN['X-Auth-Project-ID']}", quota)
    began = time.monotonic()
    created = {
        zone["name"]: zone
        for zone in (
            running.api("POST", "/v2/zones", {"name": f"new{i}.outage.example.", "email": EMAIL})
            for i in range(args.creates)
        )
    }
    _all_active(running, {name: zone["id"] for name, zone in created.items()})
    creates = time.monotonic() - began
    print(f"{args.creates} creates: all ACTIVE after {creates:.2f} s", flush=True)
    served.update((name, zone["serial"]) for name, zone in created.items())

    dead.start()
    began = time.monotonic()
    for name, serial in served.items():
        outage.wait_served([dead], name, serial, timeout=WAIT)
    back = time.monotonic() - began
    print(f"back: serves every change after {back:.2f} s", flush=True)
    return changes, creates, back


def _all_active(running: Deployment, ids: dict[str, str], serial: int | None = None) -> None:
    def active() -> bool:
        for zone_id in ids.values():
            zone: dict[str, Any] = running.api("GET", f"/v2/zones/{zone_id}")
            if zone["status"] != "ACTIVE" or (serial is not None and zone["serial"] < serial):
                return False
        return True

    eventually(active, WAIT, interval=0.05, what=f"{len(ids)} zone(s) ACTIVE")


def describe(args: argparse.Namespace, table: str) -> str:
    return (
        f"Two BIND9 targets in a pool at {args.threshold}% behind `zoneflow mdns`, with "
        "`zoneflow conductor`, `zoneflow api` and `zoneflow inspector` as processes on "
        "PostgreSQL 15 and ZooKeeper, every option at its default (bench/outage_changes.py). "
        f"{args.zones} zones are made, then one BIND9 is SIGKILLed; once the inspector's "
        f"alarm has arrived, {args.changes} changes are made one after another (a new A "
        "recordset each, timed from its POST until the API shows the zone ACTIVE at its "
        f"serial), then {args.creates} zones are created at once (timed from the first POST "
        "until every one is ACTIVE); then the BIND9 is started again, timed until it serves "
        "every zone changed or created meanwhile (nobody asks for it). Each revision runs "
        "with servers of its own.\n\n" + table
    )


if __name__ == "__main__":
    raise SystemExit(main())
