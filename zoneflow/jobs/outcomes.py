"""What a job's tasks return about one target or one nameserver, as values.

A task returns a failed target or a lagging nameserver as its outcome
instead of raising, so the consensus and status tasks can weigh it against
the pool's threshold, and ``job show`` and ``--progress`` can say what
happened there.

TaskFlow keeps results in its logbook as JSON (a JSON column on PostgreSQL,
``jsonutils.dumps`` text on SQLite), and a resumed job reads the results its
last run wrote before the conductor died. So a task stores
``outcome.to_result()``, a plain dict with one key per field, and every
reader reads it back with ``of()``: one place that knows the keys. ``of``
reads a result stored with fewer keys (by an older zoneflow) too, each
missing field at its default.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Self

from zoneflow import objects


@dataclasses.dataclass(frozen=True)
class TaskOutcome:
    """Whether it worked there, and why not; kept in TaskFlow's logbook as a dict of its fields."""

    ok: bool
    error: str | None = None

    def to_result(self) -> dict[str, Any]:
        # Every field holds a plain value (bool, int, str, None): no copy is needed.
        return {name: getattr(self, name) for name in objects.field_names(type(self))}

    @classmethod
    def of(cls, result: Any) -> Self | None:
        """The outcome a task stored, or None for a result that is none (a task that raised)."""
        if isinstance(result, cls):
            return result
        if not isinstance(result, dict) or "ok" not in result:
            return None  # not an outcome: a batch's (zone id -> outcome), a begin's
        names = objects.field_names(cls)
        return cls(**{k: v for k, v in result.items() if k in names})


@dataclasses.dataclass(frozen=True)
class TargetOutcome(TaskOutcome):
    """What a job did on one target."""

    # Nothing was done there: the zone was deleted meanwhile, or the target left the pool.
    skipped: bool = False
    # The target left the pool: it counts neither for nor against the threshold.
    retired: bool = False
    # The zone was created there by this job (take-back and revert undo it).
    created: bool = False
    # A recovery found the target serving the serial already, at ``serial``.
    current: bool = False
    serial: int | None = None
    # ... and its row already recorded so: nothing to write for it.
    unchanged: bool = False
    # Catalog provisioning: the catalog was NOTIFYed instead.
    catalog: bool = False
    # Reverted: a create removed again.
    removed: bool = False
    # The action a recovery carried out there (create or update).
    action: str | None = None
    # Failed because the target did not answer (not a refusal of this zone): the
    # other zones of a batch are not tried there (on_target.try_many_on_target).
    unreachable: bool = False

    def replace(self, **changes: Any) -> TargetOutcome:
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class Served(TaskOutcome):
    """What one nameserver was seen serving by the end of a poll."""

    serial: int | None = None
    # The nameserver left the pool while the job ran: not weighed.
    dropped: bool = False


def failure(result: Any) -> str | None:
    """Why a task's returned outcome failed (a target, a nameserver), or None; for a
    batch's task (zone id -> outcome, zoneflow.flows.batch), why each zone failed."""
    outcome = TaskOutcome.of(result)
    if outcome is None:
        if isinstance(result, dict):
            failed = [why for value in result.values() if (why := failure(value)) is not None]
            return "; ".join(failed) or None
        return None
    if outcome.ok is not False:
        return None
    return str(outcome.error or "the target failed")
