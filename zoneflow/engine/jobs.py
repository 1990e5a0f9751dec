"""Posting zone jobs to the jobboard, and reading them back.

A job is a TaskFlow logbook holding one flow detail whose metadata names the
flow factory and its arguments; the conductor that claims the job rebuilds
the flow from them, and the atom states persisted there let another
conductor resume it. The logbook's uuid is the job id users see: it lives in
the database, so it outlives the jobboard entry.

The logbook's metadata also keeps the job's attempts: how many runs
conductors started, which conductor runs it now, the last error, and, when
zoneflow rather than the flow ended the job, that outcome (FAILURE after
too many attempts, CANCELLED by an operator) with its reason.

A job's graph is drawn the way the conductor runs it: the flow rebuilt
from the factory and arguments in its logbook, each atom coloured by the
state persisted for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from oslo_utils import timeutils
from taskflow import engines, states
from taskflow import exceptions as tf_exc
from taskflow import flow as tf_flow
from taskflow import storage as tf_storage
from taskflow.persistence import models

from zoneflow import exceptions, flows, objects
from zoneflow.flows import render, tasks
from zoneflow.flows import target as target_flows
from zoneflow.storage import api as storage

LOG = logging.getLogger(__name__)

# TaskFlow stores the job's inputs as an atom of its own; it is no task of ours.
TASKFLOW_INTERNAL = "_TaskFlow_"

# A job's state is one word (see doc/operations.md, "What a job's state says").
# TaskFlow's flow states are the truth while a job waits or runs, and when
# its flow failed (REVERTED: below the targets' threshold, undone; FAILURE;
# REVERT_FAILURE). SUCCESS is kept only when the zone reached what the job
# was for: a flow that ran to its end with the zone put in ERROR (too few
# nameservers serve the serial) reads FAILURE. The rest are zoneflow's own ends.
SUCCESS = states.SUCCESS
FAILED = states.FAILURE
CANCELLED = "CANCELLED"  # by an operator ('zoneflow job cancel')
SUPERSEDED = "SUPERSEDED"  # a newer job carries the zone on: nothing left for this one
LOST = "LOST"  # nothing will ever run it again, and nothing newer covers its zone

# Ends that mean the zone did not get what the job was for.
FAILED_STATES = frozenset({states.REVERTED, states.FAILURE, states.REVERT_FAILURE, CANCELLED, LOST})
# States after which a job never runs again.
OVER = FAILED_STATES | {SUCCESS, SUPERSEDED}

# The last task of a zone flow, whose result is the status it gave the zone.
STATUS_ATOM = "update-status"


@dataclasses.dataclass(frozen=True)
class AtomInfo:
    name: str
    state: str
    intention: str
    result: Any
    # Why the atom failed, or why the target it acted on failed.
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class JobInfo:
    id: str
    kind: str
    zone_id: str
    zone_name: str
    serial: int
    state: str
    created_at: datetime.datetime | None
    updated_at: datetime.datetime | None
    atoms: tuple[AtomInfo, ...] = ()
    attempts: int = 0
    # Why the job failed or ended as it did; while it runs, its last run's error.
    error: str | None = None
    # Whether the job ended without the zone getting what the job was for.
    failed: bool = False


@dataclasses.dataclass(frozen=True)
class Attempt:
    """What a conductor learns about a job it has just claimed.

    ``number`` counts the run about to start (from 1); it is one more than
    the limit when the job has used up its attempts and must not run again.
    ``outcome`` is set when the job has already been failed or cancelled.
    """

    number: int
    previous_error: str | None
    outcome: str | None = None


def post(
    board: Any,
    persistence: Any,
    pending: objects.PendingJob,
    *,
    pools: dict[str, objects.Pool] | None = None,
) -> str:
    """Write a job's logbook and post it; return the job id.

    ``pools`` (pool id -> pool) lets a caller posting many jobs at once read
    each pool once for all of them.

    The job id is made from the outbox row, so when a row is posted again
    (the relay that took it died, or lost ZooKeeper, half-way through) the
    logbook written the first time is found: the job goes on the board again
    only if it never got there, and 'zoneflow job list' shows it once, not a
    second copy that stays PENDING for good.

    The job's inputs stay in its logbook alone (_inputs): given in the
    board's entry too, TaskFlow's conductor would write them into the
    logbook again before every run, one more write the run waits for.
    """
    job_id = _job_id(pending)
    if pending.zone_id is None:
        book = _target_job_book(pending, job_id)
    else:
        book = _zone_job_book(pending, job_id, {} if pools is None else pools)
    if not _add_logbook(persistence, book):
        book = _find_logbook(persistence, job_id)
        if book is None:
            raise exceptions.ServiceUnavailable(f"job {job_id}'s logbook went while posting it")
        if _reached_board(board, book):
            LOG.info("job %s was posted already: not posting it twice", job_id)
            return job_id
    board.post(book.name, book=book)
    return job_id


def _zone_job_book(
    pending: objects.PendingJob, job_id: str, pools: dict[str, objects.Pool]
) -> models.LogBook:
    """The logbook of a job about a zone, from the zone and its pool as they are now."""
    zone = storage.get_zone_any(str(pending.zone_id))
    if zone is None:
        raise exceptions.ZoneNotFound(f"zone {pending.zone_id} no longer exists")
    if zone.pool_id not in pools:
        pools[zone.pool_id] = storage.get_pool(zone.pool_id)
    book = models.LogBook(f"{pending.kind} {zone.name} serial {pending.serial}", uuid=job_id)
    book.meta = {
        "kind": pending.kind,
        "zone_id": zone.id,
        "zone_name": zone.name,
        "serial": pending.serial,
    }
    # The factory and the pool it is called with go in the flow's row, and
    # the job's inputs beside it.
    flow_detail = models.FlowDetail(pending.kind, uuid.uuid4().hex)
    factory = flows.FACTORIES[pending.kind]
    engines.save_factory_details(flow_detail, factory, [], flows.pool_args(pools[zone.pool_id]))
    flow_detail.add(_inputs({"zone_id": zone.id, "serial": pending.serial}))
    book.add(flow_detail)
    return book


def _target_job_book(pending: objects.PendingJob, job_id: str) -> models.LogBook:
    """The logbook of a job about a pool target (retire-target).

    The flow reads the target when it runs, so a target gone by then is
    simply nothing to do: the job is posted all the same.
    """
    target_id = str(pending.target_id)
    target = storage.find_target(target_id)
    label = target.label if target is not None else target_id
    book = models.LogBook(f"{pending.kind} {label}", uuid=job_id)
    book.meta = {"kind": pending.kind, "target_id": target_id, "target": label}
    flow_detail = models.FlowDetail(pending.kind, uuid.uuid4().hex)
    engines.save_factory_details(flow_detail, target_flows.retire_target_flow, [], {})
    flow_detail.add(_inputs({"target_id": target_id}))
    book.add(flow_detail)
    return book


def _add_logbook(persistence: Any, book: models.LogBook) -> bool:
    """Write a new job's logbook; False, writing nothing, if it was written before."""
    with contextlib.closing(persistence.get_connection()) as connection:
        if hasattr(connection, "add_logbook"):
            return bool(connection.add_logbook(book))
        # TaskFlow's own backends (the benchmarks' in-memory one): look, then save.
        try:
            connection.get_logbook(book.uuid, lazy=True)
        except tf_exc.NotFound:
            connection.save_logbook(book)
            return True
        return False


