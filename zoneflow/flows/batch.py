"""The tasks of create-zones, update-zones, delete-zones and recover-zones: one job
acting on several zones of one pool, each zone with the semantics its own job
(create-zone, update-zone, delete-zone, recover-zone) would give it.

recover-zones carries zones wanted ACTIVE (a zone wanted deleted is recovered
alone). Its begin takes no rows out of the outbox (nothing rides on a
recovery) and leaves out a zone whose delete was asked for since; each
target's task is RecoverZonesOnTarget (it acts only where the target lacks a
zone as it is now, judged as zoneflow.flows.recovery judges one); nothing is
taken back; the polls send no NOTIFY first (the targets' tasks NOTIFY the
zones their target lags on); below the threshold a zone is left as
recover-zone's revert leaves it (RecoverBatchStatus).

The flow has the single zone's shape, each step carrying the batch::

    begin ─► [ZonesOnTarget per target, in parallel] ─► take-back-if-deleted
          ─► consensus-check
          ─► [per nameserver, in parallel: PollBatch (NOTIFY every zone first,
              for updates), then the zones polled together: the first still
              waited for alone, every one at once each time it is served]
          ─► update-status

(take-back-if-deleted: creates and updates only.) What differs is that no
step fails the job for one zone. Each task records an outcome per zone: a
target's task the outcome of each zone there; the consensus weighs each zone
against the pool's threshold and passes on those that meet it (``agreed``);
a nameserver's task polls those; the status task writes the status of those
in one transaction, and of each other zone in its own. A zone every
nameserver serves before then is written by the poll that sees it served
last (EarlyStatus), so that its status does not wait for the batch's slowest
zone. A zone below the threshold is left as its own failed job leaves it,
with the reason, and the others go on:

- create: the zone is removed again from the targets that got it, each
  target's row recorded, the zone ERROR with its action kept;
- update: nothing undone (storage keeps the new data), each target's row
  recorded as update-zone's revert would (zoneflow.flows.on_target.
  record_reverted), the zone ERROR;
- delete: nothing undone, the zone ERROR with its action (DELETE) kept.

A create sends no NOTIFY up front, as create-zone does not: adding the zone
makes each server transfer it, and a NOTIFY racing that first transfer only
delays it; the poll re-sends one to a server that lags.

A job that fails as a whole (its status write failed every time, its
conductor was fenced off) is reverted as the single zone's job is, for
every zone.

Data contract (names in the flow's storage):

==========================  ==============================  =================
name                        provided by                     required by
==========================  ==============================  =================
zone_ids, serials           the job's store (posted with)   begin
if_pool_grows, priority     the job's store                 update-status
fence, scratch, job_id      the conductor, for each run     tasks that act;
                                                            begin (job_id)
batch                       BeginBatch: zone id ->          every later task
                            [zone name, serial]
target:<target id>          ZonesOnTarget: zone id          consensus, status
                            -> a TargetOutcome
taken_back                  TakeBackBatch: zone id ->       update-status
                            the targets it was taken
                            back from
agreed, below               BatchConsensus: the zones that  propagation, status
                            meet the threshold; why each
                            other one does not
served:<host>:<port>        PollBatch: zone id -> a Served  update-status
==========================  ==============================  =================

In the run's scratch (never persisted; zoneflow.flows.scratch): each
target's task leaves its outcomes, the take-back its result, each poll what
it saw served, and the polls the statuses they wrote early, which the status
task reports as written.

Tasks are idempotent as the single zone's are: a resumed job runs those in
flight again, for every zone of the batch.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from taskflow.types import failure as tf_failure

from zoneflow import objects
from zoneflow.dns import soa_probe
from zoneflow.flows.base import CONF, Task, in_service, reason, waits_for_database
from zoneflow.flows.begin import carried
from zoneflow.flows.consensus import weigh
from zoneflow.flows.on_target import (
    Planned,
    notify_catalog,
    plan_on_target,
    record_reverted,
    remove_again,
    retired,
    take_back_from,
    try_many_on_target,
)
from zoneflow.flows.propagation import _Poll, notify_all
from zoneflow.flows.recovery import judge, target_address, undo_recovery
from zoneflow.flows.scratch import Scratch
from zoneflow.flows.status import SUPERSEDED, _StatusWriter, status_written
from zoneflow.jobs import steps
from zoneflow.jobs.outcomes import Served, TargetOutcome
from zoneflow.storage import health as stored_health
from zoneflow.storage import outbox as stored_outbox
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import status as stored_status
from zoneflow.storage import targets as stored_targets
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import fencing

LOG = logging.getLogger(__name__)

#: Zone id -> [zone name, serial]: what a batch is, as stored between tasks.
Batch = dict[str, list[Any]]
CREATE, UPDATE, DELETE = objects.Action.CREATE, objects.Action.UPDATE, objects.Action.DELETE


class BeginBatch(Task):
    """First task of a batch: the zones it acts on, each at the serial its job brings
    it to. A zone gone meanwhile is left out.

    A create's or update's zones have their jobs taken out of the outbox first,
    where their updates rode on them while they waited (zoneflow.storage.outbox),
    and each zone is at its latest serial, as the single zone's begin does. A
    delete's zones stay at the serial the delete was posted with.

    It reads every zone and every target of the job in one statement, and
    leaves them in the run's scratch for the targets' tasks.
    """

    default_provides = "batch"

    def __init__(self, action: str, target_ids: list[str], *, recovery: bool = False) -> None:
        super().__init__(steps.BEGIN)
        self.action = action
        self.target_ids = target_ids
        # recover-zones: zones wanted ACTIVE, each at the serial its job was posted
        # with (nothing rides on a recovery); a zone whose delete was asked since is
        # left out, for its delete job.
        self.recovery = recovery

    @waits_for_database
    def execute(
        self,
        zone_ids: list[str],
        serials: list[int],
        fence: fencing.Claim = fencing.UNFENCED,
        scratch: Scratch | None = None,
        job_id: str | None = None,
    ) -> Batch:
        fence.check()
        ridden = self.action != DELETE and not self.recovery
        if ridden:
            stored_outbox.begin_zone_jobs(zone_ids, job_id)
        actions = stored_targets.get_batch_target_actions(zone_ids, self.target_ids)
        if scratch is not None:
            scratch.batch = actions
            if self.recovery:
                scratch.taken_back = {}  # a recovery takes nothing back
        batch: Batch = {}
        for zone_id, serial in zip(zone_ids, serials, strict=True):
            # Any target's row carries the zone; with none left, read it alone.
            first = next(iter(actions.get(zone_id, {}).values()), None)
            zone = first.zone if first is not None else stored_zones.get_zone_any(zone_id)
            if zone is None:
                LOG.info("zone %s left out of its batch: it no longer exists", zone_id)
                continue
            if self.recovery and zone.wanted_gone:
                LOG.info("zone %s left out of its recovery: its delete was asked for", zone.name)
                continue
            batch[zone_id] = [zone.name, carried(serial, zone) if ridden else serial]
        what = "recovery" if self.recovery else self.action.lower()
        LOG.info("%s of %d zones begins", what, len(batch))
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


class ZonesOnTarget(Task):
    """Create, update or delete each zone of the batch on one target; an outcome per
    zone, never a raise for one zone (a zone gone meanwhile is skipped). Revert
    undoes what the single zone's task would: a create is removed again."""

    def __init__(self, action: str, target_id: str) -> None:
        super().__init__(
            steps.on_target(action, target_id), provides=steps.target_result(target_id)
        )
        self.action = action
        self.target_id = target_id

    @waits_for_database
    def execute(
        self,
        batch: Batch,
        fence: fencing.Claim = fencing.UNFENCED,
        scratch: Scratch | None = None,
    ) -> dict[str, Any]:
        fence.check()
        found: dict[str, TargetOutcome] = {}
        # The backend calls to make, by action: several zones' creates may go at once.
        calls: dict[str, list[Planned]] = {}
        # Zones that joined or left the catalog: the target is NOTIFYed of it once.
        catalog_of = None
        for zone_id, wanted in self._read(batch, scratch).items():
            if wanted.zone is None:
                found[zone_id] = TargetOutcome(ok=True, skipped=True)
                continue
            planned = plan_on_target(self.action, self.target_id, wanted, notify_catalog=False)
            if isinstance(planned, Planned):
                calls.setdefault(planned.action, []).append(planned)
                continue
            found[zone_id] = planned
            if planned.catalog:
                catalog_of = wanted.target
        for action, planned_calls in calls.items():
            target = planned_calls[0].target
            done = try_many_on_target(action, target, [p.zone for p in planned_calls], fence)
            for planned in planned_calls:
                found[planned.zone.id] = planned.done(done[planned.zone.id])
        if catalog_of is not None:
            notify_catalog(catalog_of)
        return self._outcomes(batch, found, scratch)

    def _read(self, batch: Batch, scratch: Scratch | None) -> dict[str, objects.TargetAction]:
        """Zone id -> the zone and this target: read by this run's begin task; a
        resumed run's task reads its own."""
        read = scratch.batch if scratch is not None else {}
        return {
            zone_id: read.get(zone_id, {}).get(self.target_id)
            or stored_targets.get_target_action(zone_id, self.target_id)
            for zone_id in batch
        }

    def _outcomes(
        self, batch: Batch, found: dict[str, TargetOutcome], scratch: Scratch | None
    ) -> dict[str, Any]:
        """The task's result, in the batch's order, also left in the run's scratch."""
        outcomes = {zone_id: found[zone_id].to_result() for zone_id in batch}
        if scratch is not None:
            with scratch.lock:
                scratch.outcomes[self.target_id] = outcomes
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
            return  # another conductor's job now; or this task failed, and did nothing
        why = reason(flow_failures)
        for zone_id, (_name, serial) in batch.items():
            outcome = TargetOutcome.of(result.get(zone_id))
            if outcome is not None:
                self._undo(zone_id, int(serial), outcome, why)

    def _undo(self, zone_id: str, serial: int, outcome: TargetOutcome, why: str) -> None:
        undo_on_target(zone_id, serial, self.target_id, self.action, outcome, why)


