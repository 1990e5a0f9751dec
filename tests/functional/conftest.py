"""Real servers for functional tests, each on 127.0.0.1 with its own dir and ports.

ZooKeeper (a JVM) and PostgreSQL are started once per session; a test that
stops or kills one of them gets it back after the test. BIND9 and NSD start
in a tenth of a second, so every test gets fresh ones from ``bind9_factory``
and ``nsd_factory``.

A missing server program fails the test, it never skips it: a functional test
that did not run must not look like one that passed.
"""

from __future__ import annotations

import pathlib
import signal
import uuid
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Protocol, TypeVar

import pytest

from tests import support
from tests.functional.deployment import SYNCED_DATABASES, Deployment
from tests.functional.fixtures.bind9 import RECOMMENDED_OPTIONS, Bind9Server
from tests.functional.fixtures.knot import KnotServer
from tests.functional.fixtures.nsd import NSDServer
from tests.functional.fixtures.pdns import PowerDNSServer
from tests.functional.fixtures.postgres import PostgresServer
from tests.functional.fixtures.process import ServerError, ServerProcess
from tests.functional.fixtures.zookeeper import ZooKeeperServer
from zoneflow import objects
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.mdns import server as mdns_server
from zoneflow.storage import reads as stored_reads

S = TypeVar("S", bound=ServerProcess)


class Bind9Factory(Protocol):
    def __call__(
        self,
        count: int = 1,
        *,
        options: Sequence[str] = RECOMMENDED_OPTIONS,
        also_notify: Sequence[Sequence[tuple[str, int]]] = (),
    ) -> list[Bind9Server]: ...


class NSDFactory(Protocol):
    def __call__(self, masters: list[tuple[str, int]]) -> NSDServer: ...


_session_servers: list[ServerProcess] = []


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # CI runners stop a job with SIGTERM, which by default ends Python without
    # running fixture teardown or atexit hooks; as an interrupt both run and
    # the servers go away with the run.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def start_server(make: Callable[[], S]) -> S:
    """Build and start a server, turning "cannot" into a test failure."""
    try:
        server = make()
    except ServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        server.start()
    except ServerError as exc:
        server.close()
        pytest.fail(str(exc), pytrace=False)
    return server


@pytest.fixture(scope="session")
def zookeeper() -> Iterator[ZooKeeperServer]:
    server = start_server(ZooKeeperServer)
    _session_servers.append(server)
    yield server
    _session_servers.remove(server)
    server.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = start_server(PostgresServer)
    _session_servers.append(server)
    yield server
    _session_servers.remove(server)
    server.close()


@pytest.fixture(autouse=True)
def _revive_session_servers() -> Iterator[None]:
    yield
    for server in _session_servers:
        if not server.running:
            server.start()


SYNCED_TEMPLATE = "zoneflow_synced"


