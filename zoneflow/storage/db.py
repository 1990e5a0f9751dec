"""Database sessions through oslo.db's enginefacade.

``configure()`` is called once per process (tests call it again for a fresh
database); ``writer()`` and ``reader()`` give a session inside a transaction
and turn oslo.db's connection errors into :class:`DatabaseUnavailable`.

A process that only reads through Core connections (``zoneflow zone list``)
is configured with ``sessions=False``: its engine is a plain SQLAlchemy one,
and oslo.db, whose import alone costs more than such a command may take, is
loaded only if a session is asked for after all.

Over 400 lines, and kept whole: configuring the engine, SQLite's BEGIN
IMMEDIATE, telling a lost transaction from a broken one and running it again
(:func:`retried`), and the transactions handed out all share this module's
state (the session manager, the plain engine, the thread's write mode).
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import select
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ParamSpec, TypeAlias, TypeVar

import sqlalchemy
from oslo_config import cfg
from oslo_db import options as db_options

from zoneflow import defaults, exceptions

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

CONF = cfg.CONF
# What storage's functions that write in their caller's transaction take: the
# session of a unit_of_work().
Unit: TypeAlias = "Session"
P = ParamSpec("P")
T = TypeVar("T")


busy_opts = [
    cfg.FloatOpt(
        "busy_wait",
        default=defaults.DEFAULT_BUSY_WAIT,
        min=0.1,
        help="Seconds a transaction may wait for a busy database: for SQLite's write lock "
        "while other writers hold it, or, on any database, trying a transaction again that "
        "lost a deadlock or a serialization conflict. Past it the request is answered 503 "
        "database_unavailable (with Retry-After) and a service's write is tried again later.",
    ),
    cfg.FloatOpt(
        "idle_in_transaction_timeout",
        default=defaults.DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT,
        min=0,
        help="PostgreSQL only: seconds a zoneflow connection may hold a transaction open "
        "without running a statement before the server ends its session. A process paused "
        "or frozen inside a transaction (a stopped conductor, a VM suspended) would "
        "otherwise keep its row locks, and every other process needing those rows would "
        "wait until it resumed. zoneflow's transactions run their statements back to back, "
        "never waiting on a user or the network. 0 leaves the server's setting.",
    ),
]


#: Connections a process keeps open to PostgreSQL, per engine, by default.
POOL_SIZE = 10


def keep_connections(count: int) -> None:
    """Keep ``count`` connections open by default, at least :data:`POOL_SIZE`: for a
    server whose every thread may read at once. A connection past the pool is
    closed when given back, and on PostgreSQL the next one forks a backend again.
    An operator's own ``[database] max_pool_size`` wins. Call it before the first
    connection: the pool is sized when the engine is made."""
    CONF.set_default("max_pool_size", max(POOL_SIZE, count), group="database")


def pool_options() -> dict[str, Any]:
    """``create_engine``'s pool arguments for a PostgreSQL engine of zoneflow's own
    beside oslo.db's (TaskFlow's logbooks): sized by the same ``[database]``
    options, so that one setting sizes every pool of a process."""
    options: dict[str, Any] = {"pool_size": CONF.database.max_pool_size}
    if CONF.database.max_overflow is not None:
        options["max_overflow"] = CONF.database.max_overflow
    if CONF.database.pool_timeout is not None:
        options["pool_timeout"] = CONF.database.pool_timeout
    return options


def register_opts(conf: cfg.ConfigOpts) -> None:
    # Fail fast when the database is down: a CLI user should get an error in
    # seconds, not after oslo.db's default of ten ten-second retries.
    db_options.set_defaults(conf, connection=defaults.DEFAULT_CONNECTION)
    # A conductor runs several jobs at once, each with a task per target in a
    # thread of its own: oslo.db's 5 kept connections had PostgreSQL fork a
    # backend for 1.45 changes in 1 under the load benchmark (a connection
    # past the pool is closed when given back), most of PostgreSQL's CPU; 10
    # made it 0.32. 20 made it 0.02, but the deployment then held more than
    # PostgreSQL's default max_connections (100) and was refused.
    conf.set_default("max_pool_size", POOL_SIZE, group="database")
    conf.set_default("max_retries", 2, group="database")
    conf.set_default("retry_interval", 1, group="database")
    conf.register_opts(busy_opts, group="database")


register_opts(CONF)

_manager: Any = None
_connection: str = defaults.DEFAULT_CONNECTION
_sessions = True
# With sessions=False: the plain engine, made on first use.
_engine: sqlalchemy.engine.Engine | None = None


def configure(connection: str | None = None, *, sessions: bool = True) -> None:
    """Point this process at a database (default: ``[database] connection``).

    ``sessions=False`` is for a process that reads through :func:`connection`
    only: it gets a plain SQLAlchemy engine, tuned as oslo.db's would be, and
    oslo.db is not imported until a session is asked for.
    """
    global _manager, _connection, _sessions, _engine
    url = connection or CONF.database.connection
    if url.startswith("sqlite"):
        create_private_sqlite_file(url)
    _connection = url
    _sessions = sessions
    _engine = None
    _manager = _session_manager(url) if sessions else None


def _session_manager(url: str) -> Any:
    from oslo_db.sqlalchemy import enginefacade

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
    else:
        manager.append_on_engine_create(tune_postgresql)
    return manager


def _plain_engine() -> sqlalchemy.engine.Engine:
    """The engine of a process configured with ``sessions=False``.

    SQLAlchemy pools a SQLite file's connections itself (a QueuePool), so only
    tune_sqlite's PRAGMAs and BEGINs are added; a PostgreSQL URL loads its
    driver here, as oslo.db would.
    """
    global _engine
    if _engine is None:
        if _connection.startswith("sqlite"):
            _engine = sqlalchemy.create_engine(_connection)
            tune_sqlite(_engine)
        else:
            _engine = sqlalchemy.create_engine(_connection, **pool_options())
            tune_postgresql(_engine)
    return _engine


def tune_postgresql(engine: sqlalchemy.engine.Engine) -> None:
    """End the session of a connection left idle in a transaction, on PostgreSQL.

    A conductor stopped with SIGSTOP between two statements of a transaction
    kept its row locks, and the conductor that took its job over waited on
    them for as long as it stayed stopped (tests/functional/test_fencing.py).
    With ``[database] idle_in_transaction_timeout`` the server ends such a
    session and its locks go with it; the paused process finds its connection
    gone when it resumes, and its fence says the job is no longer its own.
    """
    if engine.dialect.name != "postgresql":
        return
    _wait_for_room(engine)
    # oslo.db's engine tests each pooled connection as it is taken (pre-ping);
    # this test makes no round trip (see _still_open).
    engine.dialect.do_ping = _still_open  # type: ignore[method-assign]
    milliseconds = int(CONF.database.idle_in_transaction_timeout * 1000)
    if milliseconds <= 0:
        return

    @sqlalchemy.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET idle_in_transaction_session_timeout = {milliseconds}")
        cursor.close()
        # A connection made outside a transaction of SQLAlchemy's: keep the SET.
        dbapi_connection.commit()

    # oslo.db made a first connection, to check the database answers, before
    # calling this: it is pooled without the setting, so it goes.
    engine.dispose()


def _still_open(dbapi_connection: Any) -> bool:
    """Whether a pooled connection, idle since its last use, may serve another.

    SQLAlchemy's own test (its pre-ping) sends ``SELECT 1`` every time a
    connection is taken from the pool: the load benchmark counted one in six
    of all the statements PostgreSQL ran. An idle connection has nothing to
    read unless the server ended it: on a shutdown or restart PostgreSQL sends
    its goodbye (a FATAL error) and closes the socket, which then reads as
    ready. So a connection whose socket has something to read is taken for
    dead, and SQLAlchemy replaces every pooled connection as its pre-ping's
    failure would.
    """
    if dbapi_connection.closed:
        return False
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN)
    return not poller.poll(0)


def _wait_for_room(engine: sqlalchemy.engine.Engine) -> None:
    """Make a new connection that PostgreSQL refuses for want of room (its
    max_connections met) try again until ``[database] busy_wait`` has passed.

    Other clients' connections end meanwhile (the other processes' overflow,
    given back): a request waits for one, as it waits for a busy database,
    instead of failing. Past busy_wait the refusal stands, and says what to
    change (_unreachable_message).
    """

    @sqlalchemy.event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        dbapi = dialect.loaded_dbapi
        return _within_busy_wait(
            lambda: dbapi.connect(*cargs, **cparams),
            lambda exc: isinstance(exc, dbapi.OperationalError) and _no_room(exc),
        )


def _within_busy_wait(attempt: Callable[[], T], again: Callable[[Exception], bool]) -> T:
    """``attempt()``, tried again while what it raises is worth trying ``again`` for,
    until ``[database] busy_wait`` has passed since the first try; then the last
    error is raised. The pauses are jittered, so that two that collided do not
    collide again, and double up to half a second."""
    deadline = time.monotonic() + CONF.database.busy_wait
    pause = 0.01
    while True:
        try:
            return attempt()
        except Exception as exc:
            if not again(exc) or time.monotonic() + pause >= deadline:
                raise
        time.sleep(pause * random.uniform(0.5, 1.5))
        pause = min(pause * 2, 0.5)


def create_private_sqlite_file(url: str) -> None:
    """Create the SQLite file of ``url`` readable and writable by its owner only (0600).

    It holds TSIG secrets and the pools' backend options. SQLite would create
    it 0644 (under the usual umask 022); created empty here first, it keeps
    this mode, and SQLite gives its -wal and -shm files the mode of the
    database file. An existing file keeps the mode its operator gave it.
    """
    path = sqlalchemy.engine.make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return
    except OSError:
        # A missing directory, no permission: SQLite's own error says which,
        # when the database is first used.
        return


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
    # IMMEDIATE so that two writers queue for the write lock (see
    # _begin_immediate); SQLite's default deferred BEGIN makes one of them
    # fail with "database is locked" when both upgrade from reading to
    # writing. Readers keep a deferred BEGIN so they never wait for a writer.
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
        # SQLite's own wait, for readers (a WAL being recovered) and for each of
        # a writer's tries at the write lock.
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_SLICE_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    for listener in list(engine.dispatch.begin):
        sqlalchemy.event.remove(engine, "begin", listener)

    @sqlalchemy.event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if "in_transaction" not in connection.info:
            if always_immediate or getattr(_writing, "active", False):
                _begin_immediate(connection.connection.driver_connection)
            else:
                connection.exec_driver_sql("BEGIN")
            connection.info["in_transaction"] = True

    @sqlalchemy.event.listens_for(engine, "commit")
    @sqlalchemy.event.listens_for(engine, "rollback")
    def _on_end(connection: Any) -> None:
        connection.info.pop("in_transaction", None)


# How long SQLite itself waits for a lock before answering "database is
# locked" to one try; _begin_immediate tries again until [database] busy_wait.
_SQLITE_BUSY_SLICE_MS = 1000


def _begin_immediate(dbapi_connection: sqlite3.Connection) -> None:
    """Take SQLite's write lock, waiting up to ``[database] busy_wait`` for it.

    SQLite's busy handler alone gave up after its timeout while dozens of
    writers queued (500 zone creates from 50 connections had 58 answered
    500), and its sleeps do not queue waiters fairly: one can lose many times
    in a row. So each try waits a slice and the loop tries again until the
    whole budget is spent. BEGIN is the transaction's first statement: when it
    fails nothing of the transaction has run, so trying it again is running
    the whole transaction again.
    """
    deadline = time.monotonic() + CONF.database.busy_wait
    while True:
        try:
            dbapi_connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _sqlite_busy(exc):
                raise
            if time.monotonic() >= deadline:
                raise exceptions.DatabaseBusy(_busy_message()) from exc
        # SQLite answers at once, without waiting, where waiting could not help
        # (another connection of this thread holds the lock): do not spin.
        time.sleep(random.uniform(0, 0.01))


def _sqlite_busy(exc: BaseException) -> bool:
    # SQLITE_BUSY (another connection holds the lock) or SQLITE_LOCKED (another
    # statement of this connection does), with their extended codes.
    return isinstance(exc, sqlite3.OperationalError) and (
        getattr(exc, "sqlite_errorcode", 0) & 0xFF in (5, 6)
        or "database is locked" in str(exc)
        or "database table is locked" in str(exc)
    )


# PostgreSQL rolled the transaction back and asks for it to be tried again: it was
# picked as a deadlock's victim, or it could not be serialized with another.
_PG_DEADLOCK = "40P01"
_PG_SERIALIZATION = "40001"


def _lost_to(exc: BaseException) -> str | None:
    """What the transaction lost to, if it failed only because others held what it
    needed; None otherwise."""
    db_exc = _oslo_db_exceptions()
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if _sqlite_busy(error):
            return "another writer held the database's lock"
        code = getattr(error, "pgcode", None)
        if (db_exc and isinstance(error, db_exc.DBDeadlock)) or code == _PG_DEADLOCK:
            return "a deadlock with another transaction"
        if code == _PG_SERIALIZATION:
            return "a serialization conflict with another transaction"
        error = (
            getattr(error, "inner_exception", None)
            or getattr(error, "orig", None)
            or error.__cause__
        )
    return None


def _shown_url() -> str:
    """The database's URL as messages show it: without its password."""
    return sqlalchemy.engine.make_url(_connection).render_as_string(hide_password=True)


