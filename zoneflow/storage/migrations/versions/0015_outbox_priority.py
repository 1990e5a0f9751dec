"""job_outbox.priority: a user's change is posted and claimed before upkeep; and
zones.reversed_name: a zone's subzones found by an index, not a scan

Central decides each job's priority (objects.JobPriority) when it writes the
job; relays claim the lowest first, then the oldest, through
ix_job_outbox_priority. Rows written before this migration get the priority
central gives their kind now, near enough: recover-zone and retire-target
rows are upkeep (a backfill, a catch-up, a recovery, a drain), the others a
user's change. An operator's recover, or a follow-up of a user's change,
waiting in the outbox at the upgrade goes as upkeep this once.

A new zone's placement reads the zones below it: ``name LIKE '%.<zone>'``
read every zone, under the pool's placement lock. The labels reversed
(``com.example.www.``) make them a prefix, which ix_zones_reversed_name
answers as a range: text_pattern_ops on PostgreSQL, so whatever the
database's collation it compares bytes as LIKE does; NOCASE on SQLite,
whose LIKE ignores case (zone names are stored in lower case). Existing
zones get the column from their names.

Revision ID: 0015_outbox_priority
Revises: 0014_logbook_indexes
Create Date: 2026-12-05 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_outbox_priority"
down_revision: str | None = "0014_logbook_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# objects.JobPriority's values, written out: a migration stays as it was written.
CHANGE, UPKEEP = 1, 2

# Zones whose reversed names are written per statement.
BATCH = 1000


def upgrade() -> None:
    _outbox_priority()
    _zone_reversed_names()


def _outbox_priority() -> None:
    with op.batch_alter_table("job_outbox") as batch:
        batch.add_column(
            sa.Column("priority", sa.SmallInteger(), nullable=False, server_default=str(CHANGE))
        )
    op.execute(
        f"UPDATE job_outbox SET priority = {UPKEEP} WHERE kind IN ('recover-zone', 'retire-target')"
    )
    # No default from here on: every writer says which priority its job has.
    with op.batch_alter_table("job_outbox") as batch:
        batch.alter_column("priority", server_default=None)
    op.create_index("ix_job_outbox_priority", "job_outbox", ["priority", "id"])


def _reversed(name: str) -> str:
    # zoneflow.storage.tables.reversed_name as it is written today.
    return ".".join(reversed(name.rstrip(".").split("."))) + "."


def _zone_reversed_names() -> None:
    op.add_column("zones", sa.Column("reversed_name", sa.String(length=255), nullable=True))
    bind = op.get_bind()
    zones = sa.table("zones", sa.column("id"), sa.column("name"), sa.column("reversed_name"))
    rows = bind.execute(sa.select(zones.c.id, zones.c.name)).all()
    update = (
        sa.update(zones)
        .where(zones.c.id == sa.bindparam("b_id"))
        .values(reversed_name=sa.bindparam("b_reversed"))
    )
    for start in range(0, len(rows), BATCH):
        bind.execute(
            update,
            [{"b_id": i, "b_reversed": _reversed(name)} for i, name in rows[start : start + BATCH]],
        )
    if bind.dialect.name == "postgresql":
        op.alter_column("zones", "reversed_name", nullable=False)
        op.execute("CREATE INDEX ix_zones_reversed_name ON zones (reversed_name text_pattern_ops)")
    else:
        # Left nullable on SQLite (zoneflow writes it on every insert): making it NOT
        # NULL there copies the table, and dropping the old zones table with foreign
        # keys on deletes every zone's recordsets and rows with it (ON DELETE CASCADE).
        op.execute("CREATE INDEX ix_zones_reversed_name ON zones (reversed_name COLLATE NOCASE)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_zones_reversed_name")
    # Not in batch mode: copying the zones table on SQLite would cascade (see above).
    op.drop_column("zones", "reversed_name")
    op.drop_index("ix_job_outbox_priority", table_name="job_outbox")
    with op.batch_alter_table("job_outbox") as batch:
        batch.drop_column("priority")
