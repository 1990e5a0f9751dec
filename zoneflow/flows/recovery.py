"""recover-zone's task on one target: bring it to the zone's wanted state,
touching it only where it is not there yet; and how a recovery judges a target
and undoes what it did, which recover-zones' task (zoneflow.flows.batch) shares."""

from __future__ import annotations

import logging
from typing import Any

import dns.exception
from taskflow.types import failure as tf_failure

from zoneflow import exceptions, objects
from zoneflow.dns import query
from zoneflow.flows.base import CONF, Task, in_service, reason, waits_for_database
from zoneflow.flows.on_target import (
    record_reverted,
    remove_again,
    retired,
    through_catalog,
    try_on_target,
)
from zoneflow.flows.propagation import notify
from zoneflow.jobs import steps
from zoneflow.jobs.outcomes import TargetOutcome
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import status as stored_status
from zoneflow.storage import targets as stored_targets
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import fencing

LOG = logging.getLogger(__name__)


def action_for(wanted: str) -> str:
    """The action a recovery carries out for a zone wanted ACTIVE or DELETED."""
    return objects.Action.DELETE if wanted == objects.Status.DELETED else objects.Action.UPDATE


def _served_serial(zone_name: str, host: str, port: int) -> int | None:
    """The serial a nameserver answers for a zone now; None if it has none or is silent."""
    try:
        return query.soa_serial(zone_name, host, port, timeout=CONF.flows.query_timeout)
    except (dns.exception.DNSException, OSError):
        return None


class RecoverOnTarget(Task):
    """Bring one target to the zone's wanted state, touching it only if it is not there.

    Wanted ACTIVE: a target whose nameserver answers the serial already (or,
    with no nameserver to ask, whose row records it) is left alone; one that
    answers an older serial gets an update and a NOTIFY; one that answers
    nothing gets a create. Wanted DELETED: the zone is deleted on every target
    (deletes are idempotent). Revert records where each target was left and
    undoes nothing, except for a zone never made ACTIVE (action CREATE): the
    creates this job made are undone, as a failed create-zone's are.
    """

    def __init__(self, target_id: str) -> None:
        super().__init__(
            steps.on_target("recover", target_id), provides=steps.target_result(target_id)
        )
        self.target_id = target_id

    @waits_for_database
    def execute(
        self, zone_id: str, serial: int, wanted: str, fence: fencing.Claim = fencing.UNFENCED
    ) -> dict[str, Any]:
        return self._recover(zone_id, serial, wanted, fence).to_result()

    def _recover(
        self, zone_id: str, serial: int, wanted: str, fence: fencing.Claim
    ) -> TargetOutcome:
        fence.check()
        zone = stored_zones.get_zone_any(zone_id)
        if zone is None:
            raise exceptions.ZoneNotFound(f"zone {zone_id} no longer exists")
        target = stored_targets.find_target(self.target_id)
        if target is None or not in_service(target):
            return retired(zone, self.target_id)
        pool = stored_pools.get_pool(target.pool_id)
        if wanted == objects.Status.DELETED:
            if pool.provisioning == objects.CATALOG:
                return through_catalog(target)
            return try_on_target(objects.Action.DELETE, target, zone, fence)
        if zone.status == objects.Status.DELETED:  # its delete finished meanwhile
            return TargetOutcome(ok=True, skipped=True)

        row = stored_status.get_target_status(zone_id, self.target_id)
        address = target_address(target)
        served = _served_serial(zone.name, *address) if address else None
        judged = judge(serial, row, served, address is not None)
        if isinstance(judged, TargetOutcome):
            LOG.info("%s already serves %s serial %s: left alone", target.label, zone.name, serial)
            return judged
        if pool.provisioning == objects.CATALOG:
            return through_catalog(target)
        LOG.info("%s: %s of %s to serial %s", target.label, judged, zone.name, serial)
        outcome = try_on_target(judged, target, zone, fence)
        if outcome.ok and judged == objects.Action.UPDATE and address:
            # A target that has the zone fetches the serial now, not at its refresh.
            notify(zone.name, *address, serial)
        return outcome.replace(action=judged)

    @waits_for_database
    def revert(
        self,
        zone_id: str,
        serial: int,
        wanted: str,
        result: Any,
        flow_failures: dict[str, tf_failure.Failure],
        fence: fencing.Claim = fencing.UNFENCED,
        **_: Any,
    ) -> None:
        if fence.lost():
            return  # the job is another conductor's now: undoing would undo its work
        outcome = TargetOutcome.of(result)
        if outcome is None:
            return
        why = reason(flow_failures)
        undo_recovery(zone_id, serial, self.target_id, action_for(wanted), outcome, why)


def target_address(target: objects.PoolTarget) -> tuple[str, int] | None:
    """Where a target's nameserver answers, or None for a target without one (the
    fake backend): then its row is all there is to go by."""
    host = target.options.get("host")
    return (str(host), int(target.options.get("port", 53))) if host is not None else None


def judge(
    serial: int, row: objects.TargetStatus | None, served: int | None, asked: bool
) -> TargetOutcome | str:
    """What a recovery does on one target for a zone wanted ACTIVE at ``serial``: the
    outcome of leaving it alone when it is there already, else the action to take
    (create or update).

    ``served``: the serial its nameserver answers (None: none, or silent), when
    it was ``asked``; a target without a nameserver is judged by its ``row``."""
    recorded = row is not None and row.status == objects.Status.ACTIVE and row.serial >= serial
    if (served is not None and served >= serial) if asked else recorded:
        return TargetOutcome(ok=True, current=True, serial=served or serial, unchanged=recorded)
    if asked:
        has_zone = served is not None
    else:
        has_zone = row is not None and row.serial > 0 and row.status != objects.Status.DELETED
    return objects.Action.UPDATE if has_zone else objects.Action.CREATE


def undo_recovery(
    zone_id: str, serial: int, target_id: str, action: str, outcome: TargetOutcome, why: str
) -> None:
    """What a failed recovery (``action``: action_for its wanted state) leaves on one
    target: its row recorded where the target was left, nothing undone, except for
    a zone never made ACTIVE (action CREATE), which is recovered as a create and
    undone as one: off the targets it was put on."""
    zone = stored_zones.get_zone_any(zone_id)
    if zone is not None and zone.action == objects.Action.CREATE:
        action = objects.Action.CREATE
        if outcome.action == objects.Action.CREATE:
            outcome = remove_again(zone_id, target_id, outcome)
    record_reverted(zone_id, serial, target_id, action, outcome, why)
