"""How many recordset creates and updates the API accepts per second, 20 clients at once.

A real ``zoneflow api`` (uvicorn, configured as tests/functional/deployment.py
does) on a real PostgreSQL 15 and ZooKeeper started by the test fixtures, a
pool of fake targets. This script is the 20 clients: 20 asyncio tasks on
keep-alive HTTP/1.1 connections (requests written by hand, a load generator's
few lines: httpx cost a third of the whole path), each sending its next change as
soon as its previous one was answered: ``POST /v2/zones/{id}/recordsets`` for
a new A recordset (a create), or ``PUT /v2/zones/{id}/recordsets/{id}`` of
the client's own A recordset with a new address (an update, three quarters
of the changes in the load mix of bench/load.py). What is timed is the API's
accept alone: from sending the request to its 202 (the change and its job
committed to the database in one transaction); no conductor runs, so nothing
competes with the API for the machine and propagation is not part of it
(bench/orchestration.py and bench/propagation.py measure that).

Two shapes of load:

* **20 zones**: each client writes to its own zone;
* **1 zone**: all 20 write to the same zone; each change takes the next
  serial of that zone, so PostgreSQL queues them on the zone's row lock.

And several ways to run the API, each on a database of its own:

* ``--before REV``: the ``zoneflow`` package of this repository's revision
  REV (``git archive``), one process, as the figures before;
* this checkout with one process, and with ``--workers`` processes
  (``[api] workers``): each posts the jobs of its changes to ZooKeeper itself,
  in a thread, right after the change commits;
* the same with ``[api] relay = false``: the jobs wait in the outbox for a
  conductor's relay (none runs here), what the API costs without posting.

PostgreSQL counts the statements and transactions each change takes
(pg_stat_statements, pg_stat_database).

    python bench/api_write.py [--requests 2000] [--clients 20] [--workers 2]
                              [--actions create,update] [--before REV] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import pathlib
import sys
import tempfile
import time
import urllib.parse
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench import report  # noqa: E402
from bench.backfill_priority import _archive, _revision, _running_code  # noqa: E402
from bench.orchestration import CpuMeter, _stat  # noqa: E402
from tests.functional.deployment import Deployment  # noqa: E402
from tests.functional.fixtures.postgres import PostgresServer  # noqa: E402
from tests.functional.fixtures.zookeeper import ZooKeeperServer  # noqa: E402
from tests.support import eventually  # noqa: E402

WARMUP = 200
API = "zoneflow api"
PROCESS_GROUPS = (API, "PostgreSQL", "ZooKeeper", "clients (this script)")
PROJECT = {"X-Auth-Project-ID": "bench", "X-Roles": "member"}


@dataclasses.dataclass(frozen=True)
class Setup:
    """One way to run the API: whose code, how many processes, posting jobs or not."""

    label: str
    code: pathlib.Path
    workers: int = 1
    relay: bool = True
    # zake: the jobs stay in the outbox, as [api] relay = false leaves them.
    board: str = "zookeeper"

    def conf(self) -> dict[str, dict[str, Any]]:
        # Thousands of creates into one zone, and the zones of every run in one
        # project: past Designate's default quotas.
        conf: dict[str, dict[str, Any]] = {
            "quota": {"zones": -1, "zone_recordsets": -1, "zone_records": -1}
        }
        if self.code == ROOT:  # code from before knows none of these options
            # No conductor runs here, so the board never empties: the API posts each
            # change's job itself only with no limit of its own (relay_max_change_jobs).
            conf["api"] = {
                "workers": self.workers,
                "relay": self.relay,
                "relay_max_change_jobs": 1_000_000,
            }
        return conf


@dataclasses.dataclass(frozen=True)
class Run:
    setup: Setup
    action: str
    shape: str
    requests: int
    seconds: float
    latencies: list[float]
    failures: int
    cpu: dict[str, float]
    statements: int
    transactions: int
    sessions: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def per_change(self, group: str) -> float:
        """CPU milliseconds per change of a group of processes."""
        return self.cpu[group] / self.requests * 1000

    @property
    def whole_path(self) -> float:
        """CPU milliseconds per change of the API, PostgreSQL, ZooKeeper and clients."""
        return sum(self.per_change(group) for group in PROCESS_GROUPS)


async def _zones(client: httpx.AsyncClient, prefix: str, count: int) -> list[tuple[str, str]]:
    """The zones made: (id, name) each."""
    made = []
    for i in range(count):
        done = await client.post(
            "/v2/zones",
            json={"name": f"{prefix}{i}.bench.example.", "email": "hostmaster@bench.example"},
            headers=PROJECT,
        )
        done.raise_for_status()
        made.append((done.json()["id"], done.json()["name"]))
    return made


async def _recordsets(
    url: str, zones: list[tuple[str, str]], clients: int, tag: str
) -> list[tuple[str, str]]:
    """One A recordset for each client to update, in its zone: (zone id, recordset id)."""
    made = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for number in range(clients):
            zone_id, zone_name = zones[number % len(zones)]
            body = {"name": f"{tag}-{number}.{zone_name}", "type": "A", "records": [_address(0)]}
            done = await client.post(f"/v2/zones/{zone_id}/recordsets", json=body, headers=PROJECT)
            done.raise_for_status()
            made.append((zone_id, done.json()["id"]))
    return made


class _Connection:
    """One keep-alive HTTP/1.1 connection of a client, as light as a load generator
    must be: the request written by hand, the answer read to its Content-Length.
    httpx cost this script 4 ms of CPU a change, a third of the whole path, taken
    from the two cores the API and PostgreSQL share with it."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.headers = "".join(f"{name}: {value}\r\n" for name, value in PROJECT.items())
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, method: str, path: str, body: Any) -> int:
        """The answer's status."""
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        data = json.dumps(body).encode()
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        status = int((await reader.readline()).split()[1])
        length = None
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"{method} {path}: an answer without Content-Length")
        await reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()


