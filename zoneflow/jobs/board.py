"""Jobs on the board: their priority there, those a board lost taken back, and
cancelling.

Taking back and cancelling read the board and the logbooks together: a job's
entry on the board says whether a conductor may still run it, its logbook how
far it got.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from typing import Any

from taskflow import exceptions as tf_exc
from taskflow import states
from taskflow.jobs import base as tf_jobs
from taskflow.persistence import models

from zoneflow import exceptions, objects
from zoneflow.jobs import steps
from zoneflow.jobs.attempts import end
from zoneflow.jobs.records import (
    OVER,
    PAGE,
    STATE_RULE,
    JobInfo,
    Outcome,
    get_job,
    info,
    logbooks,
)
from zoneflow.storage import outbox as stored_outbox
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import pages

LOG = logging.getLogger(__name__)


def take_back_unfinished(board: Any, persistence: Any) -> list[tuple[JobInfo, str]]:
    """Post again, or end, every unfinished job that is not on ``board``; each with
    the state it is left in (PENDING: posted again).

    For a board that starts empty with its process (zake, in ``zoneflow
    all-in-one``): the jobs the last process had posted or was running went
    with it, their logbooks left PENDING or RUNNING for good. Each now either
    runs again, resumed from its persisted atoms, or ends with the reason:

    - SUPERSEDED when its zone (every zone of a batch) has moved on to a
      later serial, which a newer job carries (that job is taken back too,
      if it was lost as well); not for a create or update that has not
      begun: the updates made since rode on it (see _began_at);
    - LOST when it can no longer run: its zone (every zone of a batch) is
      gone, or its logbook holds no flow to rebuild.
    """
    with board_errors():
        on_board = {str(posted.book_uuid) for posted in board.iterjobs(ensure_fresh=True)}
    taken = []
    for book in unfinished(persistence):
        if str(book.uuid) in on_board:
            continue
        job = info(book, with_atoms=False)
        if job.state not in OVER:  # read whole, the one truth of its state
            taken.append((job, _take_back(board, persistence, book, job)))
    return taken


def _began_at(book: models.LogBook, job: JobInfo) -> dict[str, float]:
    """Zone id -> the serial the job brings it to, as far as the job can tell.

    A create or update (one zone's, or a batch's) that has not begun carries
    the updates that rode on it since it was posted (storage.outbox: while the
    zone's row waits there, posted), and its begin reads the zone's latest
    serial. Once begun, the serial that begin read: a later change has a job
    of its own. Zones not here: the serial the job was posted with.
    """
    flow = next(iter(book), None)
    begin = None if flow is None else next((a for a in flow if a.name == steps.BEGIN.name), None)
    if begin is None or begin.state != states.SUCCESS:
        if job.kind in _RIDDEN:
            # Updates ride on a zone's job while its row waits in the outbox, posted.
            zone_ids = [zone.id for zone in job.zones]
            return dict.fromkeys(stored_outbox.zones_with_posted_jobs(zone_ids), math.inf)
        return {}
    if job.kind in objects.ONE_OF and isinstance(begin.results, dict):
        return {zone_id: int(at[1]) for zone_id, at in begin.results.items()}
    if job.kind in _RIDDEN and isinstance(begin.results, (list, tuple)):
        return {job.zones[0].id: int(begin.results[1])}
    return {}


# The kinds of job the zone's updates ride on until it begins: storage.outbox's,
# and their batches.
_RIDDEN = stored_outbox.RIDDEN | {objects.BATCH_OF[kind] for kind in stored_outbox.RIDDEN}


def unfinished(persistence: Any) -> Iterator[models.LogBook]:
    """The logbooks of the jobs not over yet, oldest first, a page at a time: the
    database picks them, so the ended jobs kept (most of them) are not read."""
    query = pages.BookQuery(not_states=frozenset(OVER), rule=STATE_RULE)
    order = pages.Order(pages.CREATED_AT, descending=False)
    after = None
    while True:
        with logbooks(persistence) as connection:
            found = connection.page_logbooks(query, order, limit=PAGE, after=after, count=False)
        yield from found.books
        if not found.more or not found.books:
            return
        after = (found.books[-1].created_at, found.books[-1].uuid)


def _take_back(board: Any, persistence: Any, book: models.LogBook, job: JobInfo) -> str:
    """Post one lost job again, or end it; the state it is left in."""
    if not list(book):
        end(
            persistence,
            job.id,
            Outcome.LOST,
            f"job {job.id} was lost: its logbook holds no flow to run",
        )
        return Outcome.LOST
    if job.zones:
        # Posted again if any zone it carries still needs it (each zone of a batch).
        zones = [(carried, stored_zones.get_zone_any(carried.id)) for carried in job.zones]
        if all(zone is None for _, zone in zones):
            gone = "its zone is" if len(zones) == 1 else "the zones it carries are"
            reason = f"job {job.id} was lost with its process, and {gone} gone since"
            end(persistence, job.id, Outcome.LOST, reason)
            return Outcome.LOST
        began = _began_at(book, job)
        if all(
            zone is None or zone.serial > began.get(carried.id, carried.serial)
            for carried, zone in zones
        ):
            later = "; ".join(
                f"zone {zone.name} is at serial {zone.serial}" for _, zone in zones if zone
            )
            reason = (
                f"job {job.id} was lost with its process; {later} since, carried by a newer job"
            )
            end(persistence, job.id, Outcome.SUPERSEDED, reason)
            return Outcome.SUPERSEDED
    LOG.info("job %s (%s) was lost with its process: posting it again", job.id, book.name)
    with board_errors():
        board.post(book.name, book=book, priority=board_priority(book))
    return states.PENDING


def cancel(board: Any, persistence: Any, job_id: str, *, who: str) -> JobInfo:
    """Take a job off the board and put its zones in ERROR "cancelled by operator".

    A job a live conductor has claimed is left alone (JobClaimed names the
    conductor). A job that is not on the board but never finished (its
    board entry was lost) is stuck: nothing will ever run it, so it is
    cancelled in the database alone. Any conductor that still finds a
    cancelled job on its board removes it unrun.

    The in-process zake board is seen only by its own process: cancelling
    from another one (a CLI beside ``zoneflow all-in-one``) cannot tell a
    job that is running there from a stuck one.
    """
    posted = find_posted(board, job_id)
    # Read after the board: a job is consumed only once its final state is saved.
    job = get_job(persistence, job_id)
    if posted is None and job.state in OVER:
        raise exceptions.JobFinished(
            f"job {job_id} has already finished ({job.state}): there is nothing to cancel"
        )
    reason = f"job {job_id} ({job.kind} serial {job.serial}) cancelled by operator"
    if posted is None:
        end(persistence, job_id, Outcome.CANCELLED, reason)
        return get_job(persistence, job_id)
    with board_errors():
        try:
            board.claim(posted, who)
        except tf_exc.UnclaimableJob:
            raise exceptions.JobClaimed(
                f"job {job_id} is claimed by conductor {board.find_owner(posted) or '(unknown)'}, "
                "which is running it: wait for it to finish, or stop that conductor and cancel "
                "again once its claim has expired"
            ) from None
        except tf_exc.NotFound:
            raise exceptions.JobFinished(
                f"job {job_id} finished while being cancelled: there is nothing to cancel"
            ) from None
        try:
            end(persistence, job_id, Outcome.CANCELLED, reason)
        except Exception:
            board.abandon(posted, who)
            raise
        # Should this fail, the claim ends with our session; any conductor that
        # claims the job then finds it cancelled and consumes it unrun.
        board.consume(posted, who)
    return get_job(persistence, job_id)


def find_posted(board: Any, job_id: str) -> Any:
    with board_errors():
        for posted in board.iterjobs(ensure_fresh=True):
            if posted.book_uuid == job_id:
                return posted
    return None


@contextlib.contextmanager
def board_errors() -> Iterator[None]:
    try:
        yield
    except tf_exc.JobFailure as exc:
        raise exceptions.JobboardUnavailable(
            f"the jobboard failed: {exc}; check ZooKeeper and try again"
        ) from exc


# TaskFlow's boards list a job of a higher priority first, then the oldest; its
# conductors claim in that order.
_BOARD_PRIORITIES = {
    objects.JobPriority.CHANGE: tf_jobs.JobPriority.HIGH,
    objects.JobPriority.UPKEEP: tf_jobs.JobPriority.LOW,
}


def board_priority(book: models.LogBook) -> tf_jobs.JobPriority:
    """The board's priority for a job, from its logbook (a job posted before
    jobs had one is a change: better early than behind a backfill)."""
    meta = book.meta or {}
    return _BOARD_PRIORITIES[objects.JobPriority(meta.get("priority", objects.JobPriority.CHANGE))]
