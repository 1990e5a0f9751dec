"""Storage on a real PostgreSQL: concurrent changes never lose an update or share a serial."""

from __future__ import annotations

import concurrent.futures
import pathlib
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
import sqlalchemy as sa
from taskflow.persistence import models as tf_models

from tests import support
from tests.functional.conftest import start_server
from tests.functional.fixtures.postgres import PostgresServer
from zoneflow import exceptions, objects
from zoneflow.central import pools
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.flows.begin import BeginZoneAction
from zoneflow.storage import catalogs as stored_catalogs
from zoneflow.storage import db, migration, models
from zoneflow.storage import history as stored_history
from zoneflow.storage import outbox as stored_outbox
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import status as stored_status
from zoneflow.storage import transfers as stored_transfers
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import persistence
from zoneflow.taskflow_adapter import writer as logbook_writer

POOL = """
- name: default
  ns_records: [{hostname: ns1.example.org., priority: 1}]
  targets: [{type: fake, description: fake}]
"""


@pytest.fixture
def on_postgres(postgres_database: str) -> Iterator[str]:
    with support.database(postgres_database, pools_yaml=POOL) as url:
        yield url


def test_concurrent_changes_to_one_zone_on_postgresql(on_postgres: str) -> None:
    zone = central_zones.create_zone("example.com", "hostmaster@example.com")

    def change(i: int) -> int:
        if i % 5 == 0:
            return central_zones.update_zone("example.com", ttl=300 + i).serial
        return central_recordsets.create_recordset(
            "example.com", f"h{i}", "A", [f"192.0.2.{i}"]
        ).serial

    with concurrent.futures.ThreadPoolExecutor(16) as workers:
        serials = list(workers.map(change, range(1, 81)))

    assert len(set(serials)) == 80, "no two changes share a serial"
    assert min(serials) > zone.serial
    assert stored_reads.get_zone(zone.id).serial == max(serials)
    assert len(stored_reads.list_recordsets(zone.id)) == 64, "no change was lost"
    # Nothing runs the zone's create: every change rode on it (zoneflow.storage.outbox).
    jobs = stored_outbox.claim_pending_jobs(limit=1000)
    assert [(j.kind, j.serial) for j in jobs] == [("create-zone", max(serials))]


def _waits_on_a_lock() -> bool:
    """Whether some session of this database waits for a row lock."""
    with db.connection() as conn:
        return bool(
            conn.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        )


def test_rows_naming_a_zone_are_written_while_a_change_holds_the_zone_on_postgresql(
    on_postgres: str,
) -> None:
    """A change holds its zone's row locked until it commits. mdns recording the
    transfers it served and a job writing its targets' statuses name the zone in
    rows of their own: they go on meanwhile (their foreign keys' locks do not wait
    for it), while a second change to the zone waits its turn."""
    zone = central_zones.create_zone("example.com", "hostmaster@example.com")
    (target,) = stored_pools.get_pool(zone.pool_id).targets
    held, release = threading.Event(), threading.Event()

    def change_and_hold() -> None:
        with db.unit_of_work() as unit:
            stored_zones.begin_change(unit, zone.id)
            held.set()
            release.wait(60)

    seen = objects.ZoneTransfer(
        source="127.0.0.9",
        serial=zone.serial,
        kind="AXFR",
        first_at=models.utcnow(),
        last_at=models.utcnow(),
        count=1,
        completed=True,
    )
    with concurrent.futures.ThreadPoolExecutor(3) as workers:
        holder = workers.submit(change_and_hold)
        try:
            assert held.wait(60)
            recorded = workers.submit(stored_transfers.record_transfers, [(zone.id, seen)])
            statuses = workers.submit(_write_target_status, zone.id, target.id, zone.serial)
            recorded.result(30)
            statuses.result(30)
            second = workers.submit(
                central_recordsets.create_recordset, zone.id, "www", "A", ["192.0.2.1"]
            )
            support.eventually(_waits_on_a_lock, 60, what="the second change to wait")
            assert not second.done()
        finally:
            release.set()
        holder.result(60)
        assert second.result(60).serial > zone.serial
    assert [t.source for t in stored_transfers.list_transfers(zone.id)] == ["127.0.0.9"]


def _write_target_status(zone_id: str, target_id: str, serial: int) -> None:
    with db.writer() as session:
        stored_status.write_target_statuses(
            session, zone_id, [(target_id, serial, objects.Status.ACTIVE, None)]
        )


