"""The event stream on a real PostgreSQL: LISTEN/NOTIFY across connections and
processes, sent in the transaction of the change, so only a commit is heard."""

from __future__ import annotations

import json
import os
import pathlib
import select
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import psycopg2
import psycopg2.extensions
import pytest
import sqlalchemy as sa

from tests import support
from tests.integration.test_cli_behaves import ROOT, _zoneflow
from zoneflow import events, objects
from zoneflow.central import reads as central_reads
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.events import impl_postgres, served
from zoneflow.storage import db, models
from zoneflow.storage import events as stored

POOL = """
- name: default
  ns_records: [{hostname: ns1.example.org., priority: 1}]
  targets: [{type: fake, description: fake}]
"""


@pytest.fixture
def on_postgres(postgres_database: str, override: Any) -> Iterator[str]:
    # A driver another test of this process left running (on its own database, or
    # listening on channels this test asserts it does not) is not this test's.
    events.reset()
    override("events", driver="postgres")
    with support.database(postgres_database, pools_yaml=POOL) as url:
        yield url
        events.reset()


@pytest.fixture
def listener(on_postgres: str) -> Iterator[Any]:
    """A plain psycopg2 connection LISTENing on the events channel, zoneflow aside."""
    url = sa.engine.make_url(on_postgres)
    conn = psycopg2.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database
    )
    conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    with conn.cursor() as cursor:
        cursor.execute(f"LISTEN {stored.CHANNEL}")
    yield conn
    conn.close()


def _heard(conn: Any) -> list[dict[str, Any]]:
    """The notifications delivered to ``conn`` so far (taken)."""
    select.select([conn], [], [], 0)
    conn.poll()
    found = [json.loads(n.payload) for n in conn.notifies]
    conn.notifies.clear()
    return found


def test_a_change_is_heard_on_another_connection_only_once_committed(listener: Any) -> None:
    zone = central_zones.create_zone("example.com.", "h@example.com", project_id="alice")
    (created,) = support.eventually(lambda: _heard(listener), what="the create's NOTIFY")
    assert (created["topic"], created["key"], created["action"]) == ("zone", zone.id, "CREATE")
    assert created["project_id"] == "alice" and "value" not in created
    assert [e.id for e in stored.after(0, objects.EventFilter())] == [created["id"]]

    heard: list[dict[str, Any]] = []
    with db.writer() as session:
        session.execute(sa.update(models.Zone).values(ttl=600))
        stored.record(session, objects.EventTopic.ZONE, central_reads.get_zone(zone.id))
        # Written, not committed: another connection hears nothing yet.
        support.holds(lambda: not heard.extend(_heard(listener)) and not heard, 0.5, what="silence")
    (updated,) = support.eventually(lambda: _heard(listener), what="the update's NOTIFY")
    assert updated["id"] > created["id"]


def test_a_transaction_holds_back_other_publishers_only_while_it_commits(
    on_postgres: str,
) -> None:
    """Event ids follow commit order through a lock taken when the events are
    inserted, at commit: a transaction that wrote an event and goes on with its
    work (a status write, a create behind its placement lock) lets every other
    transaction publish meanwhile. Taken where the event was written, the load
    benchmark found the lock held for a second by a busy conductor's transaction,
    with every other writer waiting; here the other create would wait for good."""
    zone = central_zones.create_zone("example.com.", "h@example.com")
    with db.writer() as session:
        session.execute(sa.update(models.Zone).values(ttl=600))
        stored.record(session, objects.EventTopic.ZONE, central_reads.get_zone(zone.id))
        made: list[objects.Zone] = []
        other = threading.Thread(
            target=lambda: made.append(central_zones.create_zone("other.com.", "h@other.com"))
        )
        other.start()
        other.join(30)
        assert made, "another create waited for this transaction to end"
    keys = [e.key for e in stored.after(0, objects.EventFilter())]
    # Both published, each in its commit's order: the other create committed first.
    assert keys == [zone.id, made[0].id, zone.id]


def test_a_rolled_back_change_is_never_heard(listener: Any) -> None:
    zone = central_zones.create_zone("example.com.", "h@example.com")
    support.eventually(lambda: _heard(listener), what="the create's NOTIFY")
    with pytest.raises(RuntimeError), db.writer() as session:
        session.execute(sa.update(models.Zone).values(ttl=999))
        stored.record(session, objects.EventTopic.ZONE, central_reads.get_zone(zone.id))
        raise RuntimeError("the change fails after its event was written")
    marker = central_zones.create_zone("after.example.", "h@example.com")
    heard: list[dict[str, Any]] = []
    support.eventually(
        lambda: heard.extend(_heard(listener)) or heard, what="the next change's NOTIFY"
    )
    # PostgreSQL delivers in commit order: had the rollback sent anything, it came first.
    assert [n["key"] for n in heard] == [marker.id]
    assert central_reads.get_zone(zone.id).ttl == 3600
    assert [e.key for e in stored.after(0, objects.EventFilter())] == [zone.id, marker.id]


