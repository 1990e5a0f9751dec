"""The job outbox: a change's job is written in the change's transaction and
posted to the jobboard by a relay after it commits.
"""

from __future__ import annotations

import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from zoneflow import objects
from zoneflow.storage import db, models


def post(session: Session, job: objects.JobOrder, zone_id: str, serial: int) -> None:
    session.add(
        models.JobOutbox(
            kind=job.kind,
            if_pool_grows=job.if_pool_grows,
            priority=int(job.priority),
            zone_id=zone_id,
            serial=serial,
        )
    )


def claim_pending_jobs(
    *, limit: int = 100, upkeep_limit: int = 100, lease: float = 30.0
) -> list[objects.PendingJob]:
    """Take outbox rows nobody else holds, for ``lease`` seconds: up to ``limit``
    user changes and up to ``upkeep_limit`` rows of upkeep (objects.JobPriority),
    each the oldest of its kind; in the order to post them, changes first.

    Each priority has its own limit, so that no flood of one starves the
    other: however many changes wait, every claim takes upkeep rows too.

    A relay that dies after claiming simply lets the lease run out and another
    relay posts the job. One statement: on PostgreSQL two relays claiming at
    once skip each other's rows (SKIP LOCKED), and the free-or-expired test
    is made again on each row it locks.
    """
    now = models.utcnow()
    with db.transaction() as conn:
        rows = conn.execute(
            _CLAIM_OUTBOX,
            {
                "now": now,
                "until": now + datetime.timedelta(seconds=lease),
                "changes": limit,
                "upkeep": upkeep_limit,
            },
        )
        claimed = [
            objects.PendingJob(
                job_id,
                objects.JobKind(kind),
                zone_id,
                serial,
                target_id,
                created_at,
                if_pool_grows=objects.JobKind(follow) if follow else None,
                priority=objects.JobPriority(priority),
            )
            for job_id, kind, zone_id, serial, target_id, created_at, follow, priority in rows
        ]
    return sorted(claimed, key=lambda pending: (pending.priority, pending.id))


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


def _oldest_free(which: sa.ColumnElement[bool], limit: str) -> sa.Select[tuple[int]]:
    """The ids of the oldest free rows of ``which`` priority, locked (ix_job_outbox_priority)."""
    return (
        sa.select(_OUTBOX.c.id)
        .where(which, _OUTBOX_FREE)
        .order_by(_OUTBOX.c.priority, _OUTBOX.c.id)
        .limit(sa.bindparam(limit))
        .with_for_update(skip_locked=True)
    )


_CHANGE = _OUTBOX.c.priority == int(objects.JobPriority.CHANGE)


_CLAIM_OUTBOX = (
    sa.update(_OUTBOX)
    .where(
        sa.or_(
            _OUTBOX.c.id.in_(_oldest_free(_CHANGE, "changes")),
            _OUTBOX.c.id.in_(_oldest_free(sa.not_(_CHANGE), "upkeep")),
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
        _OUTBOX.c.if_pool_grows,
        _OUTBOX.c.priority,
    )
)


_RELEASE_OUTBOX = (
    sa.update(_OUTBOX).where(_OUTBOX.c.id == sa.bindparam("b_id")).values(claimed_until=None)
)


_REMOVE_OUTBOX = sa.delete(_OUTBOX).where(_OUTBOX.c.id == sa.bindparam("b_id"))
