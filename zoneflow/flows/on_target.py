"""The task that acts on one target, and what undoes it.

ZoneActionOnTarget creates, updates or deletes the zone on one target with
bounded retries; TakeBackIfDeleted removes the zone again from the targets
a create reached after the zone's delete was asked for. What a target's
task did is a :class:`~zoneflow.jobs.outcomes.TargetOutcome`, returned (a
failed target too) for the consensus and status tasks to weigh.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from taskflow.types import failure as tf_failure

from zoneflow import backends, exceptions, objects
from zoneflow.flows.base import (
    CONF,
    LATEST_SERIAL,
    Task,
    in_service,
    reason,
    waits_for_database,
)
from zoneflow.flows.propagation import notify
from zoneflow.flows.scratch import Scratch
from zoneflow.jobs import steps
from zoneflow.jobs.outcomes import TargetOutcome
from zoneflow.storage import catalogs as stored_catalogs
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import status as stored_status
from zoneflow.storage import targets as stored_targets
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import fencing

LOG = logging.getLogger(__name__)


def try_on_target(
    action: str,
    target: objects.PoolTarget,
    zone: objects.Zone,
    fence: fencing.Claim = fencing.UNFENCED,
) -> TargetOutcome:
    """``action`` of ``zone`` on ``target``, up to ``[flows] target_attempts`` times;
    the outcome, never a raise but the fence's: a job lost while waiting to try
    again is another conductor's, and this one must not touch the target."""
    call = _backend_call(target, action)
    delay = CONF.flows.target_retry_delay
    error = ""
    unreachable = False
    for attempt in range(1, CONF.flows.target_attempts + 1):
        try:
            call(zone)
            return TargetOutcome(ok=True)
        except exceptions.BackendError as exc:
            error = str(exc)
            unreachable = isinstance(exc, exceptions.BackendUnreachable)
            LOG.info(
                "%s of %s on target %s, try %d of %d: %s",
                action,
                zone.name,
                target.label,
                attempt,
                CONF.flows.target_attempts,
                error,
            )
        if attempt < CONF.flows.target_attempts:
            time.sleep(delay)
            delay *= 2
            fence.check()
    # Once per failed target, not per try: this is what an operator acts on.
    LOG.warning(
        "target %s failed %s of %s after %d tries: %s",
        target.label,
        action,
        zone.name,
        CONF.flows.target_attempts,
        error,
    )
    return TargetOutcome(ok=False, error=error, unreachable=unreachable)


def retired(zone: objects.Zone, target_id: str) -> TargetOutcome:
    """The outcome on a target the pool no longer has (retired, or gone since).

    Nothing is done there: the retire-target job deletes the pool's zones
    from it, and a zone created there now would outlive it. It counts
    neither for nor against the threshold.
    """
    LOG.info("%s: target %s has left the pool, nothing done there", zone.name, target_id)
    return TargetOutcome(ok=True, skipped=True, retired=True)


def _backend_call(target: objects.PoolTarget, action: str) -> Callable[[objects.Zone], None]:
    backend = backends.get_backend(target)
    return {
        objects.Action.CREATE: backend.create_zone,
        objects.Action.UPDATE: backend.update_zone,
        objects.Action.DELETE: backend.delete_zone,
    }[objects.Action(action)]


