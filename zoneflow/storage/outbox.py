"""The job outbox: a change's job is written in the change's transaction and
posted to the jobboard by a relay after it commits.

Changes to one zone coalesce: an update to a zone whose create or update job
has not begun yet rides on that job instead of writing one of its own. The
job's first task reads the zone's serial when it runs (zoneflow.flows.begin),
so it brings the zone to its latest serial, whichever change it was written
for. A job waits in two places, and the row stands for it in both:

- not posted yet: the row waits for a relay (or is being posted by one);
- posted, not begun: the relay marks the row ``posted`` instead of deleting
  it, and the job's begin deletes it (:func:`begin_zone_jobs`) before it
  reads the serial. From then on the zone's next change writes a job of its
  own.

The rule is the simplest that loses nothing: only an update rides, and only
on a user's create or update (objects.JobPriority.CHANGE) of the same zone; a
create carries the update (it makes the zone at the latest serial). A delete
never rides and is never ridden on: it writes its own job, and the create or
update waiting before it runs as it would have (removing again what it made,
zoneflow.flows.on_target.TakeBackIfDeleted). Recoveries and upkeep are left
alone: they act on a zone's state, not on one change.

The race between an update and a begin is settled by the row's lock, on
PostgreSQL and SQLite alike: the update raises the row's serial with an
UPDATE, the begin removes it with a DELETE. Whichever locks the row first
goes first; if the update does, the begin's DELETE waits for its commit and
its read that follows sees the update's serial; if the begin does, the
update finds no row once the begin commits and writes its own job. (SQLite
writes one transaction at a time, which orders them the same way.)
"""

from __future__ import annotations

import datetime
import threading
import uuid
from collections.abc import Collection
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from zoneflow import objects
from zoneflow.storage import db, models

#: The kinds of job an update rides on while they have not begun (a user's change only).
RIDDEN = frozenset({objects.JobKind.CREATE_ZONE, objects.JobKind.UPDATE_ZONE})


# What this thread's changes did with their jobs since :func:`only_rode` was last
# asked: whether any rode on a job not begun, whether any wrote a job to post.
_since_asked = threading.local()


def post(session: Session, job: objects.JobOrder, zone_id: str, serial: int) -> None:
    """Write ``job`` for the change that brings ``zone_id`` to ``serial``, in the
    change's transaction; an update rides on the zone's job not begun yet, if any."""
    if _rides(job) and _ride(session, zone_id, serial):
        _since_asked.rode = True
        return
    _since_asked.wrote = True
    session.add(
        models.JobOutbox(
            kind=job.kind,
            if_pool_grows=job.if_pool_grows,
            priority=int(job.priority),
            zone_id=zone_id,
            serial=serial,
        )
    )


def only_rode() -> bool:
    """Whether every job this thread's changes posted since last asked rode on a job
    not begun (there is then nothing new for a relay to post); and forget them.

    A change retried after a conflict counts each try: a try that wrote a job
    makes this False, which at worst wakes a relay for nothing."""
    rode = getattr(_since_asked, "rode", False)
    wrote = getattr(_since_asked, "wrote", False)
    _since_asked.rode = _since_asked.wrote = False
    return rode and not wrote


def _rides(job: objects.JobOrder) -> bool:
    return job.kind == objects.JobKind.UPDATE_ZONE and job.priority == objects.JobPriority.CHANGE


def _ride(session: Session, zone_id: str, serial: int) -> bool:
    """Raise the serial of the zone's create or update not begun yet; whether there was one.

    The UPDATE locks the row until the change commits: a begin deleting it
    meanwhile waits, then reads this serial (see the module's docstring).
    """
    ridden = session.execute(_RIDE, {"b_zone_id": zone_id, "b_serial": serial})
    return bool(ridden.rowcount)  # type: ignore[attr-defined]


def kept_until_begun(pending: objects.PendingJob) -> bool:
    """Whether the relay keeps ``pending``'s row, posted, until its job begins."""
    return pending.kind in RIDDEN and pending.priority == objects.JobPriority.CHANGE


def posted(rows: Collection[objects.PendingJob]) -> None:
    """The rows of a job just posted, in one transaction: each one an update may ride
    on (:func:`kept_until_begun`) kept, marked posted, until the job begins; the
    others removed.

    Marked on their creation time too: if the job began already and deleted a
    row, SQLite may have given its id to a new row since.
    """
    kept = [
        {"b_id": row.id, "b_created_at": row.created_at} for row in rows if kept_until_begun(row)
    ]
    gone = [row.id for row in rows if not kept_until_begun(row)]
    with db.transaction() as conn:
        if kept:
            conn.execute(_MARK_POSTED, kept)
        if gone:
            conn.execute(_REMOVE_OUTBOX, {"ids": gone})


def begin_zone_jobs(zone_ids: Collection[str], job_id: str | None = None) -> None:
    """A create or update job of these zones (``job_id``) begins: each zone's next
    update writes a job of its own. Committed before the job reads the zones' serials.

    Every row an update could ride on goes, not only the job's own: the job
    has not read the serial yet, so it carries whatever change they stand
    for. Its own row may not even be marked posted yet (a conductor can
    begin a job before its relay gets to the mark), which is why the rows
    are found by zone, not by that mark. But a row a relay has written
    another job's id on stays: that job's logbook may be written already,
    its post failed, and it would be left PENDING for good with its row gone
    (the chaos test found it, a resumed batch's begin running again). That
    job carries the change again, later; without ``job_id`` (a job run
    outside a conductor) every row goes.
    """
    mine = (
        sa.true()
        if job_id is None
        else sa.or_(_OUTBOX.c.batch.is_(None), _OUTBOX.c.batch == job_id)
    )
    with db.transaction() as conn:
        conn.execute(_BEGIN.where(mine), {"b_zone_ids": list(zone_ids)})


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
        claimed = [_pending(row) for row in rows]
    return sorted(claimed, key=lambda pending: (pending.priority, pending.id))


