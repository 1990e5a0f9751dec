"""Flow factories: create-zone, update-zone, delete-zone and recover-zone, and their
batches (create-zones, update-zones, delete-zones, recover-zones: see
zoneflow.flows.batch).

Each is a TaskFlow graph flow::

    begin ─► [ZoneActionOnTarget per target, in parallel] ─► take-back-if-deleted
          ─► consensus-check
          ─► [per nameserver, in parallel: PollForSerial (an update's NOTIFYs first)]
          ─► update-status

begin reads the zone and all the job's targets in one statement for the
targets' tasks (zoneflow.flows.scratch). A create's or update's begin first
takes the job out of the outbox, where the zone's updates rode on it while it
waited (zoneflow.storage.outbox), and provides the zone's serial as it reads
it (``zone_serial``): the job brings the zone to its latest serial, and every
later task acts, polls and writes the status for that one. take-back-if-deleted (create and
update only) removes the zone again from the targets it was just created on
if its delete was asked for meanwhile, and is one read when it was not.

create-zone sends no NOTIFY up front: adding the zone already makes each
server transfer it, and a NOTIFY racing that first transfer only delays it.
PollForSerial re-sends NOTIFY to any server that lags.

Below the pool's threshold the consensus check fails and reverts run, each
recording what it leaves on its target (zone_target_status) while begin's
revert puts the zone in ERROR with the reason, its action kept:

- create: the targets that got the zone have it removed again;
- update: nothing is undone; storage keeps the new data, the failed
  targets stay behind (ERROR at the serial they last served), the others
  PENDING (sent, not verified), all for recovery;
- delete: nothing is undone; the zone stays ERROR/DELETE for recovery.

recover-zone has the same shape with BeginRecovery, RecoverOnTarget,
PollForWantedState and RecoverStatus: begin reads what the zone should be
(``wanted``: ACTIVE, or DELETED when its action is DELETE), each target task
acts only where its target is not there yet (asking the target's nameserver
for the SOA, or its row when it has none), and a delete is redone on every
target. Its revert undoes nothing, except for a zone never made ACTIVE
(action CREATE): that is recovered as a create and undone as one.

Data contract (names in the flow's storage):

==========================  ==============================  =================
name                        provided by                     required by
==========================  ==============================  =================
zone_id, serial             the job's store (serial: the    every task
                            one it was posted with)         (recover-zone)
zone_serial                 BeginZoneAction (the latest)    create, update and
                                                            delete tasks, as
                                                            ``serial``
if_pool_grows, priority     the job's store (central's      update-status
                            objects.JobOrder; absent: none)
fence, scratch, job_id      the conductor, for each run     tasks that act;
                                                            begin (job_id)
zone_name                   BeginZoneAction, BeginRecovery  notify, poll
wanted (recover-zone)       BeginRecovery                   recover tasks
target:<target id>          ZoneActionOnTarget,             consensus, status
                            RecoverOnTarget (a TargetOutcome)
taken_back                  TakeBackIfDeleted               update-status
succeeded_targets           ConsensusCheck                  (recorded only)
served:<host>:<port>        PollForSerial,                  update-status
                            PollForWantedState (a Served)
==========================  ==============================  =================

These names, and every task's, are built by zoneflow.jobs.steps; the
outcomes are zoneflow.jobs.outcomes' dataclasses, stored as dicts.

A factory's arguments describe the pool as it was when the job was posted
(plain JSON, stored in the job's logbook), so a resumed job rebuilds exactly
the flow whose atoms were persisted.

Jobs of one kind on one pool shape share one flow object, built once
(see _shared): building one costs 2-4 ms of TaskFlow's reflection, more than
running it on no-op targets. Sharing is safe because a flow is only a
description: each run keeps its state in its own engine's storage, and the
tasks hold nothing but their constructor arguments and take no progress
listeners (zoneflow.flows.base.Task).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from taskflow import retry, task
from taskflow.patterns import graph_flow, linear_flow, unordered_flow

from zoneflow import objects
from zoneflow.flows import batch
from zoneflow.flows.base import LATEST_SERIAL
from zoneflow.flows.begin import BeginRecovery, BeginZoneAction
from zoneflow.flows.consensus import ConsensusCheck
from zoneflow.flows.on_target import TakeBackIfDeleted, ZoneActionOnTarget
from zoneflow.flows.propagation import PollForSerial, PollForWantedState, SendNotify
from zoneflow.flows.recovery import RecoverOnTarget
from zoneflow.flows.status import RecoverStatus, UpdateStatus

# How many times the final status write is retried (a database blip must not
# revert a change the nameservers already serve).
STATUS_WRITE_ATTEMPTS = 5

# Built flows kept per factory: one per pool shape in use (a pool update
# makes a new shape; the old one ages out).
FLOWS_KEPT = 32


def pool_args(pool: objects.Pool) -> dict[str, Any]:
    """The JSON-able description of a pool a factory is called with."""
    return {
        "targets": [
            {
                "id": t.id,
                "label": t.label,
                "host": t.options.get("host"),
                "port": int(t.options.get("port", 53)),
            }
            for t in pool.targets
        ],
        "nameservers": [[ns.host, ns.port] for ns in pool.nameservers],
        # also_notifies get a NOTIFY but are not polled: they are not ours to verify.
        "also_notifies": [[n.host, n.port] for n in pool.also_notifies],
        "threshold": pool.threshold_percentage,
    }


def _shared(factory: Callable[..., graph_flow.Flow]) -> Callable[..., graph_flow.Flow]:
    """``factory``, returning the flow it built before for the same arguments."""

    @functools.lru_cache(maxsize=FLOWS_KEPT)
    def build(arguments: str) -> graph_flow.Flow:
        return factory(**json.loads(arguments))

    # TaskFlow finds a job's factory again by its module and name: keep them.
    @functools.wraps(factory)
    def shared(**pool: Any) -> graph_flow.Flow:
        return build(json.dumps(pool, sort_keys=True))

    return shared


@_shared
def create_zone_flow(**pool: Any) -> graph_flow.Flow:
    return _zone_flow(objects.JobKind.CREATE_ZONE, objects.Action.CREATE, **pool)


@_shared
def update_zone_flow(**pool: Any) -> graph_flow.Flow:
    return _zone_flow(objects.JobKind.UPDATE_ZONE, objects.Action.UPDATE, **pool)


@_shared
def delete_zone_flow(**pool: Any) -> graph_flow.Flow:
    return _zone_flow(objects.JobKind.DELETE_ZONE, objects.Action.DELETE, **pool)


@_shared
def recover_zone_flow(
    *,
    targets: list[dict[str, Any]],
    nameservers: list[list[Any]],
    also_notifies: list[list[Any]],
    threshold: int,
) -> graph_flow.Flow:
    servers = [(str(h), int(p)) for h, p in nameservers]
    propagation = unordered_flow.Flow("propagation")
    # A recovery waits for a nameserver judged DOWN: it brings targets what they
    # missed, and runs first of all when a target has just come back UP.
    propagation.add(*(PollForWantedState(host, port) for host, port in servers))
    propagation.add(*_also_notify(also_notifies, servers))
    return _assemble(
        objects.JobKind.RECOVER_ZONE,
        BeginRecovery(),
        [RecoverOnTarget(t["id"]) for t in targets],
        targets,
        propagation,
        RecoverStatus([t["id"] for t in targets], servers, _target_addresses(targets), threshold),
        threshold,
    )


@_shared
def create_zones_flow(**pool: Any) -> graph_flow.Flow:
    """create-zone's shape for several zones of one pool (zoneflow.flows.batch)."""
    return _zones_flow(objects.JobKind.CREATE_ZONES, objects.Action.CREATE, **pool)