def record_reverted(
    zone_id: str,
    serial: int,
    target_id: str,
    action: str,
    outcome: TargetOutcome,
    why: str,
) -> None:
    """Record, for one target of a failed job, what the job leaves there and why.

    Only the newest change's job speaks for the zone: a job overtaken by a
    newer serial records nothing.
    """
    if outcome.skipped or outcome.unchanged:
        return
    zone = stored_zones.get_zone_any(zone_id)
    if zone is None or zone.serial != serial:
        return
    if not outcome.ok:
        # Behind: its recorded serial stays what it last served.
        stored_status.set_target_status(
            zone_id, target_id, serial=0, status=objects.Status.ERROR, error=outcome.error
        )
    elif outcome.current:
        # A recovery found it serving the serial already and left it alone.
        stored_status.set_target_status(
            zone_id, target_id, serial=int(outcome.serial or serial), status=objects.Status.ACTIVE
        )
    elif action == objects.Action.DELETE:
        # A delete is never undone: the zone is wanted gone, and is gone here.
        stored_status.set_target_status(
            zone_id, target_id, serial=serial, status=objects.Status.DELETED
        )
    elif outcome.removed:
        stored_status.set_target_status(
            zone_id,
            target_id,
            serial=0,
            status=objects.Status.ERROR,
            error=f"created, then removed again: {why}",
        )
    else:
        # Kept (an update, a recovery, a catalog member): the change stays,
        # but nobody checked that this target serves it.
        stored_status.set_target_status(
            zone_id,
            target_id,
            serial=0,
            status=objects.Status.PENDING,
            error=f"serial {serial} kept (not reverted) but not verified: {why}",
        )


class ZoneActionOnTarget(Task):
    """Create, update or delete a zone on one target, with bounded retries.

    A target that keeps failing does not fail the task: the outcome is
    returned so the consensus check can weigh it against the pool's
    threshold. Revert removes a created zone again (an update or a delete
    stays as it is, for recovery) and records what the target is left with.
    """

    def __init__(self, action: str, target_id: str) -> None:
        super().__init__(
            steps.on_target(action, target_id),
            provides=steps.target_result(target_id),
            rebind=LATEST_SERIAL,
        )
        self.action = action
        self.target_id = target_id

    @waits_for_database
    def execute(
        self,
        zone_id: str,
        serial: int,
        fence: fencing.Claim = fencing.UNFENCED,
        scratch: Scratch | None = None,
    ) -> dict[str, Any]:
        fence.check()
        # Read by this run's begin task; a resumed run's task reads its own.
        wanted = scratch.targets.get(self.target_id) if scratch is not None else None
        if wanted is None:
            wanted = stored_targets.get_target_action(zone_id, self.target_id)
        if wanted.zone is None:
            raise exceptions.ZoneNotFound(f"zone {zone_id} no longer exists")
        return act_on_target(self.action, self.target_id, wanted, fence).to_result()

    @waits_for_database
    def revert(
        self,
        zone_id: str,
        serial: int,
        result: Any,
        flow_failures: dict[str, tf_failure.Failure],
        fence: fencing.Claim = fencing.UNFENCED,
        **_: Any,
    ) -> None:
        if fence.lost():
            return  # the job is another conductor's now: undoing would undo its work
        outcome = TargetOutcome.of(result)
        if outcome is None:
            return  # this task itself failed: nothing was done here
        if self.action == objects.Action.CREATE:
            outcome = remove_again(zone_id, self.target_id, outcome)
        record_reverted(
            zone_id, serial, self.target_id, self.action, outcome, reason(flow_failures)
        )


@dataclasses.dataclass(frozen=True)
class Planned:
    """The backend call :func:`plan_on_target` decided on: ``action`` of ``zone`` on
    ``target``; :meth:`done` turns what the call did into the zone's outcome."""

    action: str
    target: objects.PoolTarget
    zone: objects.Zone

    def done(self, outcome: TargetOutcome) -> TargetOutcome:
        # TakeBackIfDeleted checks, once for all targets, that no delete raced it.
        return outcome.replace(created=self.action == objects.Action.CREATE and outcome.ok)


def act_on_target(
    action: str, target_id: str, wanted: objects.TargetAction, fence: fencing.Claim
) -> TargetOutcome:
    """Create, update or delete ``wanted``'s zone (which exists) on one target: the
    outcome for the consensus, one zone's part of a job's task on the target."""
    planned = plan_on_target(action, target_id, wanted)
    if isinstance(planned, TargetOutcome):
        return planned
    return planned.done(try_on_target(planned.action, planned.target, planned.zone, fence))


