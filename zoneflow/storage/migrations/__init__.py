"""Alembic migrations of zoneflow's tables, shipped in the package so `zoneflow db sync` works from a wheel."""
