"""Pools as stored: reads, and pools.yaml's updates with the backfill of a pool's
zones onto servers it gained (one transaction; central picks the backfill's pacing
and the retire job).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from zoneflow import exceptions, objects
from zoneflow.storage import conversions, db, events, models, queries, retired


def pool_query() -> sa.Select[models.Pool]:
    return sa.select(models.Pool).options(
        selectinload(models.Pool.ns_records),
        selectinload(models.Pool.nameservers),
        selectinload(models.Pool.targets),
        selectinload(models.Pool.also_notifies),
    )


def list_pools() -> list[objects.Pool]:
    with db.reader() as session:
        return [
            conversions.pool(p) for p in session.scalars(pool_query().order_by(models.Pool.name))
        ]


def find_pools(criteria: Mapping[str, str], paging: objects.Paging) -> objects.Page[objects.Pool]:
    """One page of the pools matching ``criteria`` (column name -> value, see
    :func:`queries.match`), and how many match in all."""
    filters = [
        queries.match(queries.column_named(models.Pool, key), value)
        for key, value in criteria.items()
    ]
    with db.reader() as session:
        rows, total, more = queries.paged(session, pool_query(), models.Pool, [], filters, paging)
        return objects.Page(tuple(conversions.pool(r) for r in rows), total, more)


def get_pool(ref: str) -> objects.Pool:
    """A pool by name or id.

    Core statements, not the ORM: every job posted reads its zone's pool,
    and the ORM's loading of four relationships took most of a post's time.
    """
    with db.connection() as conn:
        row = conn.execute(_POOL_ROW, {"ref": ref}).first()
        if row is None:
            raise _not_found(ref)
        parts = {
            name: conn.execute(query, {"pool_id": row.id}).all()
            for name, query in POOL_PARTS.items()
        }
    return conversions.pool(row, parts)


def pool_id(ref: str) -> str:
    """The id of the pool named ``ref`` (its name or its id), in one statement: all a
    zone's create needs of its pool, where get_pool reads its four parts too."""
    with db.connection() as conn:
        found = conn.execute(_POOL_ID, {"ref": ref}).scalar()
    if found is None:
        raise _not_found(ref)
    return str(found)


def _not_found(ref: str) -> exceptions.PoolNotFound:
    return exceptions.PoolNotFound(
        f"pool {ref!r} does not exist: load it with 'zoneflow pool update --file pools.yaml'"
    )


_BY_NAME_OR_ID = sa.or_(
    models.Pool.name == sa.bindparam("ref"), models.Pool.id == sa.bindparam("ref")
)
_POOL_ROW = sa.select(models.Pool.__table__).where(_BY_NAME_OR_ID)
_POOL_ID = sa.select(models.Pool.id).where(_BY_NAME_OR_ID)


def _pool_part(model: Any, order: Any) -> sa.Select[Any]:
    return (
        sa.select(model.__table__).where(model.pool_id == sa.bindparam("pool_id")).order_by(order)
    )


# A pool's parts, by the name of its relationship.
POOL_PARTS = {
    "ns_records": _pool_part(models.PoolNsRecord, models.PoolNsRecord.priority),
    "nameservers": _pool_part(models.PoolNameserver, models.PoolNameserver.position),
    "targets": _pool_part(models.PoolTarget, models.PoolTarget.position),
    "also_notifies": _pool_part(models.PoolAlsoNotify, models.PoolAlsoNotify.position),
}


