"""Posting zone jobs to the jobboard, and reading them back.

A job is a TaskFlow logbook holding one flow detail whose metadata names the
flow factory and its arguments; the conductor that claims the job rebuilds
the flow from them, and the atom states persisted there let another
conductor resume it. The logbook's uuid is the job id users see: it lives in
the database, so it outlives the jobboard entry.

A job's graph is drawn the way the conductor runs it: the flow rebuilt
from the factory and arguments in its logbook, each atom coloured by the
state persisted for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import uuid
from collections.abc import Iterator
from typing import Any

from taskflow import engines, states
from taskflow import exceptions as tf_exc
from taskflow import flow as tf_flow
from taskflow.persistence import models

from zoneflow import exceptions, flows, objects
from zoneflow.flows import render, tasks
from zoneflow.storage import api as storage

# TaskFlow stores the job's inputs as an atom of its own; it is no task of ours.
TASKFLOW_INTERNAL = "_TaskFlow_"


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


def post(board: Any, persistence: Any, pending: objects.PendingJob) -> str:
    """Write a job's logbook and post it; return the job id."""
    zone = storage.get_zone_any(pending.zone_id)
    if zone is None:
        raise exceptions.ZoneNotFound(f"zone {pending.zone_id} no longer exists")
    pool = storage.get_pool(zone.pool_id)
    factory = flows.FACTORIES[pending.kind]
    book = models.LogBook(f"{pending.kind} {zone.name} serial {pending.serial}")
    book.meta = {
        "kind": pending.kind,
        "zone_id": zone.id,
        "zone_name": zone.name,
        "serial": pending.serial,
    }
    flow_detail = models.FlowDetail(pending.kind, uuid.uuid4().hex)
    book.add(flow_detail)
    with contextlib.closing(persistence.get_connection()) as connection:
        connection.save_logbook(book)
    engines.save_factory_details(
        flow_detail, factory, [], flows.pool_args(pool), backend=persistence
    )
    board.post(
        book.name,
        book=book,
        details={"store": {"zone_id": zone.id, "serial": pending.serial}},
    )
    return str(book.uuid)


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


def get_job(persistence: Any, job_id: str) -> JobInfo:
    return _info(_logbook(persistence, job_id), with_atoms=True)


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
    title = f"{job.kind} {job.zone_name} serial {job.serial}: {job.state}\njob {job.id}"
    return render.to_dot(flow, runs, title=title)


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
            raise exceptions.JobNotFound(
                f"job {job_id} does not exist: 'zoneflow job list' shows the jobs there are"
            ) from None


def _info(book: models.LogBook, *, with_atoms: bool) -> JobInfo:
    meta = book.meta or {}
    details = list(book)
    state = details[0].state if details and details[0].state else states.PENDING
    atoms: tuple[AtomInfo, ...] = ()
    if with_atoms and details:
        atoms = tuple(
            AtomInfo(a.name, a.state or states.PENDING, a.intention or "", a.results, _error(a))
            for a in details[0]
            if not a.name.startswith(TASKFLOW_INTERNAL)
        )
    return JobInfo(
        id=str(book.uuid),
        kind=str(meta.get("kind", book.name)),
        zone_id=str(meta.get("zone_id", "")),
        zone_name=str(meta.get("zone_name", "")),
        serial=int(meta.get("serial", 0)),
        state=str(state),
        created_at=book.created_at,
        updated_at=book.updated_at,
        atoms=atoms,
    )


def _error(atom: models.AtomDetail) -> str | None:
    if atom.failure is not None:
        return str(atom.failure.exception_str)
    # ZoneActionOnTarget returns a failed target as its outcome instead of
    # raising, so the consensus check can weigh it against the threshold.
    result = atom.results
    if isinstance(result, dict) and result.get("ok") is False:
        return str(result.get("error") or "the target failed")
    return None
