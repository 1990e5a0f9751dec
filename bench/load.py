"""Load: the Designate mix through the API, timed until every BIND9 target serves it.

A deployment as deployed, each part its own process: ``--targets`` BIND9
servers, ZooKeeper, PostgreSQL, ``--conductors`` ``zoneflow conductor``,
``zoneflow mdns``, ``zoneflow producer``, ``zoneflow inspector`` and
``zoneflow api`` (tests/functional/deployment.py starts them).

* **The load**: the mix of the Designate deployment this project's design
  cites (per hour 6,413 zone creates, 2,077 deletes and 23,750 updates:
  ≈ 20 %, 6 %, 74 %; an update creates a recordset in an existing zone or
  changes one this load made) sent to the API's Designate v2 routes over
  keep-alive HTTP connections. Open loop: arrivals are drawn (Poisson) at
  the offered rate and sent when due whether or not earlier requests were
  answered, and every latency counts from the arrival's due time, so an
  overloaded system shows as latency, never as a slower offered rate.
* **Two runs**: a steady ``--steady-rate`` for ``--steady-seconds``; and a
  ramp (``--ramp`` rates, ``--step-seconds`` each) that stops after the first
  step past the knee: the offered load at which the p99 of change → served by
  every target passes ``KNEE`` seconds.
* **The sweeper**, independent of zoneflow: a process of its own
  (bench/load_sweeper.py) asking every target the SOA of every zone with a change not yet
  served there, over plain DNS (one UDP socket per target, one thread,
  non-blocking). A create or an update is served by a target once it answers
  the zone's SOA with at least the serial the API's answer gave (the zone's,
  or the recordset's ``serial``: the zone serial of that change); a delete,
  once it no longer answers for the zone (REFUSED, NXDOMAIN, or an answer
  without authority). When to ask: each target NOTIFYs the sweeper whenever
  it loads a new serial of a zone (BIND9's ``also-notify``, set on the
  targets only, so zoneflow knows nothing of it), and the sweeper then asks
  that target the zone's SOA at once; it is served at that answer, within a
  millisecond or so of BIND9's loading it. Asked at a steady pace instead,
  as before, a change was seen served up to 5 % of its age late (150 ms at
  3 s), which made ACTIVE look closer to served than it was; and it took
  214 queries a change on 8 targets where this takes 50 to 80. A zone is not
  asked when its change arrives (unless its target NOTIFYed that serial
  already); it is asked in case a NOTIFY was lost, once a second, or every
  quarter of the change's age once that is longer (asked once a second
  whatever their age, changes waiting in an overload's backlog took 147
  queries a change, and the CPU they took from BIND9 deepened the backlog);
  and a zone with a delete waiting, which no NOTIFY announces, every 10 ms
  while the delete is young, then every 5 % of its age (at most every second).
  ``--sweep-by-polling`` asks every change at that pace, as before (the
  targets NOTIFY no sweeper). The sweeper keeps to ``--sweep-budget``
  queries a second in all: under overload its resolution (the time between
  the last answer without the change and the first with it) grows, and is
  reported, with the share of changes found through a NOTIFY.
* **The targets' word to zoneflow**: each target also NOTIFYs mdns of each
  serial it loads, as doc/backends.md recommends, and mdns passes it to the
  polls waiting for that zone there; ``--silent-targets`` leaves that out,
  and the polls find each change by asking alone.
* **ACTIVE against served**: the API's event stream (``/v2/events``), read
  from the start, says when zoneflow first reported each change's zone ACTIVE
  (or DELETED) at its serial; compared with when the sweeper saw it served.
* **BIND9's floor**, in the same run, before the load (bench/load_floor.py):
  ``rndc addzone`` of a secondary until it serves the zone, and a NOTIFY of a
  new serial until it serves it, on a BIND9 pair of their own; and named's
  own CPU for each operation a change costs a target, which bounds the
  changes a second this machine could serve with BIND9 alone.
* **CPU per change per process**, from /proc, over each run.

Figures go to doc/benchmarks.md (section ``load``) and plots to doc/images/
(bench/load_report.py writes them).

    python bench/load.py [--targets 8] [--steady-seconds 300] [--step-seconds 60]
                         [--ramp 20,50,100,200,400] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import itertools
import json
import os
import pathlib
import random
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

from bench import report  # noqa: E402
from bench.load_floor import bind9_cpu, bind9_floors  # noqa: E402
from bench.load_report import (  # noqa: E402
    DESIGNATE_MIX,
    KNEE,
    WITHIN,
    action_table,
    describe,
    job_counts,
    job_phases,
    job_times,
    plot,
    ramp_table,
)
from bench.load_sweeper import sweeper_process  # noqa: E402
from bench.load_traffic import SUFFIX, Api, Change, Load, Step, mix_shares  # noqa: E402
from bench.orchestration import CpuMeter, with_children  # noqa: E402
from tests.functional.deployment import Deployment, answer  # noqa: E402
from tests.functional.fixtures.bind9 import Bind9Server  # noqa: E402
from tests.functional.fixtures.ports import HOST, wait_for  # noqa: E402
from tests.support import ADMIN  # noqa: E402
from zoneflow.flows import options as flow_options  # noqa: E402

# -- the deployment ------------------------------------------------------------------


#: The pool's catalog zone with ``--provisioning catalog``.
CATALOG = f"catalog.{SUFFIX}"


def pool(
    deployment: Deployment, binds: Sequence[Bind9Server], *, provisioning: str = "rndc"
) -> dict[str, Any]:
    """The pool: every BIND9 a target fed by mdns, and its nameserver. With ``catalog``
    provisioning, every BIND9 is a consumer of the pool's catalog (each was started so)
    and no zone is added or deleted through rndc."""
    found: dict[str, Any] = {
        "name": "default",
        "ns_records": [{"hostname": "ns1.load.example.", "priority": 1}],
        "nameservers": [b.nameserver() for b in binds],
        "targets": [b.pool_target(deployment.masters()) for b in binds],
    }
    if provisioning == "catalog":
        found["catalog_zone"] = {"catalog_zone_fqdn": CATALOG, "catalog_zone_refresh": 60}
        found["provisioning"] = "catalog"
    return found


def start_zoneflow(
    deployment: Deployment,
    binds: Sequence[Bind9Server],
    *,
    conductors: int = 2,
    provisioning: str = "rndc",
) -> None:
    """The pool loaded and zoneflow's daemons started, each its own process, as deployed."""
    deployment.load_pool(pool(deployment, binds, provisioning=provisioning))
    start_daemons(deployment, conductors=conductors, others=("producer", "inspector", "mdns"))