def update_pools(
    pools: Sequence[dict[str, Any]], *, backfill: objects.JobPacing, retire: objects.JobOrder
) -> list[objects.PoolUpdate]:
    """Create or update pools from validated pools.yaml entries; what each update scheduled.

    Pools are matched by id when the entry gives one (so a pool may be
    renamed), by name otherwise; a new pool takes the entry's id. A pool's
    ns_records, nameservers and
    also_notifies are replaced by the file's. Target ids are stable for an
    unchanged target (see ``zoneflow.central.pools.target_id``). In the same
    transaction, for a pool that already existed:

    - a target or nameserver the file adds gets the pool's zones: each live
      zone is backfilled with ``backfill``'s jobs (see _backfill), PENDING
      until the added servers serve it;
    - a target the file no longer lists is retired: its row stays (its type
      and options are what deleting zones from it takes) and a ``retire``
      job deletes the pool's zones from it, then the row. A
      target retired before and not drained yet gets a new job. Under
      catalog provisioning there is no per-zone call to make: the row goes
      at once.
    """
    updates = []
    now = models.utcnow()
    with db.writer() as session:
        for spec in pools:
            row = _pool_to_update(session, spec)
            created = row is None
            if row is None:
                row = models.Pool(id=spec.get("id") or models.new_id(), name=spec["name"])
                session.add(row)
            row.name = spec["name"]
            known_nameservers = {(n.host, n.port) for n in row.nameservers}
            row.description = spec.get("description", "")
            row.threshold_percentage = spec["threshold_percentage"]
            row.provisioning = spec.get("provisioning", objects.PER_ZONE)
            row.catalog_zone = spec.get("catalog_zone")
            row.catalog_zone_refresh = spec.get("catalog_zone_refresh", 60)
            row.ns_records = [
                models.PoolNsRecord(hostname=r["hostname"], priority=r["priority"])
                for r in spec["ns_records"]
            ]
            row.nameservers = [
                models.PoolNameserver(position=i, host=n["host"], port=n["port"])
                for i, n in enumerate(spec["nameservers"])
            ]
            row.also_notifies = [
                models.PoolAlsoNotify(position=i, host=n["host"], port=n["port"])
                for i, n in enumerate(spec["also_notifies"])
            ]
            changes = _replace_targets(session, row, spec["targets"], now=now)
            session.flush()
            if created:
                updates.append(objects.PoolUpdate(pool=conversions.pool(row)))
                continue
            added_nameservers = tuple(
                objects.HostPort(n["host"], n["port"])
                for n in spec["nameservers"]
                if (n["host"], n["port"]) not in known_nameservers
            )
            backfilled = (
                _backfill(session, row.id, backfill) if changes.added or added_nameservers else 0
            )
            to_delete = {}
            for target in (*changes.retired, *changes.draining):
                to_delete[target.id] = queries.count(
                    session, retired.drain_query(row.id, target.id)
                )
                session.add(
                    models.JobOutbox(
                        kind=retire.kind,
                        priority=int(retire.priority),
                        target_id=target.id,
                        serial=0,
                    )
                )
            updates.append(
                objects.PoolUpdate(
                    pool=conversions.pool(row),
                    added_targets=tuple(conversions.target(t) for t in changes.added),
                    added_nameservers=added_nameservers,
                    backfill=backfilled,
                    retired_targets=tuple(conversions.target(t) for t in changes.retired),
                    draining_targets=tuple(conversions.target(t) for t in changes.draining),
                    to_delete=to_delete,
                    removed_targets=changes.removed,
                )
            )
    return updates


def _pool_to_update(session: Session, spec: Mapping[str, Any]) -> models.Pool | None:
    """The stored pool a pools.yaml entry describes, or None: a new pool.

    An existing pool's id never changes (zones, clients and tools refer to
    it): an entry naming it with another id is refused.
    """
    by_name = session.scalars(pool_query().where(models.Pool.name == spec["name"])).first()
    given = spec.get("id")
    if given is None:
        return by_name
    by_id = session.scalars(pool_query().where(models.Pool.id == given)).first()
    if by_name is not None and by_name is not by_id:
        raise exceptions.InvalidPoolConfig(
            f"pool {spec['name']!r} has id {by_name.id}, and the file gives it id {given}: "
            "a pool's id cannot change, as its zones refer to it; give its id, or leave id out"
        )
    return by_id


@dataclasses.dataclass
class _TargetChanges:
    added: list[models.PoolTarget] = dataclasses.field(default_factory=list)
    retired: list[models.PoolTarget] = dataclasses.field(default_factory=list)
    draining: list[models.PoolTarget] = dataclasses.field(default_factory=list)
    removed: tuple[objects.PoolTarget, ...] = ()


