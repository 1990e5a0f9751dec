"""job_outbox.posted: a zone's create or update job stays in the outbox, posted,
until a conductor begins it, so that the zone's next update rides on it

A user's create-zone or update-zone row is no longer deleted when the relay
posts its job: it is marked posted and deleted by the job's first task
(zoneflow.flows.begin), before that task reads the zone's serial. Until then
an update to the zone raises the row's serial instead of writing a job of its
own (zoneflow.storage.outbox). Relays claim only rows not posted yet.

ix_job_outbox_zone finds a zone's row for that update without reading the
outbox; ix_job_outbox_unposted lets a relay's claim pass over the rows
posted and waiting for a conductor, however many wait.

Revision ID: 0016_outbox_coalescing
Revises: 0015_outbox_priority
Create Date: 2026-12-05 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_outbox_coalescing"
down_revision: str | None = "0015_outbox_priority"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_outbox") as batch:
        batch.add_column(
            sa.Column("posted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index("ix_job_outbox_zone", "job_outbox", ["zone_id"])
    op.create_index("ix_job_outbox_unposted", "job_outbox", ["posted", "priority", "id"])


def downgrade() -> None:
    op.drop_index("ix_job_outbox_unposted", table_name="job_outbox")
    op.drop_index("ix_job_outbox_zone", table_name="job_outbox")
    # Posted rows' jobs are on the board: without the column a relay would post them again.
    op.execute("DELETE FROM job_outbox WHERE posted")
    with op.batch_alter_table("job_outbox") as batch:
        batch.drop_column("posted")
