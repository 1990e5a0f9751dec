"""Every place zoneflow departs from stock TaskFlow, in one package.

zoneflow runs jobs on TaskFlow (jobboard, conductor, parallel engine,
SQLAlchemy persistence). Where stock TaskFlow cost too much or lost a job,
zoneflow replaces a piece of it; each such piece lives here, below the
packages that use it (jobs/, flows/, conductor/), so an upgrade of TaskFlow
is checked in one place. Figures are from doc/benchmarks.md and
doc/operations.md ("Persistence cost", "What else a job no longer pays for").

Departures, each with why and what it measured:

- **persistence** (persistence.py, writer.py): a connection that writes each
  atom or flow change once, queued and written in batches by one writer
  thread behind the engine, skipping progress-only changes, and reading a
  logbook in three statements; one connection shared by the process. Stock
  TaskFlow read an atom's row before each write, rewrote every atom of a
  flow on each flow change (about 110 statements for a 9-task job) and built
  a Connection, with its table metadata, for every storage call. One 9-task
  job: 254 ms p50 on SQLite and 230 ms on PostgreSQL with the stock backend,
  9 and 11 ms with this one (bench/persistence.py). Built on TaskFlow's
  public Connection interface; the rare calls go to the stock connection.
- **fencing** (fencing.py): each run of a job's flow is given, in its store,
  the claim it runs under (the ZooKeeper session and this process's fence),
  which its tasks check before they act; the persistence drops the writes of a job
  whose session is lost, so a paused conductor's late writes cannot cover
  the new owner's run. Stock TaskFlow has no fence.
- **the jobboard** (jobboard.py): the conductor owns its KazooClient and
  passes it to TaskFlow's board (``client=``), for its lock watch and its
  fence, and stops it itself (tests/functional/test_conductor_session.py).
  :class:`~zoneflow.taskflow_adapter.jobboard.ClaimableJobs` gives the
  conductor's loop only the jobs whose lock its watch has not seen,
  where TaskFlow's loop read every job's state (two ZooKeeper reads a job)
  each time it looked; a claim whose answer was lost while ZooKeeper
  restarted is counted as made. close() does not wait a second for the
  board's idle notifier thread: it wakes it with one item on futurist's
  private queue (a canary test watches that name too).
- **the conductor's dispatch** (conductor.py): TaskFlow's non-blocking
  conductor with its ``_dispatch_job`` re-done: the loop wakes when a job is
  posted or a slot frees up instead of sleeping ``wait_timeout`` (a job
  posted during a 30 s idle wait is claimed at once,
  tests/unit/test_conductor_wakeup.py;
  pickup 5 ms p50 with one conductor, bench/orchestration.py), a run's end is told
  apart (done, suspended, retry, broken, fenced) so zoneflow.conductor can
  bound the attempts, and consuming or abandoning a job is retried while
  ZooKeeper restarts (the chaos test found a finished job stuck otherwise).
- **the engine** (engine.py): the ``zoneflow-parallel`` engine, TaskFlow's
  parallel engine sharing one compilation between the engines of one flow
  (TaskFlow compiled each flow anew for every job, 1-3 ms of graph building).
- **resumption** (resumption.py, called from the engine's prepare): before a
  flow runs, an atom its logbook shows RUNNING, SUCCESS or FAILURE while an
  atom it depends on has not succeeded (or undoing while one still runs) is
  reset to PENDING with every atom after it, so they run again in order.
  TaskFlow trusts the persisted states and re-runs or reverts such an atom
  at once, without its inputs: the chaos test saw update-status fail with
  NotFound for its PollForSerial's result, and the job end FAILURE unreverted
  (tests/integration/test_resume_order.py). Every task is idempotent.
- **indexes and pages** (indexes.py, pages.py): TaskFlow's logbook tables
  index only each row's uuid, so reading one job scanned every retained
  job's flows and atoms (200 ms at 195k rows on PostgreSQL); zoneflow adds
  indexes (a job's flow and atoms by parent, logbooks by creation time, name
  and zone) when ``zoneflow db sync`` runs, after TaskFlow made its tables.
  A list of jobs is one page picked by the database (filters, a project's
  zones, keyset order), and only that page's logbooks are read: the list
  used to read every logbook, and never answered at 10,000 jobs
  (bench/jobs_scale.py).

- **a lazy migration module** (lazy_migration.py, run when this package is
  imported): TaskFlow's SQLAlchemy backend imports alembic, mako and
  pygments for its migrations at its top, 130-160 ms of CPU in every
  conductor, API, producer and CLI change command; the module is loaded
  when ``zoneflow db sync`` first uses it
  (tests/unit/test_taskflow_canaries.py checks both halves).

Private TaskFlow names used here, each watched by one canary test in
tests/unit/test_taskflow_canaries.py whose failure says which module to
update: the non-blocking conductor's ``_dispatch_job``, ``_on_job_done``,
``_try_finish_job``, ``_engine_from_job``, ``_listeners_from_job``,
``_dispatched``, ``_jobboard``, ``_wait_timeout``, ``_persistence``,
``_notifier`` and ``_name``; ``Timeout._event``; the ZooKeeper board's
``_fetch_jobs`` and ``_worker``; the action engine's ``_compiler``.

setup.cfg pins ``taskflow < 7``. To lift the pin, install the new TaskFlow
and run those canaries first (``pytest tests/unit/test_taskflow_canaries.py``),
then tests/unit/test_persistence.py, test_job_attempts.py,
test_conductor_wakeup.py and the functional resumption, fencing and spine
tests.
"""

from zoneflow.taskflow_adapter import lazy_migration

# Before any module of this package imports TaskFlow's SQLAlchemy backend.
lazy_migration.defer()