def _replace_targets(
    session: Session, pool: models.Pool, targets: list[dict[str, Any]], *, now: datetime.datetime
) -> _TargetChanges:
    """Make the pool's targets the file's; targets it no longer lists are retired."""
    changes = _TargetChanges()
    existing = {t.id: t for t in pool.targets}
    kept: list[models.PoolTarget] = []
    for i, spec in enumerate(targets):
        row = existing.pop(spec["id"], None)
        if row is None or row.retired_at is not None:
            # New, or listed again while it was being drained (its job stops).
            row = row or models.PoolTarget(id=spec["id"])
            changes.added.append(row)
        row.position = i
        row.type = spec["type"]
        row.description = spec.get("description", "")
        row.masters = spec["masters"]
        row.options = spec["options"]
        row.retired_at = row.drain_error = None
        kept.append(row)
    unlisted = list(existing.values())
    if pool.provisioning == objects.CATALOG:
        # The servers learn of zones from the catalog alone: there is nothing
        # zoneflow can delete from a removed one (see doc/operations.md).
        changes.removed = tuple(conversions.target(t) for t in unlisted)
        if unlisted:
            session.execute(
                sa.delete(models.ZoneTargetStatus).where(
                    models.ZoneTargetStatus.target_id.in_([t.id for t in unlisted])
                )
            )
            events.write(session, [events.target_removed(t.id, pool.id) for t in unlisted])
        pool.targets = kept
        return changes
    for i, row in enumerate(unlisted, start=len(kept)):
        row.position = i
        if row.retired_at is None:
            row.retired_at = now
            changes.retired.append(row)
        else:
            changes.draining.append(row)
    pool.targets = kept + unlisted
    return changes


def _backfill(session: Session, pool_id: str, pacing: objects.JobPacing) -> int:
    """Bring every live zone of a pool onto its added targets and nameservers.

    Each zone not being deleted is marked PENDING and gets the job
    ``pacing.job`` (central posts recover-zone, which acts only on the
    targets that lack the zone). A zone already PENDING gets none: its job
    is either built from the pool as it is now, or, built from the pool as
    it was, finds the pool grown when it sets the status and hands the zone
    to its follow-up job (status.set_zone_status). The jobs reach the relays
    ``pacing.interval`` seconds apart: each row is leased to nobody until
    its turn (``claimed_until``, the relays' own lease).
    Returns the number of zones backfilled.

    The zones are locked first (PostgreSQL) so that a job setting a zone's
    status concurrently either commits before this reads the zone, or reads
    the pool after this commits: never ACTIVE with the old pool.
    """
    rows = session.execute(
        sa.select(models.Zone.id, models.Zone.serial, models.Zone.status, models.Zone.action)
        .where(models.Zone.pool_id == pool_id, models.Zone.deleted == models.LIVE)
        .order_by(models.Zone.id)  # one lock order for any two pool updates
        .with_for_update()
    ).all()
    wanted = [r for r in rows if r.action != objects.Action.DELETE]
    idle = [r for r in wanted if r.status != objects.Status.PENDING]
    for start in range(0, len(idle), queries.IN_CHUNK):
        queries.rows_changed(
            session,
            sa.update(models.Zone)
            .where(models.Zone.id.in_([r.id for r in idle[start : start + queries.IN_CHUNK]]))
            .values(status=objects.Status.PENDING, error=None),
        )
    if idle:
        now = models.utcnow()
        session.execute(
            sa.insert(models.JobOutbox),
            [
                {
                    "kind": pacing.job.kind,
                    "if_pool_grows": pacing.job.if_pool_grows,
                    "priority": int(pacing.job.priority),
                    "zone_id": r.id,
                    "serial": r.serial,
                    "claimed_until": pacing.release_at(now, i),
                }
                for i, r in enumerate(idle)
            ],
        )
    return len(wanted)
