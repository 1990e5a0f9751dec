"""Alembic migrations of zoneflow's tables.

A package (not a bare directory) so that the wheel ships them and `zoneflow db
sync` works from `pip install .`.
"""
