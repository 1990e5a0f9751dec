"""Targets' health and maintenance: what a target's going DOWN, coming back, or
going into and out of maintenance changes, and the jobs it posts.

The inspector (zoneflow.inspector) judges health and calls here; an operator
turns maintenance on and off (``zoneflow pool target maintenance``,
``PUT /v2/targets/{target_id}/maintenance``). Central picks the job
(recover-zone, which acts only where a target lacks the zone as it is now)
and its pace (``[central] target_recovery_jobs_per_second``); storage writes
it all in one transaction with the events (zoneflow.storage.health).
"""

from __future__ import annotations

import datetime
from typing import Any

from zoneflow import exceptions, objects
from zoneflow.central import changes, orders, upkeep
from zoneflow.central.options import CONF
from zoneflow.storage import health as stored_health

__all__ = ["Watched"]

Watched = stored_health.Watched


def recovery_pacing() -> objects.JobPacing:
    return objects.JobPacing(
        orders.RECOVERY,
        interval=1.0 / CONF.central.target_recovery_jobs_per_second,
        together=CONF.conductor.upkeep_batch_zones,
    )


def _described(target: objects.PoolTarget) -> dict[str, Any]:
    return {"target_id": target.id, "target": target.label, "pool_id": target.pool_id}


def watched_targets() -> list[stored_health.Watched]:
    """Every target in service and the address its nameserver answers on."""
    return stored_health.watched_targets()


def zones_by_pool() -> dict[str, list[str]]:
    return stored_health.zones_by_pool()


def states() -> dict[str, objects.TargetState]:
    return stored_health.states()


def target_down(
    target: objects.PoolTarget, *, since: datetime.datetime, reason: str, zones: int
) -> int | None:
    """Record ``target`` DOWN since ``since`` and raise the alarm; the number of its
    rows now BEHIND, or None if it was DOWN already."""
    return stored_health.mark_down(
        target.id, since=since, reason=reason, value={**_described(target), "zones": zones}
    )


def target_up(target: objects.PoolTarget) -> int | None:
    """Record ``target`` UP and post recovery for what it missed: how many zones, or
    None if it was not DOWN."""
    recovering = stored_health.mark_up(
        target.id, pacing=recovery_pacing(), value=_described(target)
    )
    if recovering:
        changes.changed()
    return recovering


def finish_catch_up(target: objects.PoolTarget) -> bool:
    """Count ``target`` again if its maintenance ended and it missed nothing more."""
    return stored_health.finish_catch_up(target.id, value=_described(target))


def retry_catch_up(target: objects.PoolTarget) -> int:
    """Post recovery again for what ``target``, catching up, still misses (a job of
    the last round failed); how many zones. A zone whose job still waits in the
    outbox or is in flight is left to it: a slow job is not a failed one."""
    waiting = upkeep.zones_with_waiting_jobs()
    in_hand = waiting | {
        zone_id
        for zone_id, name, serial in stored_health.still_missed(target.id)
        if zone_id not in waiting and upkeep.zone_job_in_flight(name, serial)
    }
    posted = stored_health.retry_catch_up(target.id, pacing=recovery_pacing(), in_hand=in_hand)
    if posted:
        changes.changed()
    return posted


def catching_up() -> list[str]:
    return stored_health.catching_up()


def find_target(ref: str) -> objects.PoolTarget:
    """A target in service by id or description (its label)."""
    targets = [w.target for w in stored_health.watched_targets()]
    found = [t for t in targets if ref in (t.id, t.label)]
    if len(found) == 1:
        return found[0]
    if not found:
        known = ", ".join(sorted(t.label for t in targets)) or "none"
        raise exceptions.TargetNotFound(
            f"no pool target is named {ref!r}: give a target's id or description as "
            f"'zoneflow pool show' or GET /v2/targets lists them (targets: {known})"
        )
    raise exceptions.BadRequest(
        f"{len(found)} targets are described {ref!r}: give the target's id instead "
        f"({', '.join(t.id for t in found)})"
    )


def set_maintenance(ref: str, *, on: bool) -> tuple[objects.PoolTarget, objects.TargetState]:
    """Put a target in maintenance, or end it (it is then caught up before it counts)."""
    target = find_target(ref)
    state = stored_health.set_maintenance(
        target.id, on=on, pacing=recovery_pacing(), value=_described(target)
    )
    changes.changed()
    return target, state


def audit_unanswered(target_id: str, questions: int) -> None:
    """Tell the inspector that the audit asked ``questions`` of the target and got no
    answer to any: one miss, as a failed job's report is."""
    stored_health.report_unanswered(target_id, value={"questions": questions})


def failed_targets(zone_id: str) -> dict[str, str]:
    """The targets the zone's last job recorded failing there, and why."""
    return stored_health.failed_targets(zone_id)
