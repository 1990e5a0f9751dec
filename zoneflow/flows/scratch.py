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

And it lets a batch's polls write a zone's status as soon as every
nameserver serves it (zoneflow.flows.batch.EarlyStatus): the targets' tasks
leave their outcomes here, the polls what each nameserver was seen serving.
A resumed run lacks the outcomes of the tasks that ended before it: its
polls write nothing early, and its status task writes every zone.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from zoneflow import objects
from zoneflow.jobs.outcomes import Served


@dataclasses.dataclass
class Scratch:
    # Target id -> what its task acts on, read by the begin task of this run.
    targets: dict[str, objects.TargetAction] = dataclasses.field(default_factory=dict)
    # Of a batch job (zoneflow.flows.batch): zone id -> target id -> the same.
    batch: dict[str, dict[str, objects.TargetAction]] = dataclasses.field(default_factory=dict)
    # Of a batch job: target id -> its task's result (zone id -> its outcome there).
    outcomes: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # Of a batch job that creates or updates: zone id -> the targets it was taken back
    # from; None until the take-back task ends in this run.
    taken_back: dict[str, list[str]] | None = None
    # Of a batch job: zone id -> nameserver -> what this run's polls saw it serve.
    served: dict[str, dict[tuple[str, int], Served]] = dataclasses.field(default_factory=dict)
    # Of a batch job: zone id -> the status its poll wrote, once every nameserver
    # served it ("" while being written).
    settled: dict[str, str] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
