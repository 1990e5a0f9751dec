"""Repository functions: every read and write of zoneflow's tables.

Writes that change what a zone serves run in one transaction that
(1) bumps the zone's serial first, which takes the zone row's lock on
PostgreSQL so concurrent changes to one zone queue up instead of racing,
(2) writes the change, and (3) writes the job that will carry it out to the
outbox. Callers get value objects from :mod:`zoneflow.objects`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import hashlib
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from oslo_db import exception as db_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased, selectinload

from zoneflow import exceptions, objects
from zoneflow.storage import db, events, models, options, quotas

# Read without the ORM, so that a process that only reads need not build it.
from zoneflow.storage.reads import get_zone as get_zone
from zoneflow.storage.reads import list_recordsets as list_recordsets
from zoneflow.storage.reads import list_zones as list_zones

CONF = options.CONF


MAX_SERIAL = 2**32 - 1
T = TypeVar("T")
# (target id, serial, status, error): one row of a zone's per-target status.
TargetUpdate = tuple[str, int, str, str | None]


def _rows_changed(session: Session, statement: Any) -> int:
    """Run an UPDATE/DELETE without syncing the session; return the rows it changed."""
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(cast(sa.CursorResult[Any], result).rowcount)


# --- conversions ---------------------------------------------------------


def _pool(row: Any, parts: Mapping[str, Sequence[Any]] | None = None) -> objects.Pool:
    """A pool from its row and its parts (ORM rows: the row's relationships)."""
    if parts is None:
        parts = {name: getattr(row, name) for name in _POOL_PARTS}
    return objects.Pool(
        id=row.id,
        name=row.name,
        description=row.description,
        threshold_percentage=row.threshold_percentage,
        ns_records=tuple(objects.NsRecord(r.hostname, r.priority) for r in parts["ns_records"]),
        nameservers=tuple(objects.HostPort(n.host, n.port) for n in parts["nameservers"]),
        targets=tuple(_target(t) for t in parts["targets"] if t.retired_at is None),
        also_notifies=tuple(objects.HostPort(a.host, a.port) for a in parts["also_notifies"]),
        provisioning=row.provisioning,
        catalog_zone=row.catalog_zone,
        catalog_zone_refresh=row.catalog_zone_refresh,
        retired_targets=tuple(_target(t) for t in parts["targets"] if t.retired_at is not None),
    )


def _target(row: models.PoolTarget) -> objects.PoolTarget:
    return objects.PoolTarget(
        id=row.id,
        pool_id=row.pool_id,
        type=row.type,
        description=row.description,
        masters=tuple(objects.HostPort(m["host"], int(m["port"])) for m in row.masters),
        options=dict(row.options),
        retired_at=row.retired_at,
        drain_error=row.drain_error,
    )


def _value(cls: type[T], row: Any, **computed: Any) -> T:
    """A value object from a row: same-named columns copied, the rest given."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return cls(**{n: computed[n] if n in computed else getattr(row, n) for n in names})


def _zone(row: models.Zone) -> objects.Zone:
    return _value(objects.Zone, row)


def _recordset(row: models.RecordSet) -> objects.RecordSet:
    return _value(objects.RecordSet, row, records=tuple(r.data for r in row.records))


# --- lists: filters and pages -------------------------------------------


def _column(model: type[models.Base] | sa.FromClause, name: str) -> sa.Column[Any]:
    table = model if isinstance(model, sa.FromClause) else model.__table__
    column = table.columns.get(name)
    if column is None:
        raise ValueError(f"{table.description} has no column {name!r}")
    return cast(sa.Column[Any], column)


def _match(
    column: sa.ColumnElement[Any] | InstrumentedAttribute[Any], value: str | int
) -> sa.ColumnElement[bool]:
    """``column`` equal to ``value``, or like it where it has ``*`` wildcards
    (Designate's filters; a wildcard match ignores case, as it does on MySQL)."""
    if isinstance(value, str) and "*" in value:
        return column.ilike(_escape_like(value).replace("*", "%"), escape="\\")
    return column == value


def _escape_like(text: str) -> str:
    """``text`` as a LIKE pattern matching itself (``%`` and ``_`` are plain characters)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _data_match(value: str | int) -> sa.ColumnElement[bool]:
    """A record's data matching a filter value: equal to it (``ix_records_data``), or
    like it where it has ``*`` wildcards, ignoring case. A pattern with a literal
    prefix (``192.0.2.*``) also asks for that prefix of the record's lowered first
    characters, which ``ix_records_data_prefix`` answers on PostgreSQL by a range
    scan; the full pattern is then checked on the rows it finds."""
    matched = _match(models.Record.data, value)
    if not isinstance(value, str) or "*" not in value:
        return matched
    prefix = value.split("*", 1)[0][: models.DATA_PREFIX_CHARS]
    if not prefix:
        return matched  # nothing to range over: every record is read
    # The index's expression, its numbers written into the SQL so that it is the
    # same expression whatever the driver does with parameters.
    head = sa.func.lower(
        sa.func.substr(
            models.Record.data,
            sa.literal_column("1"),
            sa.literal_column(str(models.DATA_PREFIX_CHARS)),
        )
    )
    # lower() of the prefix in SQL too: the same case folding on both sides; the
    # planner folds it into the constant it ranges over.
    pattern = sa.func.lower(_escape_like(prefix)).concat("%")
    return sa.and_(head.like(pattern, escape="\\"), matched)


def _paged(
    session: Session,
    query: sa.Select[Any],
    model: Any,
    scope: list[sa.ColumnElement[bool]],
    filters: list[sa.ColumnElement[bool]],
    paging: objects.Paging,
) -> tuple[list[Any], int, bool]:
    """The rows of one page, how many rows match in all, and whether more follow.

    Keyset pagination: the page starts after the marker row's (sort key, id),
    so a page costs the same however deep it is. NULLs sort first ascending
    and last descending on every database. The marker is looked up within
    ``scope`` only, so a row that stopped matching the filters between two
    pages (its status changed) still marks where the next page starts.
    """
    column = _column(model, paging.sort_key)
    ident = _column(model, "id")
    descending = paging.sort_dir == objects.DESC
    total = session.scalar(sa.select(sa.func.count()).select_from(model).where(*scope, *filters))
    query = query.where(*scope, *filters)
    if paging.marker is not None:
        marker = session.execute(sa.select(column).where(ident == paging.marker, *scope)).first()
        if marker is None:
            raise exceptions.MarkerNotFound(
                f"marker {paging.marker!r} is not in this list: start again without a marker"
            )
        query = query.where(_after(column, ident, marker[0], paging.marker, descending=descending))
    order: list[sa.ColumnElement[Any]] = [column, ident]
    if column.nullable:
        order.insert(0, column.is_not(None))
    rows = list(
        session.scalars(
            query.order_by(*(o.desc() if descending else o.asc() for o in order)).limit(
                paging.limit + 1
            )
        )
    )
    return rows[: paging.limit], int(total or 0), len(rows) > paging.limit


def _after(
    column: sa.Column[Any], ident: sa.Column[Any], value: Any, marker: str, *, descending: bool
) -> sa.ColumnElement[bool]:
    """The rows ordered after the marker row, whose sort value is ``value``."""
    if value is None:
        if descending:
            return sa.and_(column.is_(None), ident < marker)
        return sa.or_(column.is_not(None), ident > marker)
    if descending:
        later = sa.or_(column < value, sa.and_(column == value, ident < marker))
        return sa.or_(later, column.is_(None)) if column.nullable else later
    return sa.or_(column > value, sa.and_(column == value, ident > marker))


# --- pools ---------------------------------------------------------------


def _pool_query() -> sa.Select[models.Pool]:
    return sa.select(models.Pool).options(
        selectinload(models.Pool.ns_records),
        selectinload(models.Pool.nameservers),
        selectinload(models.Pool.targets),
        selectinload(models.Pool.also_notifies),
    )


def list_pools() -> list[objects.Pool]:
    with db.reader() as session:
        return [_pool(p) for p in session.scalars(_pool_query().order_by(models.Pool.name))]


def find_pools(criteria: Mapping[str, str], paging: objects.Paging) -> objects.Page[objects.Pool]:
    """One page of the pools matching ``criteria`` (column name -> value, see
    :func:`_match`), and how many match in all."""
    filters = [_match(_column(models.Pool, key), value) for key, value in criteria.items()]
    with db.reader() as session:
        rows, total, more = _paged(session, _pool_query(), models.Pool, [], filters, paging)
        return objects.Page(tuple(_pool(r) for r in rows), total, more)


def get_pool(ref: str) -> objects.Pool:
    """A pool by name or id.

    Core statements, not the ORM: every job posted reads its zone's pool,
    and the ORM's loading of four relationships took most of a post's time.
    """
    with db.connection() as conn:
        row = conn.execute(
            sa.select(models.Pool.__table__).where(
                sa.or_(models.Pool.name == ref, models.Pool.id == ref)
            )
        ).first()
        if row is None:
            raise exceptions.PoolNotFound(
                f"pool {ref!r} does not exist: "
                "load it with 'zoneflow pool update --file pools.yaml'"
            )
        parts = {
            name: conn.execute(query, {"pool_id": row.id}).all()
            for name, query in _POOL_PARTS.items()
        }
    return _pool(row, parts)


def _pool_part(model: Any, order: Any) -> sa.Select[Any]:
    return (
        sa.select(model.__table__).where(model.pool_id == sa.bindparam("pool_id")).order_by(order)
    )


# A pool's parts, by the name of its relationship.
_POOL_PARTS = {
    "ns_records": _pool_part(models.PoolNsRecord, models.PoolNsRecord.priority),
    "nameservers": _pool_part(models.PoolNameserver, models.PoolNameserver.position),
    "targets": _pool_part(models.PoolTarget, models.PoolTarget.position),
    "also_notifies": _pool_part(models.PoolAlsoNotify, models.PoolAlsoNotify.position),
}


def find_target(target_id: str) -> objects.PoolTarget | None:
    """A target, retired or in service; None once it is gone."""
    with db.reader() as session:
        row = session.get(models.PoolTarget, target_id)
        return None if row is None else _target(row)


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
        zone=get_zone_any(zone_id),
        zone_deleted=zone_is_deleted(zone_id),
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
        return {row.id: _target_action(row) for row in rows}


def zone_wanted_gone(zone_id: str) -> bool:
    """Whether a zone is deleted, or its delete asked for, in one statement."""
    with db.connection() as conn:
        row = conn.execute(_ZONE_STATE, {"id": zone_id}).first()
    return row is None or row.deleted != models.LIVE or row.action == objects.Action.DELETE


def _target_action(row: sa.Row[Any]) -> objects.TargetAction:
    target = row._mapping
    zone = None if row.zone_deleted is None else objects.Zone(*row[-len(_ZONE_FIELDS) :])
    return objects.TargetAction(
        zone=zone,
        zone_deleted=zone is None or row.zone_deleted != models.LIVE,
        target=objects.PoolTarget(
            id=target["id"],
            pool_id=target["pool_id"],
            type=target["type"],
            description=target["description"],
            masters=tuple(objects.HostPort(m["host"], int(m["port"])) for m in target["masters"]),
            options=dict(target["options"]),
            retired_at=target["retired_at"],
            drain_error=target["drain_error"],
        ),
        provisioning=row.provisioning,
    )


def update_pools(
    pools: Sequence[dict[str, Any]], *, backfill: objects.JobPacing, retire: objects.JobKind
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
                updates.append(objects.PoolUpdate(pool=_pool(row)))
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
                to_delete[target.id] = _count(session, _drain_query(row.id, target.id))
                session.add(models.JobOutbox(kind=retire, target_id=target.id, serial=0))
            updates.append(
                objects.PoolUpdate(
                    pool=_pool(row),
                    added_targets=tuple(_target(t) for t in changes.added),
                    added_nameservers=added_nameservers,
                    backfill=backfilled,
                    retired_targets=tuple(_target(t) for t in changes.retired),
                    draining_targets=tuple(_target(t) for t in changes.draining),
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
    by_name = session.scalars(_pool_query().where(models.Pool.name == spec["name"])).first()
    given = spec.get("id")
    if given is None:
        return by_name
    by_id = session.scalars(_pool_query().where(models.Pool.id == given)).first()
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
        changes.removed = tuple(_target(t) for t in unlisted)
        if unlisted:
            session.execute(
                sa.delete(models.ZoneTargetStatus).where(
                    models.ZoneTargetStatus.target_id.in_([t.id for t in unlisted])
                )
            )
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

    Each zone not being deleted is marked PENDING and gets a job of
    ``pacing.kind`` (central posts recover-zone, which acts only on the
    targets that lack the zone). A zone already PENDING gets none: its job
    is either built from the pool as it is now, or, built from the pool as
    it was, finds the pool grown when it sets the status and hands the zone
    to a job itself (set_zone_status). The jobs reach the relays
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
    for start in range(0, len(idle), _IN_CHUNK):
        _rows_changed(
            session,
            sa.update(models.Zone)
            .where(models.Zone.id.in_([r.id for r in idle[start : start + _IN_CHUNK]]))
            .values(status=objects.Status.PENDING, error=None),
        )
    if idle:
        now = models.utcnow()
        session.execute(
            sa.insert(models.JobOutbox),
            [
                {
                    "kind": pacing.kind,
                    "zone_id": r.id,
                    "serial": r.serial,
                    "claimed_until": now + datetime.timedelta(seconds=i * pacing.interval),
                }
                for i, r in enumerate(idle)
            ],
        )
    return len(wanted)


# Ids per IN (...) list: well below SQLite's 32766 bound parameters.
_IN_CHUNK = 500


def _count(session: Session, query: sa.Select[Any]) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0)


# --- retired targets -----------------------------------------------------


def _drain_query(pool_id: str, target_id: str) -> sa.Select[Any]:
    """The zones to delete from a retired target, by name.

    Every live zone of its pool, and every deleted one the target was not
    recorded as having deleted (a delete job that started before the
    retirement skips the target), unless a DELETED row says it is done.
    """
    done = aliased(models.ZoneTargetStatus)
    return (
        sa.select(*(getattr(models.Zone, name) for name in _ZONE_FIELDS))
        .outerjoin(done, sa.and_(done.zone_id == models.Zone.id, done.target_id == target_id))
        .where(
            models.Zone.pool_id == pool_id,
            sa.or_(done.status.is_(None), done.status != objects.Status.DELETED),
            sa.or_(models.Zone.deleted == models.LIVE, done.zone_id.is_not(None)),
        )
    )


def zones_to_drain(
    target_id: str, *, after: tuple[str, str] = ("", ""), limit: int = 100
) -> list[objects.Zone]:
    """The next ``limit`` zones (by name, id) after ``after`` to delete from a retired target."""
    with db.reader() as session:
        target = session.get(models.PoolTarget, target_id)
        if target is None or target.retired_at is None:
            return []
        query = (
            _drain_query(target.pool_id, target_id)
            .where(sa.tuple_(models.Zone.name, models.Zone.id) > after)
            .order_by(models.Zone.name, models.Zone.id)
            .limit(limit)
        )
        return [objects.Zone(*row) for row in session.execute(query)]


def count_zones_to_drain(target_id: str) -> int:
    """How many zones a retired target still has to have deleted (0 if it is gone)."""
    with db.reader() as session:
        target = session.get(models.PoolTarget, target_id)
        if target is None or target.retired_at is None:
            return 0
        return _count(session, _drain_query(target.pool_id, target_id))


def record_drained(target_id: str, outcomes: Sequence[tuple[objects.Zone, str | None]]) -> None:
    """Record, per zone, that a retired target deleted it (error None) or why it did not."""
    if not outcomes:
        return
    now = models.utcnow()
    with db.writer() as session:
        existing = {
            row.zone_id: row
            for row in session.scalars(
                sa.select(models.ZoneTargetStatus).where(
                    models.ZoneTargetStatus.target_id == target_id,
                    models.ZoneTargetStatus.zone_id.in_([zone.id for zone, _ in outcomes]),
                )
            )
        }
        for zone, error in outcomes:
            row = existing.get(zone.id)
            if row is None:
                row = models.ZoneTargetStatus(zone_id=zone.id, target_id=target_id, serial=0)
                session.add(row)
            row.status = objects.Status.DELETED if error is None else objects.Status.ERROR
            row.error = None if error is None else f"not deleted from the retired target: {error}"
            row.updated_at = now


def set_drain_error(target_id: str, error: str | None) -> None:
    """Record why a retired target's drain stopped (None: it is running again)."""
    with db.writer() as session:
        _rows_changed(
            session,
            sa.update(models.PoolTarget)
            .where(models.PoolTarget.id == target_id, models.PoolTarget.retired_at.is_not(None))
            .values(drain_error=error),
        )


def drop_retired_target(target_id: str) -> bool:
    """Forget a drained target: its row and its per-zone rows. False if it is in
    service again (listed by a newer pools file) or already gone."""
    with db.writer() as session:
        dropped = _rows_changed(
            session,
            sa.delete(models.PoolTarget).where(
                models.PoolTarget.id == target_id, models.PoolTarget.retired_at.is_not(None)
            ),
        )
        if dropped:
            session.execute(
                sa.delete(models.ZoneTargetStatus).where(
                    models.ZoneTargetStatus.target_id == target_id
                )
            )
        return bool(dropped)


# --- zones ---------------------------------------------------------------


def _live_zone(session: Session, zone_id: str) -> models.Zone:
    row = session.scalars(
        sa.select(models.Zone).where(models.Zone.id == zone_id, models.Zone.deleted == models.LIVE)
    ).first()
    if row is None:
        raise exceptions.ZoneNotFound(f"zone {zone_id} does not exist")
    return row


_ZONE_FIELDS = [field.name for field in dataclasses.fields(objects.Zone)]
_FIND_ZONE = sa.select(*(getattr(models.Zone, name) for name in _ZONE_FIELDS)).where(
    models.Zone.name == sa.bindparam("name"), models.Zone.deleted == models.LIVE
)


_TARGET_ACTIONS = (
    sa.select(
        models.PoolTarget.id,
        models.PoolTarget.pool_id,
        models.PoolTarget.type,
        models.PoolTarget.description,
        models.PoolTarget.masters,
        models.PoolTarget.options,
        models.PoolTarget.retired_at,
        models.PoolTarget.drain_error,
        models.Pool.provisioning,
        models.Zone.deleted.label("zone_deleted"),
        *(getattr(models.Zone, name) for name in _ZONE_FIELDS),
    )
    .join(models.Pool, models.Pool.id == models.PoolTarget.pool_id)
    .outerjoin(models.Zone, models.Zone.id == sa.bindparam("zone_id"))
    .where(models.PoolTarget.id.in_(sa.bindparam("target_ids", expanding=True)))
)
_ZONE_STATE = sa.select(models.Zone.deleted, models.Zone.action).where(
    models.Zone.id == sa.bindparam("id")
)
_GET_LIVE_ZONE = sa.select(*(getattr(models.Zone, name) for name in _ZONE_FIELDS)).where(
    models.Zone.id == sa.bindparam("id"), models.Zone.deleted == models.LIVE
)
_GET_ZONE_ANY = sa.select(*(getattr(models.Zone, name) for name in _ZONE_FIELDS)).where(
    models.Zone.id == sa.bindparam("id")
)
_ZONE_RECORDS = (
    sa.select(
        models.RecordSet.name, models.RecordSet.type, models.RecordSet.ttl, models.Record.data
    )
    .join(models.Record, models.Record.recordset_id == models.RecordSet.id)
    .where(models.RecordSet.zone_id == sa.bindparam("zone_id"))
    # Each RRset's records together; their order within it means nothing to
    # a secondary, and leaving it out spares a sort (a covering index does it).
    .order_by(models.RecordSet.name, models.RecordSet.type)
)


def find_zone_for_mdns(name: str) -> objects.Zone | None:
    """The live zone of exactly this name, or None (mdns answers REFUSED then).

    mdns asks this for every query, so it skips the ORM: one cached Core
    statement on a pooled connection.
    """
    with db.connection() as conn:
        row = conn.execute(_FIND_ZONE, {"name": name}).first()
    return None if row is None else objects.Zone(*row)


def get_zone_any(zone_id: str) -> objects.Zone | None:
    """A zone by id, live or deleted: flows use it to see the wanted state."""
    with db.connection() as conn:
        row = conn.execute(_GET_ZONE_ANY, {"id": zone_id}).first()
    return None if row is None else objects.Zone(*row)


def zone_is_deleted(zone_id: str) -> bool:
    with db.reader() as session:
        row = session.get(models.Zone, zone_id)
        return row is None or row.deleted != models.LIVE


def poll_state(zone_id: str, host: str, port: int) -> objects.PollState:
    """Whether a zone was deleted, and whether a nameserver is still in its pool.

    A job posted before a pool update still polls the nameservers the pool
    had then; one the update removed is not waited for.
    """
    with db.reader() as session:
        zone = session.get(models.Zone, zone_id)
        if zone is None:
            return objects.PollState(zone_deleted=True, nameserver_in_pool=False)
        listed = session.scalar(
            sa.select(models.PoolNameserver.id).where(
                models.PoolNameserver.pool_id == zone.pool_id,
                models.PoolNameserver.host == host,
                models.PoolNameserver.port == port,
            )
        )
        return objects.PollState(
            zone_deleted=zone.deleted != models.LIVE, nameserver_in_pool=listed is not None
        )


def zone_projects(zone_ids: Sequence[str]) -> dict[str, str | None]:
    """The project of each of these zones, live or deleted (a zone no longer stored
    is left out): who may see the jobs that acted on them."""
    found: dict[str, str | None] = {}
    ids = list(dict.fromkeys(zone_ids))
    with db.reader() as session:
        # In slices: SQLite caps the parameters of one statement.
        for start in range(0, len(ids), 500):
            rows = session.execute(
                sa.select(models.Zone.id, models.Zone.project_id).where(
                    models.Zone.id.in_(ids[start : start + 500])
                )
            )
            found.update({zone_id: project_id for zone_id, project_id in rows})
    return found


def find_zones(
    criteria: Mapping[str, str | int],
    paging: objects.Paging,
    *,
    project_id: str | None = None,
) -> objects.Page[objects.Zone]:
    """One page of the live zones matching ``criteria`` (column name -> value, see
    :func:`_match`), of one project or all, and how many match in all."""
    scope = [models.Zone.deleted == models.LIVE]
    if project_id is not None:
        scope.append(models.Zone.project_id == project_id)
    filters = [_match(_column(models.Zone, key), value) for key, value in criteria.items()]
    with db.reader() as session:
        rows, total, more = _paged(
            session, sa.select(models.Zone), models.Zone, scope, filters, paging
        )
        return objects.Page(tuple(_zone(r) for r in rows), total, more)


def _next_serial(session: Session, zone_id: str) -> tuple[int, int]:
    """Bump a zone's serial by at least one, to the current time if that is larger.

    Returns the serial before and after. The row is read FOR UPDATE: on
    PostgreSQL that locks it until the transaction ends, so two changes to
    one zone queue up and can never share a serial (SQLite's writers are
    already serialized by BEGIN IMMEDIATE).
    """
    previous = session.execute(
        sa.select(models.Zone.serial)
        .where(models.Zone.id == zone_id, models.Zone.deleted == models.LIVE)
        .with_for_update()
    ).scalar_one_or_none()
    if previous is None:
        raise exceptions.ZoneNotFound(f"zone {zone_id} does not exist")
    serial = max(previous + 1, int(time.time()))
    if serial > MAX_SERIAL:
        # RFC 1982 arithmetic would let us wrap; we refuse instead of silently
        # publishing a serial that secondaries would read as older.
        raise exceptions.InvalidInput(f"zone {zone_id} serial would exceed {MAX_SERIAL}")
    session.execute(
        sa.update(models.Zone)
        .where(models.Zone.id == zone_id)
        .values(serial=serial, version=models.Zone.version + 1)
        .execution_options(synchronize_session=False)
    )
    return int(previous), serial


def _served(zone: models.Zone, row: models.RecordSet) -> set[objects.Record]:
    """The records a recordset row puts in the zone, with the TTL they are served with."""
    ttl = row.ttl if row.ttl is not None else zone.ttl
    return {(row.name, ttl, row.type, record.data) for record in row.records}


def _record_change(
    session: Session,
    zone_id: str,
    serials: tuple[int, int],
    *,
    before: set[objects.Record] | None = None,
    after: set[objects.Record] | None = None,
) -> None:
    """Write what a serial changed, for IXFR; keep the newest ``zone_change_history``.

    Without ``before`` and ``after`` the change is not incremental: clients
    older than it get a full transfer.
    """
    previous, serial = serials
    incremental = before is not None or after is not None
    before, after = before or set(), after or set()
    session.add(
        models.ZoneChange(
            zone_id=zone_id,
            previous_serial=previous,
            serial=serial,
            incremental=incremental,
            removed=[list(r) for r in sorted(before - after)],
            added=[list(r) for r in sorted(after - before)],
        )
    )
    oldest_kept = session.scalar(
        sa.select(models.ZoneChange.id)
        .where(models.ZoneChange.zone_id == zone_id)
        .order_by(models.ZoneChange.id.desc())
        .offset(CONF.storage.zone_change_history - 1)
        .limit(1)
    )
    if oldest_kept is not None:
        session.execute(
            sa.delete(models.ZoneChange).where(
                models.ZoneChange.zone_id == zone_id, models.ZoneChange.id < oldest_kept
            )
        )


def _post(session: Session, kind: objects.JobKind, zone_id: str, serial: int) -> None:
    session.add(models.JobOutbox(kind=kind, zone_id=zone_id, serial=serial))


# Called inside the transaction that creates a zone, with the live zones of its pool
# above and below its name (the pool's placement lock held); raises to refuse.
ZonePlacement = Callable[[list[objects.Zone]], None]


@db.retried
def create_zone(
    values: dict[str, Any],
    *,
    job: objects.JobKind,
    place: ZonePlacement | None = None,
    admit: quotas.ZoneAdmission | None = None,
) -> objects.Zone:
    """Insert a zone as PENDING/CREATE with a ``job`` for it; ``place`` and ``admit``
    first, in the same transaction (see :func:`admit_zone`)."""
    zone_id = str(uuid.uuid4())
    serial = max(int(time.time()), 1)
    try:
        with db.writer() as session:
            admit_zone(
                session,
                values["name"],
                values["pool_id"],
                values.get("project_id"),
                place=place,
                admit=admit,
            )
            row = models.Zone(
                id=zone_id,
                serial=serial,
                status=objects.Status.PENDING,
                action=objects.Action.CREATE,
                **values,
            )
            session.add(row)
            session.flush()
            _catalog_changed(session, row.pool_id)
            _post(session, job, zone_id, serial)
            created = events.record(session, objects.EventTopic.ZONE, _zone(row))
    except db_exc.DBDuplicateEntry:
        raise exceptions.DuplicateZone(
            f"zone {values['name']} already exists: pick another name or delete the old zone"
        ) from None
    return created


def admit_zone(
    session: Session,
    name: str,
    pool_id: str,
    project_id: str | None,
    *,
    place: ZonePlacement | None,
    admit: quotas.ZoneAdmission | None,
) -> None:
    """Before a zone is inserted: call ``place`` with the zones around ``name`` in its pool,
    then ``admit`` with the zones ``project_id`` holds, each read under a lock held until
    the transaction ends. Two creates racing for a zone and its subzone, or for a
    project's last zone, queue here, and the second sees the first's zone.

    Every zone create takes the pool's lock, even one with nothing to check (a zone of
    no project): a project's create checking under it must see that zone too. The
    locks are taken in one order, the pool's and then the project's, so two creates
    never wait for each other in a cycle.
    """
    _lock_pool(session, pool_id)
    if place is not None:
        place(_zones_around(session, name, pool_id))
    if admit is not None and project_id is not None:
        quotas.lock_project(session, project_id)
        admit(quotas.count_zones(session, project_id))


# The class of zoneflow's pool placement locks: PostgreSQL's two-key advisory locks are
# apart from its one-key ones (the projects' quota locks), so the two never collide.
_PLACEMENT_LOCKS = 0x7A66_706C


def _lock_pool(session: Session, pool_id: str) -> None:
    """Make any other transaction creating a zone in this pool wait until this one ends.

    On PostgreSQL an advisory transaction lock keyed on the pool; the zones read
    after it include every zone the transaction before it committed (READ
    COMMITTED reads a fresh snapshot per statement). Two pools sharing a key
    only wait for each other. SQLite needs none: writer() began with BEGIN
    IMMEDIATE, so the database is this transaction's alone.
    """
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"zoneflow pool {pool_id}".encode()).digest()
        key = int.from_bytes(digest[:4], "big", signed=True)
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(_PLACEMENT_LOCKS, key)))