class RecoverZonesOnTarget(ZonesOnTarget):
    """RecoverOnTarget (zoneflow.flows.recovery) for each zone of a recover-zones
    batch, zones wanted ACTIVE: the target's nameserver is asked for every zone's
    serial at once, the zones it lacks are created together (a backend's batch step
    where it has one), those it serves behind are updated and NOTIFYed together.
    An outcome per zone, never a raise for one zone; revert as RecoverOnTarget's,
    for each zone."""

    def __init__(self, target_id: str) -> None:
        super().__init__("recover", target_id)

    @waits_for_database
    def execute(
        self,
        batch: Batch,
        fence: fencing.Claim = fencing.UNFENCED,
        scratch: Scratch | None = None,
    ) -> dict[str, Any]:
        fence.check()
        found: dict[str, TargetOutcome] = {}
        live: dict[str, objects.Zone] = {}
        target = None
        for zone_id, wanted in self._read(batch, scratch).items():
            if wanted.zone is None or wanted.zone_deleted:
                found[zone_id] = TargetOutcome(ok=True, skipped=True)
            elif not in_service(wanted.target):
                found[zone_id] = retired(wanted.zone, self.target_id)
            else:
                live[zone_id], target = wanted.zone, wanted.target
        if target is not None:
            serials = {zone_id: int(batch[zone_id][1]) for zone_id in live}
            found.update(self._recover(target, live, serials, fence))
        return self._outcomes(batch, found, scratch)

    def _recover(
        self,
        target: objects.PoolTarget,
        zones: dict[str, objects.Zone],
        serials: dict[str, int],
        fence: fencing.Claim,
    ) -> dict[str, TargetOutcome]:
        address = target_address(target)
        served: dict[str, int | None] = {}
        if address is not None:
            findings = soa_probe.serials(
                {address: [zone.name for zone in zones.values()]},
                timeout=CONF.flows.query_timeout,
                retries=1,
            )[address]
            served = {
                zone_id: finding if isinstance(finding, int) else None
                for zone_id, finding in zip(zones, findings, strict=True)
            }
        # A target without a nameserver to ask is judged by its rows, read at once.
        rows = {} if address else stored_status.get_target_statuses(zones, self.target_id)
        found: dict[str, TargetOutcome] = {}
        to_do: dict[str, list[objects.Zone]] = {}
        for zone_id, zone in zones.items():
            judged = judge(serials[zone_id], rows.get(zone_id), served.get(zone_id), bool(address))
            if isinstance(judged, TargetOutcome):
                found[zone_id] = judged
            else:
                to_do.setdefault(judged, []).append(zone)
        LOG.info(
            "%s: recovery of %d zones: %d there already, %d to create, %d to update",
            target.label,
            len(zones),
            len(found),
            len(to_do.get(CREATE, ())),
            len(to_do.get(UPDATE, ())),
        )
        if to_do and stored_pools.get_pool(target.pool_id).provisioning == objects.CATALOG:
            notify_catalog(target)
            catalog = TargetOutcome(ok=True, catalog=True)
            found.update((zone.id, catalog) for todo in to_do.values() for zone in todo)
            return found
        for action, todo in to_do.items():
            done = try_many_on_target(action, target, todo, fence)
            found.update((zone_id, done[zone_id].replace(action=action)) for zone_id in done)
        updated = [(z.name, serials[z.id]) for z in to_do.get(UPDATE, ()) if found[z.id].ok]
        if updated and address is not None:
            # A target that has the zones fetches their serials now, not at its refresh.
            notify_all(updated, *address)
        return found

    def _undo(self, zone_id: str, serial: int, outcome: TargetOutcome, why: str) -> None:
        undo_recovery(zone_id, serial, self.target_id, UPDATE, outcome, why)


