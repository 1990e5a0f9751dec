"""A user's change during a large backfill: how soon BIND9 serves it, before and after
changes went first.

Real PostgreSQL, ZooKeeper, one BIND9 behind ``zoneflow mdns``, with ``zoneflow
conductor`` (two by default), ``zoneflow api`` as processes. ``--zones`` ACTIVE
zones are written to a pool whose one target is a fake one; the pool then gains
the BIND9 (``pool update``), which backfills every zone onto it at
``--pace`` jobs a second (above what the conductors get through, as in the
deployment that found the problem). Every ``--every`` seconds from
``--delay`` on, a recordset is created through the API in a zone the
backfill has not reached (from the end of its order), ``--changes`` in all,
and BIND9 is asked until it serves each (plain DNS queries, every 50 ms).
The backfill's own duration is timed too: it must still finish.

``--before REV`` runs the same with the daemons and the CLI of this
repository's revision REV first (``git archive``), for the figures before.

``--provisioning catalog``: the pool is a catalog pool (its targets learn of
zones from its catalog zone, which mdns serves), and BIND9 is a consumer of
that catalog, started when the pool gains it: from then it finds every zone
in the catalog, and the backfill's jobs poll it until it serves each.

BIND9's own time for the same zones is measured first, with no zoneflow: a
BIND9 secondary told to add each zone of a BIND9 primary holding them
(``rndc addzone`` over rndc's protocol, as zoneflow's BIND9 backend speaks
it, ``FLOOR_CALLS`` at once), then NOTIFYed of each, until it serves all of
them. ``--no-floor``
skips it.

    python bench/backfill_priority.py [--zones 1000] [--changes 10] [--before REV]
                                      [--provisioning rndc|catalog] [--no-floor]
                                      [--no-write]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
import yaml  # noqa: E402

from bench import report  # noqa: E402
from bench.orchestration import CpuMeter, with_children  # noqa: E402
from tests.functional.deployment import Deployment, answer, soa_serials  # noqa: E402
from tests.functional.fixtures.bind9 import Bind9Server  # noqa: E402
from tests.functional.fixtures.ports import HOST  # noqa: E402
from tests.functional.fixtures.postgres import PostgresServer  # noqa: E402
from tests.functional.fixtures.zookeeper import ZooKeeperServer  # noqa: E402
from tests.functional.test_backfill_priority import backfill_pool  # noqa: E402
from tests.support import ADMIN, eventually  # noqa: E402
from zoneflow.backends import rndc_config, rndc_protocol  # noqa: E402
from zoneflow.dns import query  # noqa: E402

RECORD = "192.0.2.80"
# rndc commands BIND9's floor has in flight at once (one per connection), and the
# NOTIFYs it sends at once.
FLOOR_CALLS = 8
NOTIFY_BATCH = 500
# Seconds between counts of the zones still backfilling (the backfill's end).
COUNT_EVERY = 0.25
# The catalog zone of the pool, with ``--provisioning catalog``.
CATALOG = "catalog.backfill.example."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--every", type=float, default=1.0, help="seconds between changes")
    parser.add_argument("--delay", type=float, default=2.0, help="first change, after the update")
    parser.add_argument(
        "--pace",
        type=float,
        help="[central] backfill_jobs_per_second (default: each revision's own default)",
    )
    parser.add_argument("--conductors", type=int, default=2)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.OPTION=VALUE",
        help="an option of the daemons' configuration (repeatable), e.g. "
        "conductor.max_upkeep_jobs=2",
    )
    parser.add_argument(
        "--provisioning",
        choices=("rndc", "catalog"),
        default="rndc",
        help="how BIND9 learns of the zones: rndc addzone, or the pool's catalog zone",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="for each backfill")
    parser.add_argument("--before", help="a git revision whose daemons to measure first")
    parser.add_argument("--no-floor", action="store_true", help="skip BIND9's own time")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    runs: list[tuple[str, Run]] = []
    floor = None
    with tempfile.TemporaryDirectory(prefix="zoneflow-backfill-") as tmp:
        if not args.no_floor:
            floor = bind9_floor(args.zones, pathlib.Path(tmp) / "floor")
            print(f"BIND9 alone: {args.zones} zones added and served in {floor:.1f} s", flush=True)
        if args.before:
            code = pathlib.Path(tmp) / "before"
            label = f"before ({_revision(args.before)})"
            runs.append(
                (label, _measure(args, pathlib.Path(tmp) / "b", _archive(args.before, code)))
            )
        label = f"this checkout ({_revision('HEAD')})"
        runs.append((label, _measure(args, pathlib.Path(tmp) / "a", ROOT)))

    body = describe(args, runs, floor)
    print(body)
    if not args.no_write:
        # Each provisioning has its section: a catalog run leaves the rndc figures be.
        through = " through a catalog zone" if args.provisioning == "catalog" else ""
        report.write_section(
            "backfill_priority" + ("-catalog" if through else ""),
            f"A user's change during a backfill{through}: served by BIND9",
            body,
        )
    return 0


class Run:
    """What one backfill measured."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        # The machine's 1-minute load average when the run began and ended.
        self.load: tuple[float, float] = (0.0, 0.0)
        # Zones still PENDING (backfilling) when each change was served.
        self.left: list[int] = []
        self.backfill: float | None = None
        # CPU seconds each group of processes used from the update until the backfill and
        # the changes were done (orchestration.CpuMeter).
        self.cpu: dict[str, float] = {}