@db.retried
def update_zone(zone_id: str, values: dict[str, Any], *, job: objects.JobKind) -> objects.Zone:
    with db.writer() as session:
        row = _live_zone(session, zone_id)
        _refuse_if_deleting(row)
        # The SOA fields or the TTL of every record may change: not incremental.
        _record_change(session, zone_id, _next_serial(session, zone_id))
        session.refresh(row)
        for key, value in values.items():
            setattr(row, key, value)
        row.status, row.action, row.error = objects.Status.PENDING, objects.Action.UPDATE, None
        _post(session, job, zone_id, row.serial)
        session.flush()
        # Converted inside the transaction: re-reading after commit could
        # return a newer change's serial.
        return events.record(session, objects.EventTopic.ZONE, _zone(row))


@db.retried
def delete_zone(zone_id: str, *, job: objects.JobKind) -> objects.Zone:
    """Mark a zone PENDING/DELETE and post ``job`` (central's delete-zone).

    The row stays until the job has removed the zone from the targets, so a
    failed delete can be seen and retried.
    """
    with db.writer() as session:
        row = _live_zone(session, zone_id)
        _record_change(session, zone_id, _next_serial(session, zone_id))
        session.refresh(row)
        row.status, row.action, row.error = objects.Status.PENDING, objects.Action.DELETE, None
        _catalog_changed(session, row.pool_id)
        _post(session, job, zone_id, row.serial)
        session.flush()
        return events.record(session, objects.EventTopic.ZONE, _zone(row))


