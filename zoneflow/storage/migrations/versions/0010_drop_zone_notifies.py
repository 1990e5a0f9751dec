"""drop zone_notifies: mdns logged every NOTIFY there and nothing read it

Revision ID: 0010_drop_zone_notifies
Revises: 0009_zone_transfers
Create Date: 2026-12-04 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_drop_zone_notifies"
down_revision: str | None = "0009_zone_transfers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("zone_notifies")


def downgrade() -> None:
    # As revision 0003 made it; the NOTIFYs it held are gone for good.
    op.create_table(
        "zone_notifies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("zone_id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("serial", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["zone_id"], ["zones.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("zone_id", "source", name="uniq_zone_notify"),
    )
