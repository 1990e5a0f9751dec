"""The purge pass: deleted zones and ended jobs past their retention.

A deleted zone's row is kept ``[producer] deleted_zone_retention`` seconds
(the audit removes it from any target still serving it meanwhile), then
deleted with its recordsets and per-target rows; each producer purges the
zones of its shards. Ended jobs' logbooks older than ``[conductor]
job_retention`` are not sharded: the holder of shard 0 purges them.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging

from zoneflow.central import upkeep
from zoneflow.producer import shards
from zoneflow.producer.settings import Settings, utcnow

LOG = logging.getLogger(__name__)

# Zones read per purge: the oldest first, the rest at the next purge.
PURGE_BATCH = 10000


@dataclasses.dataclass
class PurgeReport:
    zones: int = 0
    jobs: int = 0


def purge(settings: Settings, owned: frozenset[int]) -> PurgeReport:
    report = PurgeReport()
    before = utcnow() - datetime.timedelta(seconds=settings.deleted_zone_retention)
    old = upkeep.deleted_zones_before(before, limit=PURGE_BATCH)
    mine = [zone_id for zone_id in old if shards.shard_of(zone_id, settings.shards) in owned]
    report.zones = upkeep.purge_zones(mine, before=before)
    if 0 in owned:
        report.jobs = upkeep.purge_jobs(
            older_than=datetime.timedelta(seconds=settings.job_retention)
        )
    if report.zones or report.jobs:
        LOG.info("purged %d deleted zones and %d ended jobs", report.zones, report.jobs)
    return report