def _busy_message() -> str:
    return (
        f"the database at {_shown_url()} stayed busy with other transactions for "
        f"{CONF.database.busy_wait:g}s ([database] busy_wait): try again in a moment"
    )


def _lost_message(why: str) -> str:
    """What a transaction that lost once says: it was not tried again (:func:`retried`
    says how long it tried)."""
    return (
        f"the database at {_shown_url()} rolled this transaction back ({why}); nothing "
        "of it was written: try again"
    )


def retried(function: Callable[P, T]) -> Callable[P, T]:
    """Run ``function`` again, whole, when its transaction lost to another one.

    For a function that is one write transaction (or idempotent): a deadlock
    or serialization failure (PostgreSQL) or a lock SQLite would not wait for
    rolls the transaction back, so running the function again from its start
    is safe. Tries stop once ``[database] busy_wait`` has passed since the first;
    the last :class:`~zoneflow.exceptions.DatabaseBusy` is raised then.
    """

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return _within_busy_wait(
                lambda: function(*args, **kwargs),
                lambda exc: isinstance(exc, exceptions.DatabaseBusy),
            )
        except exceptions.DatabaseBusy as exc:
            # Tried again until busy_wait: say so, not only what the last try met.
            raise exceptions.DatabaseBusy(_busy_message()) from exc

    return run