async def _load(
    url: str,
    zones: list[tuple[str, str]],
    clients: int,
    requests: int,
    tag: str,
    updated: list[tuple[str, str]] | None = None,
) -> tuple[float, list[float], int]:
    """``requests`` changes from ``clients`` tasks: creates, or updates of the
    recordsets ``updated`` (one a client, from :func:`_recordsets`); (wall seconds,
    latencies, failures)."""
    latencies: list[float] = []
    failures = 0
    sent = 0
    connections = [_Connection(url) for _ in range(clients)]

    async def send(number: int, n: int) -> int:
        if updated is not None:
            zone_id, recordset_id = updated[number]
            return await connections[number].send(
                "PUT",
                f"/v2/zones/{zone_id}/recordsets/{recordset_id}",
                {"records": [_address(n)]},
            )
        zone_id, zone_name = zones[number % len(zones)]
        body = {"name": f"{tag}-{n}.{zone_name}", "type": "A", "records": [_address(n)]}
        return await connections[number].send("POST", f"/v2/zones/{zone_id}/recordsets", body)

    async def one_client(number: int) -> None:
        nonlocal sent, failures
        while sent < requests:
            n = sent
            sent += 1
            started = time.perf_counter()
            status = await send(number, n)
            latencies.append(time.perf_counter() - started)
            if status != 202:
                failures += 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(one_client(i) for i in range(clients)))
    finally:
        for connection in connections:
            connection.close()
    return time.perf_counter() - started, latencies, failures


def _address(n: int) -> str:
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