def _revision(rev: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", rev],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _archive(rev: str, into: pathlib.Path) -> pathlib.Path:
    """This repository's ``zoneflow`` package at ``rev``, unpacked into ``into``."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "zoneflow"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


@contextlib.contextmanager
def _running_code(code: pathlib.Path, workdir: pathlib.Path) -> Iterator[None]:
    """The CLI and the daemons (subprocesses) import zoneflow from ``code``: they start
    in ``workdir``, as ``python -m`` puts the working directory before PYTHONPATH."""
    before, cwd = os.environ.get("PYTHONPATH"), os.getcwd()
    os.environ["PYTHONPATH"] = str(code)
    os.chdir(workdir)
    try:
        yield
    finally:
        os.chdir(cwd)
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def each_revision(before: str | None, tmp: pathlib.Path) -> Iterator[tuple[str, pathlib.Path]]:
    """For each revision a benchmark measures, REV's (``--before``) first when given,
    then this checkout's: its label and a new working directory, the CLI and the
    daemons importing that revision's code meanwhile (see _running_code)."""
    runs = [(f"this checkout ({_revision('HEAD')})", ROOT)]
    if before:
        runs.insert(0, (f"before ({_revision(before)})", _archive(before, tmp / "before")))
    for index, (label, code) in enumerate(runs):
        workdir = tmp / f"run{index}"
        workdir.mkdir()
        with _running_code(code, workdir):
            yield label, workdir


def _measure(args: argparse.Namespace, workdir: pathlib.Path, code: pathlib.Path) -> Run:
    workdir.mkdir(parents=True)
    began = os.getloadavg()[0]
    with (
        _running_code(code, workdir),
        PostgresServer() as postgres,
        ZooKeeperServer() as zookeeper,
    ):
        deployment = Deployment(
            workdir,
            database=postgres.create_database("backfill"),
            zookeeper_hosts=zookeeper.hosts,
            extra_conf=_conf(args),
        )
        catalog = args.provisioning == "catalog"
        # A catalog's consumer onboards every zone once it runs: it starts with the backfill.
        bind = Bind9Server(catalog=(CATALOG, HOST, deployment.mdns_port) if catalog else None)
        if not catalog:
            bind.start()
        engine = sa.create_engine(deployment.database, poolclass=sa.pool.NullPool)
        try:
            deployment.load_pool(_pool(args, deployment))
            names = _insert_active_zones(engine, args.zones)
            for i in range(args.conductors):
                deployment.start_conductor(f"conductor{i}")
            deployment.start_mdns()
            deployment.start_api()
            with CpuMeter(_cpu_groups(deployment, postgres, zookeeper, bind)) as meter:
                run = _backfill_with_changes(args, deployment, engine, bind, names)
            run.cpu = meter.used
            run.load = (began, os.getloadavg()[0])
            return run
        finally:
            deployment.close()
            engine.dispose()
            bind.close()


# The groups of processes whose CPU a run reports, in the order of the table's columns.
CPU_GROUPS = ("conductors", "mdns", "API", "PostgreSQL", "ZooKeeper", "BIND9")


def _cpu_groups(
    deployment: Deployment, postgres: PostgresServer, zookeeper: ZooKeeperServer, bind: Bind9Server
) -> dict[str, Any]:
    """CPU_GROUPS: name -> the pids now (a catalog's BIND9 starts with the backfill)."""
    processes = deployment.processes
    assert postgres.process is not None and zookeeper.process is not None
    pg_pid, zk_pid = postgres.process.pid, zookeeper.process.pid
    return {
        "conductors": lambda: [p.pid for name, p in processes.items() if "conductor" in name],
        "mdns": lambda: [p.pid for name, p in processes.items() if name == "mdns"],
        "API": lambda: [p.pid for name, p in processes.items() if name == "api"],
        "PostgreSQL": lambda: with_children(pg_pid),
        "ZooKeeper": lambda: [zk_pid],
        "BIND9": lambda: [bind.process.pid] if bind.process is not None else [],
    }


def _conf(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The daemons' options this run sets: ``--pace`` and each ``--set``."""
    conf: dict[str, dict[str, Any]] = {}
    if args.pace:
        conf["central"] = {"backfill_jobs_per_second": args.pace}
    report.apply_settings(conf, args.set)
    return conf


def _pool(
    args: argparse.Namespace, deployment: Deployment, bind: Bind9Server | None = None
) -> dict[str, object]:
    """The pool: its fake target alone, or with ``bind`` too; a catalog pool with
    ``--provisioning catalog``."""
    pool = backfill_pool(deployment, *([bind] if bind else []))
    if args.provisioning == "catalog":
        pool["catalog_zone"] = {"catalog_zone_fqdn": CATALOG, "catalog_zone_refresh": 5}
        pool["provisioning"] = "catalog"
    return pool


def bind9_floor(zones: int, workdir: pathlib.Path) -> float:
    """Seconds for a BIND9 secondary to add ``zones`` zones of a BIND9 primary and serve
    them all, each added by ``rndc addzone`` over rndc's protocol, FLOOR_CALLS at once,
    then NOTIFYed."""
    primary = Bind9Server(workdir=workdir / "primary")
    secondary = Bind9Server(workdir=workdir / "secondary")
    names = [f"zone{i:05d}.floor.example." for i in range(zones)]
    with primary, secondary:
        serial = int(time.time())
        for i in range(zones):
            (primary.workdir / f"z{i}.zone").write_text(
                f"$TTL 300\n@ SOA ns1.example. hostmaster.example. {serial} 3600 600 86400 300\n"
                "@ NS ns1.example.\nwww A 192.0.2.1\n"
            )
        _addzones(
            primary,
            [(name, f'{{ type primary; file "z{i}.zone"; }};') for i, name in enumerate(names)],
        )
        _wait_served(primary, names)
        began = time.monotonic()
        source = f"primaries {{ {primary.host} port {primary.port}; }}"
        _addzones(
            secondary,
            [
                (name, f'{{ type secondary; {source}; file "z{i}.db"; }};')
                for i, name in enumerate(names)
            ],
        )
        # As a primary NOTIFYs its secondaries (and zoneflow's polls a target that
        # lags): without it a new secondary zone waits for BIND9's own refresh.
        for start in range(0, len(names), NOTIFY_BATCH):
            query.send_notifies(
                [(name, serial) for name in names[start : start + NOTIFY_BATCH]],
                secondary.host,
                secondary.port,
            )
        _wait_served(secondary, names)
        return time.monotonic() - began


def _addzones(server: Bind9Server, zones: list[tuple[str, str]]) -> None:
    key = rndc_config.load_key(
        key_file=str(server.rndc_key_file), config_file=None, server=server.host
    )
    client = rndc_protocol.Client(server.host, server.rndc_port, key, size=FLOOR_CALLS)
    try:
        with concurrent.futures.ThreadPoolExecutor(FLOOR_CALLS) as pool:
            for reply in pool.map(
                lambda zone: client.call(f"addzone {zone[0]} {zone[1]}", timeout=60), zones
            ):
                assert reply.ok, reply
    finally:
        client.close()


def _wait_served(server: Bind9Server, names: list[str]) -> None:
    eventually(
        lambda: None not in soa_serials(names, server.host, server.port).values(),
        timeout=900,
        interval=0.2,
        what=f"{server.host}:{server.port} to serve all {len(names)} zones",
    )


def _insert_active_zones(engine: sa.engine.Engine, count: int) -> list[str]:
    """``count`` ACTIVE zones on the pool's fake target, in the backfill's order (by id).

    Plain SQL, so that it suits the schema of either revision measured.
    """
    serial = int(time.time())
    with engine.begin() as connection:
        pool_id = connection.execute(sa.text("SELECT id FROM pools")).scalar_one()
        target_id = connection.execute(sa.text("SELECT id FROM pool_targets")).scalar_one()
        reversed_names = "reversed_name" in {
            column["name"] for column in sa.inspect(connection).get_columns("zones")
        }
        print(f"zones.reversed_name {'present' if reversed_names else 'absent'}", flush=True)
        rows = []
        for i in range(count):
            name = f"zone{i:05d}.backfill.example."
            row = {"id": f"00000000-0000-4000-8000-{i:012d}", "name": name, "serial": serial}
            if reversed_names:
                row["reversed_name"] = ".".join(reversed(name.rstrip(".").split("."))) + "."
            rows.append(row)
        columns = "id, name, serial" + (", reversed_name" if reversed_names else "")
        values = ":id, :name, :serial" + (", :reversed_name" if reversed_names else "")
        connection.execute(
            sa.text(
                f"INSERT INTO zones ({columns}, email, ttl, refresh, retry, expire, minimum, "
                "status, action, pool_id, project_id, version, deleted, created_at) "
                f"VALUES ({values}, 'hostmaster@backfill.example', 300, 3600, 600, 86400, 300, "
                "'ACTIVE', 'NONE', :pool_id, :project_id, 1, '0', now())"
            ),
            [{**row, "pool_id": pool_id, "project_id": ADMIN["X-Auth-Project-ID"]} for row in rows],
        )
        connection.execute(
            sa.text(
                "INSERT INTO zone_target_status (zone_id, target_id, serial, status) "
                "VALUES (:id, :target_id, :serial, 'ACTIVE')"
            ),
            [{**row, "target_id": target_id} for row in rows],
        )
    return [row["name"] for row in rows]


def _pending(engine: sa.engine.Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                sa.text("SELECT count(*) FROM zones WHERE deleted = '0' AND status = 'PENDING'")
            ).scalar_one()
        )


def _backfill_with_changes(
    args: argparse.Namespace,
    deployment: Deployment,
    engine: sa.engine.Engine,
    bind: Bind9Server,
    names: list[str],
) -> Run:
    run = Run()
    path = deployment.workdir / "pools.yaml"
    path.write_text(yaml.safe_dump([_pool(args, deployment, bind)], sort_keys=False))
    began = time.monotonic()
    if not bind.running:
        bind.start()  # the catalog's consumer: the pool gains it as it starts
    deployment.cli("pool", "update", "--file", str(path))
    # Zones the backfill reaches last, one per change.
    changed = list(reversed(names[-args.changes :]))
    posted: dict[str, float] = {}
    lock = threading.Lock()

    def post_changes() -> None:
        for i, zone in enumerate(changed):
            wait = began + args.delay + i * args.every - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            stored = deployment.stored_zone(zone)
            assert stored is not None
            with lock:
                posted[zone] = time.monotonic()
            deployment.api(
                "POST",
                f"/v2/zones/{stored['id']}/recordsets",
                {"name": f"www.{zone}", "type": "A", "records": [RECORD]},
            )

    poster = threading.Thread(target=post_changes, name="changes")
    poster.start()
    waiting = set(changed)
    counted = 0.0  # when the zones still PENDING were last counted

    def everything_done() -> bool:
        nonlocal counted
        with lock:
            asked = [zone for zone in waiting if zone in posted]
        for zone in asked:
            if answer(f"www.{zone}", "A", bind.host, bind.port)[1] == {RECORD}:
                run.latencies.append(time.monotonic() - posted[zone])
                run.left.append(_pending(engine))
                waiting.discard(zone)
                print(f"change to {zone}: {run.latencies[-1]:.2f} s", flush=True)
        # Counted every COUNT_EVERY seconds, not at each look: a count of thousands of
        # zones twenty times a second was a fifth of PostgreSQL's work in the run.
        now = time.monotonic()
        if run.backfill is None and now - counted >= COUNT_EVERY:
            counted = now
            if _pending(engine) == 0:
                run.backfill = now - began
        return not waiting and run.backfill is not None

    eventually(everything_done, args.timeout, interval=0.05, what="the changes and the backfill")
    poster.join()
    print(f"backfill of {args.zones} zones: {run.backfill:.1f} s", flush=True)
    return run


def describe(args: argparse.Namespace, runs: list[tuple[str, Run]], floor: float | None) -> str:
    lines = [
        "| daemons | changes | p50 (s) | p90 (s) | max (s) | zones still backfilling when "
        "served (median) | backfill of all zones (s) | zones backfilled a second |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, run in runs:
        lines.append(
            f"| {label} | {len(run.latencies)} | {report.percentile(run.latencies, 50):.2f} | "
            f"{report.percentile(run.latencies, 90):.2f} | {max(run.latencies):.2f} | "
            f"{statistics.median(run.left):.0f} of {args.zones} | {run.backfill:.1f} | "
            f"{args.zones / run.backfill:.1f} |"
        )
    lines += [
        "",
        "CPU a zone backfilled, in ms, by process (from the update until the backfill and the "
        "changes were done):",
        "",
        "| daemons | " + " | ".join(CPU_GROUPS) + " | all of these |",
        "| --- |" + " ---: |" * (len(CPU_GROUPS) + 1),
    ]
    for label, run in runs:
        each = [1000 * run.cpu.get(group, 0.0) / args.zones for group in CPU_GROUPS]
        lines.append(
            f"| {label} | " + " | ".join(f"{ms:.2f}" for ms in each) + f" | {sum(each):.2f} |"
        )
    pace = (
        f"`backfill_jobs_per_second = {args.pace:g}`"
        if args.pace
        else "each revision's defaults (the release pace, `[central] backfill_jobs_per_second`, "
        "and from e139a62 the most upkeep jobs on the board, `[conductor] max_upkeep_jobs`)"
    )
    floor_text = ""
    if floor is not None:
        ours = runs[-1][1].backfill or 0.0
        floor_text = (
            f"\n\nBIND9 alone, measured first in the same run: a BIND9 secondary added the "
            f"same {args.zones} zones of a BIND9 primary (`rndc addzone` over rndc's protocol, "
            f"{FLOOR_CALLS} at once, then a NOTIFY of each; no zoneflow) and served them all "
            f"after {floor:.1f} s "
            f"({args.zones / floor:.0f} zones a second); this checkout's backfill took "
            f"{ours / floor:.1f} times that.\n"
        )
    provisioning = (
        f"a catalog pool (`provisioning: catalog`): BIND9, started as the pool gains it, is a "
        f"consumer of the pool's catalog zone {CATALOG} served by mdns, and learns of every "
        "zone from it; the backfill's jobs NOTIFY it of the catalog and poll it until it "
        "serves each zone. "
        if args.provisioning == "catalog"
        else ""
    )
    return (
        f"{args.zones} ACTIVE zones of a pool gain a BIND9 target (`pool update`), backfilled "
        f"onto it at {pace} by {args.conductors} "
        "`zoneflow conductor` processes (defaults otherwise), beside `zoneflow mdns`, "
        "`zoneflow api`, PostgreSQL 15 and ZooKeeper (bench/backfill_priority.py); "
        + provisioning
        + "timed from the update until no zone is PENDING. From "
        f"{args.delay:g} s after the update, every {args.every:g} s, a recordset is created "
        "through the API in a zone the backfill has not reached (from the end of its order), "
        f"{args.changes} in all; each is timed from its POST until BIND9 answers it (a DNS "
        "query every 50 ms). The same scenario runs with the daemons of the revision given "
        "(`--before`), then with this checkout's. The machine's load average (1 minute) when each "
        "run began and ended: "
        + "; ".join(
            f"{label.split(' (')[0]} {run.load[0]:.1f} → {run.load[1]:.1f}" for label, run in runs
        )
        + ".\n\n"
        + "\n".join(lines)
        + "\n"
        + floor_text
    )


if __name__ == "__main__":
    raise SystemExit(main())