@pytest.fixture(scope="session")
def _synced_template(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database migrated once per worker by ``zoneflow db sync``, for postgres_database
    to copy: CREATE DATABASE ... TEMPLATE takes milliseconds, a ``db sync`` process a
    second of CPU."""
    url = postgres.create_database(SYNCED_TEMPLATE)
    template = Deployment(tmp_path_factory.mktemp("synced"), database=url, zookeeper_hosts=None)
    template.cli("db", "sync")
    return SYNCED_TEMPLATE


@pytest.fixture
def postgres_database(postgres: PostgresServer, _synced_template: str) -> Iterator[str]:
    """SQLAlchemy URL of a new database that ``zoneflow db sync`` has migrated and that
    holds nothing else, dropped after the test."""
    name = f"zoneflow_{uuid.uuid4().hex[:12]}"
    url = postgres.create_database(name, template=_synced_template)
    SYNCED_DATABASES.add(url)
    yield url
    SYNCED_DATABASES.discard(url)
    if postgres.running:
        postgres.drop_database(name)


@pytest.fixture
def bind9_factory() -> Iterator[Bind9Factory]:
    """``bind9_factory(n)`` starts ``n`` fresh BIND9 servers for this test, configured
    as doc/backends.md recommends (``options=()``: as BIND9 ships); the i-th NOTIFYs
    the listeners ``also_notify[i]``, if given, of every serial it loads."""
    servers: list[Bind9Server] = []

    def start(
        count: int = 1,
        *,
        options: Sequence[str] = RECOMMENDED_OPTIONS,
        also_notify: Sequence[Sequence[tuple[str, int]]] = (),
    ) -> list[Bind9Server]:
        started = []
        for i in range(count):
            listeners = also_notify[i] if i < len(also_notify) else ()
            server = start_server(
                lambda listeners=listeners: Bind9Server(options=options, also_notify=listeners)
            )
            servers.append(server)
            started.append(server)
        return started

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def bind9(bind9_factory: Bind9Factory) -> Bind9Server:
    """One fresh BIND9 server for this test."""
    return bind9_factory(1)[0]


@pytest.fixture
def nsd_factory() -> Iterator[NSDFactory]:
    """``nsd_factory(masters)`` starts a fresh NSD transferring from ``masters``."""
    servers: list[NSDServer] = []

    def start(masters: list[tuple[str, int]]) -> NSDServer:
        server = start_server(lambda: NSDServer(masters=masters))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def pdns() -> Iterator[PowerDNSServer]:
    """One fresh PowerDNS server (SQLite database, HTTP API) for this test."""
    server = start_server(PowerDNSServer)
    yield server
    server.close()


@pytest.fixture
def knot() -> Iterator[KnotServer]:
    """One fresh Knot DNS server for this test."""
    server = start_server(KnotServer)
    yield server
    server.close()


@pytest.fixture
def deployment(
    request: pytest.FixtureRequest,
    tmp_path: pathlib.Path,
    postgres_database: str,
    zookeeper: ZooKeeperServer,
) -> Iterator[Deployment]:
    """zoneflow on PostgreSQL and ZooKeeper; the test loads a pool and starts daemons.

    Its processes are forked from the fork server; a module whose ``FRESH_INTERPRETERS``
    is true starts each as ``python -m zoneflow.cli``, as a user's shell does."""
    deployment = Deployment(
        tmp_path,
        database=postgres_database,
        zookeeper_hosts=zookeeper.hosts,
        fresh_interpreters=getattr(request.module, "FRESH_INTERPRETERS", False),
    )
    yield deployment
    deployment.close()


# --- mdns in the test's process, on SQLite, holding one example zone --------------

MDNS_ZONE = "example.com."
MDNS_POOL = """
- name: default
  ns_records: [{hostname: ns1.example.org., priority: 1}]
  targets:
    - {type: fake, description: fake1}
"""
MDNS_RECORDS = [
    ("www", "A", ["192.0.2.1", "192.0.2.2"]),
    ("www", "AAAA", ["2001:db8::1"]),
    ("@", "MX", ["10 mail.example.com."]),
    ("@", "TXT", ['"v=spf1 mx -all"']),
    ("mail", "A", ["192.0.2.25"]),
    ("alias", "CNAME", ["www.example.com."]),
]


@pytest.fixture
def sqlite_database(tmp_path: pathlib.Path) -> Iterator[str]:
    """A fresh SQLite zoneflow database with MDNS_POOL, set as this process's."""
    with support.database(f"sqlite:///{tmp_path}/zoneflow.sqlite", pools_yaml=MDNS_POOL) as url:
        yield url


@pytest.fixture
def mdns(sqlite_database: str) -> Iterator[mdns_server.MdnsServer]:
    """mdns on a free port of 127.0.0.1, answering from ``sqlite_database``."""
    server = mdns_server.MdnsServer("127.0.0.1", 0)
    server.start_in_thread()
    yield server
    server.stop_thread()


@pytest.fixture
def zone(sqlite_database: str) -> objects.Zone:
    """MDNS_ZONE with MDNS_RECORDS, created through central."""
    central_zones.create_zone(MDNS_ZONE, "hostmaster@example.com")
    for name, rtype, records in MDNS_RECORDS:
        central_recordsets.create_recordset(MDNS_ZONE, name, rtype, records)
    return stored_reads.get_zone(MDNS_ZONE)
