"""The tasks of update-zones: one job bringing several zones of one pool to their
latest serials, each zone with the semantics update-zone gives one.

The flow has update-zone's shape, each step carrying the batch::

    begin ─► [UpdateZonesOnTarget per target, in parallel] ─► consensus-check
          ─► [per nameserver, in parallel: NOTIFY every zone, then poll each]
          ─► update-status

What differs is that no step fails the job for one zone. Each task records
an outcome per zone: a target's task the outcome of each zone there; the
consensus weighs each zone against the pool's threshold and passes on those
that meet it (``agreed``); a nameserver's task NOTIFYs and polls those; the
status task writes each zone's status in its own transaction. A zone below
the threshold is what a failed update-zone leaves: nothing undone (storage
keeps the new data), each target's row recorded as its revert would
(zoneflow.flows.on_target.record_reverted), and the zone ERROR with the
reason. The others go on.

A job that fails as a whole (its status write failed every time, its
conductor was fenced off) is reverted as update-zone is, for every zone.

Data contract (names in the flow's storage):

==========================  ==============================  =================
name                        provided by                     required by
==========================  ==============================  =================
zone_ids, serials           the job's store (posted with)   begin
if_pool_grows, priority     the job's store                 update-status
batch                       BeginUpdates: zone id ->        every later task
                            [zone name, latest serial]
target:<target id>          UpdateZonesOnTarget: zone id    consensus, status
                            -> a TargetOutcome
agreed, below               BatchConsensus: the zones that  propagation, status
                            meet the threshold; why each
                            other one does not
served:<host>:<port>        PollBatch: zone id -> a Served  update-status
==========================  ==============================  =================

Tasks are idempotent as update-zone's are: a resumed job runs those in
flight again, for every zone of the batch.
"""

from __future__ import annotations

import logging
from typing import Any

from taskflow.types import failure as tf_failure

from zoneflow import objects
from zoneflow.flows.base import Task, reason, waits_for_database
from zoneflow.flows.begin import carried
from zoneflow.flows.consensus import weigh
from zoneflow.flows.on_target import act_on_target, record_reverted
from zoneflow.flows.propagation import _Poll, notify
from zoneflow.flows.status import SUPERSEDED, _StatusWriter
from zoneflow.jobs import steps
from zoneflow.jobs.outcomes import Served, TargetOutcome
from zoneflow.storage import health as stored_health
from zoneflow.storage import outbox as stored_outbox
from zoneflow.storage import status as stored_status
from zoneflow.storage import targets as stored_targets
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import fencing

LOG = logging.getLogger(__name__)

#: Zone id -> [zone name, serial]: what a batch is, as stored between tasks.
Batch = dict[str, list[Any]]
UPDATE = objects.Action.UPDATE


class BeginUpdates(Task):
    """First task of update-zones: the batch, each zone at its latest serial.

    The zones' jobs are taken out of the outbox first, where their updates
    rode on them while they waited (zoneflow.storage.outbox), as update-zone's
    begin does for one. A zone gone meanwhile is left out.
    """

    default_provides = "batch"

    def __init__(self) -> None:
        super().__init__(steps.BEGIN)

    @waits_for_database
    def execute(
        self,
        zone_ids: list[str],
        serials: list[int],
        fence: fencing.Claim = fencing.UNFENCED,
        job_id: str | None = None,
    ) -> Batch:
        fence.check()
        stored_outbox.begin_zone_jobs(zone_ids, job_id)
        batch: Batch = {}
        for zone_id, serial in zip(zone_ids, serials, strict=True):
            zone = stored_zones.get_zone_any(zone_id)
            if zone is None:
                LOG.info("zone %s left out of its batch: it no longer exists", zone_id)
                continue
            batch[zone_id] = [zone.name, carried(serial, zone)]
        LOG.info("update of %d zones begins", len(batch))
        return batch

    @waits_for_database
    def revert(
        self,
        zone_ids: list[str],
        serials: list[int],
        flow_failures: dict[str, tf_failure.Failure],
        fence: fencing.Claim = fencing.UNFENCED,
        result: Any = None,
        **_: Any,
    ) -> None:
        if fence.lost():
            return  # the job is another conductor's now: it decides the zones' status
        why = reason(flow_failures)
        began = result if isinstance(result, dict) else {}
        for zone_id, serial in zip(zone_ids, serials, strict=True):
            at = int(began[zone_id][1]) if zone_id in began else serial
            if stored_status.set_zone_status(
                zone_id, serial=at, status=objects.Status.ERROR, error=why
            ):
                LOG.error("zone %s serial %s is ERROR: its job was reverted: %s", zone_id, at, why)


class UpdateZonesOnTarget(Task):
    """Update each zone of the batch on one target; an outcome per zone, never a
    raise for one zone (a zone gone meanwhile is skipped)."""

    def __init__(self, target_id: str) -> None:
        super().__init__(
            steps.on_target(UPDATE, target_id), provides=steps.target_result(target_id)
        )
        self.target_id = target_id

    @waits_for_database
    def execute(self, batch: Batch, fence: fencing.Claim = fencing.UNFENCED) -> dict[str, Any]:
        fence.check()
        outcomes = {}
        for zone_id in batch:
            wanted = stored_targets.get_target_action(zone_id, self.target_id)
            if wanted.zone is None:
                outcome = TargetOutcome(ok=True, skipped=True)
            else:
                outcome = act_on_target(UPDATE, self.target_id, wanted, fence)
            outcomes[zone_id] = outcome.to_result()
        return outcomes

    @waits_for_database
    def revert(
        self,
        batch: Batch,
        result: Any,
        flow_failures: dict[str, tf_failure.Failure],
        fence: fencing.Claim = fencing.UNFENCED,
        **_: Any,
    ) -> None:
        if fence.lost() or not isinstance(result, dict):
            return
        why = reason(flow_failures)
        for zone_id, (_name, serial) in batch.items():
            outcome = TargetOutcome.of(result.get(zone_id))
            if outcome is not None:
                record_reverted(zone_id, int(serial), self.target_id, UPDATE, outcome, why)


