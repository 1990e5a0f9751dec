"""retire-target: delete a pool's zones from a target the pool no longer lists,
then forget the target.

A pools file that stops listing a target retires it (``stored_pools.update_pools``):
its row stays, with the type and options it takes to reach the server, while
jobs, thresholds and zone statuses stop counting it. This flow::

    drain-target ─► drop-target

deletes the zones a hundred at a time and records each deletion as a
DELETED row of the target (zone_target_status), so a resumed or re-posted
job goes on where the last one stopped; deletes are idempotent, so the batch
a dying conductor was in is simply done again. drop-target then removes the
target's row and its per-zone rows.

A server that cannot be reached stops the drain at once (asking it once per
zone would take the conductor for hours): the reason is kept on the target
(``zoneflow pool show``), which stays retired until ``zoneflow pool update``
posts the job again. A zone the server refuses to delete is recorded ERROR
and the drain goes on; the job then fails naming it. A target listed again
before its drain ends is in service again: the drain stops at the next batch
and the target is kept.

Data contract: ``target_id`` (the job's store) is required by both tasks;
drain-target provides ``drained`` (how many zones it deleted), recorded only.
"""

from __future__ import annotations

import logging

from taskflow.patterns import linear_flow

from zoneflow import backends, exceptions, objects
from zoneflow.flows.base import Task
from zoneflow.jobs import steps
from zoneflow.storage import retired as stored_retired
from zoneflow.storage import targets as stored_targets
from zoneflow.taskflow_adapter import fencing

LOG = logging.getLogger(__name__)

# Zones deleted between two progress writes: what a resumed job may redo.
DRAIN_BATCH = 100


def retire_target_flow() -> linear_flow.Flow:
    return linear_flow.Flow(objects.JobKind.RETIRE_TARGET).add(DrainTarget(), DropTarget())


# The flows of jobs about a pool target, by kind (zone flows: zoneflow.flows.FACTORIES).
FACTORIES = {objects.JobKind.RETIRE_TARGET: retire_target_flow}


class DrainTarget(Task):
    """Delete every zone of the pool from the retired target, recording each."""

    default_provides = "drained"

    def __init__(self) -> None:
        super().__init__(steps.DRAIN)

    def execute(self, target_id: str, fence: fencing.Claim = fencing.UNFENCED) -> int:
        fence.check()
        target = stored_targets.find_target(target_id)
        if target is None or target.retired_at is None:
            LOG.info("target %s is gone or back in service: nothing to drain", target_id)
            return 0
        stored_retired.set_drain_error(target_id, None)
        backend = backends.get_backend(target)
        drained, failed = 0, []
        after = ("", "")
        # An empty batch also ends the drain of a target listed again meanwhile.
        while batch := stored_retired.zones_to_drain(target_id, after=after, limit=DRAIN_BATCH):
            fence.check()
            outcomes: list[tuple[objects.Zone, str | None]] = []
            for zone in batch:
                try:
                    backend.delete_zone(zone)
                except exceptions.BackendUnreachable as exc:
                    stored_retired.record_drained(target_id, outcomes)
                    stored_retired.set_drain_error(target_id, str(exc))
                    raise
                except exceptions.BackendError as exc:
                    outcomes.append((zone, str(exc)))
                    failed.append(f"{zone.name}: {exc}")
                else:
                    outcomes.append((zone, None))
            stored_retired.record_drained(target_id, outcomes)
            drained += sum(1 for _, error in outcomes if error is None)
            after = (batch[-1].name, batch[-1].id)
        if failed:
            error = exceptions.BackendError(
                target.label,
                f"{len(failed)} zone(s) of the pool could not be deleted from this retired "
                f"target (first: {failed[0]}); fix the cause, then 'zoneflow pool update' with "
                "the same file tries again",
            )
            stored_retired.set_drain_error(target_id, str(error))
            raise error
        LOG.info("retired target %s: %d zone(s) deleted", target.label, drained)
        return drained


class DropTarget(Task):
    """Forget the drained target: its row and its per-zone rows."""

    def __init__(self) -> None:
        super().__init__(steps.DROP)

    def execute(self, target_id: str, fence: fencing.Claim = fencing.UNFENCED) -> None:
        fence.check()
        if stored_retired.drop_retired_target(target_id):
            LOG.info("retired target %s drained and removed", target_id)