def undo_on_target(
    zone_id: str, serial: int, target_id: str, action: str, outcome: TargetOutcome, why: str
) -> None:
    """What a failed job of one zone leaves on one target: a create removed again,
    and the target's row recorded (zoneflow.flows.on_target.record_reverted)."""
    if action == CREATE:
        outcome = remove_again(zone_id, target_id, outcome)
    record_reverted(zone_id, serial, target_id, action, outcome, why)


class TakeBackBatch(Task):
    """TakeBackIfDeleted for each zone of the batch: take a zone back from the
    targets this job created it on, if its delete was asked for meanwhile. Zone
    id -> the targets it was taken back from. One read for the whole batch, made
    after every target's task has finished."""

    default_provides = "taken_back"

    def __init__(self, target_ids: list[str]) -> None:
        super().__init__(steps.TAKE_BACK, requires=[steps.target_result(t) for t in target_ids])
        self.target_ids = target_ids

    @waits_for_database
    def execute(
        self,
        batch: Batch,
        fence: fencing.Claim = fencing.UNFENCED,
        scratch: Scratch | None = None,
        **results: Any,
    ) -> dict[str, list[str]]:
        created = {}
        for zone_id in batch:
            outcomes = zone_outcomes(results, self.target_ids, zone_id)
            on = [target_id for target_id, outcome in outcomes.items() if outcome.created]
            if on:
                created[zone_id] = on
        gone = stored_zones.zones_wanted_gone(created) if created else set()
        if gone:
            fence.check()
        for zone_id in gone:
            take_back_from(zone_id, created[zone_id])
        taken_back = {zone_id: created[zone_id] for zone_id in gone}
        if scratch is not None:
            scratch.taken_back = taken_back
        return taken_back


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