def _inputs(store: dict[str, Any]) -> models.TaskDetail:
    """The job's inputs as TaskFlow keeps them, written with the logbook.

    Left to the conductor, TaskFlow saves them on the first claim in two
    writes: the atom holding them, empty, then its results. A conductor
    killed between the two left a logbook no engine could load again
    ("'NoneType' object has no attribute 'keys'"), and the job failed.
    """
    inputs = models.TaskDetail(tf_storage.Storage.injector_name, uuid.uuid4().hex)
    inputs.state = states.SUCCESS
    inputs.results = dict(store)
    return inputs


# Job ids made from outbox rows (see post).
_JOB_IDS = uuid.UUID("5b0c3d4e-2f61-4c8e-9a57-7e1f0c9d2a43")


def _job_id(pending: objects.PendingJob) -> str:
    if pending.created_at is None:
        return str(uuid.uuid4())
    # The row's id alone could come back (SQLite reuses the ids of deleted rows).
    row = (
        pending.id,
        pending.created_at.isoformat(),
        pending.kind,
        pending.zone_id,
        pending.target_id,
        pending.serial,
    )
    return str(uuid.uuid5(_JOB_IDS, repr(row)))


def _find_logbook(persistence: Any, job_id: str) -> models.LogBook | None:
    with contextlib.closing(persistence.get_connection()) as connection:
        try:
            book: models.LogBook = connection.get_logbook(job_id)
        except tf_exc.NotFound:
            return None
    return book


