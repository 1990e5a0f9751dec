"""Schema migrations: zoneflow's tables through alembic, TaskFlow's through its own."""

from __future__ import annotations

import contextlib
import pathlib

from alembic import command
from alembic.config import Config

from zoneflow.storage import db

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(revision: str = "head") -> None:
    """Bring zoneflow's tables to ``revision`` (idempotent)."""
    config = _config()
    with db.get_engine().begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def autogenerate(message: str) -> None:
    """Write a new migration from the models (developers only)."""
    config = _config()
    with contextlib.closing(db.get_engine().connect()) as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
