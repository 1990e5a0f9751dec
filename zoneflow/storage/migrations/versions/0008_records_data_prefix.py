"""records found by a wildcard after a literal prefix (data=192.0.2.*): an index on
PostgreSQL

Revision ID: 0008_records_data_prefix
Revises: 0007_api_resources
Create Date: 2026-11-27 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_records_data_prefix"
down_revision: str | None = "0007_api_resources"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The expression zoneflow.storage.queries.data_match asks for (200 is
# models.DATA_PREFIX_CHARS, written out: a migration stays as it was written).
# text_pattern_ops compares bytes, so LIKE 'prefix%' is a range scan whatever
# the database's collation; only the first 200 characters are held, so that
# a TXT record of any length fits a btree entry.
EXPRESSION = "lower(substr(data, 1, 200)) text_pattern_ops"


def upgrade() -> None:
    # SQLite has no operator classes, and its wildcard matches read the
    # (small) scope of the request; the index is PostgreSQL's.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_records_data_prefix ON records ({EXPRESSION})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_records_data_prefix")
