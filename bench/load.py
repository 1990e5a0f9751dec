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
* **The sweeper**, independent of zoneflow: a process of its own (``load.py
  sweep``) asking every target the SOA of every zone with a change not yet
  served there, over plain DNS (one UDP socket per target, one thread,
  non-blocking). A create or an update is served by a target once it answers
  the zone's SOA with at least the serial the API's answer gave (the zone's,
  or the recordset's ``serial``: the zone serial of that change); a delete,
  once it no longer answers for the zone (REFUSED, NXDOMAIN, or an answer
  without authority). A zone is asked of a target every 10 ms while its
  newest change there is young, then every 5 % of that change's age (at most
  every second), and the sweeper keeps to ``--sweep-budget`` queries a
  second in all: under overload its resolution
  (the time between the last answer without the change and the first with
  it) grows, and is reported.
* **ACTIVE against served**: the API's event stream (``/v2/events``), read
  from the start, says when zoneflow first reported each change's zone ACTIVE
  (or DELETED) at its serial; compared with when the sweeper saw it served.
* **BIND9's floor**, in the same run, before the load: ``rndc addzone`` of a
  secondary until it serves the zone, and a NOTIFY of a new serial until it
  serves it, on a BIND9 pair of their own.
* **CPU per change per process**, from /proc, over each run.

Figures go to doc/benchmarks.md (section ``load``) and plots to doc/images/.

    python bench/load.py [--targets 8] [--steady-seconds 300] [--step-seconds 60]
                         [--ramp 20,50,100,200,400] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import dataclasses
import datetime
import heapq
import itertools
import json
import math
import os
import pathlib
import random
import select
import socket
import struct
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

from bench import report  # noqa: E402
from bench.orchestration import CpuMeter, with_children  # noqa: E402
from tests.functional.deployment import Deployment, answer, soa_serial  # noqa: E402
from tests.functional.fixtures.bind9 import Bind9Server  # noqa: E402
from tests.functional.fixtures.ports import HOST, wait_for  # noqa: E402
from tests.support import ADMIN  # noqa: E402

# The Designate deployment's hourly counts (creates, deletes, updates), as shares.
DESIGNATE_MIX = {"create": 6413, "delete": 2077, "update": 23750}
# Its published figures at scale: the average seconds until served, per action,
# and the share served within five minutes.
DESIGNATE_AVERAGE = {"create": 8.0, "delete": 4.0, "update": 5.0}
DESIGNATE_WITHIN = 0.9999
WITHIN = 300.0
ACTIONS = ("create", "update", "delete")
# The knee: the offered load at which the p99 of change → served by all passes this.
KNEE = 2.0
# The goal: ACTIVE reported within this of every target serving the change.
ACTIVE_GOAL = 0.05
SUFFIX = "load.example."
EMAIL = "hostmaster@load.example"
IMAGES = ROOT / "doc" / "images"


# -- the deployment ------------------------------------------------------------------


def pool(deployment: Deployment, binds: Sequence[Bind9Server]) -> dict[str, Any]:
    """The pool: every BIND9 a target fed by mdns, and its nameserver."""
    return {
        "name": "default",
        "ns_records": [{"hostname": "ns1.load.example.", "priority": 1}],
        "nameservers": [b.nameserver() for b in binds],
        "targets": [b.pool_target(deployment.masters()) for b in binds],
    }


def start_zoneflow(
    deployment: Deployment, binds: Sequence[Bind9Server], *, conductors: int = 2
) -> None:
    """The pool loaded and zoneflow's daemons started, each its own process, as deployed."""
    deployment.load_pool(pool(deployment, binds))
    for i in range(conductors):
        deployment.start_conductor(f"conductor{i}")
    deployment.start("producer", "producer")
    deployment.start("inspector", "inspector")
    deployment.start_mdns()
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


def deployment_conf() -> dict[str, dict[str, Any]]:
    """What a deployment on PostgreSQL sets beside Deployment's defaults: events wake
    the API's streams by LISTEN/NOTIFY, not a look at the table every second."""
    return {"events": {"driver": "postgres"}}


# -- the API over keep-alive connections ------------------------------------------------


class ApiError(Exception):
    """The API did not answer a request (connection lost, or no answer in time)."""


