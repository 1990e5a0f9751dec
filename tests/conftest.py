"""Fixtures every test may use; under pytest-xdist, ports per worker."""

from __future__ import annotations

import gc
import os
import random
from collections.abc import Callable, Iterator

import pytest
from oslo_config import cfg

from tests.functional import forkserver
from zoneflow.local import ports


@pytest.fixture
def override() -> Iterator[Callable[..., None]]:
    """``override(group, name=value, ...)`` sets options for this test only."""
    done: list[tuple[str, str]] = []

    def set_options(group: str, **values: object) -> None:
        for name, value in values.items():
            cfg.CONF.set_override(name, value, group=group)
            done.append((name, group))

    yield set_options
    for name, group in done:
        cfg.CONF.clear_override(name, group=group)


# Worker gwN of pytest-xdist picks its servers' ports from range N of as many
# as there are workers, so that two workers never start servers on the same
# port; the ranges lie below the kernel's ephemeral ports (32768 and up), which
# outgoing connections use.
_FIRST_PORT = 20000
_LAST_PORT = 32767


# A test worker allocates without pause (SQLAlchemy, hypothesis, the API's test
# client) and holds little: with the interpreter's thresholds (700, 10, 10) its
# collections took about a tenth of its CPU (measured over four integration
# modules: 55 -> 49 CPU-s with these). Young cycles are still collected, every
# 100,000 allocations; full collections all but never run.
GC_THRESHOLDS = (100_000, 50, 100)


def pytest_configure(config: pytest.Config) -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    # zoneflow's processes are forked from one that imported zoneflow already
    # (tests/functional/forkserver.py), but where a test starts a fresh interpreter.
    forkserver.enable()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    # ZONEFLOW_CHAOS_SEED=new (tests/functional/test_chaos.py): the seed is
    # drawn once, here, before pytest-xdist's workers start and inherit it, so
    # that they all collect the same test. The test prints it first.
    if not worker and os.environ.get("ZONEFLOW_CHAOS_SEED") == "new":
        os.environ["ZONEFLOW_CHAOS_SEED"] = str(random.SystemRandom().randrange(10**6))
    if worker.startswith("gw") and worker[2:].isdigit():
        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
        size = (_LAST_PORT + 1 - _FIRST_PORT) // max(workers, 1)
        first = _FIRST_PORT + int(worker[2:]) % workers * size
        # Set in the environment, so the daemons a test starts inherit it.
        os.environ[ports.PORT_RANGE_ENV] = f"{first}-{first + size - 1}"


def pytest_collection_finish(session: pytest.Session) -> None:
    # What the worker holds once every test module is imported and collected
    # (zoneflow, its libraries, schemathesis's cases) lives until the run ends;
    # yet each full collection of the garbage collector walked it all: about
    # 20 a worker, 0.45 s of CPU each with every thread stopped, 12 to 14 % of
    # the worker's CPU in a run of tests/integration. Frozen, those objects are
    # left out of every collection (0.2 s each; 38 -> 22 s over four workers),
    # which also stops the test's own threads (mdns, conductors) for less long.
    gc.freeze()