@db.retried
def recover_zone(zone_id: str, *, job: objects.JobKind) -> objects.Zone:
    """Mark a zone PENDING (its action kept) and post ``job`` (central's recover-zone)
    for its serial.

    Nothing about the zone changes, so the serial stays: the job brings the
    targets to what the zone already is. A zone with a job in flight is
    refused, since that job will set its status.
    """
    with db.writer() as session:
        row = session.scalars(
            sa.select(models.Zone)
            .where(models.Zone.id == zone_id, models.Zone.deleted == models.LIVE)
            .with_for_update()
        ).first()
        if row is None:
            raise exceptions.ZoneNotFound(f"zone {zone_id} does not exist")
        if row.status == objects.Status.PENDING:
            raise exceptions.ZoneBusy(
                f"zone {row.name} has a job in progress (PENDING {row.action}): wait for it to "
                "finish, then recover the zone if it ends in ERROR"
            )
        row.status, row.error = objects.Status.PENDING, None
        _post(session, job, zone_id, row.serial)
        session.flush()
        return events.record(session, objects.EventTopic.ZONE, _zone(row))


def _catalog_changed(session: Session, pool_id: str) -> None:
    """A zone joined or left the pool: its catalog zone gets a new serial."""
    session.execute(
        sa.update(models.Pool)
        .where(models.Pool.id == pool_id, models.Pool.catalog_zone.is_not(None))
        .values(catalog_serial=models.Pool.catalog_serial + 1)
    )


