"""The ``zoneflow-parallel`` engine's old address, for installs made before it moved.

An editable install keeps the entry points it was installed with (setup.cfg
now names zoneflow.taskflow_adapter.engine) until ``pip install -e .`` runs
again; until then TaskFlow looks the engine up here. Delete this module once
every install has been refreshed.
"""

from zoneflow.taskflow_adapter.engine import ParallelEngine

__all__ = ["ParallelEngine"]