def named_serials(batch: Batch, zone_ids: list[str]) -> dict[str, tuple[str, int]]:
    """Zone id -> (zone name, serial) of these zones of the batch, in their order."""
    return {zone_id: (batch[zone_id][0], int(batch[zone_id][1])) for zone_id in zone_ids}


class PollBatch(_Poll):
    """Poll one nameserver for the agreed zones together (see _Poll._watch): each one's
    serial, or (delete) its removal; what it serves, per zone. An update's zones
    get a NOTIFY first, all of them before any reply is awaited. With ``early``,
    what it sees is passed on as it is seen (see EarlyStatus), in a job of users'
    changes."""

    def __init__(
        self,
        action: str,
        host: str,
        port: int,
        early: EarlyStatus | None = None,
        *,
        notify_first: bool | None = None,
        wait_for_down: bool = True,
    ) -> None:
        super().__init__(
            "removal" if action == DELETE else "serial", host, port, wait_for_down=wait_for_down
        )
        self.action = action
        self.early = early
        # By default an update's zones; a recovery NOTIFYs on its targets only the
        # zones they lag on, and the poll again those still lagging.
        self.notify_first = action == UPDATE if notify_first is None else notify_first

    @waits_for_database
    def execute(
        self,
        batch: Batch,
        agreed: list[str],
        fence: fencing.Claim = fencing.UNFENCED,
        scratch: Scratch | None = None,
        if_pool_grows: str | None = None,
        priority: int | None = None,
    ) -> dict[str, Any]:
        fence.check()
        if self.notify_first:
            notify_all(list(named_serials(batch, agreed).values()), self.host, self.port)
        pass_on = None
        # Upkeep (a backfill, a recovery) has nobody waiting for each zone: its
        # zones are written together at the job's end, not one transaction a zone
        # as each is served (a fifth of a conductor's CPU in a backfill).
        upkeep = priority == objects.JobPriority.UPKEEP
        if self.early is not None and scratch is not None and not upkeep:
            pass_on = functools.partial(
                self.early.seen,
                scratch,
                (self.host, self.port),
                batch=batch,
                fence=fence,
                if_pool_grows=if_pool_grows,
                priority=priority,
            )
        seen = self._watch(
            named_serials(batch, agreed),
            expect_removed=self.action == DELETE,
            fence=fence,
            on_served=pass_on,
        )
        return {zone_id: served.to_result() for zone_id, served in seen.items()}