def _zones_around(session: Session, name: str, pool_id: str) -> list[objects.Zone]:
    """The live zones of a pool above ``name`` (its parents, up to the top-level domain)
    and below it (its subzones), whoever owns them."""
    labels = name.rstrip(".").split(".")
    parents = [".".join(labels[i:]) + "." for i in range(1, len(labels))]
    query = sa.select(models.Zone).where(
        models.Zone.deleted == models.LIVE,
        models.Zone.pool_id == pool_id,
        sa.or_(
            models.Zone.name.in_(parents),
            models.Zone.name.endswith("." + name, autoescape=True),
        ),
    )
    return [_zone(row) for row in session.scalars(query.order_by(models.Zone.name))]


def list_catalogs() -> dict[str, str]:
    """Every pool's catalog zone name (lower case, absolute) and the pool's id."""
    with db.reader() as session:
        rows = session.execute(
            sa.select(models.Pool.catalog_zone, models.Pool.id).where(
                models.Pool.catalog_zone.is_not(None)
            )
        )
        return {str(name): pool_id for name, pool_id in rows}


def get_catalog(pool_id: str) -> objects.Catalog | None:
    """A pool's catalog: its serial and the zones it lists (live, not being deleted)."""
    with db.reader() as session:
        pool = session.get(models.Pool, pool_id)
        if pool is None or pool.catalog_zone is None:
            return None
        members = session.execute(
            sa.select(models.Zone.id, models.Zone.name)
            .where(
                models.Zone.pool_id == pool_id,
                models.Zone.deleted == models.LIVE,
                models.Zone.action != objects.Action.DELETE,
            )
            .order_by(models.Zone.name)
        )
        return objects.Catalog(
            pool_id=pool_id,
            name=pool.catalog_zone,
            serial=pool.catalog_serial,
            refresh=pool.catalog_zone_refresh,
            members=tuple((zone_id, name) for zone_id, name in members),
        )


