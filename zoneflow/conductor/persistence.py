"""TaskFlow's persistence (logbooks, flow and atom details) in zoneflow's database.

Persisted atom states are what lets a second conductor resume a job a dead
one was running: finished tasks are not run again.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import sqlalchemy
from taskflow import exceptions as tf_exc
from taskflow.persistence.backends import impl_sqlalchemy

from zoneflow.conductor import fencing
from zoneflow.storage import db

_lock = threading.Lock()
_backends: dict[str, Any] = {}


def get_backend() -> Any:
    """The persistence backend on this process's database (one per process)."""
    url = db.connection_url()
    with _lock:
        backend = _backends.get(url)
        if backend is None:
            backend = _create(url)
            _backends[url] = backend
        return backend


# Atom metadata keys that only report progress: nothing resumption needs.
_PROGRESS_KEYS = frozenset({"progress", "progress_details"})
# Atoms whose last written row a connection remembers (to skip progress-only
# writes); an atom forgotten is simply written again on its next change.
WRITTEN_ATOMS_KEPT = 20_000


class LeanConnection(impl_sqlalchemy.Connection):
    """TaskFlow's SQLAlchemy connection, writing each change once and only once.

    The stock connection reads an atom's row back before every write and
    rewrites every atom of a flow whenever the flow's own state changes: about
    110 statements for a 9-task job. Here:

    - an atom is written with one UPDATE (no read): the engine's in-memory
      detail is the whole truth, and only the conductor that holds the job
      writes it;
    - a flow's state change updates the flow row and inserts the atoms that
      are new; existing atoms are saved on their own when they change;
    - an atom change that only moves its progress (TaskFlow reports 0.0 and
      1.0 around every task) is not written: progress says nothing about what
      has to run again, and the next real change writes it along;
    - a job this process has lost to another conductor (see fencing) writes
      nothing more: its record is the new owner's.

    Every state a resumed job needs (each atom's state, intention, result or
    failure, the flow's state) is still in the database when the change that
    made it returns.
    """

    def __init__(self, backend: Any, upgrade_lock: Any) -> None:
        super().__init__(backend, upgrade_lock)
        # What each atom's row holds, as last written (the newest atoms only).
        self._written: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
        self._written_lock = threading.Lock()

    def update_atom_details(self, atom_detail: Any) -> Any:
        if fencing.fenced(atom_detail.uuid):
            return atom_detail  # the job is another conductor's: its record is theirs
        values = atom_detail.to_dict()
        with self._written_lock:
            last = self._written.get(atom_detail.uuid)
        if last is not None and _same_but_progress(last, values):
            return atom_detail
        table = self._tables.atomdetails
        doing = f"updating atom details with uuid '{atom_detail.uuid}'"
        # One statement: on PostgreSQL it goes without BEGIN and COMMIT.
        single = self._backend.single_statement_engine
        with _storage_failure(doing), single.begin() as conn:
            done = conn.execute(
                sqlalchemy.update(table).where(table.c.uuid == atom_detail.uuid).values(values)
            )
        if done.rowcount == 0:
            raise tf_exc.NotFound(f"No atom details found with uuid '{atom_detail.uuid}'")
        with self._written_lock:
            self._written[atom_detail.uuid] = values
            self._written.move_to_end(atom_detail.uuid)
            while len(self._written) > WRITTEN_ATOMS_KEPT:
                self._written.popitem(last=False)
        return atom_detail

    def update_flow_details(self, flow_detail: Any) -> Any:
        if fencing.fenced(flow_detail.uuid):
            return flow_detail
        flows, atoms = self._tables.flowdetails, self._tables.atomdetails
        doing = f"updating flow details with uuid '{flow_detail.uuid}'"
        with _storage_failure(doing), self._engine.begin() as conn:
            done = conn.execute(
                sqlalchemy.update(flows)
                .where(flows.c.uuid == flow_detail.uuid)
                .values(flow_detail.to_dict())
            )
            if done.rowcount == 0:
                raise tf_exc.NotFound(f"No flow details found with uuid '{flow_detail.uuid}'")
            stored = set(
                conn.execute(
                    sqlalchemy.select(atoms.c.uuid).where(atoms.c.parent_uuid == flow_detail.uuid)
                ).scalars()
            )
            for atom_detail in flow_detail:
                if atom_detail.uuid not in stored:
                    self._insert_atom_details(conn, atom_detail, flow_detail.uuid)
        return flow_detail


@contextlib.contextmanager
def _storage_failure(doing: str) -> Iterator[None]:
    """Database errors as TaskFlow's StorageFailure, which its storage layer retries."""
    try:
        yield
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise tf_exc.StorageFailure(f"Failed {doing}", cause=exc) from exc


def _same_but_progress(before: dict[str, Any], after: dict[str, Any]) -> bool:
    if before.keys() != after.keys():
        return False
    for key, value in after.items():
        if key == "meta":
            old, new = before[key] or {}, value or {}
            if {k: v for k, v in old.items() if k not in _PROGRESS_KEYS} != {
                k: v for k, v in new.items() if k not in _PROGRESS_KEYS
            }:
                return False
        elif before[key] != value:
            return False
    return True


class SharedConnectionBackend(impl_sqlalchemy.SQLAlchemyBackend):
    """TaskFlow's SQLAlchemy persistence, handing every caller one lean connection.

    Stock TaskFlow builds a new Connection for every storage call, and with
    it the whole table metadata: more than half the cost of running a job
    (measured in bench/). The Connection holds nothing but the engine, those
    tables and what it last wrote (its close() does nothing), so one is safe
    to share.
    """

    def __init__(
        self, conf: dict[str, Any], engine: Any = None, single_statement_engine: Any = None
    ) -> None:
        super().__init__(conf, engine=engine)
        self._shared: Any = None
        self._shared_lock = threading.Lock()
        #: For writes of one statement: an autocommit engine where the
        #: database has one (no BEGIN/COMMIT round trips), else the engine.
        self.single_statement_engine = single_statement_engine or self.engine

    def close(self) -> None:
        if self.single_statement_engine is not self.engine:
            self.single_statement_engine.dispose()
        super().close()

    def get_connection(self) -> Any:
        with self._shared_lock:
            if self._shared is None:
                super().get_connection()  # TaskFlow's check that the database answers
                self._shared = LeanConnection(self, upgrade_lock=self._upgrade_lock)
            return self._shared


def _create(url: str) -> Any:
    if not url.startswith("sqlite"):
        autocommit = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
        return SharedConnectionBackend({"connection": url}, single_statement_engine=autocommit)
    # TaskFlow's own SQLite engine opens a connection per call and commits
    # with an fsync each time; ours pools connections, uses WAL and takes the
    # write lock up front so concurrent engines queue instead of failing.
    engine = sqlalchemy.create_engine(url)
    db.tune_sqlite(engine, always_immediate=True)
    return SharedConnectionBackend({"connection": url}, engine=engine)


def upgrade() -> None:
    """Create or migrate TaskFlow's logbook tables."""
    with contextlib.closing(get_backend().get_connection()) as connection:
        connection.upgrade()


def reset() -> None:
    """Forget cached backends (tests switch databases)."""
    with _lock:
        for backend in _backends.values():
            backend.close()
        _backends.clear()
