"""The indexes zoneflow adds to TaskFlow's logbook tables, and the expressions they hold.

TaskFlow's schema indexes each row's own uuid and nothing else, so every
read of one job (a conductor claiming it, ``job show``, ``GET /v2/jobs/ID``)
looked for the job's flow and atoms by ``parent_uuid`` through every
retained job's rows: 200 ms a read at 195k rows on PostgreSQL, and a
backfill paced at 25 jobs/s ran at 6.9. Listing jobs a page at a time in
SQL (pages.py) needs the order (``created_at``) and the zone filter
(``meta``'s ``zone_id``) indexed too, and finding a job by its logbook's
name (``--wait``, the producer) the name.

TaskFlow creates its tables itself (its alembic migrations on PostgreSQL,
``create_all`` on SQLite), in :func:`zoneflow.taskflow_adapter.persistence.upgrade`,
which ``zoneflow db sync`` runs after zoneflow's own migrations. On a new
database the tables do not exist yet when zoneflow's migration
0014_logbook_indexes runs; on an existing one they do. So both ask for the
indexes: the migration (as it was written) where the tables exist, and
:func:`create` after TaskFlow's upgrade, every time. Each is created only if
missing, under the same name.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa


def meta_field(meta: Any, key: str, dialect: str) -> sa.ColumnElement[Any]:
    """One key of a TaskFlow ``meta`` column as SQL text, the way ix_logbooks_zone_id
    holds it (an expression index serves only its own expression, written alike).

    The key is written into the SQL, not bound: SQLite matches an index on
    an expression only against constants. Keys are zoneflow's own names.
    """
    if not key.isidentifier():
        raise ValueError(f"meta key {key!r} is not a plain name")
    if dialect == "postgresql":
        # TaskFlow's PostgreSQL migration made meta a json column.
        return meta.op("->>", return_type=sa.Text)(sa.literal_column(f"'{key}'"))
    return sa.func.json_extract(meta, sa.literal_column(f"'$.{key}'"), type_=sa.Text)


def json_text(value: Any, dialect: str) -> sa.ColumnElement[Any]:
    """A TaskFlow json column holding a string (an atom's results), as that string."""
    if dialect == "postgresql":
        return value.op("#>>", return_type=sa.Text)(sa.literal_column("'{}'"))
    return sa.func.json_extract(value, sa.literal_column("'$'"), type_=sa.Text)


@dataclasses.dataclass(frozen=True)
class LogbookIndex:
    name: str
    table: str
    columns: tuple[str, ...] = ()
    meta_key: str | None = None  # an index on this key of the table's meta instead


INDEXES = (
    # A logbook's flows, and a flow's atoms: every read of one job.
    LogbookIndex("ix_flowdetails_parent_uuid", "flowdetails", ("parent_uuid",)),
    LogbookIndex("ix_atomdetails_parent_uuid", "atomdetails", ("parent_uuid",)),
    # Lists in created_at order, a page after another (the uuid breaks ties).
    LogbookIndex("ix_logbooks_created_at", "logbooks", ("created_at", "uuid")),
    # A job found by its logbook's name (zoneflow.jobs.find_job).
    LogbookIndex("ix_logbooks_name", "logbooks", ("name",)),
    # A zone's jobs (GET /v2/jobs?zone_id=, a zone's page in the dashboard).
    LogbookIndex("ix_logbooks_zone_id", "logbooks", meta_key="zone_id"),
)


def create(connection: sa.Connection) -> list[str]:
    """Create every index of :data:`INDEXES` that is missing, on the tables that exist;
    the names of those created."""
    dialect = connection.dialect.name
    inspector = sa.inspect(connection)
    created = []
    for index in INDEXES:
        if not inspector.has_table(index.table):
            continue
        # Asked first, not left to IF NOT EXISTS alone: PostgreSQL locks the
        # table against writes before it finds the index there.
        if index.name in existing(connection, index.table):
            continue
        connection.execute(sa.schema.CreateIndex(_index(index, dialect), if_not_exists=True))
        created.append(index.name)
    return created


def existing(connection: sa.Connection, table: str) -> set[str]:
    """The names of the indexes ``table`` has (SQLAlchemy's inspector skips, with a
    warning, the indexes on expressions)."""
    if connection.dialect.name == "postgresql":
        query = sa.text(
            "SELECT indexname FROM pg_indexes "
            "WHERE tablename = :table AND schemaname = current_schema()"
        )
    else:
        query = sa.text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :table")
    return set(connection.execute(query, {"table": table}).scalars())


def _index(index: LogbookIndex, dialect: str) -> sa.Index:
    """``index`` on a table of just the columns it names (the DDL needs no more)."""
    names = index.columns or ("meta",)
    table = sa.Table(index.table, sa.MetaData(), *(sa.Column(n, sa.Text) for n in names))
    if index.meta_key is None:
        return sa.Index(index.name, *(table.c[n] for n in names))
    return sa.Index(index.name, meta_field(table.c.meta, index.meta_key, dialect))
