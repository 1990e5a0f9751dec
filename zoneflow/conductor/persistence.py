"""TaskFlow's persistence (logbooks, flow and atom details) in zoneflow's database.

Persisted atom states are what lets a second conductor resume a job a dead
one was running: finished tasks are not run again.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import sqlalchemy
from taskflow.persistence.backends import impl_sqlalchemy

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


class SharedConnectionBackend(impl_sqlalchemy.SQLAlchemyBackend):
    """TaskFlow's SQLAlchemy persistence, handing every caller one connection object.

    Stock TaskFlow builds a new Connection for every storage call, and with
    it the whole table metadata: more than half the cost of running a job
    (measured in bench/). The Connection holds nothing but the engine and
    those tables (its close() does nothing), so one is safe to share.
    """

    def __init__(self, conf: dict[str, Any], engine: Any = None) -> None:
        super().__init__(conf, engine=engine)
        self._shared: Any = None
        self._shared_lock = threading.Lock()

    def get_connection(self) -> Any:
        with self._shared_lock:
            if self._shared is None:
                self._shared = super().get_connection()
            return self._shared


def _create(url: str) -> Any:
    if not url.startswith("sqlite"):
        return SharedConnectionBackend({"connection": url})
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
