"""A zoneflow deployment made of real processes, for functional tests.

``Deployment`` writes a zoneflow.conf (PostgreSQL, ZooKeeper jobboard, mdns
and API ports), runs ``zoneflow db sync`` and ``pool update`` through the CLI,
and starts ``zoneflow mdns``, ``zoneflow api`` and any number of ``zoneflow
conductor`` processes, each a real process that a test can kill with SIGKILL.

In the suite, its commands and daemons are forked from the test worker's
fork server (tests/functional/forkserver.py), which has imported zoneflow
once, instead of each importing it anew in a fresh interpreter (a second of
CPU each); ``fresh_interpreters=True``, and every benchmark, starts them as
``python -m zoneflow.cli``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import sqlalchemy as sa
import yaml

from tests.functional import forkserver
from tests.functional.fixtures.ports import HOST, free_port
from tests.functional.fixtures.postgres import PostgresServer
from tests.support import ADMIN, ALL_PROJECTS, ask_udp, eventually
from zoneflow.storage import LIVE, tables

# Databases that ``zoneflow db sync`` has migrated already (the postgres_database
# fixture clones them from a template it synced through the CLI): a deployment on
# one of them skips its own ``db sync``, a process that costs a second of CPU.
SYNCED_DATABASES: set[str] = set()


# A zoneflow process: forked by the fork server, or started as a fresh interpreter.
Process = forkserver.Forked | subprocess.Popen[bytes]

# How long a zoneflow process may take to answer after it starts: on a busy machine
# its imports alone can take tens of seconds; a process that exits fails at once.
START_TIMEOUT = 90


class Deployment:
    def __init__(
        self,
        workdir: pathlib.Path,
        *,
        database: str,
        zookeeper_hosts: str | None,
        session_timeout: float = 10.0,
        extra_conf: dict[str, dict[str, Any]] | None = None,
        fresh_interpreters: bool = False,
    ) -> None:
        self.workdir = workdir
        self.forks = forkserver.server() if forkserver.enabled and not fresh_interpreters else None
        self.database = database
        self.mdns_port = free_port()
        self.api_port = free_port()
        self.conf = workdir / "zoneflow.conf"
        self.processes: dict[str, Process] = {}
        sections: dict[str, dict[str, Any]] = {
            "database": {"connection": database},
            "mdns": {"host": HOST, "port": self.mdns_port},
            "api": {"host": HOST, "port": self.api_port},
            "jobboard": (
                {
                    "backend": "zookeeper",
                    "hosts": zookeeper_hosts,
                    "session_timeout": session_timeout,
                }
                if zookeeper_hosts
                else {"backend": "zake"}
            ),
            # Fail fast on dead targets so failure tests stay short.
            "flows": {"target_retry_delay": 0.2, "poll_timeout": 15},
        }
        for section, values in (extra_conf or {}).items():
            sections.setdefault(section, {}).update(values)
        self.conf.write_text(
            "".join(
                f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
                for name, values in sections.items()
            )
        )

    # --- the CLI -------------------------------------------------------------

    def cli(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        command = ["--config-file", str(self.conf), *args]
        done = forkserver.run(
            command, workdir=self.workdir, timeout=timeout, fresh=self.forks is None
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"zoneflow {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    # --- the REST API (start_api first) ----------------------------------------

    def api(
        self, method: str, path: str, body: object = None, *, all_projects: bool = False
    ) -> Any:
        """The JSON body of a request to ``zoneflow api``, as an admin (of every project
        with ``all_projects``: what the CLI made belongs to the CLI's project).

        Many zones are faster made here than by one CLI process each, which
        takes seconds to start on a busy machine, and waits poll here for the same reason.
        """
        request = urllib.request.Request(
            f"{self.api_url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                **(ALL_PROJECTS if all_projects else ADMIN),
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def api_create_zones(self, names: list[str], email: str) -> dict[str, str]:
        """Each zone's id, created through the API (its quota raised to let them all in)."""
        self.api("PATCH", f"/v2/quotas/{ADMIN['X-Auth-Project-ID']}", {"zones": len(names) + 10})
        return {
            name: self.api("POST", "/v2/zones", {"name": name, "email": email})["id"]
            for name in names
        }

    def api_zone_statuses(self) -> dict[str, str]:
        """Each zone the API lists, by name: its status."""
        return {z["name"]: z["status"] for z in self.api("GET", "/v2/zones?limit=1000")["zones"]}

    def stored_zone(self, name: str) -> dict[str, Any] | None:
        """The live zone ``name`` as the database holds it (id, status, action, serial,
        error), or None: one query from this process, for waits that poll, where a CLI
        process per poll would cost a second of CPU each time."""
        zones = tables.zones
        query = sa.select(
            zones.c.id, zones.c.status, zones.c.action, zones.c.serial, zones.c.error
        ).where(zones.c.name == name, zones.c.deleted == LIVE)
        with self._database() as connection:
            row = connection.execute(query).mappings().one_or_none()
        return dict(row) if row is not None else None

    def step_stored_done(self, step: str) -> bool:
        """Whether a job's step named ``step`` (see zoneflow.jobs.steps) is stored SUCCESS
        in its logbook: the point past which a new owner of the job does not run it again."""
        atoms = sa.table("atomdetails", sa.column("name"), sa.column("state"))
        query = sa.select(sa.func.count()).where(atoms.c.name == step, atoms.c.state == "SUCCESS")
        with self._database() as connection:
            return bool(connection.execute(query).scalar())

    @contextlib.contextmanager
    def _database(self) -> Iterator[sa.engine.Connection]:
        """One connection to the deployment's database, from this process, closed after."""
        engine = sa.create_engine(self.database, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()

    def stored_serial(self, name: str) -> int:
        """The serial the database holds for the live zone ``name``."""
        stored = self.stored_zone(name)
        assert stored is not None, f"no zone {name} in the database"
        return int(stored["serial"])

    def load_pool(self, pool: dict[str, Any]) -> None:
        path = self.workdir / "pools.yaml"
        path.write_text(yaml.safe_dump([pool], sort_keys=False))
        if self.database not in SYNCED_DATABASES:
            self.cli("db", "sync")
        self.cli("pool", "update", "--file", str(path))

    def masters(self) -> list[tuple[str, int]]:
        return [(HOST, self.mdns_port)]

    # --- daemons ------------------------------------------------------------------

    def start(self, name: str, *command: str, within: Sequence[str] = ()) -> Process:
        """``zoneflow <command>``; ``within``: a command that runs it, such as
        ``ip netns exec NAME`` (which execs it, so the pid is the daemon's)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.forks is not None and not within:
            forked = self.forks.spawn(
                ["--config-file", str(self.conf), *command],
                cwd=pathlib.Path.cwd(),
                env=env,
                stdout=self.workdir / f"{name}.log",
            )
            self.processes[name] = forked
            return forked
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        zoneflow = [sys.executable, "-m", "zoneflow.cli", "--config-file", str(self.conf)]
        process = subprocess.Popen(
            [*within, *zoneflow, *command],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
        log.close()
        self.processes[name] = process
        return process

    def start_mdns(self) -> None:
        """``zoneflow mdns``, once it answers a query."""
        process = self.start("mdns", "mdns")
        eventually(
            lambda: self.mdns_answers(process),
            timeout=START_TIMEOUT,
            what="mdns to answer",
            ignore=(OSError, dns.exception.Timeout),
        )

    def mdns_answers(self, process: Process, name: str = "mdns") -> bool:
        """Whether mdns answers a query (``name``: the process that serves it)."""
        self._still_running(name, process)
        query = dns.message.make_query("probe.invalid.", dns.rdatatype.SOA)
        dns.query.udp(query, HOST, port=self.mdns_port, timeout=0.5)
        return True

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    def start_api(self) -> None:
        """``zoneflow api``, once it answers version discovery."""
        process = self.start("api", "api")
        eventually(
            lambda: self._api_answers(process),
            timeout=START_TIMEOUT,
            what="the API to answer",
            ignore=(OSError,),
        )

    def _api_answers(self, process: Process) -> bool:
        self._still_running("api", process)
        with urllib.request.urlopen(f"{self.api_url}/", timeout=1) as response:
            return bool(response.status == 200)

    def _still_running(self, name: str, process: Process) -> None:
        """Fail a start at once, with its log, when the process has exited."""
        if process.poll() is not None:
            raise AssertionError(f"zoneflow {name} exited {process.returncode}:\n{self.log(name)}")

    def start_conductor(self, name: str = "conductor", *, within: Sequence[str] = ()) -> Process:
        return self.start(name, "conductor", within=within)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        process = self.processes[name]
        os.killpg(process.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            process.wait(timeout=30)

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):  # it has just exited
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                # A conductor stopping mid-batch may take its own 10 s to suspend its
                # jobs, and end between the wait and this kill.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def soa_serial(zone: str, host: str, port: int) -> int | None:
    """What a nameserver serves for ``zone``: its SOA serial, or None if it refuses."""
    query = dns.message.make_query(zone, dns.rdatatype.SOA)
    response = ask_udp(query, host, port)
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return int(rrset[0].serial)
    return None


def soa_serials(
    zones: Sequence[str], host: str, port: int, *, window: int = 200, tries: int = 3
) -> dict[str, int | None]:
    """What a nameserver serves for each of many zones: its SOA serial, or None if it
    refuses (or never answers ``tries`` times).

    The queries go ``window`` at a time from one socket, so a thousand zones
    take a fraction of a second, where one query after another would take a
    round trip each.
    """
    served: dict[str, int | None] = {}
    remaining = list(zones)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(tries):
            unanswered: list[str] = []
            for start in range(0, len(remaining), window):
                asked = _ask_soas(sock, remaining[start : start + window], host, port, start)
                _read_soas(sock, asked, served)
                unanswered += [zone for zone, _ in asked.values()]
            remaining = unanswered
            if not remaining:
                break
    return served | dict.fromkeys(remaining)


def _ask_soas(
    sock: socket.socket, zones: Sequence[str], host: str, port: int, first_id: int
) -> dict[int, tuple[str, dns.message.Message]]:
    asked = {}
    for offset, zone in enumerate(zones):
        query = dns.message.make_query(zone, dns.rdatatype.SOA)
        query.id = (first_id + offset) % 65536
        asked[query.id] = (zone, query)
        sock.sendto(query.to_wire(), (host, port))
    return asked


def _read_soas(
    sock: socket.socket,
    asked: dict[int, tuple[str, dns.message.Message]],
    served: dict[str, int | None],
    timeout: float = 2.0,
) -> None:
    """Take the answers to ``asked`` off the socket into ``served`` (and out of ``asked``)."""
    deadline = time.monotonic() + timeout
    while asked:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            return
        try:
            response = dns.message.from_wire(sock.recv(65535))
        except dns.exception.DNSException:
            continue
        entry = asked.get(response.id)
        if entry is None or not entry[1].is_response(response):
            continue  # a late answer to an earlier window
        del asked[response.id]
        serials = [
            int(rrset[0].serial) for rrset in response.answer if rrset.rdtype == dns.rdatatype.SOA
        ]
        served[entry[0]] = serials[0] if serials else None


def answer(name: str, rtype: str, host: str, port: int) -> tuple[int, set[str]]:
    """The rcode and record texts a nameserver answers for ``name``/``rtype``."""
    query = dns.message.make_query(name, rtype)
    response = ask_udp(query, host, port)
    texts = {rdata.to_text() for rrset in response.answer for rdata in rrset}
    return response.rcode(), texts


def fake_calls(path: pathlib.Path) -> list[dict[str, Any]]:
    """The calls fake targets with ``record_file: path`` completed, in order."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fast_and_slow_pool(ns_record: str, record: pathlib.Path, slow_seconds: float) -> dict[str, Any]:
    """A pool of two fake targets recording their calls: one at once, one after a delay.

    Part-way through a job (the fast target done, the slow one working) is
    where resumption and fencing are tested.
    """
    return {
        "name": "default",
        "ns_records": [{"hostname": ns_record, "priority": 1}],
        "targets": [
            {"type": "fake", "description": "fast", "options": {"record_file": str(record)}},
            {
                "type": "fake",
                "description": "slow",
                "options": {"record_file": str(record), "delay": slow_seconds},
            },
        ],
    }


@contextlib.contextmanager
def api_alone(
    workdir: pathlib.Path, postgres: PostgresServer, database: str
) -> Iterator[Deployment]:
    """A ``zoneflow api`` on a PostgreSQL database of its own, with a pool of one fake
    target and no conductor: the jobs of what it accepts wait in the outbox, to be counted."""
    url = postgres.create_database(database)
    deployment = Deployment(workdir, database=url, zookeeper_hosts=None)
    deployment.load_pool(
        {
            "name": "default",
            "ns_records": [{"hostname": "ns1.race.example.", "priority": 1}],
            "targets": [{"type": "fake", "description": "fake1"}],
        }
    )
    deployment.start_api()
    try:
        yield deployment
    finally:
        deployment.close()
        postgres.drop_database(database)
