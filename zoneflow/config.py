"""Loading zoneflow.conf: one call every entry point makes before anything else."""

from __future__ import annotations

import logging
import os

from oslo_config import cfg

from zoneflow import defaults, exceptions

CONF = cfg.CONF


def setup(
    config_files: list[str] | None = None, *, debug: bool = False, sessions: bool = True
) -> None:
    """Read configuration and point this process at its database.

    ``config_files`` defaults to ``$ZONEFLOW_CONFIG`` or the first of
    DEFAULT_CONFIG_FILES (:mod:`zoneflow.defaults`) that exists; with none,
    built-in defaults apply (SQLite in the current directory, the in-memory
    zake jobboard).
    ``sessions=False``: this process only reads through Core connections
    (see :func:`zoneflow.storage.db.configure`).
    """
    # Registers every option, importing nothing but oslo.config and the database module.
    from zoneflow import opts  # noqa: F401
    from zoneflow.storage import db

    files = config_files or defaults.config_files()
    for path in files:
        if not os.path.isfile(path):
            raise exceptions.InvalidConfig(f"config file {path} does not exist")
    try:
        CONF([], project="zoneflow", default_config_files=files)
    except cfg.Error as exc:
        raise exceptions.InvalidConfig(f"configuration is invalid: {exc}") from exc
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not debug:
        for noisy in ("kazoo", "taskflow", "stevedore", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    db.configure(sessions=sessions)
