"""The one thread pool every engine of a process runs its tasks on.

TaskFlow's parallel engine builds and tears down a thread pool per run when
none is given, which costs about a second per flow; sharing one long-lived
pool brings an 8-target no-op flow down to a few milliseconds.
"""

from __future__ import annotations

import threading

import futurist

from zoneflow.engine import options

CONF = options.CONF


_lock = threading.Lock()
_executor: futurist.ThreadPoolExecutor | None = None


def shared_executor() -> futurist.ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None or not _executor.alive:
            _executor = futurist.ThreadPoolExecutor(max_workers=CONF.engine.workers)
        return _executor


def engine_options() -> dict[str, object]:
    """What every parallel engine of this process is loaded with."""
    return {"executor": shared_executor()}
