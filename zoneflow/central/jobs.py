"""The jobs a caller may see: zone jobs, scoped to the project owning their zone.

A job carries out one change of one zone; it belongs to the zone's project,
so a project sees the jobs of its own zones (deleted ones included: their
delete job is theirs too) and nothing else. A caller with no project scope
(an admin asking for all projects, or the CLI) sees every job. A job of
another project is "not found", exactly as a missing one.

Jobs are read from TaskFlow's logbooks (:mod:`zoneflow.jobs`); the
database picks each page (filters, the project's zones, the order), so a
page costs the same however many jobs are kept. The CLI, the operator's
tool, reads every project's jobs and cancels or purges them through the
functions at the end.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping

from zoneflow import exceptions, jobs, objects
from zoneflow.flows import job_graph as flow_graph
from zoneflow.flows import render
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import jobboard, persistence

JOB_FILTERS = ("zone_id", "zone_name", "state", "kind")
JOB_SORT_KEYS = ("created_at", "updated_at")


@dataclasses.dataclass(frozen=True)
class Job:
    """A job and the project of its zone (None: a zone made outside any project)."""

    info: jobs.JobInfo
    project_id: str | None


def find_jobs(
    criteria: Mapping[str, str],
    paging: objects.Paging,
    *,
    project_id: str | None = None,
) -> objects.Page[Job]:
    """One page of the jobs of ``project_id``'s zones (None: every job), filtered by
    exact ``zone_id``, ``zone_name``, ``state`` or ``kind``."""
    unknown = sorted(set(criteria) - set(JOB_FILTERS))
    if unknown:
        raise exceptions.BadRequest(
            f"invalid filter(s) {', '.join(unknown)}: jobs can be filtered by "
            f"{', '.join(JOB_FILTERS)}"
        )
    if paging.sort_key not in JOB_SORT_KEYS:
        raise exceptions.InvalidSortKey(
            f"sort key {paging.sort_key!r} is unknown: jobs sort by {', '.join(JOB_SORT_KEYS)}"
        )
    if paging.sort_dir not in (objects.ASC, objects.DESC):
        raise exceptions.InvalidSortDir(
            f"sort direction {paging.sort_dir!r} is unknown: give asc or desc"
        )
    wanted = dict(criteria)
    if "state" in wanted:
        wanted["state"] = wanted["state"].upper()
    if "zone_name" in wanted:
        name = wanted["zone_name"].lower()
        wanted["zone_name"] = name if name.endswith(".") else name + "."
    found = jobs.find_jobs(
        persistence.get_backend(), jobs.JobFilter(**wanted, project_id=project_id), paging
    )
    if project_id is not None:
        # A project's list holds only its own zones' jobs: nothing to look up.
        listed = tuple(Job(info, project_id) for info in found.items)
    else:
        projects = stored_zones.zone_projects([info.zone_id for info in found.items])
        listed = tuple(Job(info, projects.get(info.zone_id)) for info in found.items)
    return objects.Page(listed, found.total_count, found.more)


def get_job(job_id: str, *, project_id: str | None = None) -> Job:
    """A job with its atoms, if it belongs to ``project_id`` (None: any job)."""
    try:
        info = jobs.get_job(persistence.get_backend(), job_id)
    except exceptions.JobNotFound:
        raise _not_found(job_id) from None
    scoped = _scoped([info], project_id)
    if not scoped:
        raise _not_found(job_id)
    return scoped[0]


def job_graph(job_id: str, fmt: str = "svg", *, project_id: str | None = None) -> bytes:
    """The job's flow drawn by Graphviz (``svg`` or ``png``), atoms coloured by state."""
    get_job(job_id, project_id=project_id)
    dot = flow_graph.to_dot(persistence.get_backend(), job_id)
    return render.to_image(dot, fmt)


def _scoped(found: list[jobs.JobInfo], project_id: str | None) -> list[Job]:
    projects = stored_zones.zone_projects([info.zone_id for info in found])
    return [
        Job(info, projects.get(info.zone_id))
        for info in found
        if project_id is None or (info.zone_id in projects and projects[info.zone_id] == project_id)
    ]


def _not_found(job_id: str) -> exceptions.JobNotFound:
    return exceptions.JobNotFound(
        f"job {job_id} does not exist (in your project): GET /v2/jobs lists the jobs of your zones"
    )


# --- the operator's reads and actions (the CLI: every job, ids as given) -------


def list_jobs(*, limit: int | None = None, marker: str | None = None) -> list[jobs.JobInfo]:
    """Every job, newest first (``limit``: at most that many; ``marker``: after that job),
    read a page at a time."""
    return jobs.list_jobs(persistence.get_backend(), limit=limit, marker=marker)


def resolve_id(ref: str) -> str:
    """The id of the one job whose id is or starts with ``ref``."""
    return jobs.resolve_id(persistence.get_backend(), ref)


def job_info(job_id: str) -> jobs.JobInfo:
    """A job with its atoms, whichever project its zone is in."""
    return jobs.get_job(persistence.get_backend(), job_id)


def job_dot(job_id: str) -> str:
    """The job's flow in Graphviz's dot language, atoms coloured by state."""
    return flow_graph.to_dot(persistence.get_backend(), job_id)


def cancel(job_id: str, *, who: str, board_name: str) -> jobs.JobInfo:
    """Take a job no conductor is running off the board; its zone goes to ERROR.

    ``who`` is recorded as the canceller; ``board_name`` names the board's client."""
    backend = persistence.get_backend()
    board = jobboard.connect(backend, name=board_name)
    try:
        return jobs.cancel(board, backend, job_id, who=who)
    finally:
        jobboard.close(board)


def purge(*, older_than: int) -> int:
    """Delete the logbooks of jobs that ended over ``older_than`` seconds ago; how many."""
    return jobs.purge(persistence.get_backend(), older_than=datetime.timedelta(seconds=older_than))


def state_colours() -> dict[str, str]:
    """The fill of each atom state in a job's drawing, for a page that re-colours it live."""
    return dict(render.STATE_COLOURS)
