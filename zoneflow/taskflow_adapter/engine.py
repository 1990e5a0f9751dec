"""The engine zoneflow's conductors run jobs on: TaskFlow's parallel engine,
compiling each flow once.

TaskFlow compiles a flow anew for every engine it loads, 1-3 ms of graph
building per job. Jobs of one kind on one pool shape share one flow object
(zoneflow.flows.zone), and a flow's compilation is a frozen description of
it: each engine keeps the state of its own run apart (in its storage and
its runtime). So the engines of one flow share one compiler, which compiles
once and hands every engine the same compilation.

Registered with TaskFlow as the ``zoneflow-parallel`` engine (setup.cfg).
The engine's compiler is TaskFlow's private ``_compiler`` attribute, set
after the stock constructor made its own.

Before a flow runs, its persisted atom states are checked for atoms ahead
of what they depend on, which are reset to run again in order
(zoneflow.taskflow_adapter.resumption).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from taskflow.engines.action_engine import compiler, engine

from zoneflow.taskflow_adapter import resumption

NAME = "zoneflow-parallel"

_lock = threading.Lock()
# A flow's compiler for as long as the flow is in use (flows.zone keeps it).
_compilers: weakref.WeakKeyDictionary[Any, compiler.PatternCompiler] = weakref.WeakKeyDictionary()


def _compiler(flow: Any) -> compiler.PatternCompiler:
    with _lock:
        found = _compilers.get(flow)
        if found is None:
            found = _compilers[flow] = compiler.PatternCompiler(flow)
        return found


class ParallelEngine(engine.ParallelActionEngine):
    def __init__(self, flow: Any, flow_detail: Any, backend: Any, options: Any) -> None:
        super().__init__(flow, flow_detail, backend, options)
        self._compiler = _compiler(flow)
        self._order_restored = False

    def prepare(self) -> None:
        """TaskFlow's prepare, then the persisted states put back in order (once per
        engine) before TaskFlow resumes from them: see resumption."""
        super().prepare()
        if not self._order_restored:
            resumption.restore_order(self.compilation.execution_graph, self.storage)
            self._order_restored = True
