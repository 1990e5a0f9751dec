"""A busy database makes requests, heartbeats and jobs wait; only one away for good fails them.

The busy database is SQLite's write lock held by another connection, as a
long write of another process (a pool update's backfill, ``zoneflow db``)
holds it. It is held for 11 s: longer than the 10 s SQLite itself used to
wait before answering "database is locked", so each test fails where
zoneflow gave up at SQLite's first refusal.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import pathlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from oslo_config import cfg
from oslo_db import exception as db_exc
from sqlalchemy.orm import Session

from tests.integration.conftest import wait_settled
from tests.support import eventually
from zoneflow import exceptions, heartbeat, jobs, objects
from zoneflow.api import app, server
from zoneflow.backends.impl_fake import FakeBackend
from zoneflow.central import quotas as central_quotas
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.storage import catalogs as stored_catalogs
from zoneflow.storage import db, models, quotas, services, tsigkeys
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import persistence

LONGER_THAN_SQLITE_WAITED = 11.0


class LongWriter:
    """Another connection's write transaction on the database file, held for a while."""

    def __init__(self, database_url: str) -> None:
        self.path = database_url.removeprefix("sqlite:///")
        self.held = threading.Event()
        self.release = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, seconds: float) -> None:
        """Take the write lock now; give it back after ``seconds`` or release()."""
        self._thread = threading.Thread(target=self._hold, args=(seconds,), daemon=True)
        self._thread.start()
        assert self.held.wait(30), "the long writer did not get the write lock"

    def _hold(self, seconds: float) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            connection.execute("BEGIN IMMEDIATE")
            self.held.set()
            # The length of the other writer's transaction is the scenario itself,
            # not a wait for something to happen.
            self.release.wait(seconds)
            connection.execute("COMMIT")
        finally:
            connection.close()

    def join(self) -> None:
        self.release.set()
        assert self._thread is not None
        self._thread.join(timeout=60)


@pytest.fixture
def long_writer(database: str) -> Iterator[LongWriter]:
    writer = LongWriter(database)
    yield writer
    if writer._thread is not None:
        writer.join()


@pytest.fixture
def api_url(fake_pool: None) -> Iterator[str]:
    cfg.CONF.set_override("access_log", False, group="api")
    api = server.ApiServer(host="127.0.0.1", port=0)
    api.start()
    yield api.url
    api.stop()
    cfg.CONF.clear_override("access_log", group="api")


def _create_zones(port: int, names: list[str], connections: int) -> list[tuple[int, str]]:
    """POST each zone, from ``connections`` keep-alive connections at once; (status, body)."""
    local = threading.local()

    def create(index: int) -> tuple[int, str]:
        if not hasattr(local, "http"):
            local.http = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        body = json.dumps({"name": names[index], "email": "hostmaster@example.com"})
        # Ten zones a project: the default zone quota.
        headers = {"Content-Type": "application/json", "X-Auth-Project-ID": f"p{index % 50}"}
        local.http.request("POST", "/v2/zones", body=body, headers=headers)
        answer = local.http.getresponse()
        return answer.status, answer.read().decode()

    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        return list(pool.map(create, range(len(names))))


def _services(service_name: str) -> list[tuple[str, str]]:
    """(hostname, status) of each row of ``service_name`` in service_statuses."""
    with db.reader() as session:
        query = sa.select(models.ServiceStatus.hostname, models.ServiceStatus.status)
        rows = session.execute(query.where(models.ServiceStatus.service_name == service_name))
        return [(hostname, status) for hostname, status in rows]


def _zone_names() -> set[str]:
    with db.reader() as session:
        return set(session.scalars(sa.select(models.Zone.name)))


def test_500_zone_creates_from_50_connections_wait_for_a_busy_database(
    api_url: str, long_writer: LongWriter, override: Callable[..., None]
) -> None:
    names = [f"z{i}.busy.example." for i in range(500)]
    # Every create waits for the lock from the start, and after it 500 write in
    # turn: on a machine busy with other tests the last may begin past the default
    # busy_wait (30 s). What is tested is the wait past SQLite's own, not its length.
    override("database", busy_wait=120)
    long_writer.hold(LONGER_THAN_SQLITE_WAITED)
    answers = _create_zones(int(api_url.rsplit(":", 1)[1]), names, connections=50)
    long_writer.join()

    refused = [(status, text) for status, text in answers if status != 202]
    assert not refused, f"{len(refused)} of 500 creates refused, e.g. {refused[0]}"
    assert _zone_names() == set(names)


