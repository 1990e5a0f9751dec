"""Zone flows: TaskFlow graph flows that push one change to a pool.

``FACTORIES`` and ``pool_args`` are loaded on first use, so that importing
:mod:`zoneflow.flows.options` (as :func:`zoneflow.config.setup` does for
every command) does not load TaskFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoneflow.flows.zone import FACTORIES, pool_args

__all__ = ["FACTORIES", "pool_args"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("zoneflow.flows.zone"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
