"""job_outbox.if_pool_grows: the job that follows a zone job if its pool grows meanwhile

Central decides it when a change posts its job (objects.JobOrder); it was
decided by the flow that writes the zone's status before. Rows written
before this migration are zone jobs that could make a zone ACTIVE, whose
follow-up was always recover-zone: they get it.

Revision ID: 0012_job_follow_up
Revises: 0011_events
Create Date: 2026-12-04 22:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_job_follow_up"
down_revision: str | None = "0011_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_outbox") as batch:
        batch.add_column(sa.Column("if_pool_grows", sa.String(length=32), nullable=True))
    op.execute(
        "UPDATE job_outbox SET if_pool_grows = 'recover-zone' "
        "WHERE kind IN ('create-zone', 'update-zone', 'recover-zone')"
    )


def downgrade() -> None:
    with op.batch_alter_table("job_outbox") as batch:
        batch.drop_column("if_pool_grows")