class BatchConsensus(Task):
    """Weigh each zone against the pool's threshold: the zones that meet it, and
    why each of the others falls below it."""

    default_provides = ("agreed", "below")

    def __init__(self, target_ids: list[str], threshold: int, labels: dict[str, str]) -> None:
        super().__init__(steps.CONSENSUS, requires=[steps.target_result(t) for t in target_ids])
        self.target_ids = target_ids
        self.threshold = threshold
        self.labels = labels

    @waits_for_database
    def execute(self, batch: Batch, **results: Any) -> tuple[list[str], dict[str, str]]:
        left_out = stored_health.not_counted(self.target_ids)
        agreed, below = [], {}
        for zone_id in batch:
            outcomes = zone_outcomes(results, self.target_ids, zone_id)
            _, why = weigh(outcomes, left_out, self.threshold, self.labels)
            if why is None:
                agreed.append(zone_id)
            else:
                below[zone_id] = why
        return agreed, below


def zone_outcomes(results: dict[str, Any], target_ids: list[str], zone_id: str) -> dict[str, Any]:
    """Target id -> one zone's outcome there, from the targets' batch results."""
    outcomes = {}
    for target_id in target_ids:
        outcome = TargetOutcome.of(results[steps.target_result(target_id)][zone_id])
        assert outcome is not None  # a target's task that raised fails the flow before this
        outcomes[target_id] = outcome
    return outcomes


class PollBatch(_Poll):
    """NOTIFY one nameserver of every agreed zone, then poll it for each zone's
    serial: what it serves, per zone."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__("serial", host, port)

    @waits_for_database
    def execute(
        self, batch: Batch, agreed: list[str], fence: fencing.Claim = fencing.UNFENCED
    ) -> dict[str, Any]:
        fence.check()
        for zone_id in agreed:
            name, serial = batch[zone_id]
            notify(name, self.host, self.port, int(serial))
        return {
            zone_id: self._poll(
                zone_id,
                batch[zone_id][0],
                int(batch[zone_id][1]),
                expect_removed=False,
                fence=fence,
            )
            for zone_id in agreed
        }


class BatchStatus(_StatusWriter):
    """Each zone's status, in its own transaction: ACTIVE (or ERROR) as update-zone's
    status writes it for a zone that met the threshold, ERROR as its revert leaves
    one that did not."""

    def execute(
        self,
        batch: Batch,
        agreed: list[str],
        below: dict[str, str],
        fence: fencing.Claim = fencing.UNFENCED,
        if_pool_grows: str | None = None,
        priority: int | None = None,
        **results: Any,
    ) -> dict[str, str]:
        fence.check()
        written = {}
        for zone_id, (_name, serial) in batch.items():
            outcomes = zone_outcomes(results, self.target_ids, zone_id)
            if zone_id in agreed:
                written[zone_id] = self._write(
                    UPDATE,
                    zone_id,
                    int(serial),
                    self._zone_results(results, outcomes, zone_id),
                    (),
                    if_pool_grows,
                    priority,
                )
            else:
                written[zone_id] = self._below(zone_id, int(serial), outcomes, below[zone_id])
        return written

    def _zone_results(
        self, results: dict[str, Any], outcomes: dict[str, TargetOutcome], zone_id: str
    ) -> dict[str, Any]:
        """One zone's results, named as update-zone's status task finds them."""
        mine: dict[str, Any] = {
            steps.target_result(t): outcome.to_result() for t, outcome in outcomes.items()
        }
        for host, port in self.nameservers:
            seen = Served.of(results[steps.served_result(host, port)].get(zone_id))
            assert seen is not None  # every nameserver polled every agreed zone
            mine[steps.served_result(host, port)] = seen.to_result()
        return mine

    @waits_for_database
    def _below(
        self, zone_id: str, serial: int, outcomes: dict[str, TargetOutcome], why: str
    ) -> str:
        """What a failed update-zone leaves, for one zone below the threshold."""
        for target_id, outcome in outcomes.items():
            record_reverted(zone_id, serial, target_id, UPDATE, outcome, why)
        if not stored_status.set_zone_status(
            zone_id, serial=serial, status=objects.Status.ERROR, error=why
        ):
            return SUPERSEDED
        LOG.error("zone %s serial %s is ERROR: %s", zone_id, serial, why)
        return objects.Status.ERROR


class NotifyBatch(Task):
    """NOTIFY a server that is not ours to poll (an also-notify) of every agreed zone."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(steps.notify(host, port))
        self.host, self.port = host, port

    def execute(
        self, batch: Batch, agreed: list[str], fence: fencing.Claim = fencing.UNFENCED
    ) -> None:
        fence.check()
        for zone_id in agreed:
            name, serial = batch[zone_id]
            notify(name, self.host, self.port, int(serial))
