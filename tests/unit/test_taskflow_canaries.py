"""Canaries: one test per private TaskFlow name zoneflow's TaskFlow adapter relies on.

setup.cfg pins taskflow < 7. To lift the pin, install the new TaskFlow and run
this file first: a failure names what the upgrade moved and which module of
zoneflow/taskflow_adapter/ must follow (the package docstring says why each
departure from stock TaskFlow is there).
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from typing import Any
from unittest import mock

import futurist
import pytest
import taskflow.version
from taskflow import engines, task
from taskflow.conductors.backends import impl_executor, impl_nonblocking
from taskflow.engines.action_engine import compiler
from taskflow.engines.action_engine import engine as action_engine
from taskflow.jobs.backends import impl_zookeeper
from taskflow.patterns import linear_flow
from taskflow.types import timing
from zake import fake_client

from zoneflow.taskflow_adapter import engine as adapter_engine
from zoneflow.taskflow_adapter import jobboard, lazy_migration

TASKFLOW = f"taskflow {taskflow.version.version_string()}"
CONDUCTOR = "zoneflow's conductor dispatch in zoneflow/taskflow_adapter/conductor.py"
BOARD = "zoneflow's jobboard view in zoneflow/taskflow_adapter/jobboard.py"
ENGINE = "zoneflow's compilation cache in zoneflow/taskflow_adapter/engine.py"


def _conductor() -> Any:
    return impl_nonblocking.NonBlockingConductor("canary", mock.Mock(), persistence=mock.Mock())


def _board() -> Any:
    return impl_zookeeper.ZookeeperJobBoard("canary", {}, client=fake_client.FakeClient())


def _parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def _calls(method: Callable[..., Any], name: str) -> bool:
    return name in inspect.getsource(method)


# (what is relied on, the check, which zoneflow code needs updating if it fails)
CANARIES: dict[str, tuple[Callable[[], bool], str]] = {
    "NonBlockingConductor._dispatch_job(job), called by its loop": (
        lambda: (
            _parameters(impl_nonblocking.NonBlockingConductor._dispatch_job) == ["self", "job"]
            and _calls(impl_executor.ExecutorConductor._run_until_dead, "self._dispatch_job")
        ),
        CONDUCTOR,
    ),
    "NonBlockingConductor._on_job_done(job, fut)": (
        lambda: (
            _parameters(impl_nonblocking.NonBlockingConductor._on_job_done)
            == ["self", "job", "fut"]
        ),
        CONDUCTOR,
    ),
    "NonBlockingConductor._try_finish_job(job, consume, trash), called when a job is done": (
        lambda: (
            _parameters(impl_nonblocking.NonBlockingConductor._try_finish_job)
            == ["self", "job", "consume", "trash"]
            and _calls(impl_executor.ExecutorConductor._on_job_done, "self._try_finish_job")
        ),
        CONDUCTOR,
    ),
    "NonBlockingConductor._engine_from_job(job)": (
        lambda: (
            _parameters(impl_nonblocking.NonBlockingConductor._engine_from_job) == ["self", "job"]
        ),
        CONDUCTOR,
    ),
    "NonBlockingConductor._listeners_from_job(job, engine)": (
        lambda: (
            _parameters(impl_nonblocking.NonBlockingConductor._listeners_from_job)
            == ["self", "job", "engine"]
        ),
        CONDUCTOR,
    ),
    "NonBlockingConductor._dispatched, the futures of the jobs it runs": (
        lambda: isinstance(_conductor()._dispatched, set),
        CONDUCTOR,
    ),
    "NonBlockingConductor._jobboard, the board its loop claims from": (
        lambda: (
            hasattr(_conductor(), "_jobboard")
            and _calls(impl_executor.ExecutorConductor._run_until_dead, "self._jobboard.iterjobs")
        ),
        CONDUCTOR,
    ),
    "NonBlockingConductor._wait_timeout, the Timeout its loop waits on": (
        lambda: (
            isinstance(_conductor()._wait_timeout, timing.Timeout)
            and _calls(impl_executor.ExecutorConductor._run_until_dead, "self._wait_timeout.wait")
        ),
        CONDUCTOR,
    ),
    "NonBlockingConductor._persistence": (
        lambda: hasattr(_conductor(), "_persistence"),
        CONDUCTOR,
    ),
    "NonBlockingConductor._notifier": (
        lambda: hasattr(_conductor(), "_notifier"),
        CONDUCTOR,
    ),
    "NonBlockingConductor._name": (
        lambda: _conductor()._name == "canary",
        CONDUCTOR,
    ),
    "Timeout._event, set when the conductor stops": (
        lambda: hasattr(timing.Timeout(1.0), "_event"),
        "zoneflow's WakeableTimeout in zoneflow/taskflow_adapter/conductor.py",
    ),
    "ZookeeperJobBoard._fetch_jobs(ensure_fresh), the jobs it knows sorted": (
        lambda: (
            _parameters(impl_zookeeper.ZookeeperJobBoard._fetch_jobs) == ["self", "ensure_fresh"]
        ),
        BOARD,
    ),
    "ZookeeperJobBoard._worker, its notifier pool": (
        lambda: hasattr(_board(), "_worker"),
        "zoneflow's jobboard close() in zoneflow/taskflow_adapter/jobboard.py",
    ),
    "ActionEngine._compiler, the compiler compile() uses": (
        lambda: _compiler_is_used(),
        ENGINE,
    ),
}


class _Noop(task.Task):
    def execute(self) -> None:
        pass


def _compiler_is_used() -> bool:
    """Two zoneflow engines of one flow get the same compilation."""
    flow = linear_flow.Flow("canary").add(_Noop())
    compiled = []
    for _ in range(2):
        engine = engines.load(flow, engine=adapter_engine.NAME)
        engine.compile()
        compiled.append(engine.compilation)
    stock = action_engine.ParallelActionEngine(flow, None, None, {})
    return isinstance(stock._compiler, compiler.PatternCompiler) and compiled[0] is compiled[1]


@pytest.mark.parametrize("name", list(CANARIES))
def test_taskflow_still_has_what_the_adapter_relies_on(name: str) -> None:
    check, needs_updating = CANARIES[name]
    try:
        still_there = check()
    except (AttributeError, TypeError, ValueError, OSError) as exc:
        still_there = False
        name = f"{name} ({type(exc).__name__}: {exc})"
    assert still_there, f"{TASKFLOW} changed {name}: {needs_updating} needs updating"


MIGRATION = (
    "zoneflow's stand-in for TaskFlow's migrations in zoneflow/taskflow_adapter/lazy_migration.py"
)


def test_taskflow_backend_loads_without_alembic_and_still_migrates_with_taskflows_own_code() -> (
    None
):
    # A fresh interpreter: this one may have imported alembic for other tests.
    probe = (
        "import sys, zoneflow.taskflow_adapter.persistence\n"
        "from taskflow.persistence.backends import impl_sqlalchemy\n"
        "print(sorted(m for m in ('alembic', 'mako', 'pygments') if m in sys.modules))\n"
        "sync = impl_sqlalchemy.migration.db_sync\n"
        "print(sync.__module__, sync.__code__.co_filename)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded, sync = result.stdout.splitlines()
    assert loaded == "[]", f"TaskFlow's backend imported {loaded} at start: {MIGRATION}"
    module, filename = sync.split()
    assert module == lazy_migration.MIGRATION and filename.endswith(
        "taskflow/persistence/backends/sqlalchemy/migration.py"
    ), f"{TASKFLOW} moved its migrations' db_sync ({sync}): {MIGRATION}"


def test_futurist_pools_still_have_the_queue_the_jobboards_close_wakes() -> None:
    """zoneflow's jobboard close() shuts the board's notifier pool down without waiting
    and puts one item on its queue (futurist's private ``_work_queue``), so that its
    idle thread ends at once instead of after its one-second poll."""
    pool = futurist.ThreadPoolExecutor(max_workers=1)
    pool.submit(lambda: None).result(timeout=5)
    workers = list(getattr(pool, "_workers", []))
    queue = getattr(pool, "_work_queue", None)
    pool.shutdown(wait=False)
    assert queue is not None and workers, (
        f"futurist {metadata.version('futurist')} changed ThreadPoolExecutor's _work_queue: "
        "zoneflow's jobboard close() in zoneflow/taskflow_adapter/jobboard.py needs updating"
    )
    queue.put(jobboard._WAKE_UP)
    for worker in workers:
        worker.join(timeout=0.5)
    assert not any(worker.is_alive() for worker in workers), "the idle thread did not stop"