def _pending(row: Any) -> objects.PendingJob:
    job_id, kind, zone_id, serial, target_id, created_at, follow, priority, batch = row
    return objects.PendingJob(
        job_id,
        objects.JobKind(kind),
        zone_id,
        serial,
        target_id,
        created_at,
        if_pool_grows=objects.JobKind(follow) if follow else None,
        priority=objects.JobPriority(priority),
        batch=batch,
    )


def zones_with_posted_jobs(zone_ids: Collection[str]) -> set[str]:
    """Those of these zones whose create or update job is posted and not begun: their
    updates ride on it (a job taken back after its board was lost carries them)."""
    with db.connection() as conn:
        return set(
            conn.execute(
                sa.select(_OUTBOX.c.zone_id).where(
                    _OUTBOX.c.zone_id.in_(list(zone_ids)),
                    _OUTBOX.c.posted.is_(sa.true()),
                    _OUTBOX.c.kind.in_(sorted(RIDDEN)),
                )
            ).scalars()
        )


def assign_batch(rows: Collection[objects.PendingJob], batch: str | None = None) -> str:
    """Put these claimed rows in one job (``batch``, or a new id): its id, written on
    each row before the job is, so that whichever relay posts them again (this
    one's post failed, or it died) posts that same job, never regrouped
    (zoneflow.jobs.group_changes)."""
    batch = batch or str(uuid.uuid4())
    with db.transaction() as conn:
        conn.execute(
            sa.update(_OUTBOX)
            .where(_OUTBOX.c.id.in_([row.id for row in rows]), _OUTBOX.c.batch.is_(None))
            .values(batch=batch)
        )
    return batch


def batch_rows(batch: str) -> list[objects.PendingJob]:
    """Every row of batch job ``batch`` still in the outbox, claimed or not,
    posted or not, oldest first: what the job carries."""
    with db.connection() as conn:
        rows = conn.execute(
            sa.select(*_PENDING_COLUMNS).where(_OUTBOX.c.batch == batch).order_by(_OUTBOX.c.id)
        )
        return [_pending(row) for row in rows]


def release_pending_jobs(job_ids: Collection[int]) -> None:
    """Give claimed outbox rows back (not posted: any relay may take them now)."""
    if not job_ids:
        return
    with db.transaction() as conn:
        conn.execute(
            sa.update(_OUTBOX).where(_OUTBOX.c.id.in_(list(job_ids))).values(claimed_until=None)
        )


def remove_pending_job(job_id: int) -> None:
    remove_pending_jobs([job_id])


def remove_pending_jobs(job_ids: Collection[int]) -> None:
    with db.transaction() as conn:
        conn.execute(_REMOVE_OUTBOX, {"ids": list(job_ids)})


_OUTBOX = cast(sa.Table, models.JobOutbox.__table__)


_OUTBOX_FREE = sa.and_(
    _OUTBOX.c.posted.is_(sa.false()),
    sa.or_(_OUTBOX.c.claimed_until.is_(None), _OUTBOX.c.claimed_until < sa.bindparam("now")),
)


def _oldest_free(which: sa.ColumnElement[bool], limit: str) -> sa.Select[tuple[int]]:
    """The ids of the oldest free rows of ``which`` priority, locked (ix_job_outbox_unposted)."""
    return (
        sa.select(_OUTBOX.c.id)
        .where(which, _OUTBOX_FREE)
        .order_by(_OUTBOX.c.priority, _OUTBOX.c.id)
        .limit(sa.bindparam(limit))
        .with_for_update(skip_locked=True)
    )


_CHANGE = _OUTBOX.c.priority == int(objects.JobPriority.CHANGE)

# A row's columns, in PendingJob's order (see _pending).
_PENDING_COLUMNS = (
    _OUTBOX.c.id,
    _OUTBOX.c.kind,
    _OUTBOX.c.zone_id,
    _OUTBOX.c.serial,
    _OUTBOX.c.target_id,
    _OUTBOX.c.created_at,
    _OUTBOX.c.if_pool_grows,
    _OUTBOX.c.priority,
    _OUTBOX.c.batch,
)


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
    .returning(*_PENDING_COLUMNS)
)


_RIDE = (
    sa.update(_OUTBOX)
    .where(
        _OUTBOX.c.zone_id == sa.bindparam("b_zone_id"),
        _OUTBOX.c.kind.in_(sorted(RIDDEN)),
        _OUTBOX.c.priority == int(objects.JobPriority.CHANGE),
        # Serials only grow; the guard keeps a row's serial from going back all the same.
        _OUTBOX.c.serial < sa.bindparam("b_serial"),
    )
    .values(serial=sa.bindparam("b_serial"))
)


_MARK_POSTED = (
    sa.update(_OUTBOX)
    .where(
        _OUTBOX.c.id == sa.bindparam("b_id"),
        _OUTBOX.c.created_at == sa.bindparam("b_created_at"),
    )
    .values(posted=True, claimed_until=None)
)


_BEGIN = sa.delete(_OUTBOX).where(
    _OUTBOX.c.zone_id.in_(sa.bindparam("b_zone_ids", expanding=True)),
    _OUTBOX.c.kind.in_(sorted(RIDDEN)),
    _OUTBOX.c.priority == int(objects.JobPriority.CHANGE),
)


_REMOVE_OUTBOX = sa.delete(_OUTBOX).where(_OUTBOX.c.id.in_(sa.bindparam("ids", expanding=True)))
