"""Integration-test fixtures: a fresh SQLite database and zake board per test, no servers."""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from taskflow import exceptions as tf_exc

from tests import support
from zoneflow import events, objects
from zoneflow.backends import impl_fake
from zoneflow.central import changes as central_changes
from zoneflow.central import pools
from zoneflow.conductor import daemon
from zoneflow.mdns import server as mdns_server
from zoneflow.storage import db
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import jobboard, persistence

FAKE_POOL = """
- name: default
  threshold_percentage: {threshold}
  ns_records: [{{hostname: ns1.example.org., priority: 1}}]
  targets:
{targets}
"""


# A pool whose servers learn of its zones from its catalog zone alone; TARGETS: its
# targets, as a YAML flow sequence's items.
CATALOG_POOL = """
- name: default
  ns_records: [{hostname: ns1.example.org., priority: 1}]
  targets: [TARGETS]
  catalog_zone: {catalog_zone_fqdn: catalog.example.org.}
  provisioning: catalog
"""


def fake_pool_yaml(*options: dict[str, object], threshold: int = 100) -> str:
    targets = "\n".join(
        f"    - {{type: fake, description: fake{i}, options: {dict(opts) or '{}'}}}"
        for i, opts in enumerate(options or ({},), start=1)
    )
    return FAKE_POOL.format(threshold=threshold, targets=targets)


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A SQLite file with zoneflow's and TaskFlow's tables, migrated once per worker.

    Each test gets a copy: migrating anew took 0.1 s of CPU and 0.3-0.7 s of
    wall time (SQLite syncs each migration to disk) in every test.
    """
    path = tmp_path_factory.mktemp("migrated") / "zoneflow.sqlite"
    with support.database(f"sqlite:///{path}"):
        persistence.reset()
        persistence.upgrade()
        persistence.reset()
    return path


@pytest.fixture(autouse=True)
def database(tmp_path: pathlib.Path, migrated_database: pathlib.Path) -> Iterator[str]:
    copy = tmp_path / "zoneflow.sqlite"
    url = f"sqlite:///{copy}"
    db.create_private_sqlite_file(url)  # 0600, as zoneflow makes its database
    # SQLite's backup: a whole copy whatever its journal holds (a copy of the file
    # alone would miss pages still in its write-ahead log).
    with (
        contextlib.closing(sqlite3.connect(migrated_database)) as source,
        contextlib.closing(sqlite3.connect(copy)) as target,
    ):
        source.backup(target)
    with support.database(url, migrated=True):
        persistence.reset()
        jobboard.reset_zake()
        impl_fake.FakeBackend.reset()
        yield url
        events.reset()
        persistence.reset()


@pytest.fixture
def fake_pool() -> None:
    """A default pool of two healthy fake targets."""
    support.store_pools(pools.parse(fake_pool_yaml({}, {})))


@pytest.fixture
def mdns() -> Iterator[mdns_server.MdnsServer]:
    """mdns on a free port of 127.0.0.1, answering from the test's database."""
    server = mdns_server.MdnsServer("127.0.0.1", 0)
    server.start_in_thread()
    yield server
    server.stop_thread()


@contextlib.contextmanager
def running_conductor(name: str = "unit-conductor") -> Iterator[daemon.Conductor]:
    """A conductor in this process on the zake board, woken by every change."""
    running = daemon.Conductor(name)
    assert running.relay is not None
    central_changes.on_change(running.relay.wake)
    running.start()
    try:
        yield running
    finally:
        running.stop()
        central_changes._listeners.clear()


@pytest.fixture
def conductor() -> Iterator[daemon.Conductor]:
    with running_conductor() as running:
        yield running


@pytest.fixture
def board() -> Iterator[Any]:
    """A board of the test's own, for posting jobs while no conductor runs."""
    connected = jobboard.connect(persistence.get_backend(), name="unit-test")
    yield connected
    jobboard.close(connected)


def load_pool(*targets: dict[str, object], threshold: int = 100) -> objects.Pool:
    """Replace the default pool with fake targets of these options."""
    (pool,) = support.store_pools(pools.parse(fake_pool_yaml(*targets, threshold=threshold)))
    return pool


def wait_settled(zone_id: str, timeout: float = 20) -> objects.Zone:
    """The zone once its job has decided its status (no longer PENDING)."""

    def settled() -> objects.Zone | None:
        zone = stored_zones.get_zone_any(zone_id)
        assert zone is not None
        return zone if zone.status != objects.Status.PENDING else None

    return support.eventually(settled, timeout, interval=0.02, what=f"zone {zone_id} to settle")


class BoardDown:
    """A board whose ZooKeeper went away while a job was being posted: its posts
    fail; everything else is the board's."""

    def __init__(self, board: Any) -> None:
        self._board = board

    def post(self, *args: Any, **kwargs: Any) -> None:
        raise tf_exc.JobFailure("Failed posting job: ConnectionLoss")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._board, name)
