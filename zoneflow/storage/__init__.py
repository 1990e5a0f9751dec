"""Rows and SQL: zoneflow's database."""

# A live row's ``deleted`` column holds this; a soft-deleted row holds its id,
# so a zone name can be reused once the old zone is gone (oslo.db's pattern).
# Here, not in tables.py, so that storage.fastread has it without SQLAlchemy.
LIVE = "0"
