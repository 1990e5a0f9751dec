"""The thread that writes a conductor's job records behind its engines.

See zoneflow.taskflow_adapter.persistence, whose connection queues each
atom and flow change here and returns at once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy
from sqlalchemy.dialects import postgresql, sqlite
from taskflow import exceptions as tf_exc

from zoneflow.taskflow_adapter import fencing

LOG = logging.getLogger(__name__)

# How long a flush waits for the writer before it reports a storage failure.
FLUSH_TIMEOUT = 30.0


class LogbookWriter:
    """Writes queued flow and atom rows from one thread, in batches, in order.

    A batch is everything queued while the previous one was being written:
    when idle a change is written as soon as it is queued, and under load one
    batch holds the changes of many jobs for a few round trips in all. A
    batch that fails (the database restarting) goes back in the queue,
    behind any newer change of the same rows, and is retried after a pause
    that grows, until it is written or the process ends.
    """

    RETRY_PAUSES = (0.05, 0.1, 0.2, 0.5, 1.0)

    def __init__(self, engine: Any, tables: Any) -> None:
        self._engine = engine
        # Built once: SQLAlchemy's compiled-statement cache then finds them at once.
        self._update_flows = update_by_uuid(tables.flowdetails)
        self._upsert_atoms = Upsert(engine.dialect, tables.atomdetails)
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._queued = 0  # changes queued so far
        self._written = 0  # all changes up to this count are in the database
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="logbook-writer", daemon=True)
        self._thread.start()

    def put_atom(self, row: dict[str, Any]) -> None:
        self._put(("atom", row["uuid"]), row)

    def put_flow(self, row: dict[str, Any]) -> None:
        self._put(("flow", row["uuid"]), row)

    def flush(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            wanted = self._queued
            while self._written < wanted:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise tf_exc.StorageFailure(
                        f"job records still not written after {timeout:g}s: {self._error}"
                    )
                self._cond.wait(left)

    def close(self) -> None:
        """Write what is queued (for at most FLUSH_TIMEOUT), then stop the thread."""
        try:
            self.flush(FLUSH_TIMEOUT)
        except tf_exc.StorageFailure as exc:
            LOG.error("%s", exc)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _put(self, key: tuple[str, str], row: dict[str, Any]) -> None:
        with self._cond:
            self._pending[key] = row
            self._queued += 1
            self._cond.notify_all()

    def _run(self) -> None:
        failures = 0
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
                batch, self._pending = self._pending, {}
                upto = self._queued
            try:
                self._write(batch)
            except sqlalchemy.exc.SQLAlchemyError as exc:
                LOG.warning("could not write job records, will retry: %s", exc)
                with self._cond:
                    self._error = exc
                    self._pending = {**batch, **self._pending}
                time.sleep(self.RETRY_PAUSES[min(failures, len(self.RETRY_PAUSES) - 1)])
                failures += 1
                continue
            failures = 0
            with self._cond:
                # The batch held everything queued up to ``upto`` that was
                # not written before, retried batches included.
                self._written = upto
                self._error = None
                self._cond.notify_all()

    def _write(self, batch: dict[tuple[str, str], dict[str, Any]]) -> None:
        rows: dict[str, list[dict[str, Any]]] = {"flow": [], "atom": []}
        for (kind, uuid), row in batch.items():
            if not fencing.fenced(uuid):
                rows[kind].append(row)
        with self._engine.begin() as conn:
            if rows["flow"]:
                conn.execute(
                    self._update_flows, [dict(row, b_uuid=row["uuid"]) for row in rows["flow"]]
                )
            if rows["atom"]:
                self._upsert_atoms(conn, rows["atom"])


def update_by_uuid(table: sqlalchemy.Table) -> Any:
    """UPDATE of the columns its parameters name, for the row of parameter ``b_uuid``."""
    return sqlalchemy.update(table).where(table.c.uuid == sqlalchemy.bindparam("b_uuid"))


def insert(dialect: str, table: sqlalchemy.Table) -> Any:
    """The dialect's own INSERT, which knows ON CONFLICT."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise tf_exc.StorageFailure(f"zoneflow's job records need PostgreSQL or SQLite, not {dialect}")


