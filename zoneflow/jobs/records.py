"""Job records: what TaskFlow's logbooks say about each job, read back.

A job is a TaskFlow logbook holding one flow detail whose metadata names the
flow factory and its arguments; the conductor that claims the job rebuilds
the flow from them, and the atom states persisted there let another
conductor resume it. The logbook's uuid is the job id users see: it lives in
the database, so it outlives the jobboard entry.

The logbook's metadata also keeps the job's attempts and runs (see
attempts.py and runs.py) and,
when zoneflow rather than the flow ended the job, that outcome (FAILURE
after too many attempts, CANCELLED by an operator) with its reason.

Lists (find_jobs, list_jobs, purge) ask the database for one page of
logbooks at a time (zoneflow.taskflow_adapter.pages) and read only those
whole; the state a list filters on is the one _state gives, told to SQL by
STATE_RULE.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
from collections.abc import Iterable, Iterator
from typing import Any

from taskflow import exceptions as tf_exc
from taskflow import states
from taskflow.persistence import models

from zoneflow import exceptions, objects
from zoneflow.jobs import outcomes, steps
from zoneflow.jobs.runs import Run, RunEnd, runs_of
from zoneflow.storage import job_zones as stored_job_zones
from zoneflow.taskflow_adapter import pages

# TaskFlow stores the job's inputs as an atom of its own; it is no task of ours.
TASKFLOW_INTERNAL = "_TaskFlow_"


class Outcome(enum.StrEnum):
    """How a job ended: one word (see doc/operations.md, "What a job's state says").

    TaskFlow's flow states are the truth while a job waits or runs, and when
    its flow failed (REVERTED: below the targets' threshold, undone; FAILURE;
    REVERT_FAILURE). SUCCESS is kept only when the zone reached what the job
    was for: a flow that ran to its end with the zone put in ERROR (too few
    nameservers serve the serial) reads FAILURE. The rest are zoneflow's own ends.
    """

    SUCCESS = states.SUCCESS
    FAILURE = states.FAILURE
    REVERTED = states.REVERTED
    REVERT_FAILURE = states.REVERT_FAILURE
    CANCELLED = "CANCELLED"  # by an operator ('zoneflow job cancel')
    SUPERSEDED = "SUPERSEDED"  # a newer job carries the zone on: nothing left for this one
    LOST = "LOST"  # nothing will ever run it again, and nothing newer covers its zone


# Ends that mean the zone did not get what the job was for.
FAILED_STATES = frozenset(
    {
        Outcome.REVERTED,
        Outcome.FAILURE,
        Outcome.REVERT_FAILURE,
        Outcome.CANCELLED,
        Outcome.LOST,
    }
)
# States after which a job never runs again.
OVER = FAILED_STATES | {Outcome.SUCCESS, Outcome.SUPERSEDED}

# The last task of a zone flow, whose result is the status it gave the zone.
STATUS_ATOM = steps.STATUS.name
# What a flow that ran to its end (SUCCESS) ended as, by the status its last task
# gave the zone; any other status (ACTIVE, DELETED) is a SUCCESS. See _status_outcome.
SUCCESS_BY_STATUS: dict[str, str] = {
    objects.Status.ERROR: Outcome.FAILURE,
    Outcome.SUPERSEDED: Outcome.SUPERSEDED,
    objects.Status.PENDING: Outcome.SUPERSEDED,
}
# The same reading of a job's state, for the database to pick jobs by it (see _state).
STATE_RULE = pages.StateRule(
    outcome_key="outcome", status_atom=STATUS_ATOM, success_by_status=SUCCESS_BY_STATUS
)


@dataclasses.dataclass(frozen=True)
class AtomInfo:
    name: str
    state: str
    intention: str
    result: Any
    # Why the atom failed, or why the target it acted on failed.
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class JobZone:
    """A zone a job carries, and the serial its change was posted at."""

    id: str
    name: str
    serial: int


@dataclasses.dataclass(frozen=True)
class JobInfo:
    id: str
    kind: str
    # The zone the job is about; of a batch (create-zones, ...), its first zone.
    zone_id: str
    zone_name: str
    serial: int
    state: str
    created_at: datetime.datetime | None
    updated_at: datetime.datetime | None
    atoms: tuple[AtomInfo, ...] = ()
    # Runs conductors started (a run suspended by a stopping conductor is not counted).
    attempts: int = 0
    # ... of which failed (the flow raised), and lost with their conductor.
    failed_attempts: int = 0
    lost_attempts: int = 0
    # Each run, oldest first: its conductor, how it ended, where or why.
    runs: tuple[Run, ...] = ()
    # Why the job failed or ended as it did; while it runs, its last run's error.
    error: str | None = None
    # Whether the job ended without the zone getting what the job was for.
    failed: bool = False
    # Every zone the job carries: its zone, or each zone of a batch. None for a
    # job about a pool target.
    zones: tuple[JobZone, ...] = ()


@contextlib.contextmanager
def logbooks(persistence: Any) -> Iterator[Any]:
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


@dataclasses.dataclass(frozen=True)
class JobFilter:
    """Which jobs a list holds: each field given must match exactly."""

    # A zone the job carries (any zone of a batch).
    zone_id: str | None = None
    zone_name: str | None = None
    kind: str | None = None
    state: str | None = None
    # The jobs of this project's zones (live or deleted); None: every job.
    project_id: str | None = None


# Jobs read a page at a time: the CLI's whole list, a purge.
PAGE = 500


def find_jobs(persistence: Any, wanted: JobFilter, paging: objects.Paging) -> objects.Page[JobInfo]:
    """One page of the jobs ``wanted`` picks, chosen and ordered by the database
    (``paging.sort_key``: created_at or updated_at, then the job id)."""
    zone = {
        key: value
        for key, value in (("zone_id", wanted.zone_id), ("zone_name", wanted.zone_name))
        if value is not None
    }
    query = pages.BookQuery(
        meta={} if wanted.kind is None else {"kind": wanted.kind},
        zone=zone,
        states=frozenset() if wanted.state is None else frozenset({wanted.state}),
        rule=STATE_RULE,
        project_id=wanted.project_id,
    )
    order = pages.Order(paging.sort_key, descending=paging.sort_dir == objects.DESC)
    with logbooks(persistence) as connection:
        try:
            found = connection.page_logbooks(query, order, limit=paging.limit, marker=paging.marker)
        except tf_exc.NotFound:
            raise exceptions.MarkerNotFound(
                f"marker {paging.marker!r} is not a job of this list: give the id of the "
                "last job of the previous page"
            ) from None
    jobs = tuple(info(book, with_atoms=False) for book in found.books)
    return objects.Page(jobs, found.total or 0, found.more)


def list_jobs(
    persistence: Any, *, limit: int | None = None, marker: str | None = None
) -> list[JobInfo]:
    """Jobs known to persistence, newest first (``limit``: at most that many, 0 or
    None: every job; ``marker``: those after that job), read a page at a time."""
    found: list[JobInfo] = []
    while limit is None or limit <= 0 or len(found) < limit:
        size = PAGE if limit is None or limit <= 0 else min(PAGE, limit - len(found))
        page = find_jobs(
            persistence, JobFilter(), objects.Paging(size, marker, sort_dir=objects.DESC)
        )
        found += page.items
        if not page.more:
            break
        marker = page.items[-1].id
    return found


def purge(persistence: Any, *, older_than: datetime.timedelta) -> int:
    """Delete the logbooks of ended jobs posted longer ago than ``older_than``; how many.

    Only ended jobs (SUCCESS, REVERTED, FAILURE, CANCELLED) go: a job still
    waiting or running keeps its logbook, whatever its age, since a
    conductor may resume it from there. Several conductors may purge at once:
    a logbook another one removed first is simply not counted.
    """
    cutoff = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - older_than
    # Posted before the cutoff (the last-update stamp is no guide: a conductor
    # touches a job's meta as it ends each attempt), and ended: the database
    # picks them, oldest first, so a purge reads none of the jobs it keeps.
    query = pages.BookQuery(created_before=cutoff, states=frozenset(OVER), rule=STATE_RULE)
    order = pages.Order(pages.CREATED_AT, descending=False)
    removed = 0
    after = None
    with logbooks(persistence) as connection:
        while True:
            found = connection.page_logbooks(query, order, limit=PAGE, after=after, count=False)
            gone = []
            for book in found.books:
                # Read again in Python: the one truth of a job's state.
                if info(book, with_atoms=False).state not in OVER:
                    continue
                gone.append(book.uuid)
                try:
                    connection.destroy_logbook(book.uuid)
                except tf_exc.NotFound:
                    continue
                removed += 1
            stored_job_zones.remove(gone)
            if not found.more or not found.books:
                return removed
            last = found.books[-1]
            after = (last.created_at, last.uuid)


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
    with logbooks(persistence) as connection:
        matches = connection.logbook_ids(ref)
    if ref in matches:
        return ref
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
    return info(logbook(persistence, job_id), with_atoms=True)


def find_job(persistence: Any, zone_name: str, serial: int, kinds: Iterable[str]) -> str | None:
    """The id of the newest job of one of these kinds posted for zone ``zone_name`` at
    ``serial`` (found by its logbook's name, see post), or of a batch carrying the
    zone at that serial; None if there is none."""
    names = [steps.zone_logbook(kind, zone_name, serial) for kind in kinds]
    with logbooks(persistence) as connection:
        return connection.find_logbook(names, carrying=(zone_name, serial))


def logbook(persistence: Any, job_id: str) -> models.LogBook:
    with logbooks(persistence) as connection:
        try:
            return connection.get_logbook(job_id)
        except tf_exc.NotFound:
            raise exceptions.JobNotFound(f"job {job_id} does not exist") from None


def info(book: models.LogBook, *, with_atoms: bool) -> JobInfo:
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
        failed_attempts=int(meta.get("failed_attempts", 0)),
        lost_attempts=int(meta.get("lost_attempts", 0)),
        runs=_runs(meta, state),
        error=error,
        failed=state in FAILED_STATES,
        zones=zones_of(meta),
    )


def zones_of(meta: dict[str, Any]) -> tuple[JobZone, ...]:
    """The zones a job carries, from its logbook's metadata (see zoneflow.jobs.post)."""
    if "zones" in meta:
        return tuple(JobZone(str(i), str(name), int(serial)) for i, name, serial in meta["zones"])
    if not meta.get("zone_id"):
        return ()
    serial = int(meta.get("serial", 0))
    return (JobZone(str(meta["zone_id"]), str(meta.get("zone_name", "")), serial),)


def _runs(meta: dict[str, Any], state: str) -> tuple[Run, ...]:
    """The job's runs; the last one of a job that is over carried it to its end
    (nothing is written when a run ends the job: it costs the job nothing)."""
    runs = runs_of(meta)
    if state in OVER and runs and runs[-1].ended == RunEnd.RUNNING:
        runs[-1] = dataclasses.replace(runs[-1], ended=RunEnd.FINISHED)
    return tuple(runs)


def _state(meta: dict[str, Any], flow: models.FlowDetail | None) -> tuple[str, str | None]:
    """A job's state and its reason, from its logbook (see Outcome above)."""
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
    ended = SUCCESS_BY_STATUS.get(status) if isinstance(status, str) else None
    if ended is None:
        return Outcome.SUCCESS, None
    if ended == Outcome.FAILURE:
        return ended, _not_served(flow, serial)
    if status == objects.Status.PENDING:
        return ended, (
            f"serial {serial} was not made ACTIVE by this job: the zone changed again, or its "
            "pool grew, while it ran, and a newer job carries the zone on"
        )
    return ended, (
        f"too few nameservers serve serial {serial}, but the zone is at a later serial "
        "since: a newer job carries the zone on"
    )


def _not_served(flow: models.FlowDetail, serial: int) -> str:
    """Why the zone went ERROR at the end of a flow: the nameservers that did not serve it."""
    polled = {
        name for name, step in steps.steps_of(flow).items() if step.kind == steps.StepKind.POLL
    }
    polls = [
        seen
        for a in flow
        if a.name in polled
        and (seen := outcomes.Served.of(a.results)) is not None
        and not seen.dropped
    ]
    lagging = "; ".join(str(p.error) for p in polls if not p.ok)
    threshold = (flow.meta or {}).get("factory", {}).get("kwargs", {}).get("threshold")
    served = sum(1 for p in polls if p.ok)
    return (
        f"the zone went ERROR: {served} of {len(polls)} nameservers serve serial {serial}, "
        f"below the pool's threshold of {threshold}% ({lagging or 'no answer'})"
    )


def _error(atom: models.AtomDetail) -> str | None:
    if atom.failure is not None:
        return str(atom.failure.exception_str)
    # ZoneActionOnTarget returns a failed target as its outcome instead of
    # raising, so the consensus check can weigh it against the threshold.
    return outcomes.failure(atom.results)
