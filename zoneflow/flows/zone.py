"""Flow factories: create-zone, update-zone and delete-zone.

Each is a TaskFlow graph flow::

    begin ─► [ZoneActionOnTarget per target, in parallel] ─► consensus-check
          ─► [per nameserver, in parallel: SendNotify ─► PollForSerial]
          ─► update-status

create-zone sends no NOTIFY up front: adding the zone already makes each
server transfer it, and a NOTIFY racing that first transfer only delays it.
PollForSerial re-sends NOTIFY to any server that lags.

Data contract (names in the flow's storage):

==========================  ==============================  =================
name                        provided by                     required by
==========================  ==============================  =================
zone_id, serial             the job's store                 every task
zone_name                   BeginZoneAction                 notify, poll
target:<target id>          ZoneActionOnTarget              consensus, status
succeeded_targets           ConsensusCheck                  (recorded only)
served:<host>:<port>        PollForSerial                   update-status
==========================  ==============================  =================

A factory's arguments describe the pool as it was when the job was posted
(plain JSON, stored in the job's logbook), so a resumed job rebuilds exactly
the flow whose atoms were persisted.
"""

from __future__ import annotations

from typing import Any

from taskflow import retry
from taskflow.patterns import graph_flow, linear_flow, unordered_flow

from zoneflow import objects
from zoneflow.flows import tasks

# How many times the final status write is retried (a database blip must not
# revert a change the nameservers already serve).
STATUS_WRITE_ATTEMPTS = 5


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


def create_zone_flow(**pool: Any) -> graph_flow.Flow:
    return _zone_flow(objects.CREATE, **pool)


def update_zone_flow(**pool: Any) -> graph_flow.Flow:
    return _zone_flow(objects.UPDATE, **pool)


def delete_zone_flow(**pool: Any) -> graph_flow.Flow:
    return _zone_flow(objects.DELETE, **pool)


FACTORIES = {
    "create-zone": create_zone_flow,
    "update-zone": update_zone_flow,
    "delete-zone": delete_zone_flow,
}


def _zone_flow(
    action: str,
    *,
    targets: list[dict[str, Any]],
    nameservers: list[list[Any]],
    also_notifies: list[list[Any]],
    threshold: int,
) -> graph_flow.Flow:
    target_ids = [t["id"] for t in targets]
    servers = [(str(h), int(p)) for h, p in nameservers]
    flow = graph_flow.Flow(f"{action.lower()}-zone")

    begin = tasks.BeginZoneAction(name="begin")
    on_targets = unordered_flow.Flow("targets")
    on_targets.add(*(tasks.ZoneActionOnTarget(action, t) for t in target_ids))
    consensus = tasks.ConsensusCheck(
        target_ids, threshold, labels={t["id"]: t["label"] for t in targets}
    )
    propagation = unordered_flow.Flow("propagation")
    for host, port in servers:
        poll = tasks.PollForSerial(host, port, expect_removed=action == objects.DELETE)
        if action == objects.UPDATE:
            propagation.add(
                linear_flow.Flow(f"nameserver-{host}:{port}").add(
                    tasks.SendNotify(host, port), poll
                )
            )
        else:
            propagation.add(poll)
    for host, port in also_notifies:
        if (str(host), int(port)) not in servers:
            propagation.add(tasks.SendNotify(str(host), int(port)))
    status = linear_flow.Flow(
        "status", retry=retry.Times(STATUS_WRITE_ATTEMPTS, name="status-write-retry")
    ).add(
        tasks.UpdateStatus(
            action,
            target_ids,
            servers,
            target_addresses={
                t["id"]: (t["host"], t["port"]) for t in targets if t.get("host") is not None
            },
            threshold=threshold,
        )
    )

    # Explicit order where no data links the steps: targets only after begin
    # (its revert must run last), propagation only after the consensus.
    flow.add(begin, on_targets, consensus, status)
    flow.link(begin, on_targets)
    if len(propagation):
        flow.add(propagation)
        flow.link(consensus, propagation)
        flow.link(propagation, status)
    else:
        flow.link(consensus, status)
    return flow
