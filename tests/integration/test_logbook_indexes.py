"""TaskFlow's logbook tables get zoneflow's indexes, whichever of the two schemas comes
first, and reading a job goes through them (SQLite; tests/functional/test_logbook_indexes.py
does the same on PostgreSQL)."""

from __future__ import annotations

import contextlib
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from taskflow import states
from taskflow.persistence import models

from zoneflow import jobs, objects
from zoneflow.storage import db, migration
from zoneflow.taskflow_adapter import indexes, persistence

NAMES = {index.name for index in indexes.INDEXES}


def logbook_indexes() -> set[str]:
    with persistence.get_backend().engine.connect() as conn:
        return {
            name
            for table in ("logbooks", "flowdetails", "atomdetails")
            for name in indexes.existing(conn, table)
        } & NAMES


@contextlib.contextmanager
def other_database(tmp_path: pathlib.Path) -> Iterator[str]:
    """Point this process at a new, empty SQLite file (nothing migrated) for a block."""
    url = f"sqlite:///{tmp_path}/other.sqlite"
    previous = db.connection_url()
    persistence.reset()
    db.configure(url)
    try:
        yield url
    finally:
        persistence.reset()
        db.configure(previous)


def test_db_sync_indexes_taskflows_tables_it_creates_after_zoneflows_migrations() -> None:
    # The test database was made as 'zoneflow db sync' makes one: zoneflow's
    # migrations first (TaskFlow's tables not there yet), then TaskFlow's.
    assert logbook_indexes() == NAMES


def test_taskflows_tables_made_first_are_indexed_too(tmp_path: pathlib.Path) -> None:
    with other_database(tmp_path):
        persistence.upgrade()
        assert logbook_indexes() == NAMES
        migration.upgrade()
        persistence.upgrade()  # again: nothing to add, nothing fails
        assert logbook_indexes() == NAMES


def test_the_migration_indexes_an_existing_database() -> None:
    """A database synced before 0014: TaskFlow's tables without the indexes."""
    engine = persistence.get_backend().engine
    with engine.begin() as conn:
        for name in NAMES:
            conn.execute(sa.text(f"DROP INDEX {name}"))
        conn.execute(
            sa.text("UPDATE zoneflow_alembic_version SET version_num = '0013_target_states'")
        )
    assert logbook_indexes() == set()

    # Up to 0014 alone: the later migrations' changes are in this database already.
    migration.upgrade("0014_logbook_indexes")

    assert logbook_indexes() == NAMES


def _job(connection: Any, zone: int) -> str:
    book = models.LogBook(f"update-zone-z{zone}.example.", uuid=str(uuid.uuid4()))
    book.meta = {"kind": "update-zone", "zone_id": f"zone-{zone}", "zone_name": f"z{zone}."}
    flow = models.FlowDetail("update-zone", uuid.uuid4().hex)
    flow.state = states.SUCCESS
    for name in ("begin", jobs.STATUS_ATOM):
        atom = models.TaskDetail(name, uuid.uuid4().hex)
        atom.state = states.SUCCESS
        atom.results = "ACTIVE"
        flow.add(atom)
    book.add(flow)
    connection.add_logbook(book)
    return str(book.uuid)


def _plans(run: Any) -> list[str]:
    """SQLite's plan of each SELECT that ``run()`` sends through the persistence engine."""
    engine = persistence.get_backend().engine
    seen: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    plans = []
    with engine.connect() as conn:
        for statement, params in seen:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
            plans.append("\n".join(str(row[-1]) for row in rows))
    return plans


def test_reading_a_job_and_a_page_of_jobs_use_the_indexes() -> None:
    backend = persistence.get_backend()
    with contextlib.closing(backend.get_connection()) as connection:
        ids = [_job(connection, zone) for zone in range(20) for _ in range(3)]
    with backend.engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))

    one = "\n".join(_plans(lambda: jobs.get_job(backend, ids[7])))
    assert "ix_flowdetails_parent_uuid" in one and "ix_atomdetails_parent_uuid" in one
    assert "SCAN flowdetails" not in one and "SCAN atomdetails" not in one

    newest = objects.Paging(5, sort_dir=objects.DESC)
    # The statements of a page: the count, the page's uuids, then its logbooks whole.
    count, page, *_ = _plans(lambda: jobs.find_jobs(backend, jobs.JobFilter(), newest))
    assert "ix_logbooks_created_at" in page and "TEMP B-TREE" not in page, page
    count, page, *_ = _plans(
        lambda: jobs.find_jobs(backend, jobs.JobFilter(zone_id="zone-3"), newest)
    )
    assert "ix_logbooks_zone_id" in count and "ix_logbooks_zone_id" in page, (count, page)
