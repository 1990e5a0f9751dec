"""Database sessions through oslo.db's enginefacade.

``configure()`` is called once per process (tests call it again for a fresh
database); ``writer()`` and ``reader()`` give a session inside a transaction
and turn oslo.db's connection errors into :class:`DatabaseUnavailable`.
"""

from __future__ import annotations

import contextlib
import threading
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
    # oslo.db only tests the connection (and so only turns a refusal into
    # DBConnectionError) when it may try at least once.
    retries = CONF.database.max_retries or 1
    manager.configure(
        connection=url,
        sqlite_fk=True,
        max_retries=retries,
        retry_interval=CONF.database.retry_interval,
        # oslo.db's check-in hook sleeps to let eventlet switch greenthreads;
        # zoneflow runs on real threads, and mdns checks a connection out
        # for every query.
        thread_checkin=False,
    )
    if url.startswith("sqlite"):
        manager.append_on_engine_create(_pool_sqlite)
        manager.append_on_engine_create(tune_sqlite)
    _manager = manager
    _connection = url


def _pool_sqlite(engine: sqlalchemy.engine.Engine) -> None:
    """Keep SQLite connections open between transactions, as SQLAlchemy 2 does by default.

    oslo.db puts SQLite file databases back on a NullPool, which opens a
    connection (and runs its PRAGMAs) for every transaction: half a
    millisecond each, most of an mdns SOA answer. Listeners are registered
    after this (tune_sqlite), so they attach to the new pool.
    """
    engine.pool = sqlalchemy.pool.QueuePool(
        engine.pool._creator,  # noqa: SLF001 - the dialect's connect function, as the old pool had it
        pool_size=8,
        max_overflow=32,
        timeout=30,
    )


def tune_sqlite(engine: sqlalchemy.engine.Engine, *, always_immediate: bool = False) -> None:
    """Make a SQLite engine fit for several threads and processes writing at once.

    ``always_immediate`` is for engines whose every transaction may write
    (TaskFlow's persistence); otherwise only writer() transactions do.
    """

    # WAL lets readers go on while a writer writes. Write transactions begin
    # IMMEDIATE so that two writers queue on the busy timeout; SQLite's
    # default deferred BEGIN makes one of them fail with "database is locked"
    # when both upgrade from reading to writing. Readers keep a deferred
    # BEGIN so they never wait for a writer.
    # oslo.db emits a plain BEGIN on SQLite (and marks the connection with
    # info["in_transaction"], cleared on commit/rollback); ours replaces it.
    # synchronous=NORMAL: in WAL mode a commit survives the process dying at
    # any point (only a power cut may lose the last commits), without an
    # fsync per commit.
    @sqlalchemy.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    for listener in list(engine.dispatch.begin):
        sqlalchemy.event.remove(engine, "begin", listener)

    @sqlalchemy.event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if "in_transaction" not in connection.info:
            writing = always_immediate or getattr(_writing, "active", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")
            connection.info["in_transaction"] = True

    @sqlalchemy.event.listens_for(engine, "commit")
    @sqlalchemy.event.listens_for(engine, "rollback")
    def _on_end(connection: Any) -> None:
        connection.info.pop("in_transaction", None)


def _get_manager() -> Any:
    if _manager is None:
        configure()
    return _manager


def get_engine() -> sqlalchemy.engine.Engine:
    try:
        engine: sqlalchemy.engine.Engine = _get_manager().writer.get_engine()
    except (db_exc.DBError, sqlalchemy.exc.DBAPIError) as exc:
        if _is_connect_failure(exc):
            raise exceptions.DatabaseUnavailable(_unreachable_message()) from exc
        raise
    return engine


class _Context:
    """enginefacade keeps its per-transaction state on a context object."""


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


def _is_connect_failure(exc: BaseException) -> bool:
    # oslo.db only recognises some drivers' wording of "connection refused";
    # an error raised while connecting carries no statement, whatever the wording.
    if isinstance(exc, db_exc.DBConnectionError):
        return True
    return isinstance(exc, sqlalchemy.exc.DBAPIError | db_exc.DBError) and (
        getattr(exc, "statement", "") is None
        or getattr(getattr(exc, "inner_exception", None), "statement", "") is None
    )


# Set while this thread is inside writer(): a session begins its transaction
# lazily, on its first statement, in the thread that uses it.
_writing = threading.local()


@contextlib.contextmanager
def _explained_errors() -> Iterator[None]:
    """Turn "no schema" and "cannot connect" into errors that say what to do."""
    try:
        yield
    except db_exc.DBNonExistentTable as exc:
        url = sqlalchemy.engine.make_url(_connection).render_as_string(hide_password=True)
        raise exceptions.DatabaseNotSynced(
            f"the database at {url} has no zoneflow schema yet: run 'zoneflow db sync'"
        ) from exc
    except (db_exc.DBError, sqlalchemy.exc.DBAPIError) as exc:
        if _is_connect_failure(exc):
            raise exceptions.DatabaseUnavailable(_unreachable_message()) from exc
        raise


@contextlib.contextmanager
def _transaction(mode: Any, *, write: bool) -> Iterator[Session]:
    _writing.active = write
    try:
        with _explained_errors(), mode.using(_Context()) as session:
            yield session
    finally:
        _writing.active = False


@contextlib.contextmanager
def connection() -> Iterator[sqlalchemy.engine.Connection]:
    """A plain connection for one short read, without the ORM's session.

    For hot paths (mdns answers every SOA query with one): a pooled
    connection and a cached Core statement cost a fraction of a session.
    """
    with _explained_errors(), get_engine().connect() as conn:
        yield conn


@contextlib.contextmanager
def transaction() -> Iterator[sqlalchemy.engine.Connection]:
    """A plain connection in a transaction, committed when the block ends.

    For short hot writes made of Core statements built once (the outbox
    relay's, for every job): no session to build and flush.
    """
    with _explained_errors(), get_engine().begin() as conn:
        yield conn


def writer() -> contextlib.AbstractContextManager[Session]:
    """A session in a read-write transaction, committed when the block ends."""
    return _transaction(_get_manager().writer, write=True)


def reader() -> contextlib.AbstractContextManager[Session]:
    return _transaction(_get_manager().reader, write=False)
