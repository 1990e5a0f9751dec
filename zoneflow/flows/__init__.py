"""Zone flows: TaskFlow graph flows that push one change to a pool."""

from zoneflow.flows.zone import FACTORIES, pool_args

__all__ = ["FACTORIES", "pool_args"]
