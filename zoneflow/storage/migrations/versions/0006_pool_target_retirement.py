"""a target removed from its pool is retired and drained before it goes

Revision ID: 0006_pool_target_retirement
Revises: 0005_api_fields
Create Date: 2026-11-25 22:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_pool_target_retirement"
down_revision: str | None = "0005_api_fields"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pool_targets") as batch:
        batch.add_column(sa.Column("retired_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("drain_error", sa.Text(), nullable=True))
    with op.batch_alter_table("job_outbox") as batch:
        batch.alter_column("zone_id", existing_type=sa.String(36), nullable=True)
        batch.add_column(sa.Column("target_id", sa.String(36), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM job_outbox WHERE zone_id IS NULL")
    with op.batch_alter_table("job_outbox") as batch:
        batch.drop_column("target_id")
        batch.alter_column("zone_id", existing_type=sa.String(36), nullable=False)
    op.execute("DELETE FROM pool_targets WHERE retired_at IS NOT NULL")
    with op.batch_alter_table("pool_targets") as batch:
        batch.drop_column("drain_error")
        batch.drop_column("retired_at")
