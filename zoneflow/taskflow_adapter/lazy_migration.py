"""TaskFlow's migration module, loaded when a migration runs, not when zoneflow starts.

TaskFlow's SQLAlchemy backend imports its migration module at the top, and
with it alembic, mako and pygments: 130-160 ms of CPU in every process that
uses the backend (every conductor, API, producer and CLI change command),
for the one command that migrates, ``zoneflow db sync``. :func:`defer` puts
a stand-in under the module's name before the backend is imported; the
first attribute asked of it (the backend's ``migration.db_sync``) loads
TaskFlow's own module and answers from it.

Not importlib's LazyLoader: importing a module found in ``sys.modules``
reads its ``__spec__``, which would load a lazy module at once.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
import types
from typing import Any

#: The module TaskFlow's impl_sqlalchemy imports at its top.
MIGRATION = "taskflow.persistence.backends.sqlalchemy.migration"


def defer() -> None:
    """Put the stand-in in place (once; a no-op when the module is imported already).

    Nothing of TaskFlow is imported here: processes that never use its
    backend (mdns, the inspector) import this package too.
    """
    if MIGRATION not in sys.modules:
        sys.modules[MIGRATION] = _StandIn()


class _StandIn(types.ModuleType):
    """Answers every attribute from TaskFlow's module, loading it the first time."""

    def __init__(self) -> None:
        super().__init__(MIGRATION, "TaskFlow's migrations, loaded on first use")
        self._lock = threading.Lock()
        self._loaded: types.ModuleType | None = None

    def __getattr__(self, name: str) -> Any:  # only for what the stand-in lacks
        return getattr(self._module(), name)

    def _module(self) -> types.ModuleType:
        with self._lock:
            if self._loaded is None:
                self._loaded = _load()
            return self._loaded


def _load() -> types.ModuleType:
    """TaskFlow's module, found in its package (``sys.modules`` holds the stand-in)."""
    package_name, _, _ = MIGRATION.rpartition(".")
    package = importlib.import_module(package_name)
    spec = importlib.machinery.PathFinder.find_spec(MIGRATION, package.__path__)
    if spec is None or spec.loader is None:
        raise ImportError(f"{MIGRATION} is not in {package.__path__}", name=MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