class EarlyStatus:
    """A zone of a batch ACTIVE (or DELETED) as soon as every nameserver serves it,
    not once the batch's last zone is served on its slowest nameserver.

    Each nameserver's poll passes on the zones it sees served; the poll that
    completes a zone (every nameserver of the job serves it) writes its
    status, in one transaction with the others it completes then, as the
    batch's status task would (the same rule and results). That task then
    writes the other zones and reports these as written. Nothing is written
    early when this run lacks a target's outcome or the take-back's (a resumed
    run: the status task writes every zone), and a write that fails is left
    to the status task too. Only a job of users' changes writes early: upkeep
    (UPKEEP priority) is written whole at its end.
    """

    def __init__(self, status: BatchStatus) -> None:
        self.status = status

    def seen(
        self,
        scratch: Scratch,
        nameserver: tuple[str, int],
        found: dict[str, Served],
        batch: Batch,
        fence: fencing.Claim,
        if_pool_grows: str | None,
        priority: int | None,
    ) -> None:
        """Note what ``nameserver`` was seen serving, and write the zones it completes."""
        nameservers = self.status.nameservers
        with scratch.lock:
            complete = []
            for zone_id, served in found.items():
                by = scratch.served.setdefault(zone_id, {})
                by[nameserver] = served
                if zone_id not in scratch.settled and all(
                    ns in by and by[ns].ok for ns in nameservers
                ):
                    complete.append(zone_id)
            known = set(scratch.outcomes) >= set(self.status.target_ids)
            taken_back = {} if self.status.action == DELETE else scratch.taken_back
            if not complete or not known or taken_back is None:
                return
            for zone_id in complete:
                scratch.settled[zone_id] = ""  # this poll writes it
            results: dict[str, Any] = {
                steps.target_result(t): scratch.outcomes[t] for t in self.status.target_ids
            }
            for host, port in nameservers:
                results[steps.served_result(host, port)] = {
                    zone_id: scratch.served[zone_id][(host, port)].to_result()
                    for zone_id in complete
                }
        fence.check()
        try:
            written = self.status.settle(
                batch, complete, results, taken_back, if_pool_grows, priority, everywhere=True
            )
        except Exception as exc:  # whatever it was, the status task meets it again if real
            LOG.warning("%d zones' status left to the end of their job: %s", len(complete), exc)
            written = {}
        with scratch.lock:
            for zone_id in complete:
                if zone_id in written:
                    scratch.settled[zone_id] = written[zone_id]
                else:
                    del scratch.settled[zone_id]


