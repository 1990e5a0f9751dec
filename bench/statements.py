"""The statements a change makes PostgreSQL run, by the zoneflow code that sends them.

A conductor in this process (the zake board the integration tests use), a pool
of 8 fake targets, PostgreSQL 15; zones made first, the database analyzed, then
Designate's mix of changes (20 % zone creates, 6 % zone deletes, the rest
recordset creates) through central at a steady rate, each zone's changes riding
on its job as under load. Every statement SQLAlchemy sends while the changes run is counted
(psycopg2's executemany as one statement a row, as it sends them) under the two
zoneflow functions nearest the caller and the database: the one that began the
work (a relay's flush, a task, the API's path through central) and the storage
function that made the statement. Transactions are counted as SQLAlchemy begins
them (a plain read's connection is in autocommit on PostgreSQL: no BEGIN sent).

Counts, not times: they do not depend on how busy the machine is, and what
each statement costs is measured elsewhere (bench/capacity.py --statements).

``--before REV`` counts this repository's revision REV first, its ``zoneflow``
package unpacked from git beside this checkout's tests and benchmarks.

    python bench/statements.py [--changes 300] [--rate 25] [--before REV]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import random
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: Zones the changes are spread over, and fake targets in the pool.
ZONES = 40
TARGETS = 8
#: Code paths shown, most statements first.
SHOWN = 15
#: Designate's mix, as bench/load.py drives it: zone creates, zone deletes, and the
#: rest recordset changes (here creates, each a new recordset).
MIX = {"create": 0.20, "delete": 0.06}


def census(changes: int, rate: float) -> dict[str, Any]:
    """Count the statements of ``changes`` changes of Designate's mix at ``rate`` a second."""
    import sqlalchemy as sa

    from tests import support
    from tests.functional.fixtures.postgres import PostgresServer
    from tests.integration.conftest import fake_pool_yaml, running_conductor
    from zoneflow import objects
    from zoneflow.central import pools
    from zoneflow.central import recordsets as central_recordsets
    from zoneflow.central import zones as central_zones
    from zoneflow.storage import db
    from zoneflow.storage import zones as stored_zones
    from zoneflow.taskflow_adapter import jobboard, persistence

    package = str(pathlib.Path(central_zones.__file__).resolve().parent.parent) + os.sep
    statements: collections.Counter[tuple[str, str]] = collections.Counter()
    transactions: collections.Counter[tuple[str, str]] = collections.Counter()
    counting = False

    def caller() -> tuple[str, str]:
        """The outermost and the innermost zoneflow function on this thread's stack
        (storage/db.py's plumbing left out)."""
        names = [
            f"{frame.filename[len(package) :]}:{frame.name}"
            for frame in traceback.extract_stack()
            if frame.filename.startswith(package) and not frame.filename.endswith("db.py")
        ]
        return (names[0], names[-1]) if names else ("(TaskFlow)", "(TaskFlow)")

    def on_statement(_c: Any, _cur: Any, _s: str, params: Any, _ctx: Any, many: bool) -> None:
        if counting:
            # psycopg2's executemany runs the statement once per row; SQLAlchemy's
            # insertmanyvalues sends its rows as one statement, its parameters a dict.
            sent = len(params) if many and isinstance(params, list | tuple) else 1
            statements[caller()] += sent

    def on_begin(_conn: Any) -> None:
        if counting:
            transactions[caller()] += 1

    def all_served(serials: dict[str, int]) -> bool:
        zones = stored_zones.get_zones_any(serials)
        return all(
            zones[z].status == objects.Status.ACTIVE and zones[z].serial >= s
            for z, s in serials.items()
        )

    with PostgresServer() as postgres, support.database(postgres.create_database("census")):
        persistence.reset()
        persistence.upgrade()
        persistence.reset()
        jobboard.reset_zake()
        support.store_pools(pools.parse(fake_pool_yaml(*[{}] * TARGETS)))
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", on_statement)
        sa.event.listen(sa.engine.Engine, "begin", on_begin)
        with running_conductor("census"):
            made = [
                central_zones.create_zone(f"z{i}.census.example.", "hostmaster@example.org")
                for i in range(ZONES)
            ]
            support.eventually(
                lambda: all_served({z.id: z.serial for z in made}), 60, what="the zones"
            )
            with db.connection() as conn:
                conn.execute(sa.text("ANALYZE"))
                jobs_before = conn.execute(sa.text("SELECT count(*) FROM logbooks")).scalar_one()
            choose, started = random.Random(17), time.monotonic()
            live = {zone.name: zone.id for zone in made}
            latest: dict[str, int] = {}  # zone id -> the serial its last change made
            gone: list[str] = []  # zones deleted: done once their delete job is
            counting = True
            for k in range(changes):
                time.sleep(max(0.0, started + k / rate - time.monotonic()))
                draw = choose.random()
                if draw < MIX["create"]:
                    zone = central_zones.create_zone(f"n{k}.census.example.", "h@example.org")
                    live[zone.name] = zone.id
                    latest[zone.id] = zone.serial
                    continue
                name = choose.choice(sorted(live))
                if draw < MIX["create"] + MIX["delete"] and len(live) > ZONES // 2:
                    central_zones.delete_zone(name)
                    gone.append(live.pop(name))
                    latest.pop(gone[-1], None)
                    continue
                made_rs = central_recordsets.create_recordset(name, f"r{k}", "A", ["192.0.2.1"])
                latest[live[name]] = max(latest.get(live[name], 0), made_rs.serial)
            support.eventually(
                lambda: all_served(latest) and all(map(stored_zones.zone_is_deleted, gone)),
                120,
                what="the changes",
            )
            counting = False
            with db.connection() as conn:
                jobs = conn.execute(sa.text("SELECT count(*) FROM logbooks")).scalar_one()
    jobs -= jobs_before
    return {
        "changes": changes,
        "jobs": jobs,
        "statements": [[outer, inner, n] for (outer, inner), n in statements.items()],
        "transactions": sum(transactions.values()),
    }


