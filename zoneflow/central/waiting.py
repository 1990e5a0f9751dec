"""What a caller waiting for a zone's change reads: the zone as it now is,
the job's steps as they finish, and why the job failed.

The CLI's ``--wait`` and ``--progress`` follow a change here: the zone leaves
PENDING once its job has ended, and the job's logbook holds each step
(:mod:`zoneflow.engine.progress`). The zone is read by id whatever its
state, since a waited-for delete ends with the zone DELETED.
"""

from __future__ import annotations

from zoneflow import jobs, objects
from zoneflow.engine import progress
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import persistence


def zone_by_id(zone_id: str) -> objects.Zone | None:
    """A zone by id, live or deleted; None once it is gone altogether."""
    return stored_zones.get_zone_any(zone_id)


def recordset_by_id(zone_id: str, recordset_id: str) -> objects.RecordSet:
    """A recordset of the zone, as stored."""
    return stored_reads.get_recordset(zone_id, recordset_id)


def follow(zone_id: str) -> progress.Progress:
    """A follower of the zone's job, which calls each target by its label."""
    zone = stored_zones.get_zone_any(zone_id)
    pool = stored_pools.get_pool(zone.pool_id) if zone is not None else None
    labels = {t.id: t.label for t in pool.targets} if pool is not None else {}
    return progress.Progress(persistence.get_backend(), labels=labels)


def is_over(state: str | None) -> bool:
    """The job in this state (as :meth:`progress.Progress.follow` returns it) has ended."""
    return state in jobs.OVER


def failed_job(zone: objects.Zone) -> tuple[str | None, str | None]:
    """The id of the zone's job at its serial (None if none is found), and why it
    failed: the zone's error, else the job's."""
    backend = persistence.get_backend()
    job_id = jobs.find_job(backend, zone.name, zone.serial, progress.JOB_KINDS)
    reason = zone.error
    if reason is None and job_id is not None:
        reason = jobs.get_job(backend, job_id).error
    return job_id, reason