class Api:
    """Keep-alive HTTP/1.1 connections to ``zoneflow api``: a request is made holding one
    of ``slots`` (``size`` of them), so at most ``size`` are in flight at once.

    A few lines of HTTP over asyncio's streams rather than a client library: the
    load generator shares two cores with what it measures, and a library's
    request costs several times the CPU of these.
    """

    # uvicorn closes a connection idle for 5 s: one idle longer than this is dropped.
    IDLE = 3.0

    def __init__(self, host: str, port: int, headers: dict[str, str], size: int) -> None:
        self.host, self.port = host, port
        self._headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.slots = asyncio.Semaphore(size)
        self._idle: list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(
        self, method: str, path: str, body: object = None, *, timeout: float = 120.0
    ) -> tuple[int, Any]:
        """The status and JSON body of one request."""
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self._headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        reused, reader, writer = await self._connection()
        try:
            try:
                status, data, keep = await asyncio.wait_for(
                    self._exchange(reader, writer, head + payload), timeout
                )
            except asyncio.IncompleteReadError as exc:
                writer.close()
                if not reused or exc.partial:
                    raise
                # The server closed an idle connection as the request left: it never
                # read it, so it goes again on a new one.
                reader, writer = await asyncio.open_connection(self.host, self.port)
                status, data, keep = await asyncio.wait_for(
                    self._exchange(reader, writer, head + payload), timeout
                )
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            writer.close()
            raise ApiError(f"{method} {path}: {exc!r}") from exc
        if keep:
            self._idle.append((time.monotonic(), reader, writer))
        else:
            writer.close()
        return status, json.loads(data) if data else None

    async def _connection(self) -> tuple[bool, asyncio.StreamReader, asyncio.StreamWriter]:
        while self._idle:
            since, reader, writer = self._idle.pop()
            if time.monotonic() - since < self.IDLE:
                return True, reader, writer
            writer.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return False, reader, writer

    @staticmethod
    async def _exchange(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> tuple[int, bytes, bool]:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        }
        if headers.get("transfer-encoding") == "chunked":
            data = await _read_chunked(reader)
        else:
            data = await reader.readexactly(int(headers.get("content-length", "0")))
        return status, data, headers.get("connection", "").lower() != "close"

    async def close(self) -> None:
        for _, _, writer in self._idle:
            writer.close()
        self._idle.clear()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")
    return b"".join(parts)


# -- the changes ---------------------------------------------------------------------


@dataclasses.dataclass
class Change:
    """One arrival of the load: what it asked and what became of it (monotonic times)."""

    index: int
    step: int
    action: str
    due: float
    zone: str = ""
    answered: float | None = None
    status: int | None = None
    serial: int | None = None
    error: str | None = None
    # From the sweeper: every target served it by ``served``, and not yet all by ``before``.
    served: float | None = None
    before: float | None = None
    # A later delete of its zone was served on some target before it was.
    superseded: bool = False
    # When the API's event stream first said the zone was ACTIVE (DELETED) at its serial.
    active: float | None = None

    @property
    def accepted(self) -> bool:
        return self.status == 202

    @property
    def latency(self) -> float | None:
        return None if self.served is None else self.served - self.due


@dataclasses.dataclass
class ZoneMade:
    """A zone this load created: its id, and by id its recordsets' names and latest records."""

    name: str
    id: str
    recordsets: dict[str, tuple[str, list[str]]] = dataclasses.field(default_factory=dict)
    busy: int = 0


@dataclasses.dataclass(frozen=True)
class Step:
    rate: float
    seconds: float


def mix_shares(mix: dict[str, float] | dict[str, int]) -> tuple[list[str], list[float]]:
    total = sum(mix.values())
    actions = list(mix)
    return actions, list(itertools.accumulate(mix[a] / total for a in actions))


class Load:
    """The open-loop load generator: zones it made stay known from one run to the next."""

    def __init__(self, api: Api, rng: random.Random, *, prefix: str = "z") -> None:
        self.api = api
        self.rng = rng
        self.prefix = prefix
        self.zones: dict[str, ZoneMade] = {}  # live: created and not picked for deletion
        self.deleted: dict[str, ZoneMade] = {}
        self.made = 0
        self.records = 0

    # The next zone or address: names are never reused, so no two changes are confused.
    def _new_zone(self) -> str:
        self.made += 1
        return f"{self.prefix}{self.made:06d}.{SUFFIX}"

    def _new_address(self) -> str:
        self.records += 1
        return f"198.18.{self.records // 250 % 256}.{self.records % 250 + 1}"

    def choose(self, actions: list[str], shares: list[float]) -> str:
        action = actions[bisect.bisect_left(shares, self.rng.random() * shares[-1])]
        if action != "create" and not self.zones:
            return "create"
        return action

    async def send(self, change: Change, *, give_up: float = WITHIN) -> None:
        """Make the change once a connection is free: its zone is chosen then, so that
        arrivals waiting for one hold no zone (and a delete finds one nothing waits on).

        An arrival still waiting ``give_up`` seconds after it was due is not sent: under
        overload the queue would otherwise outlast the run by as long as it ran.
        """
        try:
            await asyncio.wait_for(
                self.api.slots.acquire(), max(0.0, change.due + give_up - time.monotonic())
            )
        except TimeoutError:
            change.error = f"not sent: no connection free within {give_up:g} s"
            return
        try:
            await self._send(change)
        finally:
            self.api.slots.release()

    async def _send(self, change: Change) -> None:
        if change.action == "update" and not self.zones:
            change.action = "create"  # every zone went while this one waited
        if change.action == "delete" and all(z.busy for z in self.zones.values()):
            # Only the first seconds of a run from no zones at all can get here (the
            # benchmark seeds zones first): a zone is made instead of none deleted.
            change.action = "create"
        try:
            if change.action == "create":
                await self._create(change)
            elif change.action == "update":
                await self._update(change)
            else:
                await self._delete(change)
        except ApiError as exc:
            change.error = str(exc)
        change.answered = time.monotonic()

    async def _create(self, change: Change) -> None:
        change.zone = self._new_zone()
        status, body = await self.api.request(
            "POST", "/v2/zones", {"name": change.zone, "email": EMAIL}
        )
        change.status = status
        if status == 202:
            change.serial = int(body["serial"])
            self.zones[change.zone] = ZoneMade(change.zone, body["id"])
        else:
            change.error = _error(body)

    async def _update(self, change: Change) -> None:
        zone = self.zones[self.rng.choice(list(self.zones))]
        change.zone = zone.name
        records = [self._new_address()]
        zone.busy += 1
        try:
            if zone.recordsets and self.rng.random() < 0.5:
                recordset_id = self.rng.choice(list(zone.recordsets))
                path = f"/v2/zones/{zone.id}/recordsets/{recordset_id}"
                status, body = await self.api.request("PUT", path, {"records": records})
            else:
                name = f"r{self.records}.{zone.name}"
                body = {"name": name, "type": "A", "records": records}
                path = f"/v2/zones/{zone.id}/recordsets"
                status, body = await self.api.request("POST", path, body)
        finally:
            zone.busy -= 1
        change.status = status
        if status == 202:
            change.serial = int(body["serial"])
            zone.recordsets[body["id"]] = (body["name"], records)
        else:
            change.error = _error(body)

    async def _delete(self, change: Change) -> None:
        # The oldest zone with no request in flight: its changes were most likely served.
        zone = next(z for z in self.zones.values() if not z.busy)
        del self.zones[zone.name]
        self.deleted[zone.name] = zone
        change.zone = zone.name
        status, body = await self.api.request("DELETE", f"/v2/zones/{zone.id}")
        change.status = status
        if status != 202:
            change.error = _error(body)


