"""pools may provision their targets through a catalog zone (RFC 9432)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 20:10:00
"""

import time
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pools") as batch:
        batch.add_column(
            sa.Column("provisioning", sa.String(16), nullable=False, server_default="per-zone")
        )
        batch.add_column(sa.Column("catalog_zone", sa.String(255), nullable=True))
        batch.add_column(
            sa.Column("catalog_zone_refresh", sa.Integer(), nullable=False, server_default="60")
        )
        batch.add_column(
            sa.Column(
                "catalog_serial",
                sa.BigInteger(),
                nullable=False,
                server_default=str(int(time.time())),
            )
        )
        batch.create_unique_constraint("uniq_pool_catalog_zone", ["catalog_zone"])


def downgrade() -> None:
    with op.batch_alter_table("pools") as batch:
        batch.drop_constraint("uniq_pool_catalog_zone", type_="unique")
        for column in ("catalog_serial", "catalog_zone_refresh", "catalog_zone", "provisioning"):
            batch.drop_column(column)
