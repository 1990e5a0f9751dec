"""logbook_indexes: TaskFlow's logbook tables indexed for reading one job and paging jobs

Revision ID: 0014_logbook_indexes
Revises: 0013_target_states
Create Date: 2026-12-05 10:00:00

TaskFlow's tables index only each row's uuid: a job's flow and atoms were
found by scanning every retained job's rows (200 ms a read at 195k rows on
PostgreSQL). The tables are TaskFlow's, created by its own migrations in
zoneflow.taskflow_adapter.persistence.upgrade(), which 'zoneflow db sync'
runs after this one: on a new database they are not there yet, and that
upgrade creates these same indexes once it has made them
(zoneflow/taskflow_adapter/indexes.py); on an existing database they are,
and this adds them. Either way each is created only if it is missing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_logbook_indexes"
down_revision: str | None = "0013_target_states"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, table, what it holds on SQLite, on PostgreSQL), written out: a migration
# stays as it was written. meta is text on SQLite and json on PostgreSQL (TaskFlow's
# own migration made it so); the expression is the one zoneflow's queries ask for.
INDEXES = (
    ("ix_flowdetails_parent_uuid", "flowdetails", "parent_uuid", "parent_uuid"),
    ("ix_atomdetails_parent_uuid", "atomdetails", "parent_uuid", "parent_uuid"),
    ("ix_logbooks_created_at", "logbooks", "created_at, uuid", "created_at, uuid"),
    ("ix_logbooks_name", "logbooks", "name", "name"),
    (
        "ix_logbooks_zone_id",
        "logbooks",
        "json_extract(meta, '$.zone_id')",
        "(meta ->> 'zone_id')",
    ),
)


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    postgresql = bind.dialect.name == "postgresql"
    for name, table, on_sqlite, on_postgresql in INDEXES:
        if inspector.has_table(table):
            columns = on_postgresql if postgresql else on_sqlite
            op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")


def downgrade() -> None:
    for name, _, _, _ in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
