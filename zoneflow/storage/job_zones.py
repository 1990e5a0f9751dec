"""The zones each batch job carries (table ``job_zones``).

A job's logbook names one zone in its metadata; a job carrying several
zones (zoneflow.flows.batch) has a row here for each, so that a list of a
zone's jobs (zoneflow.taskflow_adapter.pages) and the job of a zone's
serial (zoneflow.jobs.find_job) find it whichever zone they ask for: both
read this table in their own SQL.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa

from zoneflow.storage import db, tables

_ROWS = tables.job_zones


def add(job_id: str, zones: list[tuple[str, str, int]]) -> None:
    """Record the zones (id, name, serial) job ``job_id`` carries.

    Written before the job's logbook, and again when a job is posted again
    (its id is the same: see zoneflow.jobs.post_batch): a zone recorded
    before keeps its row. Rows whose logbook was never written find no job.
    """
    with db.transaction() as conn:
        known = set(
            conn.execute(sa.select(_ROWS.c.zone_id).where(_ROWS.c.job_id == job_id)).scalars()
        )
        new = [
            {"job_id": job_id, "zone_id": zone_id, "zone_name": name, "serial": serial}
            for zone_id, name, serial in zones
            if zone_id not in known
        ]
        if new:
            conn.execute(sa.insert(_ROWS), new)


def remove(job_ids: Collection[str]) -> None:
    """Forget the zones of these jobs (their logbooks were purged)."""
    if not job_ids:
        return
    with db.transaction() as conn:
        conn.execute(sa.delete(_ROWS).where(_ROWS.c.job_id.in_(list(job_ids))))