def describe(args: argparse.Namespace, runs: list[tuple[str, dict[str, Any]]]) -> str:
    lines = [
        f"A conductor in one process on the zake board, a pool of {TARGETS} fake targets, "
        f"PostgreSQL 15; {ZONES} zones made and the database analyzed, then {args.changes} "
        "changes of Designate's mix (20 % zone creates, 6 % zone deletes, the rest "
        f"recordset creates) through central, {args.rate:g} a second, each zone's changes "
        "riding on its job as under load (bench/statements.py). Every statement SQLAlchemy "
        "sent until the last change was ACTIVE, counted by the zoneflow code that began the "
        "work and the function that sent it (psycopg2's executemany as a statement a row, "
        "as it runs it); transactions as SQLAlchemy began them. Counts, not times.",
        "",
        "| code | changes | jobs | statements a change | "
        "statements a job | transactions a change |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, run in runs:
        total = sum(n for _, _, n in run["statements"])
        lines.append(
            f"| {label} | {run['changes']} | {run['jobs']} | {total / run['changes']:.1f} | "
            f"{total / max(1, run['jobs']):.1f} | {run['transactions'] / run['changes']:.1f} |"
        )
    label, last = runs[-1]
    lines += [
        "",
        f"Where {label}'s statements come from, a change (begun by > sent by), with the "
        "same code paths' counts in the other runs:",
        "",
        "| begun by > sent by | " + " | ".join(name for name, _ in runs) + " |",
        "| --- | " + " | ".join("---:" for _ in runs) + " |",
    ]
    per_path = [{(o, i): n / run["changes"] for o, i, n in run["statements"]} for _, run in runs]
    for path, _ in collections.Counter(per_path[-1]).most_common(SHOWN):
        lines.append(
            f"| {path[0]} > {path[1]} | "
            + " | ".join(f"{counts.get(path, 0.0):.2f}" for counts in per_path)
            + " |"
        )
    return "\n".join(lines) + "\n"


def _count_in_subprocess(code: pathlib.Path, args: argparse.Namespace) -> dict[str, Any]:
    """The census of the ``zoneflow`` package in ``code``, in a process of its own."""
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--code",
            str(code),
            "--changes",
            str(args.changes),
            "--rate",
            str(args.rate),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--rate", type=float, default=25.0, help="changes a second")
    parser.add_argument("--before", help="a git revision to count first")
    parser.add_argument("--code", help=argparse.SUPPRESS)  # internal: count this package
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if args.code:
        # One revision's census, printed as JSON for the process that asked.
        sys.path[:0] = [args.code, str(ROOT)]
        print(json.dumps(census(args.changes, args.rate)))
        return 0
    sys.path.insert(0, str(ROOT))
    from bench import report
    from bench.backfill_priority import _archive, _revision

    runs = []
    with tempfile.TemporaryDirectory(prefix="zoneflow-statements-") as tmp:
        if args.before:
            code = _archive(args.before, pathlib.Path(tmp) / "before")
            runs.append((f"before ({_revision(args.before)})", _count_in_subprocess(code, args)))
        runs.append((f"this checkout ({_revision('HEAD')})", _count_in_subprocess(ROOT, args)))
    body = describe(args, runs)
    print(body)
    if not args.no_write:
        report.write_section("statements", "Statements a change, by the code that sends them", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