def _refuse_if_deleting(row: models.Zone) -> None:
    if row.action == objects.Action.DELETE:
        raise exceptions.ZoneBusy(
            f"zone {row.name} is being deleted and accepts no changes: wait for the delete to "
            "finish, then create it again"
        )


def set_zone_status(
    zone_id: str,
    *,
    serial: int,
    status: str,
    action: str | None = None,
    error: str | None = None,
    covered_targets: Collection[str] | None = None,
    covered_nameservers: Collection[tuple[str, int]] = (),
    pool_grown_job: objects.JobKind | None = None,
    targets: Sequence[TargetUpdate] = (),
) -> bool:
    """Record a job's outcome unless a newer change has been made since.

    ``targets`` are per-target rows to record first, in the same transaction
    (see set_target_statuses): a job's last step is then one transaction.

    A job only speaks for the serial it carried out: if the zone's serial has
    moved on, a newer job will set the status and this call does nothing.
    Returns whether the status was written.

    A job making the zone ACTIVE says which targets and nameservers it
    covered, and which job to post if they are not all the pool's
    (``pool_grown_job``, required with ``covered_targets``). If the zone's pool
    now has one it did not cover (the pool changed while the job ran), the
    zone is not ACTIVE yet: it stays PENDING and that job, for the serial, is
    posted in the same transaction to bring the zone onto the rest.
    """
    if covered_targets is not None and pool_grown_job is None:
        raise TypeError("set_zone_status: covered_targets needs pool_grown_job")
    # Core statements built once, on the session's connection: this is every
    # job's last step, and the ORM's handling of a statement cost more than
    # the database did.
    with db.writer() as session:
        _write_target_statuses(session, zone_id, targets)
        conn = session.connection()
        if status == objects.Status.ACTIVE and covered_targets is not None and pool_grown_job:
            # The zone's row first, locked: a pool update backfilling it
            # waits for this transaction, or this one reads its targets.
            pool_id = conn.execute(_LOCK_ZONE_POOL, {"zone_id": zone_id, "serial": serial}).scalar()
            if pool_id is None:
                return False
            if not _covers(conn, pool_id, covered_targets, covered_nameservers):
                _rows_changed(
                    session,
                    sa.update(models.Zone)
                    .where(models.Zone.id == zone_id)
                    .values(status=objects.Status.PENDING, error=None),
                )
                _post(session, pool_grown_job, zone_id, serial)
                return False
        values: dict[str, Any] = {"status": status, "error": error}
        if action is not None:
            values["action"] = action
        result = conn.execute(_SET_ZONE_STATUS, {"b_id": zone_id, "b_serial": serial, **values})
        if status == objects.Status.ACTIVE:
            conn.execute(_RECORDSETS_ACTIVE, {"b_zone_id": zone_id, "b_serial": serial})
        return events.zone_settled(session, zone_id, written=bool(result.rowcount))


