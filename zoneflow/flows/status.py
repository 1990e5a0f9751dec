"""The last task of a zone flow: what the job achieved, written in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from zoneflow import jobs, objects
from zoneflow.flows.base import LATEST_SERIAL, Task, waits_for_database
from zoneflow.flows.consensus import meets_threshold
from zoneflow.flows.on_target import target_outcomes
from zoneflow.flows.recovery import action_for
from zoneflow.jobs import steps
from zoneflow.jobs.outcomes import Served, TargetOutcome
from zoneflow.storage import health as stored_health
from zoneflow.storage import status as stored_status
from zoneflow.taskflow_adapter import fencing

LOG = logging.getLogger(__name__)


# What a status writer returns when the zone has moved on to a later serial
# and its newer job decides the zone's status: the job's own end (zoneflow.jobs).
SUPERSEDED = jobs.Outcome.SUPERSEDED


class _StatusWriter(Task):
    """Write what the job achieved, in one transaction: per-target rows, then the zone's status.

    The zone is ACTIVE only if enough nameservers were seen serving the
    serial (the pool's threshold), never on the targets' word alone. It
    returns the status written: ACTIVE, DELETED or ERROR; PENDING when the
    zone is not ACTIVE yet because it moved on or its pool grew meanwhile
    (a newer job carries it); SUPERSEDED when the zone moved on before an
    ERROR could be written.
    """

    def __init__(
        self,
        target_ids: list[str],
        nameservers: list[tuple[str, int]],
        target_addresses: dict[str, tuple[str, int]],
        threshold: int,
        **options: Any,
    ) -> None:
        super().__init__(
            steps.STATUS,
            requires=[steps.target_result(t) for t in target_ids]
            + [steps.served_result(h, p) for h, p in nameservers],
            **options,
        )
        self.target_ids = target_ids
        self.nameservers = nameservers
        self.target_addresses = target_addresses
        self.threshold = threshold

    @waits_for_database
    def _write(
        self,
        action: str,
        zone_id: str,
        serial: int,
        results: dict[str, Any],
        taken_back: Collection[str] = (),
        if_pool_grows: str | None = None,
        priority: int | None = None,
    ) -> str:
        settled = self._settlement(
            action,
            zone_id,
            serial,
            results,
            stored_health.not_counted(self.target_ids),
            taken_back,
            if_pool_grows,
            priority,
        )
        (written,) = stored_status.settle_zones([settled])
        return status_written(settled, written)

    def _settlement(
        self,
        action: str,
        zone_id: str,
        serial: int,
        results: dict[str, Any],
        not_counted: Collection[str],
        taken_back: Collection[str] = (),
        if_pool_grows: str | None = None,
        priority: int | None = None,
    ) -> stored_status.Settlement:
        """What to record of one zone: its status against the pool's threshold, and
        each target's row. ``not_counted``: the targets in maintenance
        (stored_health.not_counted), read once for a batch."""
        served = {(h, p): _served(results, h, p) for h, p in self.nameservers}
        outcomes = target_outcomes(results, self.target_ids)
        updates = [
            update
            for target_id in self.target_ids
            if target_id not in taken_back
            and (
                update := self._target_update(
                    action, serial, target_id, outcomes[target_id], served
                )
            )
            is not None
        ]
        # Nameservers removed from the pool while the job ran are not weighed, nor
        # those of targets in maintenance (their rows say how far behind they are).
        left_out = {self.target_addresses[t] for t in not_counted if t in self.target_addresses}
        counted = {
            ns: seen for ns, seen in served.items() if not seen.dropped and ns not in left_out
        }
        ok = [ns for ns, seen in counted.items() if seen.ok]
        if meets_threshold(len(ok), len(counted), self.threshold):
            if action == objects.Action.DELETE:
                return stored_status.Settlement(
                    zone_id,
                    serial=serial,
                    status=objects.Status.DELETED,
                    targets=updates,
                    delete=True,
                )
            # ACTIVE only if the pool has not grown past this job's targets
            # and nameservers; else the zone goes to the job's follow-up.
            return stored_status.Settlement(
                zone_id,
                serial=serial,
                status=objects.Status.ACTIVE,
                action=objects.Action.NONE,
                covered_targets=self.target_ids,
                covered_nameservers=self.nameservers,
                if_pool_grows=_follow_up(if_pool_grows, priority),
                targets=updates,
            )
        lagging = "; ".join(str(seen.error) for seen in counted.values() if not seen.ok)
        error = (
            f"{len(ok)} of {len(counted)} nameservers serve serial {serial}, below the "
            f"pool's threshold of {self.threshold}% ({lagging})"
        )
        return stored_status.Settlement(
            zone_id, serial=serial, status=objects.Status.ERROR, error=error, targets=updates
        )

    def _target_update(
        self,
        action: str,
        serial: int,
        target_id: str,
        outcome: TargetOutcome,
        served: dict[tuple[str, int], Served],
    ) -> tuple[str, int, str, str | None] | None:
        """What to record for one target: (target id, serial, status, error), or None."""
        if outcome.skipped or outcome.unchanged:
            # Deleted meanwhile (its delete job records the targets), or
            # already recorded as serving this serial and left alone.
            return None
        if not outcome.ok:
            return (target_id, 0, objects.Status.ERROR, outcome.error)
        done = objects.Status.DELETED if action == objects.Action.DELETE else objects.Status.ACTIVE
        address = self.target_addresses.get(target_id)
        seen = served.get(address) if address else None
        if seen is None or seen.dropped:
            # A target that is not also a pool nameserver (a hidden primary, the
            # fake backend): its own success is all there is to record.
            return (target_id, serial, done, None)
        if seen.ok:
            return (target_id, seen.serial or serial, done, None)
        return (target_id, seen.serial or 0, objects.Status.ERROR, seen.error)


class UpdateStatus(_StatusWriter):
    """The status of a create, update or delete job."""

    def __init__(
        self,
        action: str,
        target_ids: list[str],
        nameservers: list[tuple[str, int]],
        target_addresses: dict[str, tuple[str, int]],
        threshold: int,
    ) -> None:
        super().__init__(target_ids, nameservers, target_addresses, threshold, rebind=LATEST_SERIAL)
        self.action = action

    def execute(
        self,
        zone_id: str,
        serial: int,
        fence: fencing.Claim = fencing.UNFENCED,
        taken_back: list[str] | None = None,
        if_pool_grows: str | None = None,
        priority: int | None = None,
        **results: Any,
    ) -> str:
        fence.check()
        # Targets the zone was taken back from: its delete job records them.
        return self._write(
            self.action, zone_id, serial, results, taken_back or (), if_pool_grows, priority
        )


class RecoverStatus(_StatusWriter):
    """The status of a recover-zone job: ACTIVE, or the delete finished, or ERROR."""

    def execute(
        self,
        zone_id: str,
        serial: int,
        wanted: str,
        fence: fencing.Claim = fencing.UNFENCED,
        if_pool_grows: str | None = None,
        priority: int | None = None,
        **results: Any,
    ) -> str:
        fence.check()
        return self._write(
            action_for(wanted),
            zone_id,
            serial,
            results,
            if_pool_grows=if_pool_grows,
            priority=priority,
        )


def status_written(settled: stored_status.Settlement, written: bool) -> str:
    """What a status task returns for a zone it settled, given whether the zone's row
    was written: a zone that moved on to a later serial is its newer job's to decide."""
    if settled.delete:
        return objects.Status.DELETED
    if settled.status == objects.Status.ACTIVE:
        return objects.Status.ACTIVE if written else objects.Status.PENDING
    if not written:
        return SUPERSEDED
    LOG.error("zone %s serial %s is ERROR: %s", settled.zone_id, settled.serial, settled.error)
    return objects.Status.ERROR


def _follow_up(if_pool_grows: str | None, priority: int | None) -> objects.JobOrder | None:
    """The job central ordered to follow this one, at this job's priority (a job
    posted before jobs had one is taken for a change)."""
    if not if_pool_grows:
        return None
    return objects.JobOrder(
        objects.JobKind(if_pool_grows),
        priority=objects.JobPriority(priority or objects.JobPriority.CHANGE),
    )


def _served(results: dict[str, Any], host: str, port: int) -> Served:
    seen = Served.of(results[steps.served_result(host, port)])
    assert seen is not None  # a poll that raised fails the flow before this
    return seen