class Counters:
    """What PostgreSQL counted for one database: statements run and transactions
    begun (pg_stat_statements, updated as each statement ends; BEGIN: SQLAlchemy
    begins every one), and sessions opened (pg_stat_database: a backend forked for
    each new connection)."""

    def __init__(self, postgres: PostgresServer, database: str) -> None:
        self.postgres = postgres
        self.database = database
        self._run("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def now(self) -> tuple[int, int, int]:
        statements, begun, sessions = self._run(
            "SELECT coalesce(sum(calls), 0), "
            "coalesce(sum(calls) FILTER (WHERE query ILIKE 'begin%%'), 0), "
            "(SELECT sessions FROM pg_stat_database WHERE datname = %s) "
            "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "WHERE d.datname = %s",
            (self.database, self.database),
        )
        return int(statements), int(begun), int(sessions)

    def _run(self, query: str, params: tuple[str, ...] = ()) -> Any:
        conn = self.postgres.connect(self.database)
        try:
            conn.autocommit = True  # no BEGIN of its own to count
            with conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchone() if cur.description else None
        finally:
            conn.close()


def measure(
    deployment: Deployment,
    meter: CpuMeter,
    counters: Counters,
    setup: Setup,
    action: str,
    shape: str,
    *,
    zones: int,
    clients: int,
    requests: int,
) -> Run:
    async def prepare() -> list[tuple[str, str]]:
        async with httpx.AsyncClient(base_url=deployment.api_url, timeout=60) as client:
            prefix = "".join(c if c.isalnum() else "-" for c in f"{action} {shape}".lower())
            return await _zones(client, f"{prefix}-", zones)

    made = asyncio.run(prepare())
    # The recordsets updated are made before the warm-up, outside what is measured.
    updated = (
        asyncio.run(_recordsets(deployment.api_url, made, clients, "updated"))
        if action == "update"
        else None
    )
    asyncio.run(_load(deployment.api_url, made, clients, WARMUP, "warm", updated))
    statements, transactions, sessions = counters.now()
    with meter:
        seconds, latencies, failures = asyncio.run(
            _load(deployment.api_url, made, clients, requests, "rs", updated)
        )
    statements_after, transactions_after, sessions_after = counters.now()
    return Run(
        setup,
        action,
        shape,
        requests,
        seconds,
        latencies,
        failures,
        meter.used,
        # Less the first read of the counters, counted once it ended.
        statements_after - statements - 1,
        transactions_after - transactions,
        # Less this script's own session, counting.
        sessions_after - sessions - 1,
    )


def pool() -> dict[str, Any]:
    return {
        "name": "default",
        "ns_records": [{"hostname": "ns1.bench.example.", "priority": 1}],
        "targets": [{"type": "fake", "description": f"fake{i}"} for i in range(2)],
    }


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (the API's workers; PostgreSQL's backends)."""
    children: dict[int, list[int]] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(entry.name)):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        found.append(current := todo.pop())
        todo.extend(children.get(current, ()))
    return found


def run_setup(
    postgres: PostgresServer,
    zookeeper: ZooKeeperServer,
    workdir: pathlib.Path,
    setup: Setup,
    args: argparse.Namespace,
) -> list[Run]:
    """Both shapes of load on one setup, with a board and a database of its own: no
    conductor takes the jobs posted, and a board that kept every earlier setup's would
    cost each post more (TaskFlow's board in the API process watches every job)."""
    name = f"bench_api_{workdir.name}"
    url = postgres.create_database(name)
    workdir.mkdir()
    with _running_code(setup.code, workdir):
        conf = setup.conf()
        conf["jobboard"] = {"path": f"/zoneflow/bench-{workdir.name}/jobs"}
        deployment = Deployment(
            workdir,
            database=url,
            zookeeper_hosts=zookeeper.hosts if setup.board == "zookeeper" else None,
            extra_conf=conf,
        )
        try:
            return _measured(postgres, zookeeper, deployment, name, setup, args)
        except Exception:
            print(f"--- the end of zoneflow api's log ---\n{deployment.log('api')[-4000:]}")
            raise
        finally:
            deployment.close()
            postgres.drop_database(name)


def _measured(
    postgres: PostgresServer,
    zookeeper: ZooKeeperServer,
    deployment: Deployment,
    name: str,
    setup: Setup,
    args: argparse.Namespace,
) -> list[Run]:
    deployment.load_pool(pool())
    # As Deployment.start_api, with longer to start on a busy machine.
    process = deployment.start("api", "api")
    eventually(
        lambda: deployment._api_answers(process),  # noqa: SLF001
        timeout=120,
        what="the API to answer",
        ignore=(OSError,),
    )
    counters = Counters(postgres, name)
    assert postgres.process is not None and zookeeper.process is not None
    pg_pid, zk_pid = postgres.process.pid, zookeeper.process.pid
    meter = CpuMeter(
        {
            API: lambda: descendants(process.pid),
            "PostgreSQL": lambda: descendants(pg_pid),
            "ZooKeeper": lambda: [zk_pid],
            "clients (this script)": lambda: [os.getpid()],
        }
    )
    return [
        measure(
            deployment,
            meter,
            counters,
            setup,
            action,
            shape,
            zones=zones,
            clients=args.clients,
            requests=args.requests,
        )
        for action in args.actions.split(",")
        for shape, zones in _shapes(args)
    ]


def _shapes(args: argparse.Namespace) -> list[tuple[str, int]]:
    shapes = [(f"{args.clients} zones", args.clients), ("1 zone", 1)]
    return shapes[:1] if args.quick else shapes


def setups(args: argparse.Namespace, tmp: pathlib.Path) -> list[Setup]:
    made = []
    if args.before:
        code = _archive(args.before, tmp / "before-code")
        before = f"before ({_revision(args.before)})"
        made += [Setup(before, code)]
        if not args.quick:
            made += [Setup(before, code, relay=False, board="zake")]
    now = f"this checkout ({_revision('HEAD')})"
    made += [Setup(now, ROOT)]
    if args.quick:
        return made
    made += [Setup(now, ROOT, relay=False)]
    made += [
        Setup(now, ROOT, workers=args.workers),
        Setup(now, ROOT, workers=args.workers, relay=False),
    ]
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="changes per measurement")
    parser.add_argument(
        "--actions", default="create,update", help="create, update or both (comma-separated)"
    )
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="API processes ([api] workers)")
    parser.add_argument("--before", metavar="REV", help="a git revision to measure first")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one API process posting its jobs, 20 zones (and the same for --before): "
        "an A/B between two revisions",
    )
    args = parser.parse_args()

    began = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="zoneflow-bench-") as tmp,
        PostgresServer(settings={"shared_preload_libraries": "pg_stat_statements"}) as postgres,
        # Started niced with this script, ZooKeeper takes its time on a busy machine.
        ZooKeeperServer(start_timeout=120) as zookeeper,
    ):
        runs = []
        for number, setup in enumerate(setups(args, pathlib.Path(tmp))):
            workdir = pathlib.Path(tmp) / "runs" / str(number)
            workdir.parent.mkdir(exist_ok=True)
            print(f"{setup.label}, {setup.workers} API processes, relay {setup.relay}", flush=True)
            made = run_setup(postgres, zookeeper, workdir, setup, args)
            # Each row as it is measured: a later setup that fails loses none of them.
            for run in made:
                print(_row(run, _groups(run)), flush=True)
            runs += made

    text = describe(args, runs, (began, os.getloadavg()[0]))
    print(text)
    if not args.no_write:
        report.write_section(
            "api_write", "API: recordset creates and updates accepted per second", text
        )
    failed = sum(run.failures for run in runs)
    return 1 if failed else 0


