"""TaskFlow's logbook tables on a real PostgreSQL get zoneflow's indexes, on a new database
and on an existing one, whichever schema comes first; PostgreSQL's own plans read one
job and a page of jobs through them among 20,000 retained jobs."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from taskflow import states
from taskflow.persistence import models

from tests import support
from tests.functional import retained_jobs
from tests.functional.fixtures.postgres import PostgresServer
from zoneflow import jobs, objects
from zoneflow.central import jobs as central_jobs
from zoneflow.central import zones as central_zones
from zoneflow.storage import migration
from zoneflow.taskflow_adapter import indexes, persistence

NAMES = {index.name for index in indexes.INDEXES}
POOL = """
- name: default
  ns_records: [{hostname: ns1.example.org., priority: 1}]
  targets: [{type: fake, description: fake}]
"""
NEWEST = objects.Paging(20, sort_dir=objects.DESC)


def logbook_indexes() -> set[str]:
    with persistence.get_backend().engine.connect() as conn:
        found = set()
        for table in ("logbooks", "flowdetails", "atomdetails"):
            found |= indexes.existing(conn, table)
    return found & NAMES


@pytest.fixture
def on_postgres(postgres_database: str) -> Iterator[str]:
    with support.database(postgres_database, pools_yaml=POOL) as url:
        persistence.reset()
        yield url
        persistence.reset()


@pytest.fixture
def empty_database(postgres: PostgresServer) -> Iterator[str]:
    """A new database nothing has migrated yet, this process pointed at it."""
    name = f"zoneflow_{uuid.uuid4().hex[:12]}"
    url = postgres.create_database(name)
    try:
        with support.database(url) as pointed:  # zoneflow's migrations run: no TaskFlow tables
            persistence.reset()
            yield pointed
    finally:
        persistence.reset()
        postgres.drop_database(name)


def test_db_sync_indexes_the_logbook_tables_on_postgresql(on_postgres: str) -> None:
    # postgres_database is a copy of what 'zoneflow db sync' made of an empty database.
    assert logbook_indexes() == NAMES


def test_taskflows_tables_made_after_zoneflows_migrations_are_indexed(
    empty_database: str,
) -> None:
    engine = persistence.get_backend().engine
    assert not sa.inspect(engine).has_table("logbooks")
    persistence.upgrade()
    assert logbook_indexes() == NAMES
    migration.upgrade()
    persistence.upgrade()  # and again: nothing to add, nothing fails
    assert logbook_indexes() == NAMES


def test_the_migration_indexes_an_existing_postgresql_database(on_postgres: str) -> None:
    """A database synced before 0014: TaskFlow's tables there, without the indexes."""
    with persistence.get_backend().engine.begin() as conn:
        for name in NAMES:
            conn.execute(sa.text(f"DROP INDEX {name}"))
        conn.execute(
            sa.text("UPDATE zoneflow_alembic_version SET version_num = '0013_target_states'")
        )
    assert logbook_indexes() == set()

    # Up to 0014 alone: the later migrations' changes are in this database already.
    migration.upgrade("0014_logbook_indexes")

    assert logbook_indexes() == NAMES


def _template_job(zone: objects.Zone) -> str:
    """One ended job of ``zone``, shaped as a posted job's logbook."""
    book = models.LogBook(f"update-zone-{zone.name}", uuid=str(uuid.uuid4()))
    book.meta = {"kind": "update-zone", "zone_id": zone.id, "zone_name": zone.name, "serial": 1}
    flow = models.FlowDetail("update-zone", uuid.uuid4().hex)
    flow.state = states.SUCCESS
    for name in ("begin", "update-zone-on-target", "consensus-check", jobs.STATUS_ATOM):
        atom = models.TaskDetail(name, uuid.uuid4().hex)
        atom.state = states.SUCCESS
        atom.results = "ACTIVE"
        flow.add(atom)
    book.add(flow)
    with contextlib.closing(persistence.get_backend().get_connection()) as connection:
        connection.add_logbook(book)
    return str(book.uuid)


def _plans(read: object) -> list[str]:
    with retained_jobs.Statements(persistence.get_backend().engine) as seen:
        assert callable(read)
        read()
    return seen.plans()


