"""A pool target, and what one task of a job acts on: the zone and the target, read
in one statement.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from zoneflow import objects
from zoneflow.storage import conversions, db, models, zones


def find_target(target_id: str) -> objects.PoolTarget | None:
    """A target, retired or in service; None once it is gone."""
    with db.reader() as session:
        row = session.get(models.PoolTarget, target_id)
        return None if row is None else conversions.target(row)


def get_target_action(zone_id: str, target_id: str) -> objects.TargetAction:
    """The zone and the target one task of a job acts on, in one statement.

    A task reads this itself only when its job's begin task did not leave
    it in the run's scratch (see get_target_actions): a resumed job.
    """
    actions = get_target_actions(zone_id, [target_id])
    if target_id in actions:
        return actions[target_id]
    # The target is gone (drained and dropped since the job was posted).
    return objects.TargetAction(
        zone=zones.get_zone_any(zone_id),
        zone_deleted=zones.zone_is_deleted(zone_id),
        target=None,
        provisioning=objects.PER_ZONE,
    )


def get_target_actions(
    zone_id: str, target_ids: Collection[str]
) -> dict[str, objects.TargetAction]:
    """The zone and each of these targets, by target id, in one statement.

    A job's begin task reads this once for all its targets (and leaves it in
    the run's scratch) instead of each target's task reading its own: one
    Core statement on a pooled connection where there were eight
    (bench/orchestration.py). Targets gone since the job was posted are missing.
    """
    with db.connection() as conn:
        rows = conn.execute(_TARGET_ACTIONS, {"zone_id": zone_id, "target_ids": list(target_ids)})
        return {row.id: _target_action(row, {}) for row in rows}


def get_batch_target_actions(
    zone_ids: Collection[str], target_ids: Collection[str]
) -> dict[str, dict[str, objects.TargetAction]]:
    """Zone id -> target id -> the zone and the target, for every pair, in one
    statement: get_target_actions for the zones of a batch job. Zones gone, and
    targets gone, since the job was posted are missing."""
    found: dict[str, dict[str, objects.TargetAction]] = {}
    targets: dict[str, objects.PoolTarget] = {}
    with db.connection() as conn:
        rows = conn.execute(
            _BATCH_TARGET_ACTIONS, {"zone_ids": list(zone_ids), "target_ids": list(target_ids)}
        )
        for row in rows:
            action = _target_action(row, targets)
            assert action.zone is not None  # joined: the zone exists
            found.setdefault(action.zone.id, {})[row.id] = action
    return found


def _target_action(
    row: sa.Row[Any], targets: dict[str, objects.PoolTarget]
) -> objects.TargetAction:
    """One row as a TargetAction; its target made once for all the rows of a read
    (``targets``, by id): a batch's rows repeat each target once a zone."""
    zone = None if row.zone_deleted is None else objects.Zone(*row[-len(conversions.ZONE_FIELDS) :])
    target = targets.get(row.id)
    if target is None:
        target = targets[row.id] = _target(row._mapping)
    return objects.TargetAction(
        zone=zone,
        zone_deleted=zone is None or row.zone_deleted != models.LIVE,
        target=target,
        provisioning=row.provisioning,
        recorded=row.recorded is not None,
    )


def _target(row: sa.RowMapping) -> objects.PoolTarget:
    return objects.PoolTarget(
        id=row["id"],
        pool_id=row["pool_id"],
        type=row["type"],
        description=row["description"],
        masters=tuple(
            objects.HostPort(m["host"], int(m["port"])) for m in json.loads(row["masters"])
        ),
        options=json.loads(row["options"]),
        retired_at=row["retired_at"],
        drain_error=row["drain_error"],
    )


# What a TargetAction is made of: a target, its pool's provisioning, whether the
# zone has a row for it, and the zone (see _target_action).
_TARGET_ACTION_COLUMNS = (
    models.PoolTarget.id,
    models.PoolTarget.pool_id,
    models.PoolTarget.type,
    models.PoolTarget.description,
    # As text, decoded by _target once a target, not once a row.
    sa.cast(models.PoolTarget.masters, sa.Text).label("masters"),
    sa.cast(models.PoolTarget.options, sa.Text).label("options"),
    models.PoolTarget.retired_at,
    models.PoolTarget.drain_error,
    models.Pool.provisioning,
    models.ZoneTargetStatus.target_id.label("recorded"),
    models.Zone.deleted.label("zone_deleted"),
    *(getattr(models.Zone, name) for name in conversions.ZONE_FIELDS),
)
_OF_THESE_TARGETS = models.PoolTarget.id.in_(sa.bindparam("target_ids", expanding=True))


_TARGET_ACTIONS = (
    sa.select(*_TARGET_ACTION_COLUMNS)
    .join(models.Pool, models.Pool.id == models.PoolTarget.pool_id)
    .outerjoin(models.Zone, models.Zone.id == sa.bindparam("zone_id"))
    .outerjoin(
        models.ZoneTargetStatus,
        sa.and_(
            models.ZoneTargetStatus.zone_id == sa.bindparam("zone_id"),
            models.ZoneTargetStatus.target_id == models.PoolTarget.id,
        ),
    )
    .where(_OF_THESE_TARGETS)
)


# Every (target, zone) pair: the zones joined to each target, not to a column of it.
_BATCH_TARGET_ACTIONS = (
    sa.select(*_TARGET_ACTION_COLUMNS)
    .join(models.Pool, models.Pool.id == models.PoolTarget.pool_id)
    .join(models.Zone, models.Zone.id.in_(sa.bindparam("zone_ids", expanding=True)))
    .outerjoin(
        models.ZoneTargetStatus,
        sa.and_(
            models.ZoneTargetStatus.zone_id == models.Zone.id,
            models.ZoneTargetStatus.target_id == models.PoolTarget.id,
        ),
    )
    .where(_OF_THESE_TARGETS)
)
