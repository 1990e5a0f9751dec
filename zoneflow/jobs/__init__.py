"""Jobs: posting them, their records, and the attempts conductors make at them.

Below central (which reads and cancels jobs) and the conductor (which runs
them); above the TaskFlow adapter, whose board and persistence hold them.

- records.py: a job's state and atoms, read from its TaskFlow logbook;
  listing, finding and purging jobs;
- posting.py: writing a job's logbook and putting it on the board;
- attempts.py: the runs conductors count in a job's logbook, and the ends
  zoneflow gives a job itself;
- runs.py: one run of a job and how it ended (failed, lost with its conductor);
- board.py: jobs a board lost taken back, and cancelling a job;
- steps.py: the names of a job's logbook and of its flow's steps, built
  from typed parts, and the flow's steps read back from a logbook;
- outcomes.py: what a task returns about a target or a nameserver.

The names below are the package's front door; callers need not know the
module each lives in.
"""

from zoneflow.jobs.attempts import Attempt, Bound, Limits, begin_attempt, end_attempt, fail
from zoneflow.jobs.board import cancel, take_back_unfinished
from zoneflow.jobs.posting import FlowOf, group_changes, job_id_of, post, post_batch
from zoneflow.jobs.records import (
    FAILED_STATES,
    OVER,
    SHORTEST_ID_PREFIX,
    STATUS_ATOM,
    TASKFLOW_INTERNAL,
    AtomInfo,
    JobFilter,
    JobInfo,
    JobZone,
    Outcome,
    find_job,
    find_jobs,
    get_job,
    list_jobs,
    purge,
    resolve_id,
)
from zoneflow.jobs.runs import Run, RunEnd

__all__ = [
    "FAILED_STATES",
    "OVER",
    "Outcome",
    "SHORTEST_ID_PREFIX",
    "STATUS_ATOM",
    "TASKFLOW_INTERNAL",
    "Attempt",
    "AtomInfo",
    "Bound",
    "Limits",
    "Run",
    "RunEnd",
    "FlowOf",
    "JobFilter",
    "JobInfo",
    "JobZone",
    "begin_attempt",
    "cancel",
    "end_attempt",
    "fail",
    "find_job",
    "find_jobs",
    "get_job",
    "list_jobs",
    "group_changes",
    "job_id_of",
    "post",
    "post_batch",
    "purge",
    "resolve_id",
    "take_back_unfinished",
]