def start_daemons(deployment: Deployment, *, conductors: int, others: Sequence[str] = ()) -> None:
    """``conductors`` conductors, the daemons named in ``others`` (producer, inspector,
    mdns) and the API started, each its own process; back once the conductors watch
    the board and the quotas of the admin project (the load's) are lifted."""
    for i in range(conductors):
        deployment.start_conductor(f"conductor{i}")
    for name in others:
        if name == "mdns":
            deployment.start_mdns()
        else:
            deployment.start(name, name)
    deployment.start_api()
    for i in range(conductors):
        wait_for(
            lambda name=f"conductor{i}": "watching" in deployment.log(name),  # type: ignore[misc]
            timeout=60,
            what=f"conductor{i} to watch the board (see {deployment.workdir})",
        )
    # Every zone this load makes belongs to the API's admin project: no quota stops it.
    deployment.api(
        "PATCH",
        f"/v2/quotas/{ADMIN['X-Auth-Project-ID']}",
        {"zones": -1, "zone_recordsets": -1, "zone_records": -1},
    )


def deployment_conf(settings: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """zoneflow's own defaults back where the tests' Deployment shortens them to fail
    fast (a target's retries, and a poll's 30 s, not 15: under load a poll that
    gives up early sends its zone to ERROR and a recover-zone job after it); then
    ``settings`` (``--set section.option=value``), to compare a setting side by side.
    (Events travel by LISTEN/NOTIFY on PostgreSQL by default: ``[events] driver``.)"""
    shortened = ("target_retry_delay", "poll_timeout")
    conf: dict[str, dict[str, Any]] = {
        "flows": {opt.name: opt.default for opt in flow_options.flow_opts if opt.name in shortened},
    }
    report.apply_settings(conf, settings)
    return conf


# -- the API's event stream: when zoneflow said ACTIVE ------------------------------


class ActiveWatch:
    """Every zone status the API's event stream reports (ACTIVE, DELETED, ERROR), as it
    arrives: (monotonic time, status, serial) by zone name; and how long after its
    commit each event arrived (``delays``), what the stream itself adds."""

    def __init__(self) -> None:
        self.seen: dict[str, list[tuple[float, str, int]]] = {}
        self.delays: list[float] = []
        self.ready = asyncio.Event()
        self.last_id: int | None = None
        self.reconnects = 0

    async def follow(self, host: str, port: int) -> None:
        """Read the stream until cancelled. A stream lost is followed again from the last
        event received (``Last-Event-ID``): what came meanwhile arrives late, not never."""
        while True:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
                await self._read(host, port)
            self.reconnects += 1
            await asyncio.sleep(0.5)

    async def _read(self, host: str, port: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        headers = "".join(f"{k}: {v}\r\n" for k, v in ADMIN.items())
        if self.last_id is not None:
            headers += f"Last-Event-ID: {self.last_id}\r\n"
        writer.write(f"GET /v2/events?type=zone HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode())
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.ready.set()
            buffered = b""
            # The stream comes in chunks (HTTP/1.1 chunked encoding); each SSE message's
            # data line holds one event.
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                *lines, buffered = (buffered + await reader.readexactly(size)).split(b"\n")
                await reader.readexactly(2)
                for line in lines:
                    if line.startswith(b"data: "):
                        event = json.loads(line[6:])
                        self.last_id = event.get("id", self.last_id)
                        self._event(event, time.monotonic())
        finally:
            writer.close()

    def _event(self, event: dict[str, Any], now: float) -> None:
        value = event.get("value") or {}
        if event.get("action") in ("ACTIVE", "DELETED", "ERROR") and "name" in value:
            self.seen.setdefault(value["name"], []).append(
                (now, event["action"], int(value.get("serial", 0)))
            )
            committed = datetime.datetime.fromisoformat(event["created_at"])
            if committed.tzinfo is None:
                committed = committed.replace(tzinfo=datetime.UTC)
            self.delays.append(time.time() - committed.timestamp())

    async def wait_for(self, changes: Sequence[Change], timeout: float = 30.0) -> None:
        """Set each served change's ``active``, waiting up to ``timeout`` for the stream to
        report those it has not yet (it may report a change after the sweeper saw it)."""
        deadline = time.monotonic() + timeout
        waiting = [c for c in changes if c.served is not None and not c.superseded]
        while True:
            for change in waiting:
                change.active = self.first(change)
            waiting = [c for c in waiting if c.active is None]
            if not waiting or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.2)

    def first(self, change: Change) -> float | None:
        """When the stream first showed the change's zone ACTIVE at its serial (DELETED, for
        a delete), after the API took the change."""
        for at, status, serial in self.seen.get(change.zone, []):
            if change.action == "delete":
                if status == "DELETED":
                    return at
            elif status == "ACTIVE" and change.serial is not None and serial >= change.serial:
                return at
        return None


# -- one run ---------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """What one run measured."""

    steps: list[Step]
    changes: list[Change]
    started: float
    # Per step: CPU seconds by process group, over the step's arrivals.
    cpu: list[dict[str, float]]
    # Over the whole run, arrivals to the last change served.
    cpu_total: dict[str, float]
    sweeper: dict[str, Any]
    load: tuple[float, float]
    stopped_at_knee: bool = False
    # The jobs posted during the run.
    job_records: list[JobRecord] = dataclasses.field(default_factory=list)
    # PostgreSQL sessions begun during the run (connections opened, by anyone).
    sessions: int = 0
    # The most client connections PostgreSQL held at once during the run.
    connections: int = 0

    @property
    def jobs(self) -> dict[str, tuple[int, int]]:
        """Kind -> (jobs, zones they carried), of the jobs posted during the run."""
        return job_shapes({str(i): r for i, r in enumerate(self.job_records)})

    def of_step(self, step: int) -> list[Change]:
        return [c for c in self.changes if c.step == step]


class Rig:
    """A deployment up, and how to read its processes' CPU."""

    def __init__(
        self,
        deployment: Deployment,
        binds: Sequence[Bind9Server],
        servers: dict[str, Callable[[], list[int]]] | None = None,
        notified: Sequence[socket.socket] = (),
    ) -> None:
        """``notified``: a socket for each of ``binds``, in order, that it NOTIFYs of every
        serial it loads (see notify_listeners); none, and the sweeper only polls."""
        self.deployment = deployment
        self.binds = list(binds)
        self.servers = servers or {}
        self.notified = list(notified)

    def cpu_groups(self, sweeper_pid: int) -> dict[str, Callable[[], list[int]]]:
        groups: dict[str, Callable[[], list[int]]] = {
            f"zoneflow {name}": (lambda pid=p.pid: with_children(pid))  # type: ignore[misc]
            for name, p in self.deployment.processes.items()
        }
        groups[f"BIND9 ×{len(self.binds)}"] = lambda: [
            b.process.pid for b in self.binds if b.process is not None
        ]
        groups.update(self.servers)
        groups["load generator (this process)"] = lambda: [os.getpid()]
        groups["sweeper"] = lambda: [sweeper_pid]
        return groups


def notify_listeners(count: int) -> list[socket.socket]:
    """A UDP socket on 127.0.0.1 for each of ``count`` targets to NOTIFY the sweeper on
    (Bind9Server's ``also_notify``); the sweeper processes inherit them."""
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((HOST, 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sockets.append(sock)
    return sockets


def arrivals(
    steps: Sequence[Step], rng: random.Random, start: float
) -> Iterator[tuple[int, float]]:
    """(step, due time) of every arrival: a Poisson process at each step's rate."""
    at = begin = start
    for index, step in enumerate(steps):
        end = begin + step.seconds
        while True:
            at += rng.expovariate(step.rate)
            if at >= end:
                break
            yield index, at
        at = begin = end


class SweeperLink:
    """The driver's end of the sweeper process: changes out, served times in."""

    def __init__(self, process: asyncio.subprocess.Process, changes: list[Change]) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self._stdin, self._stdout = process.stdin, process.stdout
        self._changes = changes
        self.stats: dict[str, Any] = {}
        self._ready = asyncio.Event()
        self._done = asyncio.Event()
        self._listener = asyncio.create_task(self._hear())

    async def _hear(self) -> None:
        while line := await self._stdout.readline():
            message = json.loads(line)
            if "served" in message:
                change = self._changes[message["served"]]
                change.served, change.before = message["at"], message["before"]
                change.superseded = message["superseded"]
                change.by_notify = message["by_notify"]
            elif "ready" in message:
                self._ready.set()
            else:
                self.stats.update(message)
                self._done.set()

    async def ready(self) -> None:
        await asyncio.wait_for(self._ready.wait(), 60)

    def expect(self, change: Change) -> None:
        message = {
            "index": change.index,
            "zone": change.zone,
            "action": change.action,
            "serial": change.serial or 0,
            "due": change.due,
        }
        self._stdin.write(json.dumps(message).encode() + b"\n")

    async def finish(self, deadline: float) -> None:
        """Once every change is served, or at ``deadline``: the sweeper's figures are in
        ``stats``, and it waits, alive (its CPU still readable), for ``close``."""
        self._stdin.write(json.dumps({"finish": deadline}).encode() + b"\n")
        await self._stdin.drain()
        await self._done.wait()

    async def close(self) -> None:
        self._stdin.close()
        await self._listener
        await self.process.wait()


async def drive(
    rig: Rig,
    load: Load,
    steps: Sequence[Step],
    *,
    mix: dict[str, float] | dict[str, int] | None = None,
    stop_at_knee: bool = False,
    drain: float = WITHIN,
    sweep_options: Sequence[str] = (),
    active: ActiveWatch | None = None,
) -> Run:
    """Offer ``steps`` of the mix to the API, open loop; every change's fate.

    With ``stop_at_knee``, no step follows one past the knee. An arrival not sent
    ``drain`` seconds after it was due is given up; the run waits for the last change
    to be served by every target, or ``drain`` seconds after the last arrival."""
    actions, shares = mix_shares(mix or DESIGNATE_MIX)
    changes: list[Change] = []
    load_began = os.getloadavg()[0]
    jobs_before, sessions_before = job_records(rig), database_sessions(rig)
    connections = ConnectionsWatch(rig)
    async with sweeper_process(rig.binds, sweep_options, rig.notified) as process:
        sweeper = SweeperLink(process, changes)
        await sweeper.ready()
        groups = rig.cpu_groups(process.pid)
        sent: set[asyncio.Task[None]] = set()

        async def one(change: Change) -> None:
            await load.send(change, give_up=drain)
            if change.accepted:
                sweeper.expect(change)

        started = time.monotonic() + 0.1
        ends = list(itertools.accumulate((s.seconds for s in steps), initial=started))[1:]
        cpu: list[dict[str, float]] = []
        total, meter = CpuMeter(groups), CpuMeter(groups)
        total.__enter__()
        meter.__enter__()
        stopped = False
        for step, due in itertools.chain(arrivals(steps, load.rng, started), [(len(steps), 0)]):
            if step != len(cpu):
                # The step is over: its CPU, and whether the next one is worth running.
                await asyncio.sleep(max(0.0, ends[len(cpu)] - time.monotonic()))
                meter.__exit__()
                cpu.append(meter.used)
                if step == len(steps) or (stop_at_knee and past_knee(changes, len(cpu) - 1)):
                    stopped = step < len(steps)
                    break
                meter = CpuMeter(groups)
                meter.__enter__()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            change = Change(len(changes), step, load.choose(actions, shares), due)
            changes.append(change)
            task = asyncio.create_task(one(change))
            sent.add(task)
            task.add_done_callback(sent.discard)
        if sent:
            await asyncio.wait(sent)
        await sweeper.finish(max((c.due for c in changes), default=started) + drain)
        total.__exit__()
        await sweeper.close()
    if active is not None:
        await active.wait_for(changes)
    return Run(
        list(steps),
        changes,
        started,
        cpu,
        total.used,
        sweeper.stats,
        (load_began, os.getloadavg()[0]),
        stopped,
        [record for uuid, record in job_records(rig).items() if uuid not in jobs_before],
        database_sessions(rig) - sessions_before,
        connections.stop(),
    )


@dataclasses.dataclass(frozen=True)
class JobRecord:
    """One job, from its logbook: its kind, the zones it carried, and the seconds from
    its posting to its flow's last stored state (its end, once it has ended); and from
    its posting to the end of each of its phases it went through (``PHASES``)."""

    kind: str
    zones: int
    seconds: float
    phases: dict[str, float] = dataclasses.field(default_factory=dict)


def job_records(rig: Rig) -> dict[str, JobRecord]:
    """Every job so far, by its logbook's id."""
    found: dict[str, JobRecord] = {}
    for uuid, meta, seconds in _sql(
        rig.deployment.database,
        "SELECT b.uuid, b.meta, EXTRACT(EPOCH FROM (SELECT max(f.updated_at) "
        "FROM flowdetails f WHERE f.parent_uuid = b.uuid) - b.created_at) FROM logbooks b",
    ):
        book = json.loads(meta) if isinstance(meta, str) else (meta or {})
        zones = len(book.get("zones") or [0])
        found[uuid] = JobRecord(str(book.get("kind")), zones, float(seconds or 0.0))
    for uuid, phases in phases_of_jobs(rig).items():
        if uuid in found:
            found[uuid] = dataclasses.replace(found[uuid], phases=phases)
    return found


def phases_of_jobs(rig: Rig) -> dict[str, dict[str, float]]:
    """Each job's ``PHASES``: seconds from its posting to the end of each, from the
    task events still kept (logbooks store naive UTC times)."""
    steps: dict[str, list[tuple[str, str, float]]] = {}
    # Each task event carries the tasks whose state changed since the job's last one.
    since_posted = (
        "EXTRACT(EPOCH FROM CAST(t.value->>'{}' AS timestamptz) "
        "- (b.created_at AT TIME ZONE 'UTC'))"
    )
    for uuid, task, state, seconds, started in _sql(
        rig.deployment.database,
        f"SELECT b.uuid, t.key, t.value->>'state', {since_posted.format('changed_at')}, "
        f"{since_posted.format('started_at')} FROM events e JOIN logbooks b ON b.uuid = e.key "
        "CROSS JOIN LATERAL json_each(e.value->'tasks') t WHERE e.topic = 'task'",
    ):
        done = steps.setdefault(uuid, [])
        done.append((str(task), str(state), float(seconds)))
        if started is not None:
            done.append((str(task), "RUNNING", float(started)))
    return {uuid: _phases(done) for uuid, done in steps.items()}


def _phases(done: list[tuple[str, str, float]]) -> dict[str, float]:
    """A job's phases from its steps' (name, state, seconds since posted)."""
    phases = {"claimed": min(seconds for _, _, seconds in done)}
    ended = [(name, seconds) for name, state, seconds in done if state == "SUCCESS"]
    polls = [seconds for name, seconds in ended if name.startswith("poll-for-")]
    if polls:
        phases["first poll"], phases["last poll"] = min(polls), max(polls)
    for phase, matches in (
        ("begin", lambda name: name == "begin"),
        ("on-target", lambda name: "-zone-on-target-" in name),
        ("consensus", lambda name: name == "consensus-check"),
        ("status", lambda name: name == "update-status"),
    ):
        if found := [seconds for name, seconds in ended if matches(name)]:
            phases[phase] = max(found)
    return phases


def job_shapes(records: dict[str, JobRecord]) -> dict[str, tuple[int, int]]:
    """Kind -> (jobs, zones they carried)."""
    shapes: dict[str, tuple[int, int]] = {}
    for record in records.values():
        jobs, zones = shapes.get(record.kind, (0, 0))
        shapes[record.kind] = (jobs + 1, zones + record.zones)
    return shapes


#: What PostgreSQL needs to count its statements (``--statements``).
STATEMENT_STATS = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
}


def _sql(url: str, statement: str) -> list[Any]:
    """The rows of one statement, on a connection of its own (committed, if it writes)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            result = connection.execute(sa.text(statement))
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def add_deployment_options(parser: argparse.ArgumentParser) -> None:
    """``--set`` and ``--statements``, for a benchmark of a deployment on PostgreSQL."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.OPTION=VALUE",
        help="a zoneflow.conf setting of the deployment measured (repeatable)",
    )
    parser.add_argument(
        "--statements",
        type=int,
        default=0,
        metavar="N",
        help="print the N statements PostgreSQL spent most time on, and how each busy "
        "table was read (pg_stat_statements, pg_stat_user_tables)",
    )


def gather_statistics(url: str) -> None:
    """ANALYZE every table, after the zones made first: the statistics autovacuum keeps in
    a deployment that has run a while. A database a minute old has none, and PostgreSQL
    then read the events table whole at every subscriber's look (1.4 ms a read against
    0.08: bench/capacity.py --statements, which shows how each table was read)."""
    _sql(url, "ANALYZE")


def top_statements(url: str, count: int) -> str:
    """The ``count`` statements PostgreSQL spent most time on since the extension was
    made (the whole run): calls, total and mean milliseconds, rows, the text; then
    the events kept, by topic, table and action."""
    rows = _sql(
        url,
        "SELECT calls, total_exec_time, mean_exec_time, rows, "
        "regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements "
        f"ORDER BY total_exec_time DESC LIMIT {int(count)}",
    )
    lines = ["calls | total ms | mean ms | rows | statement"]
    lines += [f"{c} | {t:.0f} | {m:.3f} | {r} | {q[:300]}" for c, t, m, r, q in rows]
    # The events every subscriber reads, by what they are about (those still kept).
    kinds = _sql(
        url,
        'SELECT topic, "table", action, count(*) FROM events GROUP BY 1, 2, 3 ORDER BY 4 DESC',
    )
    lines += ["", "events: topic | table | action | rows"]
    lines += [f"{topic} | {table} | {action} | {n}" for topic, table, action, n in kinds]
    # How each busy table was read: a sequential scan of a table that grows is a plan
    # made on statistics older than its rows.
    tables = _sql(
        url,
        "SELECT relname, seq_scan, seq_tup_read, idx_scan, n_live_tup, n_dead_tup, "
        "autovacuum_count, autoanalyze_count FROM pg_stat_user_tables "
        "ORDER BY seq_tup_read DESC LIMIT 12",
    )
    lines += [
        "",
        "tables: name | sequential scans | rows they read | index scans | live rows | "
        "dead rows | autovacuums | autoanalyzes",
    ]
    lines += [" | ".join(str(value) for value in row) for row in tables]
    return "\n".join(lines)


def database_sessions(rig: Rig) -> int:
    """How many sessions PostgreSQL has begun so far (each a backend process forked)."""
    ((sessions,),) = _sql(rig.deployment.database, "SELECT sum(sessions) FROM pg_stat_database")
    return int(sessions or 0)


class ConnectionsWatch:
    """The most client connections PostgreSQL held at once, looked at twice a second
    from a thread of its own until stop()."""

    def __init__(self, rig: Rig) -> None:
        import sqlalchemy as sa

        self.most = 0
        self._engine = sa.create_engine(rig.deployment.database, poolclass=sa.pool.NullPool)
        self._query = sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        )
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        with self._engine.connect() as connection:
            while not self._stopping.wait(0.5):
                self.most = max(self.most, int(connection.execute(self._query).scalar() or 0))

    def stop(self) -> int:
        self._stopping.set()
        self._thread.join(timeout=10)
        self._engine.dispose()
        return self.most


def past_knee(changes: Sequence[Change], step: int) -> bool:
    """More than 1 % of the step's changes the API took (or has yet to answer) were served
    later than KNEE after they arrived, or still wait and are older."""
    now = time.monotonic()
    counted = [c for c in changes if c.step == step and (c.accepted or c.answered is None)]
    late = sum(1 for c in counted if (c.served if c.served is not None else now) - c.due > KNEE)
    return late > 0.01 * max(1, len(counted))


# -- nothing lost ----------------------------------------------------------------------


def lost(rig: Rig, load: Load) -> list[str]:
    """What the database or a target does not hold of what the API accepted: each live
    zone this load made (its serial, every recordset with its latest records, on every
    target) and the absence of each zone it deleted. Empty when nothing was lost."""
    import sqlalchemy as sa

    from zoneflow.storage import LIVE, tables

    problems = []
    engine = sa.create_engine(rig.deployment.database, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            live = {
                row.name: row
                for row in connection.execute(
                    sa.select(tables.zones.c.name, tables.zones.c.id, tables.zones.c.status).where(
                        tables.zones.c.deleted == LIVE,
                        tables.zones.c.name.like(f"%.{SUFFIX}"),
                    )
                )
            }
            records: dict[str, set[str]] = {}
            for recordset_id, data in connection.execute(
                sa.select(tables.records.c.recordset_id, tables.records.c.data)
            ):
                records.setdefault(recordset_id, set()).add(data)
    finally:
        engine.dispose()
    for name in load.deleted:
        if name in live:
            problems.append(f"{name}: deleted through the API, still live in the database")
    for zone in load.zones.values():
        if zone.name not in live:
            problems.append(f"{zone.name}: created through the API, not in the database")
            continue
        for recordset_id, (_, wanted) in zone.recordsets.items():
            if records.get(recordset_id) != set(wanted):
                problems.append(
                    f"{zone.name}: recordset {recordset_id} holds {records.get(recordset_id)} "
                    f"in the database, {wanted} accepted"
                )
    return problems


def unserved_records(rig: Rig, load: Load, *, sample: int | None = None) -> list[str]:
    """Each recordset's latest records (or ``sample`` of them, drawn by the load's
    generator), asked of every target: what one does not serve."""
    recordsets = [rs for zone in load.zones.values() for rs in zone.recordsets.values()]
    if sample is not None and len(recordsets) > sample:
        recordsets = load.rng.sample(recordsets, sample)
    problems = []
    for name, wanted in recordsets:
        for bind in rig.binds:
            rcode, texts = answer(name, "A", bind.host, bind.port)
            if texts != set(wanted):
                problems.append(
                    f"{name} on {bind.host}:{bind.port}: {texts or dns.rcode.Rcode(rcode).name}, "
                    f"{wanted} accepted"
                )
    return problems


# -- the benchmark ---------------------------------------------------------------------


async def measure(
    rig: Rig, args: argparse.Namespace
) -> tuple[Run | None, Run | None, Load, ActiveWatch]:
    """Seed zones, then the steady run and the ramp, on one deployment."""
    api = Api(HOST, rig.deployment.api_port, ADMIN, args.connections)
    load = Load(api, random.Random(args.seed))
    active = ActiveWatch()
    follower = asyncio.create_task(active.follow(HOST, rig.deployment.api_port))
    await asyncio.wait_for(active.ready.wait(), 30)
    options = ["--budget", str(args.sweep_budget)]
    try:
        seed_rate = min(20.0, float(args.seed_zones))
        print(f"seeding {args.seed_zones} zones ...", flush=True)
        await drive(
            rig,
            load,
            [Step(seed_rate, args.seed_zones / seed_rate)],
            mix={"create": 1},
            sweep_options=options,
            drain=args.drain,
        )
        gather_statistics(rig.deployment.database)
        steady = ramp = None
        if args.steady_seconds > 0:
            print(f"steady {args.steady_rate:g}/s for {args.steady_seconds:g} s ...", flush=True)
            steady = await drive(
                rig,
                load,
                [Step(args.steady_rate, args.steady_seconds)],
                sweep_options=options,
                drain=args.drain,
                active=active,
            )
            print(
                action_table(steady, {}),
                f"jobs: {job_counts(steady)}; {job_times(steady)}; phases: {job_phases(steady)}",
                sep="\n",
                flush=True,
            )
        if args.ramp:
            print(f"ramp {args.ramp} ...", flush=True)
            ramp = await drive(
                rig,
                load,
                [Step(rate, args.step_seconds) for rate in args.ramp],
                stop_at_knee=not args.whole_ramp,
                sweep_options=options,
                drain=args.drain,
                active=active,
            )
            print(ramp_table(ramp), flush=True)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await api.close()
    return steady, ramp, load, active


def rates(text: str) -> list[float]:
    """A comma-separated list of rates (``--ramp``, ``--rates``)."""
    return [float(rate) for rate in text.split(",") if rate.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=8, help="BIND9 targets")
    parser.add_argument("--conductors", type=int, default=2)
    parser.add_argument("--seed-zones", type=int, default=100, help="zones made before the runs")
    parser.add_argument("--steady-rate", type=float, default=20.0, help="operations/s")
    parser.add_argument("--steady-seconds", type=float, default=300.0, help="0: no steady run")
    parser.add_argument("--ramp", type=rates, default=rates("20,50,100,200,400"))
    parser.add_argument("--step-seconds", type=float, default=60.0)
    parser.add_argument("--whole-ramp", action="store_true", help="go on past the knee")
    parser.add_argument("--floor-samples", type=int, default=20)
    parser.add_argument(
        "--cost-zones", type=int, default=200, help="zones BIND9's CPU is measured on (0: none)"
    )
    parser.add_argument("--connections", type=int, default=32, help="to the API, at most")
    parser.add_argument("--drain", type=float, default=WITHIN, help="seconds to wait for the last")
    parser.add_argument("--sweep-budget", type=float, default=4000.0, help="sweeper queries/s")
    parser.add_argument(
        "--sweep-by-polling",
        action="store_true",
        help="the targets NOTIFY no sweeper: it finds each change by asking (as before)",
    )
    parser.add_argument(
        "--silent-targets",
        action="store_true",
        help="the targets NOTIFY no mdns: zoneflow's polls find each change by asking alone",
    )
    parser.add_argument("--seed", type=int, default=17, help="of the arrivals and choices")
    parser.add_argument(
        "--provisioning",
        choices=("rndc", "catalog"),
        default="rndc",
        help="how targets learn of zones: rndc addzone/delzone, or the pool's catalog zone",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    add_deployment_options(parser)
    args = parser.parse_args()
    if not args.no_write:
        try:  # the plots come last: find out now, not after the runs
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("the plots need matplotlib: pip install -e '.[bench]' (or --no-write)")
    # `kill` stops the run as Ctrl-C does: the servers and zoneflow's processes it
    # started are stopped on the way out, not left running on the machine.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from tests.functional.fixtures.postgres import PostgresServer
    from tests.functional.fixtures.zookeeper import ZooKeeperServer

    with (
        tempfile.TemporaryDirectory(prefix="zoneflow-load-") as tmp,
        PostgresServer(settings=STATEMENT_STATS if args.statements else None) as postgres,
        ZooKeeperServer() as zookeeper,
        contextlib.ExitStack() as stack,
    ):
        workdir = pathlib.Path(tmp)
        deployment = Deployment(
            workdir,
            database=postgres.create_database("load"),
            zookeeper_hosts=zookeeper.hosts,
            extra_conf=deployment_conf(args.set),
        )
        catalog = (CATALOG, HOST, deployment.mdns_port) if args.provisioning == "catalog" else None
        notified = [] if args.sweep_by_polling else notify_listeners(args.targets)
        binds = [
            stack.enter_context(
                Bind9Server(
                    workdir=workdir / f"bind9-{i}",
                    catalog=catalog,
                    # mdns passes the word to the polls; the sweeper times the change.
                    also_notify=([] if args.silent_targets else [(HOST, deployment.mdns_port)])
                    + ([notified[i].getsockname()] if notified else []),
                )
            )
            for i in range(args.targets)
        ]
        stack.callback(deployment.close)  # zoneflow stops before the targets it feeds
        print("BIND9's floor ...", flush=True)
        floors = bind9_floors(args.floor_samples, workdir)
        cost = bind9_cpu(args.cost_zones, workdir / "cost") if args.cost_zones else None
        start_zoneflow(
            deployment, binds, conductors=args.conductors, provisioning=args.provisioning
        )
        rig = Rig(
            deployment,
            binds,
            {
                "PostgreSQL": lambda: with_children(postgres.process.pid),  # type: ignore[union-attr]
                "ZooKeeper": lambda: [zookeeper.process.pid],  # type: ignore[union-attr]
            },
            notified,
        )
        if args.statements:
            _sql(deployment.database, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        steady, ramp, load, active = asyncio.run(measure(rig, args))
        if args.statements:
            print(top_statements(deployment.database, args.statements), flush=True)
        problems = lost(rig, load) + unserved_records(rig, load, sample=200)
    images = [] if args.no_write else plot(steady, ramp, floors)
    body = describe(args, steady, ramp, floors, cost, problems, images, active)
    print(body)
    if not args.no_write:
        report.write_section("load", "Load: the Designate mix, served as seen from outside", body)
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