def _reached_board(board: Any, book: models.LogBook) -> bool:
    """Whether an earlier post of this job got to the board (it ran, or waits there)."""
    job = _info(book, with_atoms=False)
    return job.state != states.PENDING or job.attempts > 0 or bool(_find_posted(board, job.id))


@contextlib.contextmanager
def _logbooks(persistence: Any) -> Iterator[Any]:
    """A persistence connection whose failures come out as zoneflow errors."""
    try:
        with contextlib.closing(persistence.get_connection()) as connection:
            yield connection
    except tf_exc.StorageFailure as exc:
        cause = str(exc.__cause__ or exc)
        if "no such table" in cause or "does not exist" in cause:
            raise exceptions.DatabaseNotSynced(
                "the database has no job tables yet: run 'zoneflow db sync'"
            ) from exc
        raise exceptions.DatabaseUnavailable(f"cannot read jobs from the database: {exc}") from exc


def list_jobs(persistence: Any, *, limit: int | None = None) -> list[JobInfo]:
    """Jobs known to persistence, newest first."""
    with _logbooks(persistence) as connection:
        books = [_info(b, with_atoms=False) for b in connection.get_logbooks(lazy=False)]
    books.sort(key=lambda j: j.created_at or datetime.datetime.min, reverse=True)
    return books[:limit] if limit else books


def purge(persistence: Any, *, older_than: datetime.timedelta) -> int:
    """Delete the logbooks of ended jobs posted longer ago than ``older_than``; how many.

    Only ended jobs (SUCCESS, REVERTED, FAILURE, CANCELLED) go: a job still
    waiting or running keeps its logbook, whatever its age, since a
    conductor may resume it from there. Several conductors may purge at once:
    a logbook another one removed first is simply not counted.
    """
    cutoff = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - older_than
    removed = 0
    with _logbooks(persistence) as connection:
        for book in list(connection.get_logbooks(lazy=False)):
            # Posted before the cutoff (the last-update stamp is no guide: a
            # conductor touches a job's meta as it ends each attempt).
            if book.created_at is None or book.created_at > cutoff:
                continue
            if _info(book, with_atoms=False).state not in OVER:
                continue
            try:
                connection.destroy_logbook(book.uuid)
            except tf_exc.NotFound:
                continue
            removed += 1
    return removed


# Fewer characters than this would match a job by chance more often than not.
SHORTEST_ID_PREFIX = 4


def resolve_id(persistence: Any, ref: str) -> str:
    """The id of the one job whose id is ``ref`` or begins with it, as git takes a short
    hash: ``job show 5b0c`` finds job 5b0c3d4e-...; a prefix two jobs share is refused."""
    ref = ref.strip().lower()
    if len(ref) < SHORTEST_ID_PREFIX:
        raise exceptions.InvalidInput(
            f"job id {ref!r} is too short: give at least {SHORTEST_ID_PREFIX} of its characters"
        )
    with _logbooks(persistence) as connection:
        ids = sorted(book.uuid for book in connection.get_logbooks(lazy=True))
    if ref in ids:
        return ref
    matches = [job_id for job_id in ids if job_id.startswith(ref)]
    if not matches:
        raise exceptions.JobNotFound(f"job {ref} does not exist")
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise exceptions.InvalidInput(
            f"job id {ref} is ambiguous: {len(matches)} jobs' ids begin with it ({shown}); "
            "give more of it"
        )
    return matches[0]


def get_job(persistence: Any, job_id: str) -> JobInfo:
    return _info(_logbook(persistence, job_id), with_atoms=True)


def find_job(persistence: Any, names: list[str]) -> str | None:
    """The id of the newest job with one of these names (see post), or None."""
    with _logbooks(persistence) as connection:
        return connection.find_logbook(names)


