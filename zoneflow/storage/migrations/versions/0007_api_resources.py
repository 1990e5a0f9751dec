"""what the rest of Designate's v2 needs: records found by data, zone tasks, TSIG keys,
quotas, service statuses

Revision ID: 0007_api_resources
Revises: 0006_pool_target_retirement
Create Date: 2026-11-25 23:35:00
"""

import datetime
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_api_resources"
down_revision: str | None = "0006_pool_target_retirement"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[datetime.datetime]]:
    return [
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    ]


def upgrade() -> None:
    # A hash index on PostgreSQL (any record length; equality only), a btree elsewhere.
    op.create_index("ix_records_data", "records", ["data"], postgresql_using="hash")
    op.create_table(
        "zone_tasks",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("task_type", sa.String(16), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=True),
        sa.Column("zone_id", sa.String(36), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("location", sa.String(255), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_zone_tasks_project_id", "zone_tasks", ["project_id"])
    op.create_table(
        "tsigkeys",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("resource_id", sa.String(36), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "quotas",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("resource", sa.String(32), nullable=False),
        sa.Column("hard_limit", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "resource", name="uniq_quota"),
    )
    op.create_table(
        "service_statuses",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("service_name", sa.String(32), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("heartbeated_at", sa.DateTime(), nullable=False),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("service_name", "hostname", name="uniq_service_status"),
    )


def downgrade() -> None:
    op.drop_table("service_statuses")
    op.drop_table("quotas")
    op.drop_table("tsigkeys")
    op.drop_index("ix_zone_tasks_project_id", table_name="zone_tasks")
    op.drop_table("zone_tasks")
    op.drop_index("ix_records_data", table_name="records")