def test_the_postgres_driver_wakes_a_subscriber_for_another_processes_change(
    on_postgres: str, override: Any, tmp_path: pathlib.Path
) -> None:
    # The table is looked at only when a NOTIFY wakes the subscriber: a minute
    # between looks otherwise, longer than the wait below.
    override("events", poll_interval=120)
    driver = events.get_driver()
    assert isinstance(driver, impl_postgres.PostgresDriver)
    assert driver.listening(timeout=30)
    subscription = events.subscribe(objects.EventFilter(topics=frozenset({"zone"})))
    config = tmp_path / "zoneflow.conf"
    config.write_text(f"[database]\nconnection = {on_postgres}\n")
    made = _zoneflow(config, "zone", "create", "other.example.", "--email", "h@e.com")
    assert made.returncode == 0, made.stderr
    (event,) = subscription.next(timeout=60)
    assert event.value["name"] == "other.example." and event.action == "CREATE"


def test_a_process_listens_only_on_the_channels_it_uses(on_postgres: str, override: Any) -> None:
    """A conductor's polls hear the nameservers' word and no event; a subscriber hears
    the events from when it subscribes."""
    override("events", poll_interval=120)  # no look at the table but when woken
    driver = events.get_driver()
    assert isinstance(driver, impl_postgres.PostgresDriver)
    driver.hear(served.CHANNEL)
    assert driver.listening(timeout=30)
    central_zones.create_zone("unheard.example.", "h@example.com")
    served.announce("a-zone-id", 7, "192.0.2.1")
    support.eventually(lambda: driver.heard[served.CHANNEL] == 1, what="the nameserver's word")
    # Delivered in commit order: the event's NOTIFY would have come first.
    assert driver.heard[stored.CHANNEL] == 0

    subscription = events.subscribe(objects.EventFilter(topics=frozenset({"zone"})))
    assert driver.listening(timeout=30)
    zone = central_zones.create_zone("heard.example.", "h@example.com")
    (event,) = subscription.next(timeout=60)
    assert event.key == zone.id
    # The subscriber may have read the event before its NOTIFY reached the driver
    # (a subscription looks at the table first): the NOTIFY comes all the same.
    support.eventually(lambda: driver.heard[stored.CHANNEL] >= 1, what="the event's NOTIFY")


def _listening_backends() -> list[int]:
    """The backends whose session last ran a LISTEN: the event drivers' connections."""
    with db.connection() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN %'"
            )
        )
        return [int(pid) for (pid,) in rows]


def test_a_driver_whose_connection_drops_listens_again_and_misses_no_event(
    on_postgres: str, override: Any
) -> None:
    override("events", poll_interval=0.2)  # the pause before reconnecting
    driver = events.get_driver()
    assert isinstance(driver, impl_postgres.PostgresDriver)
    subscription = events.subscribe(objects.EventFilter(topics=frozenset({"zone"})))
    driver.hear(served.CHANNEL)
    assert driver.listening(timeout=30)
    (dropped,) = _listening_backends()

    with db.connection() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped}).scalar()
    missed = central_zones.create_zone("while-away.example.", "h@example.com")
    support.eventually(
        lambda: _listening_backends() not in ([], [dropped]) and driver.listening(0),
        what="the driver listening again on a new connection",
    )
    after = central_zones.create_zone("after.example.", "h@example.com")
    served.announce("a-zone-id", 7, "192.0.2.1")

    got: list[objects.Event] = []
    support.eventually(
        lambda: got.extend(subscription.next(timeout=1)) or len(got) >= 2,
        what=lambda: f"both zones' events (so far {[e.key for e in got]})",
    )
    assert [e.key for e in got] == [missed.id, after.id]
    support.eventually(lambda: driver.heard[served.CHANNEL] >= 1, what="the nameserver's word")


def test_zoneflow_events_follow_prints_changes_as_they_are_committed(
    on_postgres: str, tmp_path: pathlib.Path
) -> None:
    config = tmp_path / "zoneflow.conf"
    config.write_text(f"[database]\nconnection = {on_postgres}\n[events]\ndriver = postgres\n")
    start = stored.last_id()
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zoneflow.cli",
            "events",
            "--follow",
            "--json",
            "--after",
            str(start),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "ZONEFLOW_CONFIG": str(config)},
    )
    try:
        zone = central_zones.create_zone("followed.example.", "h@example.com")
        central_recordsets.create_recordset("followed.example.", "www", "A", ["192.0.2.1"])
        printed: list[str] = []
        reader = threading.Thread(target=lambda: printed.extend(follower.stdout or ()), daemon=True)
        reader.start()
        support.eventually(
            lambda: len(printed) >= 2 or follower.poll() is not None,
            what=lambda: f"two events printed (so far {printed})",
        )
        assert follower.poll() is None, follower.stderr and follower.stderr.read()
        lines = [json.loads(line) for line in printed[:2]]
    finally:
        follower.terminate()
        follower.wait(timeout=30)
    assert [(e["type"], e["action"], e["zone_id"]) for e in lines] == [
        ("zone", "CREATE", zone.id),
        ("recordset", "CREATE", zone.id),
    ]
