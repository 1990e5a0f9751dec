"""The runs of a job, as its logbook keeps them: who ran it and how each run ended.

A run either fails (its flow raised an error TaskFlow hands the job back
for) or is lost with its conductor (the conductor died, or its ZooKeeper
session ended, and its claim vanished with it, the flow never having ended).
The two are bounded apart (see zoneflow.conductor.bounded): a failed run
says something against the job, a lost run mostly against the conductor,
unless the job loses its conductors at the same step every time.

Kept in the logbook's metadata as plain dicts (``to_meta``), read back with
``of``; the runs a stopping conductor suspended are not kept.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Self


class RunEnd(enum.StrEnum):
    """How one run of a job ended."""

    RUNNING = "running"  # running now, or the run that ended the job (see records.info)
    FINISHED = "finished"  # the run that carried the job to its end, whatever that end was
    FAILED = "failed"  # the flow raised: counts against [conductor] max_job_attempts
    LOST = "lost"  # its conductor died or lost its ZooKeeper session mid-run


@dataclasses.dataclass(frozen=True)
class Run:
    """One run of a job: its number, its conductor, how it ended, where and why."""

    number: int
    conductor: str
    ended: RunEnd = RunEnd.RUNNING
    # A lost run: the step it was at when its conductor went (``at create-zone-on-...``).
    step: str | None = None
    # A failed run: its error.
    error: str | None = None

    def to_meta(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def of(cls, meta: dict[str, Any]) -> Self:
        return cls(
            number=int(meta.get("number", 0)),
            conductor=str(meta.get("conductor", "")),
            ended=RunEnd(meta.get("ended", RunEnd.RUNNING)),
            step=meta.get("step"),
            error=meta.get("error"),
        )


def runs_of(meta: dict[str, Any]) -> list[Run]:
    """The runs a job's logbook metadata keeps, oldest first."""
    return [Run.of(run) for run in meta.get("runs", ()) if isinstance(run, dict)]