def job_graph(persistence: Any, job_id: str) -> str:
    """The job's flow as Graphviz DOT, each atom coloured by its persisted state."""
    book = _logbook(persistence, job_id)
    job = _info(book, with_atoms=True)
    details = list(book)
    if not details:
        raise exceptions.FlowNotFound(f"job {job_id} has no flow recorded in its logbook")
    try:
        flow = engines.flow_from_detail(details[0])
    except (ValueError, ImportError, TypeError) as exc:
        raise exceptions.FlowNotFound(
            f"the flow of job {job_id} cannot be rebuilt from its logbook "
            f"(was it posted by another zoneflow version?): {exc}"
        ) from exc
    factory_kwargs = details[0].meta["factory"].get("kwargs", {})
    labels = {t["id"]: t["label"] for t in factory_kwargs.get("targets", [])}
    targets = {
        a.name: labels.get(a.target_id, a.target_id)
        for a in _atoms(flow)
        if isinstance(a, tasks.ZoneActionOnTarget)
    }
    runs = {}
    for atom in job.atoms:
        note = atom.error or (f"target {targets[atom.name]}" if atom.name in targets else "")
        runs[atom.name] = render.AtomRun(atom.state, failed=atom.error is not None, note=note)
    outcome = f"{job.state} (failed)" if job.failed else job.state
    title = f"{job.kind} {job.zone_name} serial {job.serial}: {outcome}\njob {job.id}"
    ended = render.JobRun(job.state, failed=job.failed, reason=job.error)
    return render.to_dot(flow, runs, title=title, job=ended)


def _atoms(flow: Any) -> Iterator[Any]:
    for item in flow:
        if isinstance(item, tf_flow.Flow):
            yield from _atoms(item)
        else:
            yield item


def _logbook(persistence: Any, job_id: str) -> models.LogBook:
    with _logbooks(persistence) as connection:
        try:
            return connection.get_logbook(job_id)
        except tf_exc.NotFound:
            raise exceptions.JobNotFound(f"job {job_id} does not exist") from None


def _info(book: models.LogBook, *, with_atoms: bool) -> JobInfo:
    meta = book.meta or {}
    details = list(book)
    flow = details[0] if details else None
    atoms: tuple[AtomInfo, ...] = ()
    if with_atoms and flow is not None:
        atoms = tuple(
            AtomInfo(a.name, a.state or states.PENDING, a.intention or "", a.results, _error(a))
            for a in flow
            if not a.name.startswith(TASKFLOW_INTERNAL)
        )
    state, error = _state(meta, flow)
    return JobInfo(
        id=str(book.uuid),
        kind=str(meta.get("kind", book.name)),
        zone_id=str(meta.get("zone_id", "")),
        zone_name=str(meta.get("zone_name", "")),
        serial=int(meta.get("serial", 0)),
        state=state,
        created_at=book.created_at,
        updated_at=book.updated_at,
        atoms=atoms,
        attempts=int(meta.get("attempts", 0)),
        error=error,
        failed=state in FAILED_STATES,
    )


def _state(meta: dict[str, Any], flow: models.FlowDetail | None) -> tuple[str, str | None]:
    """A job's state and its reason, from its logbook (see SUCCESS above)."""
    if meta.get("outcome"):
        return str(meta["outcome"]), meta.get("error")
    state = flow.state if flow is not None and flow.state else states.PENDING
    if flow is None:
        return state, meta.get("last_error")
    if state == states.SUCCESS:
        return _status_outcome(flow, int(meta.get("serial", 0)))
    if state in FAILED_STATES:
        failures = [str(a.failure.exception_str) for a in flow if a.failure is not None]
        return state, "; ".join(failures) or meta.get("last_error") or "the flow failed"
    return state, meta.get("last_error")


def _status_outcome(flow: models.FlowDetail, serial: int) -> tuple[str, str | None]:
    """What a flow that ran to its end gave the zone: the status its last task wrote."""
    status = next((a.results for a in flow if a.name == STATUS_ATOM), None)
    if status == objects.ERROR:
        return FAILED, _not_served(flow, serial)
    if status == tasks.SUPERSEDED:
        return SUPERSEDED, (
            f"too few nameservers serve serial {serial}, but the zone is at a later serial "
            "since: a newer job carries the zone on"
        )
    if status == objects.PENDING:
        return SUPERSEDED, (
            f"serial {serial} was not made ACTIVE by this job: the zone changed again, or its "
            "pool grew, while it ran, and a newer job carries the zone on"
        )
    return SUCCESS, None