@_shared
def update_zones_flow(**pool: Any) -> graph_flow.Flow:
    """update-zone's shape for several zones of one pool (zoneflow.flows.batch)."""
    return _zones_flow(objects.JobKind.UPDATE_ZONES, objects.Action.UPDATE, **pool)


@_shared
def delete_zones_flow(**pool: Any) -> graph_flow.Flow:
    """delete-zone's shape for several zones of one pool (zoneflow.flows.batch)."""
    return _zones_flow(objects.JobKind.DELETE_ZONES, objects.Action.DELETE, **pool)


@_shared
def recover_zones_flow(**pool: Any) -> graph_flow.Flow:
    """recover-zone's for several zones of one pool wanted ACTIVE (zoneflow.flows.batch)."""
    return _zones_flow(objects.JobKind.RECOVER_ZONES, objects.Action.UPDATE, recovery=True, **pool)


FACTORIES = {
    objects.JobKind.CREATE_ZONE: create_zone_flow,
    objects.JobKind.UPDATE_ZONE: update_zone_flow,
    objects.JobKind.DELETE_ZONE: delete_zone_flow,
    objects.JobKind.RECOVER_ZONE: recover_zone_flow,
    objects.JobKind.CREATE_ZONES: create_zones_flow,
    objects.JobKind.UPDATE_ZONES: update_zones_flow,
    objects.JobKind.DELETE_ZONES: delete_zones_flow,
    objects.JobKind.RECOVER_ZONES: recover_zones_flow,
}


