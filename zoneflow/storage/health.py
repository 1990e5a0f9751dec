"""Targets' health and maintenance as stored, and what each change of them writes.

A target has a row of ``target_states`` once the inspector has judged it DOWN
or an operator has put it in maintenance; a target without one is UP and
counted. Each change is one transaction holding everything it implies, so
none is ever seen half made:

- DOWN (:func:`mark_down`): the state and since-when, the target's (zone,
  target) rows that said it served the zone marked BEHIND (its served serial
  kept), an ALARM event and a TARGET event;
- UP (:func:`mark_up`): the state, the recover-zone jobs of the zones it
  missed (:func:`missed`) in the outbox, paced, the BEHIND rows of the other
  zones back to ACTIVE, a TARGET event;
- maintenance (:func:`set_maintenance`, :func:`finish_catch_up`): the same
  marking and jobs, with a TARGET event for each step.

Who decides what is posted (the job kind, the pacing) is central
(zoneflow.central.health); who decides when a target is DOWN is the
inspector.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from zoneflow import objects
from zoneflow.storage import conversions, db, events, models

P = ParamSpec("P")
T = TypeVar("T")

_ROWS = models.ZoneTargetStatus
_SERVED = (objects.Status.ACTIVE, objects.BEHIND)


@dataclasses.dataclass(frozen=True)
class Watched:
    """A target in service as the inspector watches it: where it answers DNS."""

    target: objects.PoolTarget
    host: str | None
    port: int


def watched_targets() -> list[Watched]:
    """Every target in service, with the address its nameserver answers on (None:
    a target that names none, such as the fake backend's, is not probed)."""
    with db.reader() as session:
        rows = session.scalars(
            sa.select(models.PoolTarget)
            .where(models.PoolTarget.retired_at.is_(None))
            .order_by(models.PoolTarget.pool_id, models.PoolTarget.position)
        )
        targets = [conversions.target(row) for row in rows]
    return [Watched(t, t.options.get("host"), int(t.options.get("port", 53))) for t in targets]


def zones_by_pool() -> dict[str, list[str]]:
    """The live zones of each pool, by pool id: the inspector's cached map."""
    with db.connection() as conn:
        rows = conn.execute(
            sa.select(models.Zone.pool_id, models.Zone.id).where(models.Zone.deleted == models.LIVE)
        )
        found: dict[str, list[str]] = {}
        for pool_id, zone_id in rows:
            found.setdefault(pool_id, []).append(zone_id)
        return found


def states() -> dict[str, objects.TargetState]:
    """The stored state of every target that has one, by target id."""
    with db.reader() as session:
        rows = session.scalars(sa.select(models.TargetState))
        return {row.target_id: conversions.value(objects.TargetState, row) for row in rows}


def get_state(target_id: str) -> objects.TargetState:
    """A target's state: its row, or UP and counted when it has none."""
    with db.reader() as session:
        row = session.get(models.TargetState, target_id)
        if row is not None:
            return conversions.value(objects.TargetState, row)
    return objects.TargetState(target_id, objects.TargetHealth.UP, models.utcnow())


def not_counted(target_ids: Collection[str]) -> set[str]:
    """Those of ``target_ids`` that thresholds leave out (in maintenance or catching up).

    Every job's consensus check and status write asks, so it is one indexed
    read, and none when the table is empty."""
    if not target_ids:
        return set()
    with db.connection() as conn:
        return set(conn.execute(_NOT_COUNTED, {"ids": list(target_ids)}).scalars())


_NOT_COUNTED = sa.select(models.TargetState.target_id).where(
    models.TargetState.target_id.in_(sa.bindparam("ids", expanding=True)),
    models.TargetState.maintenance.is_not(None),
)


# --- changes --------------------------------------------------------------------------


def report_unanswered(target_id: str, *, value: dict[str, Any]) -> None:
    """Publish that the audit got no answer from the target (a TARGET event,
    AUDIT_UNANSWERED): nothing is stored, the inspector judges."""
    events.append(
        [_event(objects.EventTopic.TARGET, target_id, objects.AUDIT_UNANSWERED, value)],
        publisher=events.publisher_name(),
    )


def _event(
    topic: objects.EventTopic, target_id: str, action: str, value: dict[str, Any]
) -> events.NewEvent:
    return events.NewEvent(topic, events.TARGETS_TABLE, target_id, action, events.jsonable(value))


def _locked_state(session: Session, target_id: str) -> models.TargetState | None:
    return session.scalars(
        sa.select(models.TargetState)
        .where(models.TargetState.target_id == target_id)
        .with_for_update()
    ).first()


def _mark_behind(session: Session, target_id: str, reason: str) -> int:
    """The target's rows that said it serves a zone: BEHIND, their serial kept."""
    result = session.execute(
        sa.update(_ROWS)
        .where(_ROWS.target_id == target_id, _ROWS.status == objects.Status.ACTIVE)
        .values(status=objects.BEHIND, error=reason, updated_at=models.utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _forget_left_alone(function: Callable[P, T]) -> Callable[P, T]:
    """Have ``function``, which changes whom polls leave alone, make this process's
    next left_alone_addresses read afresh (all-in-one's polls see it at once)."""

    @functools.wraps(function)
    def changing(*args: P.args, **kwargs: P.kwargs) -> T:
        global _left_alone_read
        try:
            return function(*args, **kwargs)
        finally:
            _left_alone_read = None  # committed (or not): read it afresh

    return changing


@_forget_left_alone
@db.retried
def mark_down(
    target_id: str, *, since: datetime.datetime, reason: str, value: dict[str, Any]
) -> int | None:
    """Record the target DOWN since ``since``, its rows BEHIND, and publish an ALARM and
    a TARGET event carrying ``value`` (and how many rows went behind). Returns that
    number, or None if the target was DOWN already or is gone."""
    with db.writer() as session:
        if session.get(models.PoolTarget, target_id) is None:
            return None
        row = _locked_state(session, target_id)
        if row is not None and row.health == objects.TargetHealth.DOWN:
            return None
        if row is None:
            row = models.TargetState(target_id=target_id)
            session.add(row)
        row.health, row.since = objects.TargetHealth.DOWN, since
        behind = _mark_behind(session, target_id, reason)
        value = {
            **value,
            "health": objects.TargetHealth.DOWN,
            "maintenance": row.maintenance,
            "since": since,
            "reason": reason,
        }
        value["zones_behind"] = behind
        events.write(
            session,
            [
                _event(objects.EventTopic.ALARM, target_id, objects.TargetHealth.DOWN, value),
                _event(objects.EventTopic.TARGET, target_id, objects.TargetHealth.DOWN, value),
            ],
        )
        return behind


@_forget_left_alone
@db.retried
def mark_up(target_id: str, *, pacing: objects.JobPacing, value: dict[str, Any]) -> int | None:
    """Record the target UP, post ``pacing.job`` jobs for the zones it missed while
    DOWN (unless it is in maintenance: those wait for its end), put its other
    BEHIND rows back to ACTIVE, and publish a TARGET event. Returns the number of
    zones to recover, or None if the target was not DOWN.

    A zone still PENDING is left to the job of its change, which acts on this
    target too: its end records what the target serves, and a zone it leaves in
    ERROR is recovered then (zoneflow.producer). A target seen DOWN for a moment
    under load (a slow poll counts as a miss) once came back to a recover-zone
    job for every zone with a change in flight, hundreds a time, and the
    load benchmark spiralled into 6,191 of them in 5 minutes."""
    with db.writer() as session:
        row = _locked_state(session, target_id)
        if row is None or row.health != objects.TargetHealth.DOWN:
            return None
        down_since = row.since
        row.health, row.since = objects.TargetHealth.UP, models.utcnow()
        recovering = 0
        if row.maintenance != objects.Maintenance.ON:
            since = _earliest(down_since, row.maintenance_since)
            recovering = _catch_up(session, target_id, since, pacing, in_flight_left=True)
        value = {
            **value,
            "health": objects.TargetHealth.UP,
            "down_since": down_since,
            "recovering": recovering,
            "maintenance": row.maintenance,
        }
        events.write(
            session, [_event(objects.EventTopic.TARGET, target_id, objects.TargetHealth.UP, value)]
        )
        if row.maintenance is None:
            session.delete(row)
        return recovering


@_forget_left_alone
@db.retried
def set_maintenance(
    target_id: str, *, on: bool, pacing: objects.JobPacing, value: dict[str, Any]
) -> objects.TargetState:
    """Put the target in maintenance (its rows BEHIND), or end it: CATCHING_UP, with
    jobs for the zones it missed posted now if it answers (else when it is back UP).
    Publishes a TARGET event for a change; asking for the state it is in changes
    nothing. Returns the state now."""
    return _set_maintenance(target_id, on=on, pacing=pacing, value=value)


def _set_maintenance(
    target_id: str, *, on: bool, pacing: objects.JobPacing, value: dict[str, Any]
) -> objects.TargetState:
    now = models.utcnow()
    with db.writer() as session:
        row = _locked_state(session, target_id)
        if on:
            if row is not None and row.maintenance == objects.Maintenance.ON:
                return conversions.value(objects.TargetState, row)
            if row is None:
                row = models.TargetState(
                    target_id=target_id, health=objects.TargetHealth.UP, since=now
                )
                session.add(row)
            if row.maintenance is None:
                # When catching up already, what it missed is still counted from then.
                row.maintenance_since = now
            behind = _mark_behind(session, target_id, "in maintenance")
            row.maintenance = objects.Maintenance.ON
            detail: dict[str, Any] = {"zones_behind": behind}
        else:
            if row is None or row.maintenance != objects.Maintenance.ON:
                return _state_of(row, target_id, now)
            row.maintenance = objects.Maintenance.CATCHING_UP
            recovering = 0
            if row.health == objects.TargetHealth.UP:
                since = _earliest(row.maintenance_since, row.since)
                recovering = _catch_up(session, target_id, since, pacing)
            detail = {"recovering": recovering}
        session.flush()
        state = conversions.value(objects.TargetState, row)
        events.write(
            session,
            [
                _event(
                    objects.EventTopic.TARGET,
                    target_id,
                    events.target_maintenance(str(row.maintenance)),
                    {**value, **events.jsonable(state), **detail},
                )
            ],
        )
        return state


def _state_of(
    row: models.TargetState | None, target_id: str, now: datetime.datetime
) -> objects.TargetState:
    if row is None:
        return objects.TargetState(target_id, objects.TargetHealth.UP, now)
    return conversions.value(objects.TargetState, row)


@db.retried
def finish_catch_up(target_id: str, *, value: dict[str, Any]) -> bool:
    """Count the target again if it is catching up, UP, and has missed nothing more;
    publishes a TARGET event (COUNTED). Returns whether it did."""
    with db.writer() as session:
        row = _locked_state(session, target_id)
        if (
            row is None
            or row.maintenance != objects.Maintenance.CATCHING_UP
            or row.health != objects.TargetHealth.UP
        ):
            return False
        pool_id = _pool_of(session, target_id)
        since = _earliest(row.maintenance_since)
        if pool_id is None or _missed(session, target_id, pool_id, since):
            return False
        _restore_current(session, target_id)
        events.write(
            session,
            [
                _event(
                    objects.EventTopic.TARGET,
                    target_id,
                    events.TARGET_COUNTED,
                    {**value, "health": row.health},
                )
            ],
        )
        session.delete(row)
        return True


def catching_up() -> list[str]:
    """The targets whose maintenance ended and that are not counted again yet."""
    with db.connection() as conn:
        return list(
            conn.execute(
                sa.select(models.TargetState.target_id).where(
                    models.TargetState.maintenance == objects.Maintenance.CATCHING_UP
                )
            ).scalars()
        )


def _pool_of(session: Session, target_id: str) -> str | None:
    return session.scalar(
        sa.select(models.PoolTarget.pool_id).where(models.PoolTarget.id == target_id)
    )


def _catch_up(
    session: Session,
    target_id: str,
    since: datetime.datetime,
    pacing: objects.JobPacing,
    *,
    skip: Collection[str] = (),
    in_flight_left: bool = False,
) -> int:
    """Post jobs for the zones the target missed, ``pacing.interval`` seconds apart
    (each outbox row leased to nobody until its turn, as a pool's backfill is), and
    put its BEHIND rows of the zones it still serves as they are back to ACTIVE.
    ``in_flight_left``: a live zone still PENDING is left to its job."""
    pool_id = _pool_of(session, target_id)
    if pool_id is None:
        return 0
    zones = [
        zone
        for zone in _missed(session, target_id, pool_id, since, in_flight_left=in_flight_left)
        if zone[0] not in skip
    ]
    _restore_current(session, target_id)
    if zones:
        now = models.utcnow()
        session.execute(
            sa.insert(models.JobOutbox),
            [
                {
                    "kind": pacing.job.kind,
                    "if_pool_grows": pacing.job.if_pool_grows,
                    "priority": int(pacing.job.priority),
                    "zone_id": zone_id,
                    "serial": serial,
                    "claimed_until": pacing.release_at(now, i),
                }
                for i, (zone_id, _name, serial) in enumerate(zones)
            ],
        )
    return len(zones)


def _earliest(*times: datetime.datetime | None) -> datetime.datetime:
    """Since when the target may have missed changes: the earliest of those known."""
    return min((t for t in times if t is not None), default=models.utcnow())


def _restore_current(session: Session, target_id: str) -> None:
    """The target's BEHIND rows of zones still at the serial it served: ACTIVE again."""
    current = (
        sa.select(models.Zone.id)
        .where(
            models.Zone.id == _ROWS.zone_id,
            models.Zone.deleted == models.LIVE,
            models.Zone.action != objects.Action.DELETE,
            models.Zone.serial <= _ROWS.serial,
        )
        .exists()
    )
    session.execute(
        sa.update(_ROWS)
        .where(_ROWS.target_id == target_id, _ROWS.status == objects.BEHIND, current)
        .values(status=objects.Status.ACTIVE, error=None)
    )


def _missed(
    session: Session,
    target_id: str,
    pool_id: str,
    since: datetime.datetime,
    *,
    in_flight_left: bool = False,
) -> Sequence[tuple[str, str, int]]:
    """The zones of the pool a target is not known to serve as they are: (id, name,
    serial).

    A live zone whose row on the target is missing, failed, pending, or at a
    serial older than the zone's, or which is being deleted; and a zone
    deleted since ``since`` that the target did not record deleting. A zone
    the target served at its current serial before it went away is not in it;
    nor, ``in_flight_left``, a live zone still PENDING (its job in flight).
    """
    row = sa.orm.aliased(_ROWS)
    live = sa.and_(
        models.Zone.deleted == models.LIVE,
        sa.or_(
            row.zone_id.is_(None),
            models.Zone.action == objects.Action.DELETE,
            row.serial < models.Zone.serial,
            row.status.not_in(_SERVED),
        ),
    )
    if in_flight_left:
        live = sa.and_(live, models.Zone.status != objects.Status.PENDING)
    deleted_since = sa.and_(
        models.Zone.deleted != models.LIVE,
        models.Zone.deleted_at >= since,
        row.zone_id.is_not(None),
        row.status != objects.Status.DELETED,
    )
    query = (
        sa.select(models.Zone.id, models.Zone.name, models.Zone.serial)
        .outerjoin(row, sa.and_(row.zone_id == models.Zone.id, row.target_id == target_id))
        .where(models.Zone.pool_id == pool_id, sa.or_(live, deleted_since))
        .order_by(models.Zone.id)
    )
    return [(zone_id, name, serial) for zone_id, name, serial in session.execute(query)]


def still_missed(target_id: str) -> list[tuple[str, str, int]]:
    """The zones a target catching up would be caught up on now: (id, name, serial)."""
    with db.reader() as session:
        row = session.get(models.TargetState, target_id)
        pool_id = _pool_of(session, target_id)
        if row is None or pool_id is None:
            return []
        return list(_missed(session, target_id, pool_id, _earliest(row.maintenance_since)))


# What left_alone_addresses says of a target: in maintenance, or DOWN (and not in it).
IN_MAINTENANCE = "in maintenance"
DOWN = "DOWN"

# The last answer of left_alone_addresses: (database URL, when, addresses).
_left_alone_read: tuple[str, float, dict[tuple[str, int], str]] | None = None


def left_alone_addresses(*, within: float = 0.0) -> dict[tuple[str, int], str]:
    """Where the nameservers of the targets a job's poll need not wait for answer
    (host, port), and why: IN_MAINTENANCE (thresholds leave them out), or DOWN as
    the inspector judged (a poll in a pool whose threshold does not need every
    target stops waiting for it; its catch-up when it is UP again brings it what it
    missed). A target catching up is waited for: the jobs that catch it up must see
    it serve what they did.

    ``within``: an answer read up to that many seconds ago will do. Polls ask
    at every miss, and under load the conductors read this four times a
    change; a change of state made in this process is seen at once, one
    made in another within ``within``.
    """
    global _left_alone_read
    url, now = db.connection_url(), time.monotonic()
    read = _left_alone_read
    if read is not None and read[0] == url and now - read[1] < within:
        return read[2]
    with db.connection() as conn:
        rows = conn.execute(
            sa.select(models.PoolTarget.options, models.TargetState.maintenance)
            .join(models.TargetState, models.TargetState.target_id == models.PoolTarget.id)
            .where(
                sa.or_(
                    models.TargetState.maintenance == objects.Maintenance.ON,
                    models.TargetState.health == objects.TargetHealth.DOWN,
                )
            )
        )
        addresses = {
            (str(options["host"]), int(options.get("port", 53))): (
                IN_MAINTENANCE if maintenance == objects.Maintenance.ON else DOWN
            )
            for options, maintenance in rows
            if options.get("host") is not None
        }
    _left_alone_read = (url, now, addresses)
    return addresses


@db.retried
def retry_catch_up(
    target_id: str, *, pacing: objects.JobPacing, in_hand: Collection[str] = ()
) -> int:
    """Post jobs again for what a target catching up (and UP) still misses, but for
    the zones ``in_hand`` (a job for them waits or is in flight); how many."""
    with db.writer() as session:
        row = _locked_state(session, target_id)
        if (
            row is None
            or row.maintenance != objects.Maintenance.CATCHING_UP
            or row.health != objects.TargetHealth.UP
        ):
            return 0
        since = _earliest(row.maintenance_since)
        return _catch_up(session, target_id, since, pacing, skip=in_hand)


def failed_targets(zone_id: str) -> dict[str, str]:
    """The targets a job recorded as failing for the zone (ERROR rows): their errors."""
    with db.connection() as conn:
        rows = conn.execute(
            sa.select(_ROWS.target_id, _ROWS.error).where(
                _ROWS.zone_id == zone_id, _ROWS.status == objects.Status.ERROR
            )
        )
        return {target_id: error or "failed" for target_id, error in rows}