def _error(body: Any) -> str:
    if isinstance(body, dict):
        return f"{body.get('type', '')}: {body.get('message', body)}"
    return repr(body)


# -- the sweeper, a process of its own -----------------------------------------------

SOA = dns.rdatatype.SOA
NO_ZONE = {dns.rcode.REFUSED, dns.rcode.NXDOMAIN, dns.rcode.NOTAUTH}
AA = 0x0400


def soa_query(zone: str) -> bytearray:
    """A plain SOA query for ``zone`` (no recursion wanted, no EDNS), as wire bytes whose
    first two (the id) the sweeper sets for each send."""
    return bytearray(dns.message.make_query(zone, SOA, flags=0).to_wire())


def read_soa(response: bytes, question: bytes) -> tuple[int, bool, int | None] | None:
    """The rcode, the AA flag and the SOA serial of an answer to a query whose question
    section is ``question``; None if it answers another question.

    dnspython's full parse of every answer would cost the sweeper more than all
    else it does; the one field it needs sits at a fixed place from the end of
    the first answer record. tests/unit/test_bench_load.py holds this to
    dnspython's reading of the same bytes.
    """
    if response[12 : 12 + len(question)] != question:
        return None
    flags, _, ancount = struct.unpack_from(">HHH", response, 2)
    rcode, authoritative = flags & 0x000F, bool(flags & AA)
    if ancount == 0:
        return rcode, authoritative, None
    offset = _skip_name(response, 12 + len(question))
    rtype, _, _, rdlength = struct.unpack_from(">HHIH", response, offset)
    if rtype != SOA:
        return rcode, authoritative, None
    end = offset + 10 + rdlength
    (serial,) = struct.unpack_from(">I", response, end - 20)
    return rcode, authoritative, serial


def _skip_name(wire: bytes, offset: int) -> int:
    while True:
        length = wire[offset]
        if length >= 0xC0:  # a compression pointer ends the name
            return offset + 2
        if length == 0:
            return offset + 1
        offset += length + 1


@dataclasses.dataclass
class Expect:
    """A change the sweeper waits for: on which targets it is not yet served."""

    index: int
    zone: str
    action: str
    serial: int
    due: float
    left: set[int]
    before: float = 0.0
    served: float = 0.0
    superseded: bool = False

    def served_by(self, rcode: int, authoritative: bool, serial: int | None) -> bool:
        if self.action == "delete":
            return rcode in NO_ZONE or (rcode == dns.rcode.NOERROR and not authoritative)
        return rcode == dns.rcode.NOERROR and serial is not None and serial >= self.serial


@dataclasses.dataclass
class Watch:
    """A zone asked of one target while some change of it is not served there."""

    changes: list[Expect]
    due: float


