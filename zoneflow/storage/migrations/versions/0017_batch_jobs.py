"""Batch jobs: job_outbox.batch, and job_zones, every zone an update-zones job carries

A relay puts the update-zone rows of several zones it claims at once in one
update-zones job (zoneflow.flows.batch). It writes the batch's id on those
rows before it writes the job's logbook: a post that fails, or a relay that
dies half-way, leaves rows that any relay posts again as the same job (the
batch id is the job id), never regrouped into a second job beside a first
left PENDING for good.

A job's logbook names one zone in its metadata (``zone_id``, indexed by
ix_logbooks_zone_id). An update-zones job carries several: each has a row in
job_zones, with the serial its change was posted at, written before the
job's logbook. ``GET /v2/jobs?zone_id=``, the dashboard's zone page and
``--progress`` find a zone's jobs through both.

Revision ID: 0017_batch_jobs
Revises: 0016_outbox_coalescing
Create Date: 2026-12-05 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_batch_jobs"
down_revision: str | None = "0016_outbox_coalescing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_outbox") as batch:
        batch.add_column(sa.Column("batch", sa.String(36), nullable=True))
    op.create_index("ix_job_outbox_batch", "job_outbox", ["batch"])
    op.create_table(
        "job_zones",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("zone_id", sa.String(36), primary_key=True),
        sa.Column("zone_name", sa.String(255), nullable=False),
        sa.Column("serial", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_job_zones_zone_id", "job_zones", ["zone_id"])
    op.create_index("ix_job_zones_zone_name", "job_zones", ["zone_name", "serial"])


def downgrade() -> None:
    op.drop_index("ix_job_zones_zone_name", table_name="job_zones")
    op.drop_index("ix_job_zones_zone_id", table_name="job_zones")
    op.drop_table("job_zones")
    op.drop_index("ix_job_outbox_batch", table_name="job_outbox")
    with op.batch_alter_table("job_outbox") as batch:
        batch.drop_column("batch")