def _get_manager() -> Any:
    global _manager
    if _manager is None:
        if _sessions:
            configure()
        else:  # a session after all, in a process configured without
            _manager = _session_manager(_connection)
    return _manager


def get_engine() -> sqlalchemy.engine.Engine:
    if not _sessions:
        return _plain_engine()
    try:
        engine: sqlalchemy.engine.Engine = _get_manager().writer.get_engine()
    except _database_errors() as exc:
        if _is_connect_failure(exc):
            raise exceptions.DatabaseUnavailable(_unreachable_message(exc)) from exc
        raise
    return engine


class _Context:
    """enginefacade keeps its per-transaction state on a context object."""


def _no_room(exc: BaseException) -> bool:
    """Did PostgreSQL refuse a new connection because its max_connections was met?"""
    return "too many clients" in str(exc)


def _unreachable_message(exc: BaseException | None = None) -> str:
    url = _shown_url()
    if exc is not None and _no_room(exc):
        # It answers, and refused one more client for [database] busy_wait.
        return (
            f"the database at {url} refused a new connection for "
            f"{CONF.database.busy_wait:g}s ([database] busy_wait): it has as many clients "
            "as its max_connections allows; raise max_connections, or lower [database] "
            "max_pool_size in zoneflow.conf (connections each zoneflow process keeps)"
        )
    return (
        f"the database at {url} is unreachable: "
        "check that it runs and that [database] connection in zoneflow.conf is right"
    )