def _covers(
    conn: sa.Connection,
    pool_id: str,
    targets: Collection[str],
    nameservers: Collection[tuple[str, int]],
) -> bool:
    """Whether a job with these targets and nameservers covered the pool as it is now."""
    covered_targets, covered_nameservers = set(targets), set(nameservers)
    return all(
        key in covered_targets if kind == "target" else (key, port) in covered_nameservers
        for kind, key, port in conn.execute(_POOL_SERVERS, {"pool_id": pool_id})
    )


_LOCK_ZONE_POOL = (
    sa.select(models.Zone.pool_id)
    .where(
        models.Zone.id == sa.bindparam("zone_id"),
        models.Zone.serial == sa.bindparam("serial"),
        models.Zone.deleted == models.LIVE,
    )
    .with_for_update()
)
# A pool's targets in service and its nameservers, in one round trip:
# ("target", id, None) and ("nameserver", host, port) rows.
_POOL_SERVERS: sa.CompoundSelect[Any] = sa.union_all(
    sa.select(sa.literal("target"), models.PoolTarget.id, sa.null()).where(
        models.PoolTarget.pool_id == sa.bindparam("pool_id"), models.PoolTarget.retired_at.is_(None)
    ),
    sa.select(
        sa.literal("nameserver"), models.PoolNameserver.host, models.PoolNameserver.port
    ).where(models.PoolNameserver.pool_id == sa.bindparam("pool_id")),
)
_ZONES = cast(sa.Table, models.Zone.__table__)
_RECORDSETS = cast(sa.Table, models.RecordSet.__table__)
# The columns to set are the parameters given beside b_id and b_serial.
_SET_ZONE_STATUS = sa.update(_ZONES).where(
    _ZONES.c.id == sa.bindparam("b_id"),
    _ZONES.c.serial == sa.bindparam("b_serial"),
    _ZONES.c.deleted == models.LIVE,
)
_RECORDSETS_ACTIVE = (
    sa.update(_RECORDSETS)
    .where(
        _RECORDSETS.c.zone_id == sa.bindparam("b_zone_id"),
        _RECORDSETS.c.serial <= sa.bindparam("b_serial"),
    )
    .values(status=objects.Status.ACTIVE, action=objects.Action.NONE)
)


def finish_zone_delete(zone_id: str, *, serial: int, targets: Sequence[TargetUpdate] = ()) -> bool:
    """Soft-delete a zone once its delete job has succeeded (if still wanted),
    recording ``targets`` (per-target rows) in the same transaction."""
    with db.writer() as session:
        _write_target_statuses(session, zone_id, targets)
        now = models.utcnow()
        result = _rows_changed(
            session,
            sa.update(models.Zone)
            .where(
                models.Zone.id == zone_id,
                models.Zone.serial == serial,
                models.Zone.action == objects.Action.DELETE,
                models.Zone.deleted == models.LIVE,
            )
            .values(
                status=objects.Status.DELETED,
                action=objects.Action.NONE,
                deleted=zone_id,
                deleted_at=now,
                error=None,
            ),
        )
        return events.zone_settled(session, zone_id, written=bool(result))


# --- recordsets ----------------------------------------------------------


def _recordset_query() -> sa.Select[models.RecordSet]:
    return sa.select(models.RecordSet).options(selectinload(models.RecordSet.records))


@contextlib.contextmanager
def zone_for_transfer(
    zone_id: str,
) -> Iterator[tuple[objects.Zone, Iterator[tuple[str, str, int | None, str]]]]:
    """A zone and its records as (owner, type, ttl or None, data), for one AXFR.

    Everything is read in one transaction, so the records are those of the
    serial returned, even while changes land (PostgreSQL: REPEATABLE READ;
    SQLite's WAL readers see one snapshot anyway). The records come
    ``[storage] transfer_batch_size`` at a time (a server-side cursor on
    PostgreSQL) grouped by owner and type; the transaction stays open until the
    block ends.
    """
    # Not db.reader(): its session belongs to one thread, and mdns reads a
    # stream on whichever pool thread is free, one batch after another. And
    # Core rows, not ORM ones: a transfer is a hundred thousand of them.
    with db.connection() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            row = connection.execute(_GET_LIVE_ZONE, {"id": zone_id}).first()
            if row is None:
                raise exceptions.ZoneNotFound(f"zone {zone_id} does not exist")
            records = connection.execution_options(
                yield_per=CONF.storage.transfer_batch_size
            ).execute(_ZONE_RECORDS, {"zone_id": zone_id})
            yield objects.Zone(*row), cast(Iterator[tuple[str, str, int | None, str]], records)


def zone_changes_since(zone_id: str, serial: int) -> list[objects.ZoneChange] | None:
    """The changes that lead from ``serial`` to the zone's newest, oldest first.

    None when the history does not reach back to ``serial``, or when one of
    the changes cannot be told as record differences: the client needs the
    whole zone then.
    """
    with db.reader() as session:
        start = session.scalar(
            sa.select(sa.func.max(models.ZoneChange.id)).where(
                models.ZoneChange.zone_id == zone_id, models.ZoneChange.previous_serial == serial
            )
        )
        if start is None:
            return None
        rows = session.scalars(
            sa.select(models.ZoneChange)
            .where(models.ZoneChange.zone_id == zone_id, models.ZoneChange.id >= start)
            .order_by(models.ZoneChange.id)
        ).all()
    changes, expected = [], serial
    for row in rows:
        if not row.incremental or row.previous_serial != expected:
            return None
        changes.append(
            objects.ZoneChange(
                previous_serial=row.previous_serial,
                serial=row.serial,
                incremental=True,
                removed=tuple(cast(objects.Record, tuple(r)) for r in row.removed),
                added=tuple(cast(objects.Record, tuple(r)) for r in row.added),
            )
        )
        expected = row.serial
    return changes


