"""What each target of a zone's pool serves: the serial, its state, the last error.

The rows are what the zone's jobs last verified (a target's serial is the
SOA serial its nameserver was seen serving, or that the backend confirmed);
a target no job has reached yet has no row and is shown PENDING; one that
never served the zone has serial None.

Built once here for both readers: the API shows every target of the pool
(:attr:`ZoneServing.targets`), the CLI lists the rows as stored with each
target's name (:attr:`ZoneServing.rows`, :attr:`ZoneServing.labels`).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping

from zoneflow import objects
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import status as stored_status


@dataclasses.dataclass(frozen=True)
class TargetServing:
    target_id: str
    label: str
    type: str
    serial: int | None
    status: str
    error: str | None
    updated_at: datetime.datetime | None
    # The target serves the zone's current serial (or a later one).
    current: bool
    # The target is no longer in the zone's pool (its row outlived it).
    in_pool: bool = True


@dataclasses.dataclass(frozen=True)
class ZoneServing:
    zone: objects.Zone
    targets: tuple[TargetServing, ...]
    # The rows as stored: one per target a job has reached, its serial as recorded.
    rows: tuple[objects.TargetStatus, ...]
    # What to call each target of the pool, a retired one saying so.
    labels: Mapping[str, str]


def zone_serving(ref: str, *, project_id: str | None = None) -> ZoneServing:
    """Each target of the zone's pool, and what it was last seen serving."""
    zone = stored_reads.get_zone(ref, project_id=project_id)
    pool = stored_pools.get_pool(zone.pool_id)
    stored = tuple(stored_status.list_target_status(zone.id))
    rows = {row.target_id: row for row in stored}
    labels = {t.id: t.label for t in pool.targets}
    labels.update({t.id: f"{t.label} (retired)" for t in pool.retired_targets})
    targets = []
    for target in pool.targets:
        row = rows.pop(target.id, None)
        targets.append(_serving(zone, target.id, target.label, target.type, row))
    for target_id, row in rows.items():
        targets.append(_serving(zone, target_id, target_id, "", row, in_pool=False))
    return ZoneServing(zone, tuple(targets), stored, labels)


def _serving(
    zone: objects.Zone,
    target_id: str,
    label: str,
    kind: str,
    row: objects.TargetStatus | None,
    *,
    in_pool: bool = True,
) -> TargetServing:
    if row is None:
        return TargetServing(
            target_id, label, kind, None, objects.Status.PENDING, None, None, False, in_pool
        )
    return TargetServing(
        target_id,
        label,
        kind,
        row.serial or None,  # 0: the target never served the zone
        row.status,
        row.error,
        row.updated_at,
        # BEHIND: its target went DOWN or into maintenance; served again once it is back.
        row.serial >= zone.serial and row.status != objects.BEHIND,
        in_pool,
    )
