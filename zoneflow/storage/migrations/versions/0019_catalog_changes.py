"""Catalog changes: each serial of a pool's catalog zone as the member it added or removed

A consumer of a catalog asked for an IXFR got the whole catalog (every
member) after each zone created or deleted. With the history, mdns sends
only the members that joined or left since the consumer's serial.

Revision ID: 0019_catalog_changes
Revises: 0018_event_ids_at_commit
Create Date: 2026-12-06 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_catalog_changes"
down_revision: str | None = "0018_event_ids_at_commit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pool_id", sa.String(length=36), nullable=False),
        sa.Column("serial", sa.BigInteger(), nullable=False),
        sa.Column("zone_id", sa.String(length=36), nullable=False),
        sa.Column("zone_name", sa.String(length=255), nullable=False),
        sa.Column("joined", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["pool_id"], ["pools.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pool_id", "serial", name="uniq_catalog_change"),
    )


def downgrade() -> None:
    op.drop_table("catalog_changes")