def connection_url() -> str:
    """The URL this process uses (TaskFlow's persistence shares it). A process with
    sessions is configured first if nothing did; one configured with
    ``sessions=False`` has its URL already, and asking for it loads no oslo.db (the
    event driver asks it, and mdns and the CLI's reads run so)."""
    if _sessions:
        _get_manager()
    return _connection


def _oslo_db_exceptions() -> Any:
    """oslo.db's exception module once this process uses oslo.db, else None: a
    process on a plain engine meets none of its errors and need not import it."""
    if _manager is None:
        return None
    from oslo_db import exception

    return exception


def _database_errors() -> tuple[type[Exception], ...]:
    """What a database error may be raised as: SQLAlchemy's own, and oslo.db's."""
    db_exc = _oslo_db_exceptions()
    if db_exc is None:
        return (sqlalchemy.exc.DBAPIError,)
    return (sqlalchemy.exc.DBAPIError, db_exc.DBError)


def _no_such_table(exc: BaseException) -> bool:
    """Is this "no zoneflow schema yet"? oslo.db says so with its own class; on a
    plain engine it is the driver's error: SQLite's message, PostgreSQL's code."""
    db_exc = _oslo_db_exceptions()
    if db_exc is not None and isinstance(exc, db_exc.DBNonExistentTable):
        return True
    orig = getattr(exc, "orig", None)
    return (isinstance(orig, sqlite3.OperationalError) and "no such table" in str(orig)) or (
        getattr(orig, "pgcode", None) == "42P01"
    )