class Sweeper:
    """Asks the targets, over plain DNS, until each change is served by all of them."""

    def __init__(
        self,
        targets: Sequence[tuple[str, int]],
        *,
        minimum: float,
        fraction: float,
        maximum: float,
        budget: float,
        out: Callable[[dict[str, Any]], None],
    ) -> None:
        self.targets = list(targets)
        self.minimum, self.fraction, self.maximum, self.budget = minimum, fraction, maximum, budget
        self.out = out
        self.sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in targets]
        for sock in self.sockets:
            sock.setblocking(False)
        self.queries: dict[str, bytearray] = {}
        self.watches: dict[tuple[int, str], Watch] = {}
        self.due: list[tuple[float, int, int, str]] = []  # (when, tiebreak, target, zone)
        self.asked: list[dict[int, tuple[str, float]]] = [{} for _ in targets]
        self.ids = itertools.count(1)
        self.pending: dict[int, Expect] = {}
        self.sent = self.answers = 0

    def expect(self, index: int, zone: str, action: str, serial: int, due: float) -> None:
        change = Expect(index, zone, action, serial, due, set(range(len(self.targets))))
        self.pending[index] = change
        self.queries.setdefault(zone, soa_query(zone))
        now = time.monotonic()
        for target in change.left:
            watch = self.watches.setdefault((target, zone), Watch([], math.inf))
            watch.changes.append(change)
            if watch.due > now + self.minimum:
                # A new change of a zone asked of this target for a while: asked at once.
                watch.due = now
                heapq.heappush(self.due, (now, next(self.ids), target, zone))

    def ask_due(self, now: float, allowance: float) -> float:
        """Send the queries due by ``now``, at most ``allowance`` of them; the queries sent."""
        sent = 0
        while self.due and self.due[0][0] <= now and sent < allowance:
            when, _, target, zone = heapq.heappop(self.due)
            watch = self.watches.get((target, zone))
            if watch is None or watch.due != when:
                continue  # served meanwhile
            query_id = next(self.ids) % 65536
            wire = self.queries[zone]
            struct.pack_into(">H", wire, 0, query_id)
            try:
                self.sockets[target].sendto(wire, self.targets[target])
            except BlockingIOError:
                pass  # the socket's buffer is full: asked again at the next due time
            else:
                self.asked[target][query_id] = (zone, now)
                sent += 1
            # Asked often while young, less as it ages: the resolution stays a
            # fraction of the latency, and the queries a second stay bounded.
            age = now - max(change.due for change in watch.changes)
            watch.due = now + min(self.maximum, max(self.minimum, self.fraction * age))
            heapq.heappush(self.due, (watch.due, next(self.ids), target, zone))
        self.sent += sent
        return sent

    def read(self, target: int) -> None:
        sock = self.sockets[target]
        while True:
            try:
                response = sock.recv(4096)
            except BlockingIOError:
                return
            now = time.monotonic()
            if len(response) < 12:
                continue
            entry = self.asked[target].pop(struct.unpack_from(">H", response)[0], None)
            if entry is None:
                continue
            zone, sent_at = entry
            reading = read_soa(response, bytes(self.queries[zone][12:]))
            if reading is not None:
                self.answers += 1
                self._heard(target, zone, sent_at, now, *reading)

    def _heard(
        self,
        target: int,
        zone: str,
        sent_at: float,
        now: float,
        rcode: int,
        authoritative: bool,
        serial: int | None,
    ) -> None:
        watch = self.watches.get((target, zone))
        if watch is None:
            return
        for change in list(watch.changes):
            if change.served_by(rcode, authoritative, serial):
                if change.action == "delete":
                    self._supersede(watch, change, target, now)
                self._served(watch, change, target, now)
            else:
                change.before = max(change.before, sent_at)
        if not watch.changes:
            del self.watches[(target, zone)]

    def _supersede(self, watch: Watch, delete: Expect, target: int, now: float) -> None:
        """The zone is gone from ``target``: its earlier changes still waiting never will be
        served there."""
        for change in list(watch.changes):
            if change is not delete and change.index < delete.index:
                change.superseded = True
                self._served(watch, change, target, now)

    def _served(self, watch: Watch, change: Expect, target: int, now: float) -> None:
        watch.changes.remove(change)
        change.left.discard(target)
        change.served = max(change.served, now)
        if not change.left:
            del self.pending[change.index]
            self.out(
                {
                    "served": change.index,
                    "at": change.served,
                    "before": change.before,
                    "superseded": change.superseded,
                }
            )

    def forget_old_queries(self, now: float) -> None:
        for asked in self.asked:
            for query_id in [i for i, (_, at) in asked.items() if now - at > 5.0]:
                del asked[query_id]