def test_postgresql_reads_a_job_and_a_page_of_jobs_through_the_indexes(on_postgres: str) -> None:
    zone = central_zones.create_zone("example.com.", "hostmaster@example.com", project_id="p")
    engine = persistence.get_backend().engine
    copies = retained_jobs.copy_jobs(
        engine,
        _template_job(zone),
        jobs=20_000,
        zones=2_000,
        projects=10,
        start=datetime.datetime(2026, 1, 1),
    )
    retained_jobs.analyze(engine)
    backend = persistence.get_backend()
    job_id = copies.job_id(12_345)

    # One job: its logbook by uuid, its flow and atoms by parent_uuid.
    book, flows, atoms = _plans(lambda: jobs.get_job(backend, job_id))
    assert "ix_flowdetails_parent_uuid" in flows, flows
    assert "ix_flowdetails_parent_uuid" in atoms and "ix_atomdetails_parent_uuid" in atoms, atoms
    assert "Seq Scan" not in book + flows + atoms
    # A job found by its zone and serial (--wait, the producer): by its logbook's
    # name, or as a batch's zone, through the name's index and job_zones'.
    name = f"z{copies.zone_of(12_345)}.example.com."
    assert jobs.find_job(backend, name, 12_345, ["update-zone"]) == job_id
    (by_name,) = _plans(lambda: jobs.find_job(backend, name, 12_345, ["update-zone"]))
    assert "ix_logbooks_name" in by_name and "ix_job_zones_zone_name" in by_name, by_name
    assert "Seq Scan on logbooks" not in by_name, by_name

    # The newest page of every job: the created_at index, read backwards, no sort.
    count, page, *whole = _plans(lambda: jobs.find_jobs(backend, jobs.JobFilter(), NEWEST))
    assert "ix_logbooks_created_at" in page and "Sort" not in page, page
    assert "Seq Scan" not in "".join(whole), whole

    # A zone's jobs (its page in the dashboard): the zone_id expression index.
    zone_id = copies.zone_id(copies.zone_of(12_345))
    count, page, *_ = _plans(
        lambda: jobs.find_jobs(backend, jobs.JobFilter(zone_id=zone_id), NEWEST)
    )
    assert "ix_logbooks_zone_id" in count and "ix_logbooks_zone_id" in page, (count, page)
    assert "ix_job_zones_zone_id" in count and "ix_job_zones_zone_id" in page, (count, page)
    assert "Seq Scan on logbooks" not in count + page, (count, page)

    # And what the API answers a project from that: its jobs, newest first, paged.
    project = copies.project_of(copies.zone_of(12_345))
    first = central_jobs.find_jobs({}, NEWEST, project_id=project)
    assert first.total_count == 20_000 // 10 and first.more
    assert {job.project_id for job in first.items} == {project}
    later = central_jobs.find_jobs(
        {}, dataclasses.replace(NEWEST, marker=first.items[-1].info.id), project_id=project
    )
    assert [j.info.created_at for j in first.items + later.items] == sorted(
        (j.info.created_at for j in first.items + later.items), reverse=True
    )


def test_postgresql_picks_jobs_by_state_and_orders_them_by_last_change(on_postgres: str) -> None:
    """The state and the last change computed in PostgreSQL's SQL (its json operators)
    agree with the job read whole."""
    zone = central_zones.create_zone("example.com.", "hostmaster@example.com", project_id="p")
    engine = persistence.get_backend().engine
    copies = retained_jobs.copy_jobs(
        engine,
        _template_job(zone),
        jobs=2_000,
        zones=200,
        projects=10,
        start=datetime.datetime(2026, 1, 1),
    )
    failed, cancelled, busy = (copies.job_id(n) for n in (10, 20, 30))
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE atomdetails SET results = '\"ERROR\"' FROM flowdetails f "
                "WHERE atomdetails.parent_uuid = f.uuid AND f.parent_uuid = :job "
                "AND atomdetails.name = :status"
            ),
            {"job": failed, "status": jobs.STATUS_ATOM},
        )
        conn.execute(
            sa.text(
                "UPDATE logbooks SET meta = jsonb_set(meta::jsonb, '{outcome}', '\"CANCELLED\"')"
                "::json WHERE uuid = :job"
            ),
            {"job": cancelled},
        )
        conn.execute(
            sa.text("UPDATE flowdetails SET updated_at = '2027-01-01' WHERE parent_uuid = :job"),
            {"job": busy},
        )
    backend = persistence.get_backend()
    project = copies.project_of(copies.zone_of(10))  # jobs 10, 20 and 30: project-0

    for state, expected in (("FAILURE", [failed]), ("CANCELLED", [cancelled])):
        page = jobs.find_jobs(backend, jobs.JobFilter(state=state, project_id=project), NEWEST)
        assert [job.id for job in page.items] == expected and page.total_count == 1
        assert jobs.get_job(backend, expected[0]).state == state
    succeeded = jobs.find_jobs(backend, jobs.JobFilter(state="SUCCESS"), NEWEST)
    assert succeeded.total_count == 2_000 + 1 - 2 and succeeded.more

    by_change = dataclasses.replace(NEWEST, sort_key="updated_at")
    first = jobs.find_jobs(backend, jobs.JobFilter(project_id=project), by_change)
    assert first.items[0].id == busy
    assert first.items[0].updated_at == datetime.datetime(2027, 1, 1)
    changes = [job.updated_at for job in first.items]
    assert changes == sorted(changes, reverse=True)