def _is_connect_failure(exc: BaseException) -> bool:
    # oslo.db only recognises some drivers' wording of "connection refused";
    # an error raised while connecting carries no statement, whatever the wording.
    db_exc = _oslo_db_exceptions()
    if db_exc is not None and isinstance(exc, db_exc.DBConnectionError):
        return True
    return isinstance(exc, _database_errors()) and (
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
    except _database_errors() as exc:
        if _no_such_table(exc):
            raise exceptions.DatabaseNotSynced(
                f"the database at {_shown_url()} has no zoneflow schema yet: run 'zoneflow db sync'"
            ) from exc
        if (why := _lost_to(exc)) is not None:
            raise exceptions.DatabaseBusy(_lost_message(why)) from exc
        if _is_connect_failure(exc):
            raise exceptions.DatabaseUnavailable(_unreachable_message(exc)) from exc
        raise


@contextlib.contextmanager
def _transaction(mode: Any, *, write: bool) -> Iterator[Session]:
    with _write_mode(write), _explained_errors(), mode.using(_Context()) as session:
        yield session


@contextlib.contextmanager
def _write_mode(write: bool) -> Iterator[None]:
    """Mark this thread's transactions begun in the block as writers (or not); a
    transaction nested in another gives the outer one its mode back."""
    outer = getattr(_writing, "active", False)
    _writing.active = write
    try:
        yield
    finally:
        _writing.active = outer


@contextlib.contextmanager
def connection() -> Iterator[sqlalchemy.engine.Connection]:
    """A plain connection for short reads, without the ORM's session.

    For hot paths (mdns answers every SOA query with one): a pooled
    connection and a cached Core statement cost a fraction of a session. On
    PostgreSQL each statement is a transaction of its own (psycopg2's
    autocommit, set on the client only): a transaction around one read added a
    BEGIN and a ROLLBACK, two round trips for nothing, since at READ COMMITTED
    each statement reads what was committed when it began either way. Reads
    that must see one snapshot take :func:`snapshot` instead.
    """
    with _explained_errors(), get_engine().connect() as conn:
        raw = conn.connection.dbapi_connection if conn.dialect.name == "postgresql" else None
        if raw is None:
            yield conn
            return
        raw.autocommit = True
        try:
            yield conn
        finally:
            if not raw.closed:
                raw.autocommit = False  # as the pool's other users expect it


@contextlib.contextmanager
def snapshot() -> Iterator[sqlalchemy.engine.Connection]:
    """A plain connection whose reads all see one snapshot of the database, until the
    block ends (a transfer: the records of the serial it read, while changes land).

    PostgreSQL: a REPEATABLE READ transaction, asked for by its first statement;
    an isolation level set on the connection instead was reset on its return
    to the pool by one more round trip or two. SQLite: a WAL reader's
    transaction sees one snapshot anyway.
    """
    with _explained_errors(), get_engine().connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield conn


@contextlib.contextmanager
def transaction() -> Iterator[sqlalchemy.engine.Connection]:
    """A plain connection in a transaction, committed when the block ends.

    For short hot writes made of Core statements built once (the outbox
    relay's, for every job): no session to build and flush.
    """
    with _write_mode(True), _explained_errors(), get_engine().begin() as conn:
        yield conn


def writer() -> contextlib.AbstractContextManager[Session]:
    """A session in a read-write transaction, committed when the block ends."""
    return _transaction(_get_manager().writer, write=True)


def unit_of_work() -> contextlib.AbstractContextManager[Unit]:
    """One change's transaction, opened by its caller (central) and handed to each of
    storage's functions the change is made of; committed once, when the block ends.

    The caller reads what it decides on, checks it (quotas, placement, the zone
    rules) and writes, all in the block, so a check and the write it allows are
    one atomic step. Run the function that opens the unit with :func:`retried`:
    a unit that lost to another transaction is rolled back, and the whole
    function, its checks with it, runs again.
    """
    return writer()


def reader() -> contextlib.AbstractContextManager[Session]:
    return _transaction(_get_manager().reader, write=False)