def record_transfers(transfers: Sequence[tuple[str, objects.ZoneTransfer]]) -> None:
    """Add (zone id, transfers) that mdns served since its last write, in one transaction.

    Each one's ``count`` is of the transfers since then: added to the row's
    when it is of the same serial, else it starts the row's count again.
    Zones deleted meanwhile are left out.
    """
    with db.writer() as session:
        # The rows already there, in one read: a write holds many zones' transfers.
        rows = {
            (row.zone_id, row.source): row
            for row in session.scalars(
                sa.select(models.ZoneTransfer).where(
                    models.ZoneTransfer.zone_id.in_({zone_id for zone_id, _ in transfers})
                )
            )
        }
        for zone_id, seen in transfers:
            row = rows.get((zone_id, seen.source))
            if row is None:
                try:
                    with session.begin_nested():
                        session.add(
                            models.ZoneTransfer(zone_id=zone_id, **dataclasses.asdict(seen))
                        )
                    continue
                except db_exc.DBReferenceError:
                    continue  # the zone is gone: nothing to explain about it
                except db_exc.DBDuplicateEntry:
                    # Another mdns wrote the same client's first transfer: add to it.
                    row = _transfer_row(session, zone_id, seen.source)
                    if row is None:
                        continue
            if row.serial == seen.serial:
                row.count += seen.count
            else:
                row.serial, row.count, row.first_at = seen.serial, seen.count, seen.first_at
            row.kind, row.last_at, row.completed = seen.kind, seen.last_at, seen.completed


def _transfer_row(session: Session, zone_id: str, source: str) -> models.ZoneTransfer | None:
    return session.scalars(
        sa.select(models.ZoneTransfer).where(
            models.ZoneTransfer.zone_id == zone_id, models.ZoneTransfer.source == source
        )
    ).first()


def list_transfers(zone_id: str) -> list[objects.ZoneTransfer]:
    """The last transfers mdns served each client address of a zone, newest first."""
    with db.reader() as session:
        rows = session.scalars(
            sa.select(models.ZoneTransfer)
            .where(models.ZoneTransfer.zone_id == zone_id)
            .order_by(models.ZoneTransfer.last_at.desc(), models.ZoneTransfer.source)
        )
        return [_value(objects.ZoneTransfer, row) for row in rows]


def get_recordset(zone_id: str, ref: str, rtype: str | None = None) -> objects.RecordSet:
    """A recordset by id, or by absolute name and type."""
    with db.reader() as session:
        query = _recordset_query().where(models.RecordSet.zone_id == zone_id)
        if rtype is None:
            query = query.where(models.RecordSet.id == ref)
        else:
            query = query.where(models.RecordSet.name == ref, models.RecordSet.type == rtype)
        row = session.scalars(query).first()
        if row is None:
            what = f"{ref} {rtype}" if rtype else ref
            raise exceptions.RecordSetNotFound(f"recordset {what} does not exist in this zone")
        return _recordset(row)


# What central checks a recordset's create with: the (name, type) of the
# recordsets a rule about the new recordset's name can involve.
RecordSetCheck = Callable[[list[tuple[str, str]]], None]


def _related_recordsets(session: Session, zone: models.Zone, name: str) -> list[tuple[str, str]]:
    """The zone's recordsets at ``name``, at the names above it up to the apex and at
    the names below it: all a rule of :mod:`zoneflow.dns.rules` about ``name`` can
    involve, read in the write's transaction (after the zone's lock)."""
    labels = name[: -len(zone.name)].rstrip(".").split(".") if name != zone.name else []
    above = [".".join([*labels[i:], zone.name]) for i in range(1, len(labels))] + [zone.name]
    query = sa.select(models.RecordSet.name, models.RecordSet.type).where(
        models.RecordSet.zone_id == zone.id,
        sa.or_(
            models.RecordSet.name.in_([name, *above]),
            models.RecordSet.name.endswith("." + name, autoescape=True),
        ),
    )
    return [(row[0], row[1]) for row in session.execute(query)]


@db.retried
def create_recordset(
    zone_id: str,
    *,
    name: str,
    rtype: str,
    ttl: int | None,
    records: list[str],
    job: objects.JobKind,
    description: str | None = None,
    admit: quotas.RecordSetAdmission | None = None,
    check: RecordSetCheck | None = None,
) -> objects.RecordSet:
    """Insert a recordset as PENDING/CREATE and a ``job`` for its zone; ``admit``
    first, with the zone's usage read under the zone's lock, then ``check`` with the
    recordsets related to its name (see :func:`_related_recordsets`)."""
    try:
        with db.writer() as session:
            zone = _live_zone(session, zone_id)
            _refuse_if_deleting(zone)
            serials = _next_serial(session, zone_id)
            serial = serials[1]
            if admit is not None:
                admit(*quotas.zone_usage(zone_id, session=session), 0)
            if check is not None:
                check(_related_recordsets(session, zone, name))
            row = models.RecordSet(
                zone_id=zone_id,
                name=name,
                type=rtype,
                ttl=ttl,
                serial=serial,
                status=objects.Status.PENDING,
                action=objects.Action.CREATE,
                description=description,
                records=[models.Record(position=i, data=d) for i, d in enumerate(records)],
            )
            session.add(row)
            session.flush()
            _record_change(session, zone_id, serials, after=_served(zone, row))
            _mark_zone_updating(session, zone_id)
            _post(session, job, zone_id, serial)
            created = events.record(session, objects.EventTopic.RECORDSET, _recordset(row))
    except db_exc.DBDuplicateEntry:
        raise exceptions.DuplicateRecordSet(
            f"{objects.with_article(rtype)} recordset named {name} already exists: update it "
            "instead"
        ) from None
    return created


@db.retried
def update_recordset(
    zone_id: str,
    recordset_id: str,
    *,
    ttl: int | None,
    records: list[str] | None,
    set_ttl: bool,
    job: objects.JobKind,
    description: str | None = None,
    admit: quotas.RecordSetAdmission | None = None,
) -> objects.RecordSet:
    """Replace a recordset's records and/or TTL (``set_ttl``), and its description
    unless that is None ("" clears it), posting a ``job`` for its zone; ``admit``
    first, with the zone's usage and the records the recordset holds, read under the
    zone's lock."""
    with db.writer() as session:
        zone = _live_zone(session, zone_id)
        _refuse_if_deleting(zone)
        # The serial first: it locks the zone, so the recordset read next is current.
        serials = _next_serial(session, zone_id)
        serial = serials[1]
        row = _recordset_row(session, zone_id, recordset_id)
        if admit is not None:
            admit(*quotas.zone_usage(zone_id, session=session), len(row.records))
        before = _served(zone, row)
        if set_ttl:
            row.ttl = ttl
        if records is not None:
            # The old records go first: the ORM would insert the new ones
            # before deleting, and a record kept across the update would
            # then collide with itself on (recordset_id, data).
            row.records = []
            session.flush()
            row.records = [models.Record(position=i, data=d) for i, d in enumerate(records)]
        if description is not None:
            row.description = description or None
        row.serial, row.status, row.action = serial, objects.Status.PENDING, objects.Action.UPDATE
        row.version += 1
        _record_change(session, zone_id, serials, before=before, after=_served(zone, row))
        _mark_zone_updating(session, zone_id)
        _post(session, job, zone_id, serial)
        session.flush()
        return events.record(session, objects.EventTopic.RECORDSET, _recordset(row))