def _posting(setup: Setup) -> str:
    if not setup.relay:
        return "no (outbox)" if setup.board == "zookeeper" else "no (zake board: outbox)"
    return "yes"


def _groups(run: Run) -> list[str]:
    return [g for g in run.cpu if g != "kernel interrupts"] + ["kernel interrupts"]


def _row(run: Run, groups: list[str]) -> str:
    """A run's row of the table."""
    return (
        f"| {run.setup.label} | {run.setup.workers} | "
        f"{_posting(run.setup)} | {run.action} | {run.shape} | {run.requests} | "
        f"{run.per_second:.0f} | {report.percentile(run.latencies, 50) * 1000:.1f} | "
        f"{report.percentile(run.latencies, 99) * 1000:.1f} | {run.failures} | "
        f"{run.statements / run.requests:.1f} | {run.transactions / run.requests:.1f} | "
        f"{run.sessions / run.requests * 1000:.1f} | "
        + " | ".join(f"{run.per_change(g):.1f}" for g in groups)
        + f" | {run.whole_path:.1f} | {2000 / run.whole_path:.0f} |"
    )


def describe(args: argparse.Namespace, runs: list[Run], load: tuple[float, float]) -> str:
    groups = _groups(runs[0])
    lines = [
        "| code | API processes | posts jobs | change | load | changes | accepted/s | "
        "p50 (ms) | p99 (ms) | refused | SQL statements/change | transactions/change | "
        "sessions/1000 changes | "
        + " | ".join(f"CPU ms/change: {g}" for g in groups)
        + " | CPU ms/change: whole path | 2-core ceiling (/s) |",
        "| --- | ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
        + " | ".join("---:" for _ in groups)
        + " | ---: | ---: |",
    ]
    lines += [_row(run, groups) for run in runs]
    return (
        "Creates are `POST /v2/zones/{id}/recordsets`, a new A recordset each; updates "
        "are `PUT /v2/zones/{id}/recordsets/{id}`, each client replacing the address of "
        f"an A recordset of its own. Sent by {args.clients} "
        "concurrent clients (asyncio tasks of this script on keep-alive connections, "
        "each sending its next request when the previous one is answered; requests "
        "written and answers read by hand, as a load generator's: httpx cost the "
        "clients 4 ms of CPU a change, taken from the cores the API shares) against "
        "`zoneflow api` on PostgreSQL 15 with a ZooKeeper jobboard (default settings, "
        "access log on); no conductor runs, so every job posted stays on the board: each "
        "setup has a board of its own (`[jobboard] path`), and TaskFlow's board in "
        "each API process that posts watches every job on it. A change is accepted "
        "when its 202 arrives: "
        "the recordset, the zone's new serial and the job that will carry it out are "
        f"committed together. {WARMUP} changes warm each measurement up. Latency is the "
        'client\'s, from sending to the answer. "posts jobs": each API process posts '
        "the jobs of its changes to ZooKeeper in a thread beside the requests (with "
        "`[api] relay_max_change_jobs` unbounded: by default the API posts only while "
        'the board is quiet, which a board no conductor empties never is); "no '
        "(outbox)\" is `[api] relay = false`, the jobs left for a conductor's relay "
        "(the code from before had no such option: it ran on the in-process zake "
        "board instead, where the API posts nothing either). "
        "Statements (BEGIN and COMMIT included) and transactions per change are "
        "PostgreSQL's own counts (pg_stat_statements) over the measurement, the relay's "
        "included; sessions are the connections it forked a backend for "
        "(pg_stat_database). CPU per change is from /proc over the measurement, each group "
        "with every process below it (the API's workers, PostgreSQL's backends); "
        '"other processes" ran outside this benchmark meanwhile, and "kernel '
        'interrupts" is mostly loopback traffic. "Whole path" adds the API, '
        "PostgreSQL, ZooKeeper and the clients; the 2-core ceiling is what two cores "
        "doing nothing else would accept at that CPU per change. "
        f"Load average {load[0]:.1f} when the run began and {load[1]:.1f} when it "
        "ended: the machine was shared.\n\n" + "\n".join(lines) + "\n"
    )


if __name__ == "__main__":
    sys.exit(main())