def test_an_update_committing_while_its_job_begins_is_carried_by_it_on_postgresql(
    on_postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The update has raised the serial of the zone's waiting create, not committed,
    when the job begins: the begin waits for its commit and carries its serial."""
    zone = central_zones.create_zone("example.com", "hostmaster@example.com")
    (target,) = stored_pools.get_pool(zone.pool_id).targets
    rode, commit = threading.Event(), threading.Event()
    ride = stored_outbox._ride

    def ride_and_hold(session: Any, zone_id: str, serial: int) -> bool:
        ridden = ride(session, zone_id, serial)
        rode.set()
        commit.wait(60)
        return ridden

    monkeypatch.setattr(stored_outbox, "_ride", ride_and_hold)
    begin = BeginZoneAction([target.id], ridden=True)
    with concurrent.futures.ThreadPoolExecutor(2) as workers:
        change = workers.submit(
            central_recordsets.create_recordset, zone.id, "www", "A", ["192.0.2.1"]
        )
        assert rode.wait(60), "the update never reached the outbox"
        begun = workers.submit(begin.execute, zone_id=zone.id, serial=zone.serial)
        support.eventually(_waits_on_a_lock, 60, what="the begin to wait for the update")
        assert not begun.done()
        commit.set()
        assert begun.result(60) == ("example.com.", change.result(60).serial)
    assert support.count_pending_jobs() == 0, "the update wrote no job: the begun one carries it"


def test_an_update_committing_after_its_job_began_has_its_own_job_on_postgresql(
    on_postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The begin has taken the zone's waiting create out of the outbox, not committed,
    when an update comes: the update waits for it, finds no job to ride and writes one."""
    zone = central_zones.create_zone("example.com", "hostmaster@example.com")
    taken, commit = threading.Event(), threading.Event()

    def begin_and_hold(zone_id: str) -> None:
        with db.transaction() as conn:
            conn.execute(stored_outbox._BEGIN, {"b_zone_ids": [zone_id]})
            taken.set()
            commit.wait(60)

    with concurrent.futures.ThreadPoolExecutor(2) as workers:
        begun = workers.submit(begin_and_hold, zone.id)
        assert taken.wait(60)
        change = workers.submit(
            central_recordsets.create_recordset, zone.id, "www", "A", ["192.0.2.1"]
        )
        support.eventually(_waits_on_a_lock, 60, what="the update to wait for the begin")
        commit.set()
        begun.result(60)
        serial = change.result(60).serial
    jobs = stored_outbox.claim_pending_jobs()
    assert [(j.kind, j.serial) for j in jobs] == [("update-zone", serial)]


def test_migrations_are_idempotent_on_postgresql(on_postgres: str) -> None:
    migration.upgrade()
    assert [p.name for p in stored_pools.list_pools()] == ["default"]


def test_concurrent_changes_leave_an_unbroken_history_on_postgresql(on_postgres: str) -> None:
    zone = central_zones.create_zone("example.com", "hostmaster@example.com")

    def change(i: int) -> int:
        return central_recordsets.create_recordset(
            "example.com", f"h{i}", "A", [f"192.0.2.{i}"]
        ).serial

    with concurrent.futures.ThreadPoolExecutor(16) as workers:
        list(workers.map(change, range(1, 41)))

    # Each change names the serial it started from: the chain from the
    # zone's first serial to its newest has no gap and no fork, so an IXFR
    # from any of them is exact.
    changes = stored_history.zone_changes_since(zone.id, zone.serial)
    assert changes is not None and len(changes) == 40
    assert changes[-1].serial == stored_reads.get_zone(zone.id).serial
    added = {record for change in changes for record in change.added}
    assert added == {(f"h{i}.example.com.", 3600, "A", f"192.0.2.{i}") for i in range(1, 41)}


def test_a_transfer_reads_one_serial_while_changes_land_on_postgresql(on_postgres: str) -> None:
    central_zones.create_zone("example.com", "hostmaster@example.com")
    for i in range(1, 51):
        central_recordsets.create_recordset("example.com", f"h{i}", "A", [f"192.0.2.{i}"])
    zone = stored_reads.get_zone("example.com")

    with stored_transfers.zone_for_transfer(zone.id) as (read, rows):
        first = [next(rows) for _ in range(10)]
        # Changes committed in the middle of a transfer are not part of it.
        central_recordsets.create_recordset("example.com", "late", "A", ["198.51.100.1"])
        www = stored_reads.get_recordset(zone.id, "h1.example.com.", "A")
        central_recordsets.delete_recordset("example.com", www.id)
        rest = list(rows)

    assert read.serial == zone.serial
    owners = [row[0] for row in first + rest]
    assert len(owners) == 50
    assert "h1.example.com." in owners and "late.example.com." not in owners
    assert stored_reads.get_zone(zone.id).serial == zone.serial + 2


def test_a_catalog_transfer_reads_one_serial_while_zones_join_on_postgresql(
    on_postgres: str,
) -> None:
    [pool] = support.store_pools(
        pools.parse(POOL + "  catalog_zone: {catalog_zone_fqdn: catalog.example.org.}\n")
    )
    names = support.bulk_zones(2500, pool_id=pool.id)
    before = stored_catalogs.get_catalog(pool.id)
    assert before is not None

    with stored_catalogs.catalog_for_transfer(pool.id) as (read, members):
        first = [next(members) for _ in range(10)]
        # Zones that join or leave in the middle of a transfer are not part of it.
        central_zones.create_zone("late.example.", "hostmaster@example.org")
        central_zones.delete_zone(first[0][1])
        rest = list(members)

    assert read == before
    assert sorted(name for _, name in first + rest) == sorted(names)
    after = stored_catalogs.get_catalog(pool.id)
    assert after is not None and after.serial == before.serial + 2


def test_zones_joining_a_catalog_at_once_leave_an_unbroken_history_on_postgresql(
    on_postgres: str,
) -> None:
    [pool] = support.store_pools(
        pools.parse(POOL + "  catalog_zone: {catalog_zone_fqdn: catalog.example.org.}\n")
    )
    first = central_zones.create_zone("first.example.", "hostmaster@example.org")
    start = stored_catalogs.get_catalog(pool.id)
    assert start is not None
    names = [f"z{i}.example." for i in range(30)]

    with concurrent.futures.ThreadPoolExecutor(16) as workers:
        list(workers.map(lambda n: central_zones.create_zone(n, "hostmaster@example.org"), names))
        central_zones.delete_zone(first.id)

    # Each zone that joined or left took a serial of its own, and each serial has
    # its change: the difference from the start is exact.
    difference = stored_catalogs.catalog_changes_since(pool.id, start.serial)
    assert difference is not None
    assert difference.catalog.serial == start.serial + 31
    assert sorted(name for _, name in difference.joined) == sorted(names)
    assert difference.left == [(first.id, "first.example.")]
    with stored_catalogs.catalog_for_transfer(pool.id) as (_, members):
        assert sorted(name for _, name in members) == sorted(names)


def test_pooled_connections_survive_a_postgresql_restart(
    on_postgres: str, postgres: PostgresServer
) -> None:
    # Several pooled connections, all idle when the server goes away.
    with concurrent.futures.ThreadPoolExecutor(4) as workers:
        list(
            workers.map(
                lambda i: central_zones.create_zone(f"z{i}.example", "h@example.com"), range(4)
            )
        )
    postgres.restart()
    # Each stale connection is tested on checkout and replaced: no caller
    # sees an error, and nothing is lost.
    with concurrent.futures.ThreadPoolExecutor(4) as workers:
        names = list(workers.map(lambda i: stored_reads.get_zone(f"z{i}.example").name, range(4)))
    assert names == [f"z{i}.example." for i in range(4)]
    central_recordsets.create_recordset("z0.example", "www", "A", ["192.0.2.1"])


def test_pages_and_wildcard_filters_on_postgresql(on_postgres: str) -> None:
    """Pages over a nullable sort key hold every item once, NULLs first ascending and
    last descending (as on SQLite); wildcards ignore case, _ and % are literal."""
    zone = central_zones.create_zone("example.com", "hostmaster@example.com")
    ttls = [None, 300, None, 60, 300, None, 60]
    for i, ttl in enumerate(ttls):
        central_recordsets.create_recordset("example.com", f"H{i}", "A", [f"192.0.2.{i}"], ttl=ttl)
    for direction in (objects.ASC, objects.DESC):
        shown: list[int | None] = []
        marker = None
        while True:
            page = central_recordsets.find_recordsets(
                zone.id, {}, objects.Paging(2, marker, "ttl", direction)
            )[1]
            shown += [rs.ttl for rs in page.items]
            assert page.total_count == 7 + 2  # and the zone's SOA and NS, whose TTL is null
            if not page.more:
                break
            marker = page.items[-1].id
        nulls_first = [None] * 5 + [60, 60, 300, 300]
        assert shown == (nulls_first if direction == objects.ASC else nulls_first[::-1])

    def names(**criteria: str) -> list[str]:
        page = central_recordsets.find_recordsets(zone.id, criteria, objects.Paging(100))[1]
        return sorted(rs.name for rs in page.items)

    assert names(type="SOA") == ["example.com."]
    assert names(data="ns1.*") == ["example.com."]  # the NS set, by the pool's hostname
    assert names(name="H1.*") == ["h1.example.com."]
    assert names(name="h_.*") == []
    assert names(data="192.0.2.*", ttl="60") == ["h3.example.com.", "h6.example.com."]


def test_wildcard_data_with_a_literal_prefix_is_answered_from_its_index(on_postgres: str) -> None:
    """data=<prefix>* finds what ILIKE finds (case ignored, _ and % literal, records
    longer than the index holds), and PostgreSQL can answer it by a range over
    ix_records_data_prefix; a pattern that starts with * cannot, and still works."""
    zone = central_zones.create_zone("example.com", "hostmaster@example.com", project_id="p")
    # Past a btree entry's limit: the index holds its first 200 characters only.
    long_text = " ".join(f'"{"k" * 250}"' for _ in range(12))
    for name, rtype, records in (
        ("a", "A", ["192.0.2.1", "192.0.2.20"]),
        ("b", "A", ["198.51.100.2"]),
        ("t", "TXT", ['"V=Spf1 mx -all"']),
        ("u", "TXT", ['"v_x%y"']),
        ("long", "TXT", [f'{long_text} "tail"']),
    ):
        central_recordsets.create_recordset(zone.id, name, rtype, records, project_id="p")

    def found(pattern: str) -> list[str]:
        page, _ = central_recordsets.find_all_recordsets({"data": pattern}, objects.Paging(100))
        return sorted(rs.name.split(".")[0] for rs in page.items)

    assert found("192.0.2.*") == ["a"]
    assert found("192.0.2.2*") == ["a"]
    assert found("192.0.2.3*") == []
    assert found('"v=spf1 MX*') == ["t"]
    assert found('"v_x*') == ["u"]
    assert found('"vax*') == []  # _ is a plain character
    assert found('"v_x%*') == ["u"]
    assert found(f'{long_text} "t*') == ["long"]  # a prefix longer than the index holds
    assert found(f'{long_text} "x*') == []
    assert found("*.2") == ["b"]

    engine = db.get_engine()
    seen: list[tuple[str, object]] = []

    def record(_c: object, _cur: object, statement: str, params: object, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        found("192.0.2.*")
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    # The first statement on the recordsets is the count (a data filter first reads
    # which pools' NS records match, see zoneflow/storage/managed.py).
    count = next(seen_one for seen_one in seen if "FROM recordsets" in seen_one[0])
    with engine.connect() as conn:
        cursor = conn.connection.cursor()
        # A few rows: the planner would read them all; forbid that to see whether
        # the index can answer the statement at all.
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(f"EXPLAIN {count[0]}", count[1])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "ix_records_data_prefix" in plan, plan
    assert "~>=~ '192.0.2.'" in plan and "~<~ '192.0.2/'" in plan, plan


def test_zone_placement_reads_the_zones_around_a_name_by_index_on_postgresql(
    on_postgres: str,
) -> None:
    """The zones above and below a new zone are found by index lookups among thousands
    (the planner's own choice, statistics taken), where ``name LIKE '%.<zone>'`` read
    every zone under the pool's placement lock."""
    pool = stored_pools.get_pool("default")
    central_zones.create_zone("example.com", "hostmaster@example.com", project_id="alice")
    central_zones.create_zone("a.b.example.com", "hostmaster@example.com", project_id="alice")
    with db.writer() as session:
        session.execute(
            sa.insert(models.Zone),
            [
                {
                    "name": f"zone{i:05d}.example.org.",
                    "email": "hostmaster@example.org",
                    "ttl": 300,
                    "serial": 1,
                    "refresh": 3600,
                    "retry": 600,
                    "expire": 86400,
                    "minimum": 300,
                    "status": objects.Status.ACTIVE,
                    "action": objects.Action.NONE,
                    "pool_id": pool.id,
                }
                for i in range(5000)
            ],
        )
    engine = db.get_engine()
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE zones"))
    seen: list[tuple[str, object]] = []

    def record(_c: object, _cur: object, statement: str, params: object, *_: object) -> None:
        if "reversed_name LIKE" in statement:
            seen.append((statement, params))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with db.writer() as session:
            around = stored_zones.zones_around(session, "b.example.com.", pool.id)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert [z.name for z in around] == ["a.b.example.com.", "example.com."]
    with pytest.raises(exceptions.IllegalChildZone):
        central_zones.create_zone("www.b.example.com", "hostmaster@example.com", project_id="bob")

    ((statement, params),) = seen
    with engine.connect() as conn:
        cursor = conn.connection.cursor()
        cursor.execute(f"EXPLAIN {statement}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan, plan
    assert "ix_zones_reversed_name" in plan, plan
    assert "~>=~ 'com.example.b.'" in plan and "~<~ 'com.example.b/'" in plan, plan


def test_a_transaction_left_idle_loses_its_session_and_its_row_locks_on_postgresql(
    on_postgres: str, override: Any
) -> None:
    """A process paused inside a transaction (a conductor stopped with SIGSTOP, a suspended
    VM) keeps no row locked past ``[database] idle_in_transaction_timeout``."""
    override("database", idle_in_transaction_timeout=1)
    db.configure(on_postgres)  # engines made from here on take the option
    zone = central_zones.create_zone("idle.example.", "hostmaster@idle.example")
    other = sa.create_engine(on_postgres, poolclass=sa.pool.NullPool)
    try:
        with (
            pytest.raises(exceptions.ZoneflowError) as ended,
            db.unit_of_work() as unit,
        ):
            unit.execute(sa.text("SELECT id FROM zones WHERE id = :id FOR UPDATE"), {"id": zone.id})
            # While this thread waits here, the unit above runs no statement: idle.
            with other.begin() as conn:
                # Without the timeout this would wait for good: fail after 20 s instead.
                conn.execute(sa.text("SET LOCAL lock_timeout = '20s'"))
                conn.execute(sa.text("UPDATE zones SET ttl = 999 WHERE id = :id"), {"id": zone.id})
            unit.execute(sa.text("SELECT 1"))
    finally:
        other.dispose()
    # The server ended the idle session (the driver sees it closed): its transaction
    # is gone, and the other's update, which waited on its lock, is stored.
    assert isinstance(ended.value, exceptions.DatabaseUnavailable), ended.value
    assert stored_reads.get_zone(zone.id).ttl == 999


def test_a_postgresql_with_no_connection_left_says_which_setting_to_change(
    tmp_path: pathlib.Path,
) -> None:
    """PostgreSQL answers and refuses one more client for as long as zoneflow waits
    for one ([database] busy_wait): not "unreachable", but which limit was met and
    the two settings that move it."""
    server = start_server(
        lambda: PostgresServer(
            settings={
                "max_connections": "3",
                "superuser_reserved_connections": "0",
                "max_wal_senders": "0",
            }
        )
    )
    try:
        url = server.create_database("full")
        held = [server.connect("full") for _ in range(3)]
        conf = tmp_path / "zoneflow.conf"
        conf.write_text(f"[database]\nconnection = {url}\nmax_retries = 0\nbusy_wait = 1\n")
        done = subprocess.run(
            [sys.executable, "-m", "zoneflow.cli", "--config-file", str(conf), "zone", "list"],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        for connection in held:
            connection.close()
    finally:
        server.close()
    assert done.returncode == 1, done
    assert "refused a new connection" in done.stderr and "max_connections" in done.stderr, done
    assert "[database] max_pool_size" in done.stderr and "Traceback" not in done.stderr


def test_a_request_waits_for_a_connection_when_postgresql_has_none_left(
    on_postgres: str, postgres: PostgresServer
) -> None:
    """Every connection PostgreSQL allows is taken, by other clients whose
    connections end a moment later: a change waits for one (up to [database]
    busy_wait) and goes through, instead of failing."""
    zone = central_zones.create_zone("full.example", "hostmaster@example.com")
    db.get_engine().dispose()  # no connection of zoneflow's own kept
    held = []
    try:
        while True:
            try:
                held.append(postgres.connect())
            except psycopg2.OperationalError as exc:
                assert "too many clients" in str(exc), exc
                break
        # A few end (a relay of this process may take one first).
        freed = threading.Timer(1.0, lambda: [held.pop().close() for _ in range(3)])
        freed.start()
        made = central_recordsets.create_recordset(zone.id, "www", "A", ["192.0.2.1"])
        freed.join()
    finally:
        for connection in held:
            connection.close()
    assert stored_reads.get_recordset(zone.id, "www.full.example.", "A").records == ("192.0.2.1",)
    assert made.serial > zone.serial


def test_a_transaction_that_loses_a_deadlock_once_says_what_happened_on_postgresql(
    on_postgres: str,
) -> None:
    """Two writers lock two zones in opposite orders: PostgreSQL rolls one back. A write
    not run again (no db.retried) says that, not that the database stayed busy for
    ``busy_wait``, which it never waited."""
    first = central_zones.create_zone("a.deadlock.example.", "hostmaster@deadlock.example")
    second = central_zones.create_zone("b.deadlock.example.", "hostmaster@deadlock.example")
    both_hold_one = threading.Barrier(2, timeout=30)
    lost: list[str] = []

    def cross(mine: str, theirs: str) -> None:
        try:
            with db.writer() as session:
                for zone_id in (mine, theirs):
                    session.execute(
                        sa.update(models.Zone)
                        .where(models.Zone.id == zone_id)
                        .values(description=f"written by {mine}")
                    )
                    if zone_id == mine:
                        both_hold_one.wait()
        except exceptions.DatabaseBusy as exc:
            lost.append(str(exc))

    writers = [
        threading.Thread(target=cross, args=(first.id, second.id)),
        threading.Thread(target=cross, args=(second.id, first.id)),
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
    assert len(lost) == 1, lost
    assert "rolled this transaction back (a deadlock with another transaction)" in lost[0]
    assert "nothing of it was written" in lost[0] and "busy_wait" not in lost[0]
    # The winner's write is whole; the loser's left nothing.
    descriptions = {stored_reads.get_zone(z.id).description for z in (first, second)}
    assert len(descriptions) == 1 and descriptions != {None}, descriptions


def test_the_logbook_writer_stores_a_batch_as_sqlalchemys_upsert_would_on_postgresql(
    on_postgres: str,
) -> None:
    """The writer's batch of atom rows is one statement on PostgreSQL: each row stored as
    SQLAlchemy's own upsert, row by row, stores it: new rows (the created_at a row lacks
    made for it) and rows replaced (their created_at kept), JSON of every shape."""
    connection = persistence.get_backend().get_connection()
    tables = connection._tables
    book = tf_models.LogBook("writer")
    flows = [tf_models.FlowDetail(name, str(uuid.uuid4())) for name in ("many", "one-by-one")]
    for flow in flows:
        book.add(flow)
        flow.add(tf_models.TaskDetail("stored-before", str(uuid.uuid4())))
    assert connection.add_logbook(book)

    def rows(flow: tf_models.FlowDetail) -> list[dict[str, Any]]:
        (before,) = flow
        replaced = before.to_dict()
        replaced.update(
            state="SUCCESS",
            results={"z": {"ok": True, "note": '50% "done" é \\ \' %s %(x)s'}, "n": [1, None]},
            meta={"progress": 1.0},
        )
        new = dict(tf_models.TaskDetail("new", str(uuid.uuid4())).to_dict(), state="RUNNING")
        new.pop("created_at", None)
        atom_type = tf_models.atom_detail_type(before)
        return [dict(r, parent_uuid=flow.uuid, atom_type=atom_type) for r in (replaced, new)]

    engine = db.get_engine()
    with engine.begin() as conn:
        logbook_writer.Upsert(engine.dialect, tables.atomdetails)(conn, rows(flows[0]))
        for row in rows(flows[1]):
            conn.execute(logbook_writer.upsert("postgresql", tables.atomdetails), [row])
    with engine.connect() as conn:
        stored = {
            flow.name: {
                row.name: row._asdict()
                for row in conn.execute(
                    sa.select(tables.atomdetails).where(
                        tables.atomdetails.c.parent_uuid == flow.uuid
                    )
                )
            }
            for flow in flows
        }
    assert stored["many"]["stored-before"]["results"]["z"]["note"] == '50% "done" é \\ \' %s %(x)s'
    assert stored["many"]["new"]["created_at"] is not None
    for name in ("stored-before", "new"):
        mine, theirs = stored["many"][name], stored["one-by-one"][name]
        assert mine["created_at"] is not None and theirs["created_at"] is not None
        for column in ("uuid", "parent_uuid", "created_at"):
            del mine[column], theirs[column]
        assert mine == theirs
