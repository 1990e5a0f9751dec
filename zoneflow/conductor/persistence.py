"""TaskFlow's persistence (logbooks, flow and atom details) in zoneflow's database.

Persisted atom states are what lets a second conductor resume a job a dead
one was running: finished tasks are not run again.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from taskflow.persistence import backends

from zoneflow.storage import db

_lock = threading.Lock()
_backends: dict[str, Any] = {}


def get_backend() -> Any:
    """The persistence backend on this process's database (one per process)."""
    url = db.connection_url()
    with _lock:
        backend = _backends.get(url)
        if backend is None:
            backend = backends.fetch({"connection": url})
            _backends[url] = backend
        return backend


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