def _zone_flow(
    kind: objects.JobKind,
    action: str,
    *,
    targets: list[dict[str, Any]],
    nameservers: list[list[Any]],
    also_notifies: list[list[Any]],
    threshold: int,
) -> graph_flow.Flow:
    servers = [(str(h), int(p)) for h, p in nameservers]
    propagation = unordered_flow.Flow("propagation")
    propagation.add(
        *(
            PollForSerial(
                host,
                port,
                expect_removed=action == objects.Action.DELETE,
                notify_first=action == objects.Action.UPDATE,
                wait_for_down=threshold >= 100,
            )
            for host, port in servers
        )
    )
    propagation.add(*_also_notify(also_notifies, servers, rebind=LATEST_SERIAL))
    target_ids = [t["id"] for t in targets]
    return _assemble(
        kind,
        BeginZoneAction(target_ids, ridden=action != objects.Action.DELETE),
        [ZoneActionOnTarget(action, t) for t in target_ids],
        targets,
        propagation,
        UpdateStatus(action, target_ids, servers, _target_addresses(targets), threshold),
        threshold,
        # A create (and an update, which creates a zone not created yet) may
        # race the zone's delete.
        take_back=None if action == objects.Action.DELETE else TakeBackIfDeleted(target_ids),
    )


def _zones_flow(
    kind: objects.JobKind,
    action: str,
    *,
    targets: list[dict[str, Any]],
    nameservers: list[list[Any]],
    also_notifies: list[list[Any]],
    threshold: int,
    recovery: bool = False,
) -> graph_flow.Flow:
    """A batch's flow; with ``recovery``, recover-zones': each target's task acts
    only where the target lacks a zone as it is now, and nothing is taken back."""
    servers = [(str(h), int(p)) for h, p in nameservers]
    target_ids = [t["id"] for t in targets]
    status_of = (
        batch.RecoverBatchStatus if recovery else functools.partial(batch.BatchStatus, action)
    )
    status = status_of(target_ids, servers, _target_addresses(targets), threshold)
    early = batch.EarlyStatus(status)
    propagation = unordered_flow.Flow("propagation")
    propagation.add(
        *(
            batch.PollBatch(
                action,
                host,
                port,
                early,
                notify_first=False if recovery else None,
                # A recovery waits for a target judged DOWN (see recover_zone_flow).
                wait_for_down=recovery or threshold >= 100,
            )
            for host, port in servers
        )
    )
    others = _others(also_notifies, servers)
    propagation.add(*(batch.NotifyBatch(host, port) for host, port in others))
    if recovery:
        on_targets: list[task.Task] = [batch.RecoverZonesOnTarget(t) for t in target_ids]
    else:
        on_targets = [batch.ZonesOnTarget(action, t) for t in target_ids]
    takes_back = action != objects.Action.DELETE and not recovery
    return _assemble(
        kind,
        batch.BeginBatch(action, target_ids, recovery=recovery),
        on_targets,
        targets,
        propagation,
        status,
        threshold,
        take_back=batch.TakeBackBatch(target_ids) if takes_back else None,
        consensus=batch.BatchConsensus(target_ids, threshold, _labels(targets)),
    )


def _also_notify(
    also_notifies: list[list[Any]], servers: list[tuple[str, int]], **options: Any
) -> list[task.Task]:
    return [SendNotify(host, port, **options) for host, port in _others(also_notifies, servers)]


def _others(
    also_notifies: list[list[Any]], servers: list[tuple[str, int]]
) -> list[tuple[str, int]]:
    """The also-notifies that are not among the pool's (polled) nameservers."""
    others = [(str(host), int(port)) for host, port in also_notifies]
    return [server for server in others if server not in servers]


def _labels(targets: list[dict[str, Any]]) -> dict[str, str]:
    return {t["id"]: t["label"] for t in targets}


def _target_addresses(targets: list[dict[str, Any]]) -> dict[str, tuple[str, int]]:
    return {t["id"]: (t["host"], t["port"]) for t in targets if t.get("host") is not None}


def _assemble(
    name: str,
    begin: task.Task,
    on_each_target: list[task.Task],
    targets: list[dict[str, Any]],
    propagation: unordered_flow.Flow,
    status_task: task.Task,
    threshold: int,
    *,
    take_back: task.Task | None = None,
    consensus: task.Task | None = None,
) -> graph_flow.Flow:
    """Wire begin ─► targets ─► [take_back] ─► consensus ─► propagation ─► status.

    ``consensus``: the check to run (default: ConsensusCheck, which fails the flow).
    """
    flow = graph_flow.Flow(name)
    on_targets = unordered_flow.Flow("targets")
    on_targets.add(*on_each_target)
    target_ids = [t["id"] for t in targets]
    if consensus is None:
        consensus = ConsensusCheck(target_ids, threshold, labels=_labels(targets))
    status = linear_flow.Flow(
        "status", retry=retry.Times(STATUS_WRITE_ATTEMPTS, name="status-write-retry")
    ).add(status_task)

    # Explicit order where no data links the steps: targets only after begin
    # (its revert must run last), propagation only after the consensus.
    flow.add(begin, on_targets, consensus, status)
    flow.link(begin, on_targets)
    if take_back is not None:
        flow.add(take_back)
        flow.link(take_back, consensus)
    if len(propagation):
        flow.add(propagation)
        flow.link(consensus, propagation)
        flow.link(propagation, status)
    else:
        flow.link(consensus, status)
    return flow