def sweep_main(argv: Sequence[str]) -> int:
    """``load.py sweep HOST:PORT ...``: read changes (JSON lines) on stdin, write each as it
    is served by every target to stdout; ``{"finish": T}`` ends it once all are served or
    at monotonic time T, with its own figures last."""
    parser = argparse.ArgumentParser(prog="load.py sweep")
    parser.add_argument("targets", nargs="+")
    parser.add_argument("--min", type=float, default=0.01)
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--max", type=float, default=1.0)
    parser.add_argument("--budget", type=float, default=4000.0)
    args = parser.parse_args(argv)
    targets = [(host, int(port)) for host, port in (t.rsplit(":", 1) for t in args.targets)]

    def out(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    sweeper = Sweeper(
        targets,
        minimum=args.min,
        fraction=args.fraction,
        maximum=args.max,
        budget=args.budget,
        out=out,
    )
    out({"ready": sum(os.times()[:2])})
    stdin = sys.stdin.fileno()
    os.set_blocking(stdin, False)
    listening = [stdin]
    buffered = b""
    finish: float | None = None
    last = time.monotonic()
    cleaned = last
    while finish is None or (sweeper.pending and time.monotonic() < finish):
        now = time.monotonic()
        sweeper.ask_due(now, max(1.0, args.budget * (now - last)))
        last = now
        wait = min(0.005, max(0.0, sweeper.due[0][0] - now)) if sweeper.due else 0.005
        readable, _, _ = select.select([*listening, *sweeper.sockets], [], [], wait)
        for target, sock in enumerate(sweeper.sockets):
            if sock in readable:
                sweeper.read(target)
        if stdin in readable:
            chunk = os.read(stdin, 65536)
            if not chunk:  # the driver is gone: finish with what is pending
                listening.clear()
                finish = finish or time.monotonic()
            *lines, buffered = (buffered + chunk).split(b"\n")
            for line in lines:
                message = json.loads(line)
                if "finish" in message:
                    finish = float(message["finish"])
                else:
                    sweeper.expect(**message)
        if now - cleaned > 1.0:
            sweeper.forget_old_queries(now)
            cleaned = now
    out(
        {
            "cpu": sum(os.times()[:2]),
            "queries": sweeper.sent,
            "answers": sweeper.answers,
            "unserved": sorted(sweeper.pending),
        }
    )
    # Alive until the driver has read this process's CPU and closes the pipe.
    os.set_blocking(stdin, True)
    while listening and os.read(stdin, 65536):
        pass
    return 0


@contextlib.asynccontextmanager
async def sweeper_process(
    binds: Sequence[Bind9Server], options: Sequence[str] = ()
) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(pathlib.Path(__file__).resolve()),
        "sweep",
        *(f"{b.host}:{b.port}" for b in binds),
        *options,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


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

    def of_step(self, step: int) -> list[Change]:
        return [c for c in self.changes if c.step == step]


class Rig:
    """A deployment up, and how to read its processes' CPU."""

    def __init__(
        self,
        deployment: Deployment,
        binds: Sequence[Bind9Server],
        servers: dict[str, Callable[[], list[int]]] | None = None,
    ) -> None:
        self.deployment = deployment
        self.binds = list(binds)
        self.servers = servers or {}

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
    async with sweeper_process(rig.binds, sweep_options) as process:
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
    )


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


# -- BIND9's floor -------------------------------------------------------------------


def bind9_floors(samples: int, workdir: pathlib.Path) -> dict[str, list[float]]:
    """On a BIND9 pair of their own: ``rndc addzone`` of a secondary until it serves the
    zone, and a NOTIFY of a new serial until the secondary serves that serial."""
    from bench.propagation import wait_served
    from zoneflow.dns import query

    primary = Bind9Server(workdir=workdir / "floor-primary")
    secondary = Bind9Server(workdir=workdir / "floor-secondary")
    floors: dict[str, list[float]] = {"addzone": [], "notify": []}
    with primary, secondary:
        for i in range(samples):
            zone = f"floor{i}.{SUFFIX}"
            _write_primary_zone(primary, i, serial=1)
            primary.rndc("addzone", zone, f'{{ type primary; file "floor{i}.zone"; }};')
            started = time.monotonic()
            secondary.rndc(
                "addzone",
                zone,
                f"{{ type secondary; primaries {{ {primary.host} port {primary.port}; }}; "
                f'file "floor{i}.db"; }};',
            )
            floors["addzone"].append(wait_served(zone, secondary, started))
            _write_primary_zone(primary, i, serial=2)
            primary.rndc("reload", zone)
            wait_for(lambda z=zone: soa_serial(z, primary.host, primary.port) == 2, timeout=30)  # type: ignore[misc]
            started = time.monotonic()
            query.send_notify(zone, secondary.host, secondary.port, serial=2)
            wait_for(
                lambda z=zone: soa_serial(z, secondary.host, secondary.port) == 2,  # type: ignore[misc]
                timeout=30,
                interval=0.005,
            )
            floors["notify"].append(time.monotonic() - started)
    return floors


def _write_primary_zone(primary: Bind9Server, index: int, *, serial: int) -> None:
    (primary.workdir / f"floor{index}.zone").write_text(
        f"$TTL 300\n@ SOA ns1.{SUFFIX} hostmaster.{SUFFIX} {serial} 3600 600 86400 300\n"
        f"@ NS ns1.{SUFFIX}\nwww A 192.0.2.{serial}\n"
    )


# -- the report ------------------------------------------------------------------------


def latencies(changes: Sequence[Change], action: str | None = None) -> list[float]:
    return [
        c.latency
        for c in changes
        if c.latency is not None and not c.superseded and action in (None, c.action)
    ]


def _seconds(samples: list[float], pct: float) -> str:
    return f"{report.percentile(samples, pct):.2f}" if samples else "–"


def within_share(changes: Sequence[Change]) -> str:
    """The changes served by every target within WITHIN of their arrival, of those the API
    accepted or never answered (not sent, under overload, or no answer in time)."""
    counted = [c for c in changes if c.status in (202, None) and not c.superseded]
    if not counted:
        return "–"
    served = sum(1 for c in counted if c.latency is not None and c.latency <= WITHIN)
    return f"{100 * served / len(counted):.2f} % ({served}/{len(counted)})"


