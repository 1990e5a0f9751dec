"""The thread that writes a conductor's job records behind its engines.

See zoneflow.taskflow_adapter.persistence, whose connection queues each
atom and flow change here and returns at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
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
        self._upsert_atoms = upsert(engine.dialect.name, tables.atomdetails)
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
                conn.execute(self._upsert_atoms, rows["atom"])


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
    """INSERT of whole rows that replaces the row of the same uuid if there is one.

    Given many rows, psycopg2 runs it once per row. A RETURNING clause would
    make SQLAlchemy send them as one statement instead, but building that
    statement costs the writer more CPU (which the engines' threads need)
    than the round trips it saves; the writer runs behind the engines, so
    no job waits for them.
    """
    statement = insert(dialect, table)
    replaced = {
        c.name: statement.excluded[c.name] for c in table.c if c.name not in ("uuid", "created_at")
    }
    return statement.on_conflict_do_update(index_elements=[table.c.uuid], set_=replaced)


@contextlib.contextmanager
def storage_failure(doing: str) -> Iterator[None]:
    """Database errors as TaskFlow's StorageFailure, which its storage layer retries."""
    try:
        yield
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise tf_exc.StorageFailure(f"Failed {doing}", cause=exc) from exc
