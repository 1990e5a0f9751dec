"""The database's schema: zoneflow's tables and TaskFlow's logbooks, brought up to date."""

from __future__ import annotations

from zoneflow.storage import migration
from zoneflow.taskflow_adapter import persistence


def upgrade() -> None:
    """Create or upgrade every table zoneflow uses; safe to run again."""
    migration.upgrade()
    persistence.upgrade()