def upsert(dialect: str, table: sqlalchemy.Table) -> Any:
    """INSERT of whole rows that replaces the row of the same uuid if there is one."""
    statement = insert(dialect, table)
    replaced = {
        c.name: statement.excluded[c.name] for c in table.c if c.name not in ("uuid", "created_at")
    }
    return statement.on_conflict_do_update(index_elements=[table.c.uuid], set_=replaced)


class Upsert:
    """Writes whole rows of ``table``, each replacing the row of its uuid if there is one.

    On PostgreSQL the rows of a batch go in one statement (``VALUES (...), (...)``):
    given many rows, psycopg2 runs SQLAlchemy's upsert once per row (its
    insertmanyvalues leaves ON CONFLICT statements alone), and the atoms of a
    job on 8 targets were about 30 statements, more than a third of all the
    statements a change cost. In one statement a batch of 11 rows costs
    PostgreSQL 30 µs of CPU a row against 130, and the writer 47 against 150
    (bench/persistence.py; doc/benchmarks.md, "Persistence cost per job").
    The statement's text is built here, its values bound by psycopg2 as
    SQLAlchemy's would be: each column's own bind processing (TaskFlow's JSON
    columns), its Python default for a row that lacks it. SQLite, in process,
    runs SQLAlchemy's statement once per row.
    """

    # Rows a statement carries at most: its text stays a few hundred kilobytes. (A
    # batch never names one uuid twice: the writer keeps an atom's newest change.)
    ROWS_A_STATEMENT = 1000

    def __init__(self, dialect: sqlalchemy.Dialect, table: sqlalchemy.Table) -> None:
        self._statement = upsert(dialect.name, table)
        self._many = dialect.name == "postgresql"
        if not self._many:
            return
        quote = dialect.identifier_preparer.quote
        self._columns = [
            (
                column.name,
                column.type.dialect_impl(dialect).bind_processor(dialect),
                _insert_default(column),
            )
            for column in table.c
        ]
        names = [quote(name) for name, _, _ in self._columns]
        replaced = ", ".join(
            f"{quoted} = EXCLUDED.{quoted}"
            for (name, _, _), quoted in zip(self._columns, names, strict=True)
            if name not in ("uuid", "created_at")
        )
        self._head = f"INSERT INTO {quote(table.name)} ({', '.join(names)}) VALUES "
        self._tail = f" ON CONFLICT ({quote('uuid')}) DO UPDATE SET {replaced}"
        self._row = "(" + ", ".join(["%s"] * len(names)) + ")"

    def __call__(self, conn: sqlalchemy.Connection, rows: list[dict[str, Any]]) -> None:
        if not self._many:
            conn.execute(self._statement, rows)
            return
        for first in range(0, len(rows), self.ROWS_A_STATEMENT):
            some = rows[first : first + self.ROWS_A_STATEMENT]
            values: list[Any] = []
            for row in some:
                for name, process, default in self._columns:
                    value = row[name] if name in row else default()
                    values.append(value if process is None else process(value))
            # Through SQLAlchemy, which maps the driver's errors to its own (the
            # writer retries those) and drops a connection the server ended.
            conn.exec_driver_sql(
                self._head + ", ".join([self._row] * len(some)) + self._tail, tuple(values)
            )


def _insert_default(column: sqlalchemy.Column[Any]) -> Callable[[], Any]:
    """What SQLAlchemy's INSERT would give ``column`` when a row lacks it (its Python
    default; None when it has none, or one the database computes)."""
    default = column.default
    if not isinstance(default, sqlalchemy.ColumnDefault):
        return lambda: None
    if default.is_callable:
        return functools.partial(default.arg, None)  # SQLAlchemy's wrapper takes a context
    value = default.arg if default.is_scalar else None
    return lambda: value


@contextlib.contextmanager
def storage_failure(doing: str) -> Iterator[None]:
    """Database errors as TaskFlow's StorageFailure, which its storage layer retries."""
    try:
        yield
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise tf_exc.StorageFailure(f"Failed {doing}", cause=exc) from exc