def action_table(run: Run, floors: dict[str, list[float]]) -> str:
    lines = [
        "| action | arrived | accepted | API answered p50 / p99 (s) | served by all: p50 "
        "| p90 | p99 | max | mean (s) | served after the API's answer: p50 / p99 (s) "
        "| within 5 min | Designate: mean (s), within 5 min |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for action in ACTIONS:
        changes = [c for c in run.changes if c.action == action]
        served = latencies(changes)
        answered = [c.answered - c.due for c in changes if c.answered is not None]
        # Past the API: what propagation alone took, the API's own queue aside.
        after = [
            c.served - c.answered
            for c in changes
            if c.served is not None and c.answered is not None and not c.superseded
        ]
        mean = f"{sum(served) / len(served):.2f}" if served else "–"
        lines.append(
            f"| {action} | {len(changes)} | {sum(c.accepted for c in changes)} "
            f"| {_seconds(answered, 50)} / {_seconds(answered, 99)} "
            f"| {_seconds(served, 50)} | {_seconds(served, 90)} | {_seconds(served, 99)} "
            f"| {_seconds(served, 100)} | {mean} | {_seconds(after, 50)} / {_seconds(after, 99)} "
            f"| {within_share(changes)} | {DESIGNATE_AVERAGE[action]:g}, "
            f"{100 * DESIGNATE_WITHIN:g} % |"
        )
    for label, samples in (
        ("BIND9 alone: `rndc addzone` → served", floors.get("addzone", [])),
        ("BIND9 alone: NOTIFY → new serial served", floors.get("notify", [])),
    ):
        if not samples:
            continue
        lines.append(
            f"| {label} | {len(samples)} | – | – | {_seconds(samples, 50)} "
            f"| {_seconds(samples, 90)} | {_seconds(samples, 99)} | {_seconds(samples, 100)} "
            f"| {sum(samples) / max(1, len(samples)):.2f} | – | – | – |"
        )
    return "\n".join(lines) + "\n"


def active_table(runs: Sequence[tuple[str, Run]]) -> str:
    lines = [
        "| run | changes | ACTIVE − served: p50 | p99 (s) | within 50 ms | ACTIVE while a target "
        "was seen without it | never reported |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, run in runs:
        counted = [c for c in run.changes if c.served is not None and not c.superseded]
        gaps = [c.active - c.served for c in counted if c.active is not None and c.served]
        early = sum(1 for c in counted if c.active is not None and c.active < (c.before or 0.0))
        near = sum(1 for gap in gaps if gap <= ACTIVE_GOAL)
        lines.append(
            f"| {label} | {len(counted)} | {_seconds(gaps, 50)} | {_seconds(gaps, 99)} "
            f"| {100 * near / max(1, len(gaps)):.1f} % | {early} "
            f"| {sum(1 for c in counted if c.active is None)} |"
        )
    return "\n".join(lines) + "\n"


def refusals(runs: Sequence[tuple[str, Run]]) -> str:
    """The requests the API refused or never answered, by reason (none, at best)."""
    reasons: dict[str, int] = {}
    for label, run in runs:
        for change in run.changes:
            if not change.accepted:
                reason = f"{label}, {change.action}: {change.status or ''} {change.error}"
                reasons[reason] = reasons.get(reason, 0) + 1
    if not reasons:
        return "\nThe API accepted every request (202).\n"
    return (
        "\nRefused or unanswered requests: "
        + "; ".join(f"{reason} ×{count}" for reason, count in sorted(reasons.items()))
        + ".\n"
    )


def goals(steady: Run) -> str:
    """The issue's goals for the steady run, beside what was measured."""
    updates = latencies(steady.changes, "update")
    return (
        "\nThe issue's goal at a steady 20 operations/s on 8 BIND9: an update served by all "
        f"within 0.4 s (p50) and 1 s (p99); measured here {_seconds(updates, 50)} s and "
        f"{_seconds(updates, 99)} s.\n"
    )


def ramp_table(run: Run) -> str:
    lines = [
        "| offered (changes/s) | arrived | accepted/s | API answered p50 / p99 (s) "
        "| served by all: p50 | p90 | p99 | max (s) | within 5 min | sweeper resolution p90 (s) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for index, step in enumerate(run.steps[: len(run.cpu)]):
        changes = run.of_step(index)
        served = latencies(changes)
        answered = [c.answered - c.due for c in changes if c.answered is not None]
        resolution = [c.served - c.before for c in changes if c.served and c.before]
        lines.append(
            f"| {step.rate:g} | {len(changes)} "
            f"| {sum(c.accepted for c in changes) / step.seconds:.1f} "
            f"| {_seconds(answered, 50)} / {_seconds(answered, 99)} "
            f"| {_seconds(served, 50)} | {_seconds(served, 90)} | {_seconds(served, 99)} "
            f"| {_seconds(served, 100)} | {within_share(changes)} | {_seconds(resolution, 90)} |"
        )
    return "\n".join(lines) + "\n"


def knee(run: Run) -> str:
    for index, step in enumerate(run.steps[: len(run.cpu)]):
        served = latencies(run.of_step(index))
        unserved = [c for c in run.of_step(index) if c.accepted and c.served is None]
        if unserved or (served and report.percentile(served, 99) > KNEE):
            below = f" (p99 ≤ {KNEE:g} s at {run.steps[index - 1].rate:g})" if index else ""
            return f"the knee lies below {step.rate:g} changes/s{below}"
    return f"no knee up to {run.steps[len(run.cpu) - 1].rate:g} changes/s"


def cpu_table(columns: Sequence[tuple[str, dict[str, float], int]]) -> str:
    """Milliseconds of CPU per accepted change, by process, for each (label, used, changes)."""
    names = list(columns[0][1])
    zoneflow = [n for n in names if n.startswith("zoneflow ")]
    lines = [
        "| process | " + " | ".join(label for label, _, _ in columns) + " |",
        "| --- |" + " ---: |" * len(columns),
    ]
    for name in [*names, "zoneflow, all its processes"]:
        cells = []
        for _, used, changes in columns:
            seconds = sum(used.get(n, 0.0) for n in zoneflow) if name not in used else used[name]
            cells.append(f"{1000 * seconds / max(1, changes):.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(steady: Run | None, ramp: Run | None, floors: dict[str, list[float]]) -> list[str]:
    """The PNGs in doc/images/: the CDF of each action's latency (steady run), and the
    latency against the offered load (ramp). Their paths, relative to doc/."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMAGES.mkdir(parents=True, exist_ok=True)
    written = []
    if steady is not None:
        figure, axes = plt.subplots(figsize=(7, 4.2))
        for action in ACTIONS:
            _cdf(axes, latencies(steady.changes, action), f"{action} (zoneflow)", "-")
        _cdf(axes, floors.get("addzone", []), "BIND9 alone: rndc addzone", ":")
        _cdf(axes, floors.get("notify", []), "BIND9 alone: NOTIFY", ":")
        axes.set_xscale("log")
        axes.set_xlabel("seconds from the request's arrival until every target serves it")
        axes.set_ylabel("share of changes")
        axes.set_title(f"Steady {steady.steps[0].rate:g} ops/s, Designate mix")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(loc="lower right", fontsize="small")
        written.append(_save(figure, "load-cdf.png"))
    if ramp is not None:
        figure, axes = plt.subplots(figsize=(7, 4.2))
        rates = [s.rate for s in ramp.steps[: len(ramp.cpu)]]
        for pct, style in ((50, "o-"), (90, "s-"), (99, "^-")):
            values = [
                report.percentile(samples, pct) if (samples := latencies(ramp.of_step(i))) else 0.0
                for i in range(len(rates))
            ]
            axes.plot(rates, values, style, label=f"p{pct}")
        axes.axhline(KNEE, color="grey", linestyle="--", label=f"knee: p99 = {KNEE:g} s")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xticks(rates, [f"{r:g}" for r in rates])
        axes.set_xlabel("offered load (changes/s, Designate mix)")
        axes.set_ylabel("seconds until served by every target")
        axes.set_title("Latency against offered load (ramp)")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize="small")
        written.append(_save(figure, "load-offered.png"))
    return written


def _cdf(axes: Any, samples: list[float], label: str, style: str) -> None:
    if samples:
        ordered = sorted(samples)
        axes.plot(
            ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], style, label=label
        )


def _save(figure: Any, name: str) -> str:
    figure.tight_layout()
    figure.savefig(IMAGES / name, dpi=100)
    return f"images/{name}"


def describe(
    args: argparse.Namespace,
    steady: Run | None,
    ramp: Run | None,
    floors: dict[str, list[float]],
    lost_found: list[str],
    images: list[str],
    active: ActiveWatch,
) -> str:
    runs = [(label, run) for label, run in (("steady", steady), ("ramp", ramp)) if run]
    parts = [
        f"{args.targets} BIND9 targets, ZooKeeper, PostgreSQL 15, {args.conductors} "
        "`zoneflow conductor`, `zoneflow mdns`, `zoneflow producer`, `zoneflow inspector` and "
        "`zoneflow api`, each its own process as deployed, with their defaults "
        "(bench/load.py). The load: Designate's mix (20 % zone creates, 6 % deletes, 74 % "
        "recordset creates or changes) on the API's v2 routes, open loop (Poisson arrivals, "
        f"over at most {args.connections} keep-alive connections), every latency counted from "
        f"the arrival; an arrival still not sent {args.drain:g} s after it was due is given up "
        "and counts as not served in time. Served: a sweeper of its own (a separate process, "
        "plain DNS SOA queries to every target) saw every target answer the change's serial "
        "(for a delete: no longer answer for the zone). The machine was shared with other work"
        + (f" (the benchmark and its servers ran at `nice {os.nice(0)}`)" if os.nice(0) else "")
        + ": the 1-minute load average was "
        + "; ".join(f"{label} {r.load[0]:.1f} → {r.load[1]:.1f}" for label, r in runs)
        + f" on {os.cpu_count()} cores.\n"
    ]
    if steady is not None:
        shortened = "" if args.steady_seconds >= 300 else " (shortened from the issue's 5 minutes)"
        parts.append(
            f"\n**Steady {args.steady_rate:g} operations/s for {args.steady_seconds:g} s"
            f"{shortened}**, after {args.seed_zones} zones were made; BIND9 alone measured "
            f"in the same run on a pair of its own ({args.floor_samples} samples each):\n\n"
            + action_table(steady, floors)
            + goals(steady)
        )
    if ramp is not None:
        parts.append(
            f"\n**Ramp** of {args.step_seconds:g} s steps"
            + ("" if args.step_seconds >= 60 else " (shortened from the issue's minute)")
            + (", stopped after the first step past the knee" if ramp.stopped_at_knee else "")
            + f": {knee(ramp)} (the knee: the p99 of served by all passes {KNEE:g} s; the "
            "issue's goal: at 200 changes/s or above).\n\n" + ramp_table(ramp)
        )
    parts.append(
        "\n**ACTIVE against served**: when `/v2/events` first reported the change's zone "
        "ACTIVE at its serial (DELETED for a delete), minus when the sweeper saw every target "
        "serve it (negative: reported before). The sweeper's answers bound each served time "
        "from below too: a report earlier than an answer still without the change is counted "
        "as ACTIVE while a target was seen without it. What the stream itself adds, from "
        "each event's commit (its `created_at`) to its arrival here: p50 "
        f"{_seconds(active.delays, 50)} s, p99 {_seconds(active.delays, 99)} s"
        f"; the stream was lost and followed again {active.reconnects} times"
        ".\n\n" + active_table(runs) + refusals(runs)
    )
    columns = []
    if steady is not None:
        columns.append((f"steady {args.steady_rate:g}/s", steady.cpu_total, _accepted(steady)))
    if ramp is not None:
        for index, used in enumerate(ramp.cpu):
            accepted = sum(c.accepted for c in ramp.of_step(index))
            columns.append((f"ramp {ramp.steps[index].rate:g}/s", used, accepted))
    if columns:
        parts.append(
            "\n**CPU per accepted change**, milliseconds, from /proc (the steady run from its "
            "first arrival until its last change was served; each ramp step over its "
            "duration, its backlog included, so past the knee it is CPU per change offered, not "
            "per change done). `other processes` is the rest of the shared machine.\n\n"
            + cpu_table(columns)
        )
    sweeps = [
        f"{label}: {r.cpu_total.get('sweeper', 0.0):.1f} s of CPU for "
        f"{_accepted(r)} changes, {r.sweeper.get('queries', 0)} "
        f"queries, {r.sweeper.get('answers', 0)} answers"
        for label, r in runs
    ]
    parts.append(
        "\nThe sweeper: "
        + "; ".join(sweeps)
        + ". Nothing lost: "
        + (
            "every zone and recordset accepted is in the database with its latest records, "
            "each deleted zone is gone, and a sample of the recordsets was asked of every "
            "target, each serving the records last accepted."
            if not lost_found
            else f"{len(lost_found)} problems, e.g. {lost_found[:3]}."
        )
        + "\n"
    )
    if images:
        parts.append("\n" + "\n".join(f"![{name}]({name})" for name in images) + "\n")
    return "".join(parts)


def _accepted(run: Run) -> int:
    return sum(c.accepted for c in run.changes)


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
            print(action_table(steady, {}), flush=True)
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


def _rates(text: str) -> list[float]:
    return [float(rate) for rate in text.split(",") if rate.strip()]


def main() -> int:
    if sys.argv[1:2] == ["sweep"]:
        return sweep_main(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=8, help="BIND9 targets")
    parser.add_argument("--conductors", type=int, default=2)
    parser.add_argument("--seed-zones", type=int, default=100, help="zones made before the runs")
    parser.add_argument("--steady-rate", type=float, default=20.0, help="operations/s")
    parser.add_argument("--steady-seconds", type=float, default=300.0, help="0: no steady run")
    parser.add_argument("--ramp", type=_rates, default=_rates("20,50,100,200,400"))
    parser.add_argument("--step-seconds", type=float, default=60.0)
    parser.add_argument("--whole-ramp", action="store_true", help="go on past the knee")
    parser.add_argument("--floor-samples", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32, help="to the API, at most")
    parser.add_argument("--drain", type=float, default=WITHIN, help="seconds to wait for the last")
    parser.add_argument("--sweep-budget", type=float, default=4000.0, help="sweeper queries/s")
    parser.add_argument("--seed", type=int, default=17, help="of the arrivals and choices")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    from tests.functional.fixtures.postgres import PostgresServer
    from tests.functional.fixtures.zookeeper import ZooKeeperServer

    with (
        tempfile.TemporaryDirectory(prefix="zoneflow-load-") as tmp,
        PostgresServer() as postgres,
        ZooKeeperServer() as zookeeper,
        contextlib.ExitStack() as stack,
    ):
        workdir = pathlib.Path(tmp)
        binds = [
            stack.enter_context(Bind9Server(workdir=workdir / f"bind9-{i}"))
            for i in range(args.targets)
        ]
        print("BIND9's floor ...", flush=True)
        floors = bind9_floors(args.floor_samples, workdir)
        deployment = Deployment(
            workdir,
            database=postgres.create_database("load"),
            zookeeper_hosts=zookeeper.hosts,
            extra_conf=deployment_conf(),
        )
        stack.callback(deployment.close)
        start_zoneflow(deployment, binds, conductors=args.conductors)
        rig = Rig(
            deployment,
            binds,
            {
                "PostgreSQL": lambda: with_children(postgres.process.pid),  # type: ignore[union-attr]
                "ZooKeeper": lambda: [zookeeper.process.pid],  # type: ignore[union-attr]
            },
        )
        steady, ramp, load, active = asyncio.run(measure(rig, args))
        problems = lost(rig, load) + unserved_records(rig, load, sample=200)
    images = [] if args.no_write else plot(steady, ramp, floors)
    body = describe(args, steady, ramp, floors, problems, images, active)
    print(body)
    if not args.no_write:
        report.write_section("load", "Load: the Designate mix, served as seen from outside", body)
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