def test_a_heartbeat_and_a_running_job_wait_for_a_busy_database(
    conductor: Any, fake_pool: None, long_writer: LongWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The write lock is taken while the job runs (from its target's call on), so
    # everything the job still writes (its status, its record) meets it.
    create_on_target = FakeBackend.create_zone

    def create_then_busy(self: FakeBackend, zone: objects.Zone) -> None:
        create_on_target(self, zone)
        if not long_writer.held.is_set():
            long_writer.hold(LONGER_THAN_SQLITE_WAITED)

    monkeypatch.setattr(FakeBackend, "create_zone", create_then_busy)
    zone = central_zones.create_zone("busy.example", "hostmaster@example.com")
    assert long_writer.held.wait(30), "the job never reached its target"
    beat = heartbeat.Heartbeat(heartbeat.CONDUCTOR, hostname="busy-conductor")
    beating = threading.Thread(target=beat.beat)
    beating.start()

    assert wait_settled(zone.id, timeout=60).status == objects.Status.ACTIVE
    beating.join(timeout=60)
    assert ("busy-conductor", objects.ServiceState.UP) in _services(heartbeat.CONDUCTOR)
    job = eventually(
        lambda: (job := jobs.list_jobs(persistence.get_backend())[0]).state == "SUCCESS" and job,
        30,
        what=lambda: f"the job to succeed: {jobs.list_jobs(persistence.get_backend())[0]}",
    )
    assert job.attempts == 1, "the job was handed back while the database was busy"


@pytest.fixture
def client(fake_pool: None) -> Iterator[TestClient]:
    with TestClient(app.create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def test_a_database_busy_past_busy_wait_answers_503_with_retry_after(
    client: TestClient, long_writer: LongWriter
) -> None:
    cfg.CONF.set_override("busy_wait", 0.5, group="database")
    try:
        long_writer.hold(60)
        answer = client.post(
            "/v2/zones", json={"name": "late.example.", "email": "hostmaster@example.com"}
        )
        long_writer.join()
    finally:
        cfg.CONF.clear_override("busy_wait", group="database")

    assert answer.status_code == 503, answer.text
    assert answer.json()["type"] == "database_unavailable"
    assert "busy_wait" in answer.json()["message"]
    assert int(answer.headers["Retry-After"]) > 0
    assert "late.example." not in _zone_names()


def test_an_unreachable_database_answers_503_with_retry_after(
    client: TestClient, tmp_path: pathlib.Path
) -> None:
    db.configure(f"sqlite:///{tmp_path}/no/such/dir/zoneflow.sqlite")

    answer = client.get("/v2/zones")

    assert answer.status_code == 503, answer.text
    assert answer.json()["type"] == "database_unavailable"
    assert int(answer.headers["Retry-After"]) > 0


def _deadlocking_once(work: Callable[[Any], None]) -> Callable[[], None]:
    """A write transaction that PostgreSQL picks as a deadlock's victim the first time."""
    calls = {"n": 0}

    def write() -> None:
        calls["n"] += 1
        with db.writer() as session:
            work(session)
            if calls["n"] == 1:
                raise db_exc.DBDeadlock(Exception("deadlock detected"))

    return write


def test_a_transaction_that_lost_a_deadlock_runs_again_whole() -> None:
    def note(session: Any) -> None:
        session.add(
            models.ServiceStatus(service_name="retried", hostname=f"h{time.time_ns()}", status="UP")
        )

    db.retried(_deadlocking_once(note))()

    assert len(_services("retried")) == 1, (
        "the first run's write was not rolled back, or the second not made"
    )


def test_a_deadlock_is_a_503_where_the_transaction_is_not_retried() -> None:
    """It says what happened, once: not that the database stayed busy for busy_wait."""
    with pytest.raises(exceptions.DatabaseUnavailable) as raised:
        _deadlocking_once(lambda session: None)()
    message = str(raised.value)
    assert "rolled this transaction back (a deadlock with another transaction)" in message
    assert "busy_wait" not in message


def test_a_transaction_that_loses_until_busy_wait_says_how_long_it_tried(override: Any) -> None:
    override("database", busy_wait=0.3)
    tries: list[float] = []

    def always_the_victim() -> None:
        tries.append(time.monotonic())
        with db.writer():
            raise db_exc.DBDeadlock(Exception("deadlock detected"))

    with pytest.raises(exceptions.DatabaseBusy) as raised:
        db.retried(always_the_victim)()
    assert "stayed busy with other transactions for 0.3s ([database] busy_wait)" in str(
        raised.value
    )
    assert len(tries) > 1, "it was tried again"


def test_a_zone_create_that_lost_a_deadlock_is_made_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL picks the create as a deadlock's victim after its zone row is written.
    catalog_changed = stored_catalogs.catalog_changed
    victims: list[str] = []

    def deadlock_once(session: Any, pool_id: str, *args: Any, **kwargs: Any) -> None:
        catalog_changed(session, pool_id, *args, **kwargs)
        if not victims:
            victims.append(pool_id)
            raise db_exc.DBDeadlock(Exception("deadlock detected"))

    monkeypatch.setattr(stored_catalogs, "catalog_changed", deadlock_once)

    answer = client.post(
        "/v2/zones", json={"name": "victim.example.", "email": "hostmaster@example.com"}
    )

    assert answer.status_code == 202, answer.text
    assert victims, "the deadlock was not met"
    with db.reader() as session:
        zones = session.scalars(sa.select(models.Zone).where(models.Zone.name == "victim.example."))
        assert [zone.id for zone in zones] == [answer.json()["id"]]


class DeadlockOnce:
    """Once armed, the next write transaction to commit is picked as a deadlock's victim
    (PostgreSQL rolls it back and says so); the ones after it commit."""

    def __init__(self) -> None:
        self.armed = False
        self.victims = 0

    def before_commit(self, session: Session) -> None:
        if self.armed and getattr(db._writing, "active", False):
            self.armed = False
            self.victims += 1
            raise db_exc.DBDeadlock(Exception("deadlock detected"))


@pytest.fixture
def deadlock_once() -> Iterator[DeadlockOnce]:
    deadlock = DeadlockOnce()
    sa.event.listen(Session, "before_commit", deadlock.before_commit)
    yield deadlock
    sa.event.remove(Session, "before_commit", deadlock.before_commit)


def _tsigkey() -> Callable[[], object]:
    pool_id = stored_pools.get_pool("default").id
    values = {"algorithm": "hmac-sha256", "secret": "c2VjcmV0", "scope": "POOL"}
    return lambda: tsigkeys.create_tsigkey({"name": "k", "resource_id": pool_id, **values})


def _recordset() -> Callable[[], object]:
    zone = central_zones.create_zone("rs.example.", "hostmaster@rs.example")
    return lambda: central_recordsets.create_recordset(zone.id, "www", "A", ["192.0.2.1"])


def _recordset_names() -> list[str]:
    (zone,) = stored_reads.list_zones()
    return [recordset.name for recordset in stored_reads.list_recordsets(zone.id)]


@pytest.mark.parametrize(
    ("prepare", "made"),
    [
        (_tsigkey, lambda: [key.name for key in tsigkeys.list_tsigkeys()] == ["k"]),
        (
            lambda: lambda: quotas.set_quotas("alice", {"zones": 5}),
            lambda: quotas.project_quotas("alice")["zones"] == 5,
        ),
        (
            lambda: (
                lambda: services.heartbeat(
                    heartbeat.API, "victim", status="UP", capabilities={}, stats={}
                )
            ),
            lambda: _services(heartbeat.API) == [("victim", "UP")],
        ),
        (_recordset, lambda: _recordset_names().count("www.rs.example.") == 1),
    ],
    ids=["tsigkey", "quota", "heartbeat", "recordset"],
)
def test_a_write_that_lost_a_deadlock_is_made_once(
    fake_pool: None,
    deadlock_once: DeadlockOnce,
    prepare: Callable[[], Callable[[], object]],
    made: Callable[[], bool],
) -> None:
    change = prepare()
    deadlock_once.armed = True

    change()

    assert deadlock_once.victims == 1, "the deadlock was not met"
    assert made()


@pytest.mark.usefixtures("fake_pool")
def test_a_zone_create_that_lost_a_deadlock_checks_the_quota_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The unit of work runs again whole, central's checks with it: a zone created
    between the two tries takes the project's last zone, and the retry is refused."""
    central_quotas.set_quotas("alice", {"zones": 1})
    catalog_changed = stored_catalogs.catalog_changed
    insert_zone = stored_zones.insert_zone
    main = threading.current_thread()
    tries: list[str] = []

    def deadlock_once(session: Any, pool_id: str, *args: Any, **kwargs: Any) -> None:
        catalog_changed(session, pool_id, *args, **kwargs)
        if threading.current_thread() is main and not tries:
            tries.append("deadlock")
            raise db_exc.DBDeadlock(Exception("deadlock detected"))

    def another_create_between_the_tries(unit: Any, values: Any, *, job: Any) -> Any:
        # The insert is the unit's first statement: SQLite's unit holds no lock yet,
        # and the other create commits before this try writes and counts.
        if threading.current_thread() is main and tries == ["deadlock"]:
            tries.append("other")
            other = threading.Thread(
                target=central_zones.create_zone,
                args=("other.example.", "hostmaster@example.com"),
                kwargs={"project_id": "alice"},
            )
            other.start()
            other.join(30)
        return insert_zone(unit, values, job=job)

    monkeypatch.setattr(stored_catalogs, "catalog_changed", deadlock_once)
    monkeypatch.setattr(stored_zones, "insert_zone", another_create_between_the_tries)

    with pytest.raises(exceptions.OverQuota):
        central_zones.create_zone("victim.example.", "hostmaster@example.com", project_id="alice")

    assert tries == ["deadlock", "other"]
    assert _zone_names() == {"other.example."}