def _not_served(flow: models.FlowDetail, serial: int) -> str:
    """Why the zone went ERROR at the end of a flow: the nameservers that did not serve it."""
    polls = [
        a.results
        for a in flow
        if a.name.startswith("poll-for-")
        and isinstance(a.results, dict)
        and not a.results.get("dropped")
    ]
    lagging = "; ".join(str(p.get("error")) for p in polls if not p.get("ok"))
    threshold = (flow.meta or {}).get("factory", {}).get("kwargs", {}).get("threshold")
    served = sum(1 for p in polls if p.get("ok"))
    return (
        f"the zone went ERROR: {served} of {len(polls)} nameservers serve serial {serial}, "
        f"below the pool's threshold of {threshold}% ({lagging or 'no answer'})"
    )


# --- attempts: what conductors record about the runs of a job ------------------


def _update_meta(
    persistence: Any, job_id: str, change: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Apply ``change`` to a job's logbook metadata; save it if ``change`` says it changed."""
    with _logbooks(persistence) as connection:
        try:
            if hasattr(connection, "update_logbook_meta"):
                return connection.update_logbook_meta(job_id, change)
            # TaskFlow's own backends (the benchmarks' in-memory one): read, change, save.
            # lazy: without flow details, saving the book touches its own row only.
            book = connection.get_logbook(job_id, lazy=True)
        except tf_exc.NotFound:
            raise exceptions.JobNotFound(f"job {job_id} does not exist") from None
        meta = dict(book.meta or {})
        if change(meta):
            book.meta = meta
            book.updated_at = timeutils.utcnow()
            connection.save_logbook(book)
        return meta


def begin_attempt(persistence: Any, job_id: str, *, conductor: str, limit: int) -> Attempt:
    """Count the run of a job that ``conductor`` is about to start.

    A run is counted before it starts because a conductor that dies during
    it cannot count it afterwards: the next claim finds the run still marked
    as running, and that becomes the previous error. Once ``limit`` runs
    have been counted nothing more is written, and the number returned is
    ``limit + 1``.
    """
    attempt: Attempt | None = None

    def change(meta: dict[str, Any]) -> bool:
        nonlocal attempt
        runs = int(meta.get("attempts", 0))
        previous_error = meta.get("last_error")
        if meta.get("running_on"):
            previous_error = f"conductor {meta['running_on']} stopped while running attempt {runs}"
        if meta.get("outcome"):
            attempt = Attempt(runs, meta.get("error"), meta["outcome"])
            return False
        if runs >= limit:
            attempt = Attempt(runs + 1, previous_error)
            return False
        attempt = Attempt(runs + 1, previous_error)
        meta.update(attempts=runs + 1, running_on=conductor, last_error=previous_error)
        return True

    _update_meta(persistence, job_id, change)
    assert attempt is not None
    return attempt


def end_attempt(persistence: Any, job_id: str, *, error: str | None) -> None:
    """Record that a run ended without finishing the job.

    With an ``error`` the run counts and the error is kept; without one the
    run was suspended (its conductor is stopping) and is not counted.
    """

    def change(meta: dict[str, Any]) -> bool:
        runs = int(meta.get("attempts", 0))
        if error is None:
            meta.update(attempts=max(0, runs - 1), running_on=None)
        else:
            meta.update(running_on=None, last_error=error)
        return True

    _update_meta(persistence, job_id, change)


def fail(persistence: Any, job_id: str, reason: str) -> str:
    """End a job as failed: record why, and put its zone in ERROR with the reason.
    Returns the job's kind."""
    return str(_end(persistence, job_id, FAILED, reason).get("kind", ""))


def _end(persistence: Any, job_id: str, outcome: str, reason: str) -> dict[str, Any]:
    """Record how zoneflow ended a job; the job's metadata after."""

    def change(meta: dict[str, Any]) -> bool:
        meta.update(outcome=outcome, error=reason, running_on=None)
        return True

    meta = _update_meta(persistence, job_id, change)
    if "zone_id" not in meta or outcome == SUPERSEDED:
        # Not a zone job, or a newer job speaks for the zone.
        return meta
    # Only if the zone is still at the job's serial: a newer job speaks for it otherwise.
    storage.set_zone_status(
        str(meta["zone_id"]), serial=int(meta.get("serial", 0)), status=objects.ERROR, error=reason
    )
    return meta


# --- jobs a board lost -------------------------------------------------------------


def take_back_unfinished(board: Any, persistence: Any) -> list[tuple[JobInfo, str]]:
    """Post again, or end, every unfinished job that is not on ``board``; each with
    the state it is left in (PENDING: posted again).

    For a board that starts empty with its process (zake, in ``zoneflow
    all-in-one``): the jobs the last process had posted or was running went
    with it, their logbooks left PENDING or RUNNING for good. Each now either
    runs again, resumed from its persisted atoms, or ends with the reason:

    - SUPERSEDED when its zone has moved on to a later serial, which a newer
      job carries (that job is taken back too, if it was lost as well);
    - LOST when it can no longer run: its zone is gone, or its logbook holds
      no flow to rebuild.
    """
    with _board_errors():
        on_board = {str(posted.book_uuid) for posted in board.iterjobs(ensure_fresh=True)}
    with _logbooks(persistence) as connection:
        books = [b for b in connection.get_logbooks(lazy=False) if str(b.uuid) not in on_board]
    taken = []
    for book in sorted(books, key=lambda b: b.created_at or datetime.datetime.min):
        job = _info(book, with_atoms=False)
        if job.state not in OVER:
            taken.append((job, _take_back(board, persistence, book, job)))
    return taken


def _take_back(board: Any, persistence: Any, book: models.LogBook, job: JobInfo) -> str:
    """Post one lost job again, or end it; the state it is left in."""
    if not list(book):
        _end(persistence, job.id, LOST, f"job {job.id} was lost: its logbook holds no flow to run")
        return LOST
    if job.zone_id:
        zone = storage.get_zone_any(job.zone_id)
        if zone is None:
            reason = f"job {job.id} was lost with its process, and its zone is gone since"
            _end(persistence, job.id, LOST, reason)
            return LOST
        if zone.serial > job.serial:
            reason = (
                f"job {job.id} was lost with its process; zone {zone.name} is at serial "
                f"{zone.serial} since, carried by a newer job"
            )
            _end(persistence, job.id, SUPERSEDED, reason)
            return SUPERSEDED
    LOG.info("job %s (%s) was lost with its process: posting it again", job.id, book.name)
    with _board_errors():
        board.post(book.name, book=book)
    return states.PENDING


# --- cancelling ---------------------------------------------------------------------


def cancel(board: Any, persistence: Any, job_id: str, *, who: str) -> JobInfo:
    """Take a job off the board and put its zone in ERROR "cancelled by operator".

    A job a live conductor has claimed is left alone (JobClaimed names the
    conductor). A job that is not on the board but never finished (its
    board entry was lost) is stuck: nothing will ever run it, so it is
    cancelled in the database alone. Any conductor that still finds a
    cancelled job on its board removes it unrun.

    The in-process zake board is seen only by its own process: cancelling
    from another one (a CLI beside ``zoneflow all-in-one``) cannot tell a
    job that is running there from a stuck one.
    """
    posted = _find_posted(board, job_id)
    # Read after the board: a job is consumed only once its final state is saved.
    job = get_job(persistence, job_id)
    if posted is None and job.state in OVER:
        raise exceptions.JobFinished(
            f"job {job_id} has already finished ({job.state}): there is nothing to cancel"
        )
    reason = f"job {job_id} ({job.kind} serial {job.serial}) cancelled by operator"
    if posted is None:
        _end(persistence, job_id, CANCELLED, reason)
        return get_job(persistence, job_id)
    with _board_errors():
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
            _end(persistence, job_id, CANCELLED, reason)
        except Exception:
            board.abandon(posted, who)
            raise
        # Should this fail, the claim ends with our session; any conductor that
        # claims the job then finds it cancelled and consumes it unrun.
        board.consume(posted, who)
    return get_job(persistence, job_id)


def _find_posted(board: Any, job_id: str) -> Any:
    with _board_errors():
        for posted in board.iterjobs(ensure_fresh=True):
            if posted.book_uuid == job_id:
                return posted
    return None


@contextlib.contextmanager
def _board_errors() -> Iterator[None]:
    try:
        yield
    except tf_exc.JobFailure as exc:
        raise exceptions.JobboardUnavailable(
            f"the jobboard failed: {exc}; check ZooKeeper and try again"
        ) from exc


def _error(atom: models.AtomDetail) -> str | None:
    if atom.failure is not None:
        return str(atom.failure.exception_str)
    # ZoneActionOnTarget returns a failed target as its outcome instead of
    # raising, so the consensus check can weigh it against the threshold.
    result = atom.results
    if isinstance(result, dict) and result.get("ok") is False:
        return str(result.get("error") or "the target failed")
    return None