def plan_on_target(
    action: str,
    target_id: str,
    wanted: objects.TargetAction,
    *,
    notify_catalog: bool = True,
) -> TargetOutcome | Planned:
    """What :func:`act_on_target` does for ``wanted``'s zone on one target: the outcome
    when no backend call is needed (done already, or nothing to do), else the call.
    ``notify_catalog`` false: a zone joining or leaving the catalog sends no NOTIFY
    of it (a batch sends one for all its zones)."""
    zone, target = wanted.zone, wanted.target
    assert zone is not None
    if target is None or not in_service(target):
        return retired(zone, target_id)
    if action != objects.Action.DELETE and (
        wanted.zone_deleted or zone.action == objects.Action.DELETE
    ):
        # The zone was deleted, or its delete asked for, while this job
        # waited: its delete job owns it now, and may have removed it from
        # this target already, so creating it here would leave it behind.
        # An earlier run of this task, cut short, may have done just that.
        if wanted.provisioning != objects.CATALOG:
            take_back(zone, target)
        return TargetOutcome(ok=True, skipped=True)
    if action == objects.Action.UPDATE and zone.action == objects.Action.CREATE:
        # Not created yet as far as anyone knows: its create job may not
        # have run (its conductor died, it waits on the board). This job,
        # the newest change, is the one to make it ACTIVE, so it creates
        # the zone (creating one that exists succeeds) rather than poll
        # for a zone no target has.
        action = objects.Action.CREATE
    elif action == objects.Action.UPDATE and not wanted.recorded:
        # The target joined the pool after the zone was made and its
        # backfill job has not run (a change goes before a backfill): it
        # may never have been given the zone, so this job creates it there
        # (creating one that exists succeeds) rather than poll for it.
        action = objects.Action.CREATE
    if action != objects.Action.UPDATE and wanted.provisioning == objects.CATALOG:
        return through_catalog(target, notify_now=notify_catalog)
    return Planned(action, target, zone)


def try_many_on_target(
    action: str,
    target: objects.PoolTarget,
    zones: list[objects.Zone],
    fence: fencing.Claim = fencing.UNFENCED,
) -> dict[str, TargetOutcome]:
    """``action`` of each of ``zones`` on ``target``: by zone id, each outcome as
    :func:`try_on_target` gives it.

    Creates and deletes go to the backend in one call where it has a step of its
    server's for several zones (``Backend.batches``: Knot's configuration
    transaction).
    When that call fails, each zone is tried alone, so that one zone the server
    refuses fails alone and the others of the batch are made. Once one zone's
    every try found the target unreachable, the zones after it fail with that
    reason untried: each would wait out its tries and their delays too (for a
    batch of 25, over half a minute holding the conductor's slot), and a target
    that answers again is caught up by its recovery.
    """
    backend = backends.get_backend(target)
    at_once = {
        objects.Action.CREATE: backend.create_zones,
        objects.Action.DELETE: backend.delete_zones,
    }.get(objects.Action(action))
    if at_once is not None and len(zones) > 1 and backend.batches:
        try:
            at_once(zones)
        except exceptions.BackendError as exc:
            LOG.info(
                "%s of %d zones at once on target %s failed, each is tried alone: %s",
                action,
                len(zones),
                target.label,
                exc,
            )
            fence.check()
        else:
            return {zone.id: TargetOutcome(ok=True) for zone in zones}
    outcomes: dict[str, TargetOutcome] = {}
    for zone in zones:
        outcome = outcomes[zone.id] = try_on_target(action, target, zone, fence)
        if outcome.unreachable:
            untried = TargetOutcome(
                ok=False,
                unreachable=True,
                error=f"not tried: the target did not answer for {zone.name} ({outcome.error})",
            )
            outcomes.update((z.id, untried) for z in zones if z.id not in outcomes)
            break
    return outcomes


def take_back(zone: objects.Zone, target: objects.PoolTarget) -> None:
    """Remove from a target a zone that is wanted gone (its delete job does too).

    Not if a newer zone has its name by now: a target knows zones by name.
    A failure is left to the delete job, which removes the zone anyway.
    """
    try:
        if stored_reads.get_zone(zone.name).id != zone.id:
            return
    except exceptions.ZoneNotFound:
        pass
    try_on_target(objects.Action.DELETE, target, zone)


