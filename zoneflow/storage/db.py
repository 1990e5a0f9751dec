"""Database sessions through oslo.db's enginefacade.

``configure()`` is called once per process (tests call it again for a fresh
database); ``writer()`` and ``reader()`` give a session inside a transaction
and turn oslo.db's connection errors into :class:`DatabaseUnavailable`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy
from oslo_config import cfg
from oslo_db import exception as db_exc
from oslo_db import options as db_options
from oslo_db.sqlalchemy import enginefacade
from sqlalchemy.orm import Session

from zoneflow import exceptions

CONF = cfg.CONF

DEFAULT_CONNECTION = "sqlite:///zoneflow.sqlite"


def register_opts(conf: cfg.ConfigOpts) -> None:
    # Fail fast when the database is down: a CLI user should get an error in
    # seconds, not after oslo.db's default of ten ten-second retries.
    db_options.set_defaults(conf, connection=DEFAULT_CONNECTION)
    conf.set_default("max_retries", 2, group="database")
    conf.set_default("retry_interval", 1, group="database")


register_opts(CONF)

_manager: Any = None
_connection: str = DEFAULT_CONNECTION


def configure(connection: str | None = None) -> None:
    """Point this process at a database (default: ``[database] connection``)."""
    global _manager, _connection
    url = connection or CONF.database.connection
    manager = enginefacade.transaction_context()
    manager.configure(
        connection=url,
        sqlite_fk=True,
        max_retries=CONF.database.max_retries,
        retry_interval=CONF.database.retry_interval,
    )
    if url.startswith("sqlite"):
        manager.append_on_engine_create(_tune_sqlite)
    _manager = manager
    _connection = url


def _tune_sqlite(engine: sqlalchemy.engine.Engine) -> None:
    # WAL lets the CLI read while a conductor writes; the busy timeout makes
    # two writers queue instead of failing with "database is locked".
    @sqlalchemy.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


def _get_manager() -> Any:
    if _manager is None:
        configure()
    return _manager


def get_engine() -> sqlalchemy.engine.Engine:
    return _translate_errors(lambda: _get_manager().writer.get_engine())


class _Context:
    """enginefacade keeps its per-transaction state on a context object."""


def _translate_errors(call: Any) -> Any:
    try:
        return call()
    except db_exc.DBConnectionError as exc:
        raise exceptions.DatabaseUnavailable(_unreachable_message()) from exc


def _unreachable_message() -> str:
    url = sqlalchemy.engine.make_url(_connection)
    return (
        f"the database at {url.render_as_string(hide_password=True)} is unreachable: "
        "check that it runs and that [database] connection in zoneflow.conf is right"
    )


def connection_url() -> str:
    """The URL this process uses (TaskFlow's persistence shares it)."""
    _get_manager()
    return _connection


@contextlib.contextmanager
def writer() -> Iterator[Session]:
    try:
        with _get_manager().writer.using(_Context()) as session:
            yield session
    except db_exc.DBConnectionError as exc:
        raise exceptions.DatabaseUnavailable(_unreachable_message()) from exc


@contextlib.contextmanager
def reader() -> Iterator[Session]:
    try:
        with _get_manager().reader.using(_Context()) as session:
            yield session
    except db_exc.DBConnectionError as exc:
        raise exceptions.DatabaseUnavailable(_unreachable_message()) from exc
