"""Zone placement reads the zones above and below a new zone by index lookups, and
migration 0015 gives the zones already stored what those lookups read.

The zones below a zone are found through its reversed name
(``com.example.www.``), by label: ``xexample.com.`` is not below
``example.com.``, nor is a zone below itself.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command

from tests.integration.conftest import load_pool
from zoneflow import exceptions, objects
from zoneflow.central import zones as central_zones
from zoneflow.storage import db, migration, tables
from zoneflow.storage import zones as stored_zones

ALICE, BOB = "alice", "bob"


def _around(name: str, pool: objects.Pool) -> list[str]:
    with db.writer() as session:
        return [z.name for z in stored_zones.zones_around(session, name, pool.id)]


def test_the_zones_around_a_name_are_its_parents_and_subzones_by_label() -> None:
    pool = load_pool({})
    for name in (
        "com.example.",  # a zone named like a reversed name: not a subzone of anything here
        "example.com.",
        "www.example.com.",
        "a.b.example.com.",
        "xexample.com.",
        "www.xexample.com.",
        "example.org.",
    ):
        central_zones.create_zone(name, "hostmaster@example.com")
    gone = central_zones.create_zone("gone.b.example.com.", "hostmaster@example.com")
    central_zones.delete_zone(gone.id)
    with db.writer() as session:  # deleted for good (its delete job ran)
        session.execute(
            sa.update(tables.zones).where(tables.zones.c.id == gone.id).values(deleted=gone.id)
        )

    assert _around("b.example.com.", pool) == ["a.b.example.com.", "example.com."]
    assert _around("example.com.", pool) == ["a.b.example.com.", "www.example.com."]
    assert _around("com.", pool) == [
        "a.b.example.com.",
        "example.com.",
        "www.example.com.",
        "www.xexample.com.",
        "xexample.com.",
    ]
    assert _around("ample.com.", pool) == []


def test_a_project_s_zone_is_refused_inside_or_above_another_project_s() -> None:
    load_pool({})
    central_zones.create_zone("example.com.", "hostmaster@example.com", project_id=ALICE)
    central_zones.create_zone("sub.bob.example.", "hostmaster@example.com", project_id=ALICE)

    with pytest.raises(exceptions.IllegalChildZone, match="inside zone example.com."):
        central_zones.create_zone("a.www.example.com.", "hostmaster@example.com", project_id=BOB)
    with pytest.raises(exceptions.IllegalParentZone, match="sub.bob.example."):
        central_zones.create_zone("bob.example.", "hostmaster@example.com", project_id=BOB)
    # Label by label: these are neither inside nor above alice's zones.
    for name in ("xexample.com.", "www.xexample.com.", "ob.example.", "b.example."):
        central_zones.create_zone(name, "hostmaster@example.com", project_id=BOB)
    central_zones.create_zone("www.example.com.", "hostmaster@example.com", project_id=ALICE)


def test_the_subzone_lookup_is_an_index_range_on_sqlite() -> None:
    pool = load_pool({})
    engine = db.get_engine()
    seen: list[tuple[str, object]] = []

    def record(_c: object, _cur: object, statement: str, params: object, *_: object) -> None:
        if "reversed_name LIKE" in statement:
            seen.append((statement, params))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        _around("www.example.com.", pool)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    ((statement, params),) = seen
    with engine.connect() as connection:
        cursor = connection.connection.cursor()
        cursor.execute(f"EXPLAIN QUERY PLAN {statement}", params)
        plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
    assert "USING INDEX ix_zones_reversed_name (reversed_name>? AND reversed_name<?)" in plan, plan
    assert "SCAN zones" not in plan, plan


@pytest.fixture
def at_0013(tmp_path: pathlib.Path) -> Iterator[sa.engine.Engine]:
    """A database migrated up to 0013, the revision before 0015."""
    url = f"sqlite:///{tmp_path}/old.sqlite"
    db.configure(url)
    config = migration._config()
    with db.get_engine().begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0013_target_states")
    yield db.get_engine()


def test_migration_0015_gives_stored_zones_their_reversed_names_and_outbox_rows_a_priority(
    at_0013: sa.engine.Engine,
) -> None:
    with at_0013.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO pools (id, name, description, threshold_percentage, provisioning, "
                "catalog_zone_refresh, created_at) VALUES ('p', 'default', '', 100, 'per-zone', "
                "60, CURRENT_TIMESTAMP)"
            )
        )
        for i, name in enumerate(("example.com.", "www.example.com.")):
            connection.execute(
                sa.text(
                    "INSERT INTO zones (id, name, email, ttl, serial, refresh, retry, expire, "
                    "minimum, status, action, pool_id, version, deleted, created_at) VALUES "
                    f"('z{i}', :name, 'h@example.com', 300, 1, 1, 1, 1, 1, 'ACTIVE', 'NONE', "
                    "'p', 1, '0', CURRENT_TIMESTAMP)"
                ),
                {"name": name},
            )
        connection.execute(
            sa.text(
                "INSERT INTO recordsets (id, zone_id, name, type, serial, status, action, "
                "version, created_at) VALUES ('r', 'z0', 'www.example.com.', 'A', 1, 'ACTIVE', "
                "'NONE', 1, CURRENT_TIMESTAMP)"
            )
        )
        for kind in ("update-zone", "recover-zone", "retire-target"):
            connection.execute(
                sa.text(
                    "INSERT INTO job_outbox (kind, zone_id, serial, created_at) "
                    "VALUES (:kind, 'z0', 1, CURRENT_TIMESTAMP)"
                ),
                {"kind": kind},
            )

    migration.upgrade()

    with at_0013.connect() as connection:
        assert connection.execute(
            sa.text("SELECT name, reversed_name FROM zones ORDER BY name")
        ).all() == [("example.com.", "com.example."), ("www.example.com.", "com.example.www.")]
        assert connection.execute(sa.text("SELECT id FROM recordsets")).all() == [("r",)]
        assert connection.execute(
            sa.text("SELECT kind, priority FROM job_outbox ORDER BY id")
        ).all() == [
            ("update-zone", objects.JobPriority.CHANGE),
            ("recover-zone", objects.JobPriority.UPKEEP),
            ("retire-target", objects.JobPriority.UPKEEP),
        ]
