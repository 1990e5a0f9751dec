"""job_outbox.priority: a user's change is posted and claimed before upkeep

Central decides each job's priority (objects.JobPriority) when it writes the
job; relays claim the lowest first, then the oldest, through
ix_job_outbox_priority. Rows written before this migration get the priority
central gives their kind now, near enough: recover-zone and retire-target
rows are upkeep (a backfill, a catch-up, a recovery, a drain), the others a
user's change. An operator's recover, or a follow-up of a user's change,
waiting in the outbox at the upgrade goes as upkeep this once.

Revision ID: 0015_outbox_priority
Revises: 0013_target_states (0014_logbook_indexes, another branch's, is not in
this one: the lead rechains this to 0014 at merge)
Create Date: 2026-12-05 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_outbox_priority"
down_revision: str | None = "0013_target_states"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# objects.JobPriority's values, written out: a migration stays as it was written.
CHANGE, UPKEEP = 1, 2


def upgrade() -> None:
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


def downgrade() -> None:
    op.drop_index("ix_job_outbox_priority", table_name="job_outbox")
    with op.batch_alter_table("job_outbox") as batch:
        batch.drop_column("priority")
