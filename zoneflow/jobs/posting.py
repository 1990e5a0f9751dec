"""Posting a job: its logbook written, then its entry put on the jobboard.

A job's logbook is written first, with the factory of its flow, the
arguments the factory is called with and the job's inputs; then the job
goes on the board. The caller says which flow a kind of job runs
(``flow_of``, zoneflow.flows.job_flow): this package sits below the flows.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from taskflow import engines, states
from taskflow import exceptions as tf_exc
from taskflow.persistence import models

from zoneflow import exceptions, objects
from zoneflow.jobs import steps
from zoneflow.jobs.board import board_priority, find_posted
from zoneflow.jobs.records import info
from zoneflow.storage import job_zones as stored_job_zones
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import targets as stored_targets
from zoneflow.storage import zones as stored_zones

LOG = logging.getLogger(__name__)

#: The factory of a job's flow and the keyword arguments it is called with, from the
#: job's kind and its zone's pool (None for a job about a pool target).
FlowOf = Callable[[str, objects.Pool | None], tuple[Callable[..., Any], dict[str, Any]]]


def post(
    board: Any,
    persistence: Any,
    pending: objects.PendingJob,
    *,
    flow_of: FlowOf,
    pools: dict[str, objects.Pool] | None = None,
) -> str:
    """Write a job's logbook and post it; return the job id.

    ``flow_of`` gives the factory of the job's flow and its arguments.

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

    The job goes on the board with its priority (:func:`board_priority`):
    conductors claim a user's change before upkeep posted earlier. The
    logbook keeps it, so a job posted again (jobs.board) keeps its place.
    """
    job_id = _job_id(pending)
    if pending.zone_id is None:
        book = _target_job_book(pending, job_id, flow_of)
    else:
        book = _zone_job_book(pending, job_id, flow_of, {} if pools is None else pools)
    return _post_book(board, persistence, book, job_id)


def group_changes(
    pending: list[objects.PendingJob], size: int, upkeep_size: int | None = None
) -> list[list[objects.PendingJob]]:
    """``pending`` in the jobs to post, in the order of each job's first row.

    Rows a relay put in a batch before (``batch``: its post failed, or the
    relay died) go together again, as that batch. Other rows of one kind
    that has a batch (objects.BATCH_OF: create-zone, update-zone,
    delete-zone, recover-zone), of zones of one pool and one project, go
    together, up to ``size`` in a job (create-zones, update-zones,
    delete-zones, recover-zones), upkeep rows up to ``upkeep_size`` (``size`` when
    None); any other row, a zone gone, or the recovery of a zone whose delete was
    asked for, alone.

    One project per job: whoever may see a job may see every zone it carries
    (a project's list of jobs, zoneflow.jobs.JobFilter.project_id). One
    priority and one follow-up (``if_pool_grows``) per job too: the job has
    one of each. And each zone once: a second row of a zone (an update that
    could not ride on the first: upkeep rows ride on nothing) starts the next
    job, as it would alone.
    """
    jobs: list[list[objects.PendingJob]] = []
    # A batch's id, or what the rows of one job share -> its job filling up
    filling: dict[Any, list[objects.PendingJob]] = {}
    upkeep_size = size if upkeep_size is None else upkeep_size

    def most(row: objects.PendingJob) -> int:
        return size if row.priority == objects.JobPriority.CHANGE else upkeep_size

    # The zones of the rows that may go together, read at once.
    zones = stored_zones.get_zones_any(
        str(row.zone_id)
        for row in pending
        if most(row) > 1 and row.batch is None and row.kind in objects.BATCH_OF
    )
    for row in pending:
        if row.batch is not None:
            key: Any = row.batch
        elif most(row) <= 1 or row.kind not in objects.BATCH_OF:
            jobs.append([row])
            continue
        else:
            zone = zones.get(str(row.zone_id))
            if zone is None or (row.kind == objects.JobKind.RECOVER_ZONE and zone.wanted_gone):
                # recover-zones carries zones wanted ACTIVE: one wanted gone goes alone.
                jobs.append([row])
                continue
            key = (row.kind, row.priority, row.if_pool_grows, zone.pool_id, zone.project_id)
        job = filling.get(key)
        if job is None or (
            row.batch is None
            and (len(job) >= most(row) or any(other.zone_id == row.zone_id for other in job))
        ):
            job = filling[key] = []
            jobs.append(job)
        job.append(row)
    return jobs


def post_batch(
    board: Any,
    persistence: Any,
    job_id: str,
    batch: list[objects.PendingJob],
    *,
    flow_of: FlowOf,
    pools: dict[str, objects.Pool] | None = None,
) -> str:
    """Write the logbook of batch job ``job_id`` for ``batch`` (the rows a relay put
    in it, see group_changes and storage.outbox.assign_batch) and post it; return
    the job id. Its kind is the batch of its rows' (objects.BATCH_OF).

    The rows carry the job's id, so a batch posted again (a post failed, or
    its relay died half-way) finds the logbook written the first time, as one
    row's job does (see post). Its record names its first zone (``zone_id``,
    ``zone_name``, ``serial``) and all of them (``zones``: id, name, serial);
    so does the table job_zones, written first, which a list of a zone's jobs
    reads."""
    pools = {} if pools is None else pools
    # A zone gone since is left out (the relay removes its row with the others'). A
    # zone goes once, with its newest serial: rows grouped before group_changes took
    # each zone once may carry one twice, and the record of zones takes it once.
    carrying: dict[str, tuple[objects.PendingJob, objects.Zone]] = {}
    stored = stored_zones.get_zones_any(str(row.zone_id) for row in batch)
    for row in batch:
        zone = stored.get(str(row.zone_id))
        if zone is not None and (
            zone.id not in carrying or row.serial > carrying[zone.id][0].serial
        ):
            carrying[zone.id] = (row, zone)
    batch = [row for row, _ in carrying.values()]
    zones = [zone for _, zone in carrying.values()]
    if not zones:
        raise exceptions.ZoneNotFound(f"every zone of batch {job_id} is gone")
    pool_id = zones[0].pool_id
    if pool_id not in pools:
        pools[pool_id] = stored_pools.get_pool(pool_id)
    kind = objects.BATCH_OF[batch[0].kind]
    book = models.LogBook(steps.batch_logbook(kind, [z.name for z in zones]), uuid=job_id)
    carried = [(z.id, z.name, row.serial) for z, row in zip(zones, batch, strict=True)]
    book.meta = {
        "kind": kind,
        "zone_id": zones[0].id,
        "zone_name": zones[0].name,
        "zones": [list(zone) for zone in carried],
        "serial": batch[0].serial,
        "priority": int(batch[0].priority),
    }
    flow_detail = models.FlowDetail(kind, uuid.uuid4().hex)
    factory, factory_kwargs = flow_of(kind, pools[pool_id])
    engines.save_factory_details(flow_detail, factory, [], factory_kwargs)
    inputs: dict[str, Any] = {
        "zone_ids": [z.id for z in zones],
        "serials": [row.serial for row in batch],
        "priority": int(batch[0].priority),
    }
    if batch[0].if_pool_grows is not None:
        inputs["if_pool_grows"] = str(batch[0].if_pool_grows)
    flow_detail.add(_inputs(inputs))
    book.add(flow_detail)
    stored_job_zones.add(job_id, carried)
    return _post_book(board, persistence, book, job_id)


def _post_book(board: Any, persistence: Any, book: models.LogBook, job_id: str) -> str:
    """Write a job's logbook, unless an earlier post wrote it, and put the job on the
    board, unless it got there before (see post)."""
    if not _add_logbook(persistence, book):
        book = _find_logbook(persistence, job_id)
        if book is None:
            raise exceptions.ServiceUnavailable(f"job {job_id}'s logbook went while posting it")
        if _reached_board(board, book):
            LOG.info("job %s was posted already: not posting it twice", job_id)
            return job_id
    board.post(book.name, book=book, priority=board_priority(book))
    return job_id


def _zone_job_book(
    pending: objects.PendingJob, job_id: str, flow_of: FlowOf, pools: dict[str, objects.Pool]
) -> models.LogBook:
    """The logbook of a job about a zone, from the zone and its pool as they are now."""
    zone = stored_zones.get_zone_any(str(pending.zone_id))
    if zone is None:
        raise exceptions.ZoneNotFound(f"zone {pending.zone_id} no longer exists")
    if zone.pool_id not in pools:
        pools[zone.pool_id] = stored_pools.get_pool(zone.pool_id)
    book = models.LogBook(steps.zone_logbook(pending.kind, zone.name, pending.serial), uuid=job_id)
    book.meta = {
        "kind": pending.kind,
        "zone_id": zone.id,
        "zone_name": zone.name,
        "serial": pending.serial,
        "priority": int(pending.priority),
    }
    # The factory and the pool it is called with go in the flow's row, and
    # the job's inputs beside it.
    flow_detail = models.FlowDetail(pending.kind, uuid.uuid4().hex)
    factory, factory_kwargs = flow_of(pending.kind, pools[zone.pool_id])
    engines.save_factory_details(flow_detail, factory, [], factory_kwargs)
    inputs: dict[str, Any] = {"zone_id": zone.id, "serial": pending.serial}
    if pending.if_pool_grows is not None:
        # Read by the status writer (zoneflow.flows.status), as central decided it;
        # the follow-up goes at this job's priority.
        inputs["if_pool_grows"] = str(pending.if_pool_grows)
        inputs["priority"] = int(pending.priority)
    flow_detail.add(_inputs(inputs))
    book.add(flow_detail)
    return book


def _target_job_book(pending: objects.PendingJob, job_id: str, flow_of: FlowOf) -> models.LogBook:
    """The logbook of a job about a pool target (retire-target).

    The flow reads the target when it runs, so a target gone by then is
    simply nothing to do: the job is posted all the same.
    """
    target_id = str(pending.target_id)
    target = stored_targets.find_target(target_id)
    label = target.label if target is not None else target_id
    book = models.LogBook(steps.target_logbook(pending.kind, label), uuid=job_id)
    book.meta = {
        "kind": pending.kind,
        "target_id": target_id,
        "target": label,
        "priority": int(pending.priority),
    }
    flow_detail = models.FlowDetail(pending.kind, uuid.uuid4().hex)
    factory, factory_kwargs = flow_of(pending.kind, None)
    engines.save_factory_details(flow_detail, factory, [], factory_kwargs)
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
    # Imported here: taskflow.storage brings networkx, 0.16 s of CPU that a process
    # only reading or writing job rows (the producer, the CLI's reads) need not pay.
    from taskflow import storage as tf_storage

    inputs = models.TaskDetail(tf_storage.Storage.injector_name, uuid.uuid4().hex)
    inputs.state = states.SUCCESS
    inputs.results = dict(store)
    return inputs


# Job ids made from outbox rows (see post).
_JOB_IDS = uuid.UUID("5b0c3d4e-2f61-4c8e-9a57-7e1f0c9d2a43")


def job_id_of(pending: objects.PendingJob) -> str | None:
    """The id of the job one outbox row is posted as alone (see post); None for a row
    not read from the outbox."""
    return None if pending.created_at is None else _job_id(pending)


def _job_id(pending: objects.PendingJob) -> str:
    if pending.created_at is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(_JOB_IDS, repr(_row(pending))))


def _row(pending: objects.PendingJob) -> tuple[Any, ...]:
    """What names an outbox row for good: its id alone could come back (SQLite
    reuses the ids of deleted rows).

    Not its serial: an update riding on the row raises it (storage.outbox), and a
    row posted again after a failed post must find the logbook written the first
    time. With the serial in the id, the chaos test found that logbook left
    PENDING for good beside a second job. The logbook keeps the serial the job
    was first posted at; its begin reads the zone's latest serial anyway.
    """
    assert pending.created_at is not None
    return (
        pending.id,
        pending.created_at.isoformat(),
        pending.kind,
        pending.zone_id,
        pending.target_id,
    )


def _find_logbook(persistence: Any, job_id: str) -> models.LogBook | None:
    with contextlib.closing(persistence.get_connection()) as connection:
        try:
            book: models.LogBook = connection.get_logbook(job_id)
        except tf_exc.NotFound:
            return None
    return book


def _reached_board(board: Any, book: models.LogBook) -> bool:
    """Whether an earlier post of this job got to the board (it ran, or waits there)."""
    job = info(book, with_atoms=False)
    return job.state != states.PENDING or job.attempts > 0 or bool(find_posted(board, job.id))
