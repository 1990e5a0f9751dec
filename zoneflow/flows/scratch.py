"""What the tasks of one run of one job share in memory: never persisted.

The conductor injects a new :class:`Scratch` (as ``scratch``, transient, like
``fence``, the claim the job runs under) each time it runs a job. A resumed
job's tasks therefore find it empty and read storage themselves: a note in
it is never older than the run that wrote it, which is what lets tasks
trust it.

It spares the database the reads parallel tasks would each make: the begin
task reads the zone (every zone of a batch) and every target of the job in
one statement and leaves them here, where each target's task would read its
own.
"""

from __future__ import annotations

import dataclasses

from zoneflow import objects


@dataclasses.dataclass
class Scratch:
    # Target id -> what its task acts on, read by the begin task of this run.
    targets: dict[str, objects.TargetAction] = dataclasses.field(default_factory=dict)
    # Of a batch job (zoneflow.flows.batch): zone id -> target id -> the same.
    batch: dict[str, dict[str, objects.TargetAction]] = dataclasses.field(default_factory=dict)