class BatchStatus(_StatusWriter):
    """Each zone's status: as the single zone's status task writes it for a zone that
    met the threshold (all such zones in one transaction), and as its revert
    leaves one that did not (each in its own)."""

    def __init__(self, action: str, *args: Any) -> None:
        super().__init__(*args)
        self.action = action

    def execute(
        self,
        batch: Batch,
        agreed: list[str],
        below: dict[str, str],
        fence: fencing.Claim = fencing.UNFENCED,
        taken_back: dict[str, list[str]] | None = None,
        if_pool_grows: str | None = None,
        priority: int | None = None,
        scratch: Scratch | None = None,
        **results: Any,
    ) -> dict[str, str]:
        fence.check()
        # Those a poll wrote once every nameserver served them (EarlyStatus).
        early = {z: s for z, s in scratch.settled.items() if s} if scratch is not None else {}
        settled = self._settle_agreed(
            batch,
            [zone_id for zone_id in agreed if zone_id not in early],
            results,
            taken_back or {},
            if_pool_grows,
            priority,
        )
        settled.update(early)
        statuses = {}
        for zone_id, (_name, serial) in batch.items():
            if zone_id in settled:
                statuses[zone_id] = settled[zone_id]
            else:
                outcomes = zone_outcomes(results, self.target_ids, zone_id)
                statuses[zone_id] = self._below(zone_id, int(serial), outcomes, below[zone_id])
        return statuses

    def settle(
        self,
        batch: Batch,
        agreed: list[str],
        results: dict[str, Any],
        taken_back: dict[str, list[str]],
        if_pool_grows: str | None,
        priority: int | None,
        *,
        everywhere: bool = False,
    ) -> dict[str, str]:
        """The status of each zone that met the threshold, all written in one transaction.

        ``everywhere``: every nameserver serves each of them (EarlyStatus), so the
        threshold holds whichever targets it counts, and those in maintenance are
        not read (a statement for each zone a poll completes)."""
        if not agreed:
            return {}
        not_counted = set() if everywhere else stored_health.not_counted(self.target_ids)
        settlements = {
            zone_id: self._settlement(
                self.action,
                zone_id,
                int(batch[zone_id][1]),
                self._zone_results(
                    results, zone_outcomes(results, self.target_ids, zone_id), zone_id
                ),
                not_counted,
                # The targets it was taken back from: its delete job records them.
                taken_back.get(zone_id, ()),
                if_pool_grows,
                priority,
            )
            for zone_id in agreed
        }
        written = stored_status.settle_zones(list(settlements.values()))
        return {
            zone_id: status_written(settled, was)
            for (zone_id, settled), was in zip(settlements.items(), written, strict=True)
        }

    # The status task's own write waits out a database restart; a poll's early one
    # (EarlyStatus) does not, and leaves the zones to it instead.
    _settle_agreed = waits_for_database(settle)

    def _zone_results(
        self, results: dict[str, Any], outcomes: dict[str, TargetOutcome], zone_id: str
    ) -> dict[str, Any]:
        """One zone's results, named as the single zone's status task finds them."""
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
        """What the single zone's failed job leaves, for one zone below the threshold."""
        for target_id, outcome in outcomes.items():
            self._undo(zone_id, serial, target_id, outcome, why)
        if not stored_status.set_zone_status(
            zone_id, serial=serial, status=objects.Status.ERROR, error=why
        ):
            return SUPERSEDED
        LOG.error("zone %s serial %s is ERROR: %s", zone_id, serial, why)
        return objects.Status.ERROR

    def _undo(
        self, zone_id: str, serial: int, target_id: str, outcome: TargetOutcome, why: str
    ) -> None:
        undo_on_target(zone_id, serial, target_id, self.action, outcome, why)


class RecoverBatchStatus(BatchStatus):
    """BatchStatus of recover-zones: each zone's status as recover-zone's status task
    writes it (ACTIVE), and below the threshold as its revert leaves it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(UPDATE, *args)

    def _undo(
        self, zone_id: str, serial: int, target_id: str, outcome: TargetOutcome, why: str
    ) -> None:
        undo_recovery(zone_id, serial, target_id, UPDATE, outcome, why)


class NotifyBatch(Task):
    """NOTIFY a server that is not ours to poll (an also-notify) of every agreed zone."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(steps.notify(host, port))
        self.host, self.port = host, port

    def execute(
        self, batch: Batch, agreed: list[str], fence: fencing.Claim = fencing.UNFENCED
    ) -> None:
        fence.check()
        notify_all(list(named_serials(batch, agreed).values()), self.host, self.port)
