"""target_states: each target's health (the inspector) and maintenance

Revision ID: 0013_target_states
Revises: 0012_job_follow_up (0012, the lead's outbox change, is not in this branch:
the lead rechains this to 0012 at merge)
Create Date: 2026-12-04 22:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_target_states"
down_revision: str | None = "0012_job_follow_up"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "target_states",
        sa.Column("target_id", sa.String(length=36), nullable=False),
        sa.Column("health", sa.String(length=16), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("maintenance", sa.String(length=16), nullable=True),
        sa.Column("maintenance_since", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["target_id"], ["pool_targets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("target_id"),
    )


def downgrade() -> None:
    op.drop_table("target_states")