@db.retried
def delete_recordset(zone_id: str, recordset_id: str, *, job: objects.JobKind) -> objects.RecordSet:
    with db.writer() as session:
        zone = _live_zone(session, zone_id)
        _refuse_if_deleting(zone)
        serials = _next_serial(session, zone_id)
        serial = serials[1]
        row = _recordset_row(session, zone_id, recordset_id)
        _record_change(session, zone_id, serials, before=_served(zone, row))
        gone = dataclasses.replace(
            _recordset(row),
            serial=serial,
            status=objects.Status.PENDING,
            action=objects.Action.DELETE,
        )
        session.delete(row)
        _mark_zone_updating(session, zone_id)
        _post(session, job, zone_id, serial)
        events.record(session, objects.EventTopic.RECORDSET, gone)
    return gone


def _recordset_row(session: Session, zone_id: str, recordset_id: str) -> models.RecordSet:
    row = session.scalars(
        _recordset_query().where(
            models.RecordSet.zone_id == zone_id, models.RecordSet.id == recordset_id
        )
    ).first()
    if row is None:
        raise exceptions.RecordSetNotFound(f"recordset {recordset_id} does not exist")
    return row


def _mark_zone_updating(session: Session, zone_id: str) -> None:
    # A zone whose create job has not finished stays CREATE: the create job
    # or the update job after it, whichever carries the newest serial, will
    # make it ACTIVE.
    action = sa.case(
        (models.Zone.action == objects.Action.CREATE, objects.Action.CREATE),
        else_=objects.Action.UPDATE,
    )
    _rows_changed(
        session,
        sa.update(models.Zone)
        .where(models.Zone.id == zone_id)
        .values(status=objects.Status.PENDING, action=action, error=None),
    )


# --- per-target status ---------------------------------------------------


def set_target_status(
    zone_id: str, target_id: str, *, serial: int, status: str, error: str | None = None
) -> None:
    """Record what one target serves; a served serial never goes backwards."""
    set_target_statuses(zone_id, [(target_id, serial, status, error)])


def set_target_statuses(zone_id: str, updates: Sequence[TargetUpdate]) -> None:
    """Record (target id, serial, status, error) for several targets in one transaction."""
    if updates:
        with db.writer() as session:
            _write_target_statuses(session, zone_id, updates)


def _write_target_statuses(session: Session, zone_id: str, updates: Sequence[TargetUpdate]) -> None:
    if not updates:
        return
    conn = session.connection()
    now = models.utcnow()
    # A job that started before its target was retired (or dropped)
    # records nothing about it: the retire-target job owns those rows.
    in_service = set(conn.execute(_IN_SERVICE, {"ids": [u[0] for u in updates]}).scalars())
    rows = [
        {
            "zone_id": zone_id,
            "target_id": target_id,
            "serial": serial,
            "status": status,
            "error": error,
            "updated_at": now,
        }
        for target_id, serial, status, error in updates
        if target_id in in_service
    ]
    if rows:
        # One statement for all the job's targets, the served serial kept if higher.
        conn.execute(_upsert_target_status(conn.dialect.name), rows)


_IN_SERVICE = sa.select(models.PoolTarget.id).where(
    models.PoolTarget.id.in_(sa.bindparam("ids", expanding=True)),
    models.PoolTarget.retired_at.is_(None),
)


@functools.cache
def _upsert_target_status(dialect: str) -> Any:
    """The upsert of per-target rows. Its RETURNING is not read: with it,
    SQLAlchemy sends many rows as one statement, where without it psycopg2
    runs the statement once per row (SQLAlchemy's "insertmanyvalues")."""
    table = cast(sa.Table, models.ZoneTargetStatus.__table__)
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return insert.on_conflict_do_update(
        index_elements=[table.c.zone_id, table.c.target_id],
        set_={
            "serial": sa.case(
                (insert.excluded.serial > table.c.serial, insert.excluded.serial),
                else_=table.c.serial,
            ),
            "status": insert.excluded.status,
            "error": insert.excluded.error,
            "updated_at": insert.excluded.updated_at,
        },
    ).returning(table.c.target_id)


def get_target_status(zone_id: str, target_id: str) -> objects.TargetStatus | None:
    """What one target was last recorded serving of a zone, or None if nothing yet."""
    with db.reader() as session:
        row = session.get(models.ZoneTargetStatus, (zone_id, target_id))
        return None if row is None else _value(objects.TargetStatus, row)


def list_target_status(zone_id: str) -> list[objects.TargetStatus]:
    with db.reader() as session:
        rows = session.scalars(
            sa.select(models.ZoneTargetStatus).where(models.ZoneTargetStatus.zone_id == zone_id)
        )
        return [_value(objects.TargetStatus, r) for r in rows]


# --- the job outbox ------------------------------------------------------


def claim_pending_jobs(*, limit: int = 100, lease: float = 30.0) -> list[objects.PendingJob]:
    """Take outbox rows nobody else holds, for ``lease`` seconds, oldest first.

    A relay that dies after claiming simply lets the lease run out and another
    relay posts the job. One statement: on PostgreSQL two relays claiming at
    once skip each other's rows (SKIP LOCKED), and the free-or-expired test
    is made again on each row it locks.
    """
    now = models.utcnow()
    with db.transaction() as conn:
        rows = conn.execute(
            _CLAIM_OUTBOX,
            {"now": now, "until": now + datetime.timedelta(seconds=lease), "limit": limit},
        )
        claimed = [
            objects.PendingJob(job_id, objects.JobKind(kind), *rest) for job_id, kind, *rest in rows
        ]
    return sorted(claimed, key=lambda pending: pending.id)


def release_pending_job(job_id: int) -> None:
    """Give a claimed outbox row back (posting failed; try again soon)."""
    with db.transaction() as conn:
        conn.execute(_RELEASE_OUTBOX, {"b_id": job_id})


def remove_pending_job(job_id: int) -> None:
    with db.transaction() as conn:
        conn.execute(_REMOVE_OUTBOX, {"b_id": job_id})


_OUTBOX = cast(sa.Table, models.JobOutbox.__table__)
_OUTBOX_FREE = sa.or_(
    _OUTBOX.c.claimed_until.is_(None), _OUTBOX.c.claimed_until < sa.bindparam("now")
)
_CLAIM_OUTBOX = (
    sa.update(_OUTBOX)
    .where(
        _OUTBOX.c.id.in_(
            sa.select(_OUTBOX.c.id)
            .where(_OUTBOX_FREE)
            .order_by(_OUTBOX.c.id)
            .limit(sa.bindparam("limit"))
            .with_for_update(skip_locked=True)
        ),
        _OUTBOX_FREE,
    )
    .values(claimed_until=sa.bindparam("until"))
    # In PendingJob's order.
    .returning(
        _OUTBOX.c.id,
        _OUTBOX.c.kind,
        _OUTBOX.c.zone_id,
        _OUTBOX.c.serial,
        _OUTBOX.c.target_id,
        _OUTBOX.c.created_at,
    )
)
_RELEASE_OUTBOX = (
    sa.update(_OUTBOX).where(_OUTBOX.c.id == sa.bindparam("b_id")).values(claimed_until=None)
)
_REMOVE_OUTBOX = sa.delete(_OUTBOX).where(_OUTBOX.c.id == sa.bindparam("b_id"))
