"""What the producer's periodic passes read and change, and the jobs they post.

The producer (zoneflow/producer/) finds what needs doing; the jobs are
chosen here, as for any change: a zone left in ERROR or PENDING, or found
missing or behind on a target by the audit, gets a recover-zone job (which
acts only where the zone is not served as it should be); a deleted zone
that a target still serves gets a recover-zone job too, which for a
deleted zone deletes it from every target of its pool (deletes are
idempotent). Each is written to the outbox in a unit of work of its own,
after the zone's row is read again under its lock, so a zone that a change
or another job reached meanwhile is left alone.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence

from zoneflow import exceptions, jobs, objects
from zoneflow.central import changes, orders
from zoneflow.storage import db
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import upkeep as stored
from zoneflow.storage.status import TargetUpdate
from zoneflow.storage.upkeep import KeptZone
from zoneflow.taskflow_adapter import persistence

__all__ = ["AuditView", "KeptZone", "TargetUpdate"]

# A zone's recovery and a deleted zone's removal are both recover-zone (for a deleted
# zone it deletes the zone from every target of the pool), upkeep both.
RECOVERY = orders.RECOVERY
REMOVAL = orders.REMOVAL

# The kinds of job that act on one zone: one of them in flight at the zone's
# serial means the zone is being worked on.
_ZONE_JOBS = (
    objects.JobKind.CREATE_ZONE,
    objects.JobKind.UPDATE_ZONE,
    objects.JobKind.DELETE_ZONE,
    objects.JobKind.RECOVER_ZONE,
)


@dataclasses.dataclass(frozen=True)
class AuditView:
    """What an audit compares the targets with, read at its start."""

    zones: list[KeptZone]
    pools: dict[str, objects.Pool]
    # (zone id, target id) -> (serial, status) as last recorded.
    recorded: dict[tuple[str, str], tuple[int, str]]
    # (pool id, name) of the live zones.
    live_names: set[tuple[str, str]]


def audit_view(*, deleted_since: datetime.datetime) -> AuditView:
    return AuditView(
        zones=stored.zones_to_audit(deleted_since=deleted_since),
        pools={pool.id: pool for pool in stored_pools.list_pools()},
        recorded=stored.recorded_rows(),
        live_names=stored.live_names(),
    )


def zones_to_recover(*, pending_before: datetime.datetime) -> list[KeptZone]:
    """Zones in ERROR, or PENDING since before ``pending_before``, oldest first."""
    return stored.zones_to_recover(pending_before=pending_before)


def zones_with_waiting_jobs() -> set[str]:
    return stored.zones_with_waiting_jobs()


def job_in_flight(zone: KeptZone) -> bool:
    """Whether a job for the zone's serial is on the board or running (a conductor
    may take a while; the recovery must not post another beside it)."""
    return zone_job_in_flight(zone.name, zone.serial)


def zone_job_in_flight(name: str, serial: int) -> bool:
    """Whether a job for zone ``name`` at ``serial`` is on the board or running."""
    backend = persistence.get_backend()
    job_id = jobs.find_job(backend, name, serial, _ZONE_JOBS)
    if job_id is None:
        return False
    try:
        return jobs.get_job(backend, job_id).state not in jobs.OVER
    except exceptions.JobNotFound:
        return False  # purged between the two reads: it had ended


def recover(
    zone: KeptZone, *, pending_before: datetime.datetime, behind_at: int | None = None
) -> bool:
    """Post a recover-zone job for a live zone still in need of one: in ERROR,
    PENDING since before ``pending_before``, or (``behind_at``, from the audit)
    ACTIVE at that serial. Whether it was posted."""
    posted = _recover_in_unit(zone.id, pending_before, behind_at)
    if posted:
        changes.changed()
    return posted


@db.retried
def _recover_in_unit(
    zone_id: str, pending_before: datetime.datetime, behind_at: int | None
) -> bool:
    with db.unit_of_work() as unit:
        recovering = stored.recover_left_zone(
            unit, zone_id, job=RECOVERY, pending_before=pending_before, serial=behind_at
        )
        return recovering is not None


def remove_from_targets(zone: KeptZone) -> bool:
    """Post the job that deletes a deleted zone from its pool's targets (one still
    serves it); False if one waits to be posted already."""
    if not zone.deleted:
        raise ValueError(f"zone {zone.name} is live: only a deleted zone is removed")
    posted = _remove_in_unit(zone.id)
    if posted:
        changes.changed()
    return posted


@db.retried
def _remove_in_unit(zone_id: str) -> bool:
    with db.unit_of_work() as unit:
        return stored.remove_deleted_zone(unit, zone_id, job=REMOVAL)


def record_findings(findings: Sequence[tuple[str, TargetUpdate]]) -> None:
    """What the audit found on each target, in the zones' per-target rows."""
    if findings:
        stored.record_findings(findings)


def deleted_zones_before(before: datetime.datetime, *, limit: int) -> list[str]:
    return stored.deleted_zones_before(before, limit=limit)


def purge_zones(zone_ids: Sequence[str], *, before: datetime.datetime) -> int:
    return stored.purge_zones(zone_ids, before=before)


def purge_jobs(*, older_than: datetime.timedelta) -> int:
    """Delete the logbooks of ended jobs posted longer ago than ``older_than``."""
    return jobs.purge(persistence.get_backend(), older_than=older_than)