class TakeBackIfDeleted(Task):
    """Take the zone back from the targets this job created it on, if its
    delete was asked for meanwhile; the ids of those targets.

    The zone's delete job may have removed it from a target before this job
    created it there, and would leave it behind. One read, begun after every
    target's task has finished, sees any delete asked before those creates
    ended; a delete asked later has its job remove the zone after them.
    """

    default_provides = "taken_back"

    def __init__(self, target_ids: list[str]) -> None:
        super().__init__(steps.TAKE_BACK, requires=[steps.target_result(t) for t in target_ids])
        self.target_ids = target_ids

    @waits_for_database
    def execute(
        self, zone_id: str, fence: fencing.Claim = fencing.UNFENCED, **results: dict[str, Any]
    ) -> list[str]:
        created = [t for t in self.target_ids if _outcome(results, t).created]
        if not created or not stored_zones.zone_wanted_gone(zone_id):
            return []
        fence.check()
        take_back_from(zone_id, created)
        return created


def take_back_from(zone_id: str, target_ids: list[str]) -> None:
    """Take a zone wanted gone back from these targets, those still in service."""
    zone = stored_zones.get_zone_any(zone_id)
    for target_id in target_ids:
        target = stored_targets.find_target(target_id)
        if zone is not None and target is not None and in_service(target):
            take_back(zone, target)


def target_outcomes(results: dict[str, Any], target_ids: list[str]) -> dict[str, TargetOutcome]:
    """Target id -> its task's outcome, from the results a task requires by name."""
    return {t: _outcome(results, t) for t in target_ids}


def _outcome(results: dict[str, Any], target_id: str) -> TargetOutcome:
    outcome = TargetOutcome.of(results[steps.target_result(target_id)])
    assert outcome is not None  # a target's task that raised fails the flow before this
    return outcome


def remove_again(zone_id: str, target_id: str, outcome: TargetOutcome) -> TargetOutcome:
    """Undo a create on one target; the outcome to record for it.

    A failed removal is returned, not raised: a revert that raised would
    leave the zone PENDING for good, and recovery finds the zone there.
    """
    zone = stored_zones.get_zone_any(zone_id)
    if zone is None or not outcome.ok or outcome.skipped:
        return outcome
    if outcome.catalog or outcome.current:
        # One target cannot leave a catalog (the zone stays listed until it
        # is deleted), and a target that served the zone before is not ours
        # to empty.
        return outcome
    target = stored_targets.find_target(target_id)
    if target is None or not in_service(target):
        return outcome  # its zones are the retire-target job's to delete
    removal = try_on_target(objects.Action.DELETE, target, zone)
    if not removal.ok:
        return TargetOutcome(
            ok=False, error=f"created, and could not be removed again: {removal.error}"
        )
    LOG.info("reverted: %s removed from target %s", zone.name, target.label)
    return outcome.replace(removed=True)


def through_catalog(target: objects.PoolTarget, *, notify_now: bool = True) -> TargetOutcome:
    """Catalog provisioning: the zone is (or is no longer) in the pool's catalog
    since storage wrote it; NOTIFY the catalog so the target reads it now
    (``notify_now`` false: the caller sends one NOTIFY for a batch's zones,
    :func:`notify_catalog`)."""
    if notify_now:
        notify_catalog(target)
    return TargetOutcome(ok=True, catalog=True)


def notify_catalog(target: objects.PoolTarget) -> None:
    """NOTIFY a target of its pool's catalog at its newest serial.

    An unanswered NOTIFY fails nothing: the target also reads the catalog
    every ``catalog_zone_refresh`` seconds, and polling decides.
    """
    catalog = stored_catalogs.get_catalog(target.pool_id)
    assert catalog is not None  # pools.parse requires a catalog_zone for this mode
    host = target.options.get("host")
    if host is not None:
        notify(catalog.name, str(host), int(target.options.get("port", 53)), catalog.serial)
