"""The outbox relay: posts the jobs central wrote beside its changes.

Central never talks to the jobboard; it writes each job to the outbox table
in the same transaction as the change. The relay takes outbox rows (with a
lease, so several relays never post one row twice while alive), posts them
and deletes them. If posting fails the row is released and tried again, so
a change is never left without its job.

A user's change goes first (objects.JobPriority): a claim takes the changes
waiting, oldest first, and a few upkeep rows (a backfill's, a recovery's),
and posts them in that order. Few, because a change committed while this
relay posts them waits for those posts (a relay posts one job after
another); every claim takes some, however many changes wait, so the upkeep
goes on whatever the load; and a relay whose claim came back full claims
again at once instead of waiting for its interval.

A user's create or update is not deleted once posted but marked posted: the
zone's updates ride on it until its job begins (zoneflow.storage.outbox).

A claim holding several zones' creates (updates, deletes, recoveries) puts
those of one pool and one project in one create-zones (update-zones,
delete-zones, recover-zones) job, up to ``[conductor] batch_zones`` zones
(``upkeep_batch_zones`` for upkeep: a backfill's, a recovery's; zoneflow.flows.batch),
which costs a conductor about what one zone's job does. Upkeep goes on the
board ``[conductor] max_upkeep_jobs`` jobs at a time: the next when one ends.
Claims fill under load because
a relay keeps at most ``[conductor] max_change_jobs`` jobs of changes on the
board: past that, changes wait in the outbox (a zone's later changes riding
on its first) until a job ends, and go in the fewest jobs. At low load a
claim holds one change, and its job one zone, posted at once.

``zoneflow api`` runs a relay too, woken by each change it commits, with a
limit of its own (``[api] relay_max_change_jobs``, 1): it posts a change at
once only while the board is that quiet, and never upkeep. Otherwise the
change waits for a conductor's relay, whose look every ``relay_interval``
takes all the changes waiting: under load the jobs fill, where the API's
relay, woken by every change, posted most of them alone.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from zoneflow import exceptions, flows, jobs, objects
from zoneflow.engine import options
from zoneflow.storage import outbox as stored_outbox
from zoneflow.taskflow_adapter import jobboard

LOG = logging.getLogger(__name__)
CONF = options.CONF
_CHANGE = objects.JobPriority.CHANGE

#: Seconds after which a job on the board no longer counts against ``[conductor]
#: max_change_jobs`` or ``max_upkeep_jobs``: twice a poll's timeout. A job that takes
#: longer waits for a nameserver that does not answer, or for nobody (its conductors
#: gone until their sessions end): neither may hold every change, or every other
#: pool's backfill, back.
STUCK = 60.0


class _Counted:
    """Jobs of one kind on the board, each with when this relay first saw it."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}

    def count(self, on_board: set[str]) -> int:
        """How many of ``on_board`` (job uuids) count: those on it for less than STUCK."""
        now = time.monotonic()
        self._since = {job: self._since.get(job, now) for job in on_board}
        return sum(1 for since in self._since.values() if now - since < STUCK)


class OutboxRelay:
    #: How many user changes, and how many upkeep jobs' rows, one claim takes at most.
    #: A post costs a few milliseconds (a logbook written, a ZooKeeper node made):
    #: ten upkeep posts keep a change that arrives meanwhile waiting for little.
    #: Upkeep rows go in recover-zones jobs of ``[conductor] upkeep_batch_zones``, released
    #: that many at a time (objects.JobPacing), so a claim takes ten jobs' worth.
    changes_per_claim = 100
    upkeep_per_claim = 10

    def __init__(
        self,
        board: Any,
        persistence: Any,
        *,
        interval: float = 0.2,
        max_change_jobs: int | None = None,
        upkeep: bool = True,
    ) -> None:
        """``max_change_jobs``: this relay's own limit of jobs of changes on the board
        (``[conductor] max_change_jobs`` when None); ``upkeep``: whether it posts
        upkeep rows too, or leaves them to other relays (the API's leaves them to the
        conductors')."""
        self.board = board
        self.persistence = persistence
        self.interval = interval
        self.max_change_jobs = max_change_jobs
        self.upkeep = upkeep
        # The last claim came back full: more rows wait, claim again without waiting.
        self._more = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Outbox rows this relay claimed and could neither post nor give back.
        self._held: list[objects.PendingJob] = []
        # The last flush left changes waiting for a job to end (max_change_jobs).
        self._full_board = False
        # The last flush could claim fewer upkeep rows than a claim takes (max_upkeep_jobs).
        self._upkeep_held = False
        # The jobs of changes, and of upkeep, on the board.
        self._changes = _Counted()
        self._upkeep_jobs = _Counted()
        jobboard.on_job_gone(board, self._job_gone)

    def flush(self) -> list[str]:
        """Post the jobs one claim takes, changes first; return the ids of the posted jobs."""
        self._more = False  # not set by a flush that fails: the retry waits its interval
        posted: list[str] = []
        pools: dict[str, objects.Pool] = {}  # read once per flush: jobs use the pool as it is now
        claimed, self._held = self._held, []
        room = self._room()
        limit = min(self.changes_per_claim, room * CONF.conductor.batch_zones)
        upkeep = self._upkeep_rows()
        # Fewer than a claim's share because the board is full of upkeep: the next
        # upkeep job goes when one leaves it (_job_gone).
        self._upkeep_held = self.upkeep and upkeep < self._claim_share()
        if not (limit or upkeep or claimed):
            return posted  # nothing this relay may post now: no claim at all
        try:
            fresh = stored_outbox.claim_pending_jobs(limit=limit, upkeep_limit=upkeep)
        except Exception:
            self._held = claimed
            raise
        # Rows held from a failed flush are older: with the fresh ones, changes first.
        claimed = sorted(claimed + fresh, key=lambda pending: (pending.priority, pending.id))
        try:
            batches = self._within(
                room,
                jobs.group_changes(
                    claimed, CONF.conductor.batch_zones, CONF.conductor.upkeep_batch_zones
                ),
            )
        except Exception:
            self._give_back(claimed)
            raise
        for index, batch in enumerate(batches):
            try:
                posted.extend(self._post(batch, pools))
            except Exception:
                self._give_back([pending for rest in batches[index:] for pending in rest])
                raise
        # Upkeep held back by the board waits for a job to end, not for another claim.
        self._more = self._full(fresh, 0 if self._upkeep_held else upkeep)
        return posted

    def _post(self, batch: list[objects.PendingJob], pools: dict[str, objects.Pool]) -> list[str]:
        """Post one job for ``batch`` (one row, or the rows of a batch) and
        remove its rows, or keep them posted (see the module's docstring).

        A job's id is written on its rows before its job is (assign_batch), a
        single row's too: if this post fails, or this relay dies, whichever relay
        claims them next posts that same job, with every row of a batch, and a
        row posted alone is never put in a batch (whose job would carry it beside
        its own, left waiting for good: the chaos test found both)."""
        try:
            alone = jobs.job_id_of(batch[0])
            if len(batch) == 1 and batch[0].batch in (None, alone):
                if batch[0].batch is None and alone is not None:
                    # Marked too: given back, it is posted alone again, never batched.
                    stored_outbox.assign_batch(batch, alone)
                job_id = jobs.post(
                    self.board, self.persistence, batch[0], flow_of=flows.job_flow, pools=pools
                )
            else:
                job_id = batch[0].batch or stored_outbox.assign_batch(batch)
                # All the batch's rows, those another relay holds too: the job is
                # written once, whole, whichever relay writes it.
                batch = stored_outbox.batch_rows(job_id) or batch
                job_id = jobs.post_batch(
                    self.board,
                    self.persistence,
                    job_id,
                    batch,
                    flow_of=flows.job_flow,
                    pools=pools,
                )
        except exceptions.ZoneNotFound:
            LOG.info("dropping %s job of a zone that is gone", batch[0].kind)
            stored_outbox.remove_pending_jobs([pending.id for pending in batch])
            return []
        stored_outbox.posted(batch)
        return [job_id]

    def _room(self) -> int:
        """How many jobs of changes this flush may post (max_change_jobs)."""
        limit = (
            CONF.conductor.max_change_jobs if self.max_change_jobs is None else self.max_change_jobs
        )
        if not limit:
            return self.changes_per_claim
        room = max(0, limit - self._changes.count(jobboard.changes_on(self.board)))
        self._full_board = room == 0
        return room

    def _within(
        self, room: int, batches: list[list[objects.PendingJob]]
    ) -> list[list[objects.PendingJob]]:
        """``batches`` but the jobs of changes past ``room``, whose rows go back: they
        wait for a job to end, with the changes that come meanwhile."""
        changes = [i for i, batch in enumerate(batches) if batch[0].priority == _CHANGE]
        over = set(changes[room:])
        if not over:
            return batches
        self._full_board = True
        self._give_back([pending for i in sorted(over) for pending in batches[i]])
        return [batch for i, batch in enumerate(batches) if i not in over]

    def _job_gone(self) -> None:
        """A job left the board: room for the changes the last flush left waiting, or
        for the next upkeep job (max_upkeep_jobs)."""
        if self._full_board or self._upkeep_held:
            self.wake()

    def _full(self, claimed: list[objects.PendingJob], upkeep_rows: int) -> bool:
        changes = sum(1 for p in claimed if p.priority == _CHANGE)
        upkeep = len(claimed) - changes
        return changes >= self.changes_per_claim or (upkeep_rows > 0 and upkeep >= upkeep_rows)

    def _upkeep_rows(self) -> int:
        """How many upkeep rows this flush may claim: a claim's share, no more jobs'
        worth than the board has room for (``[conductor] max_upkeep_jobs``)."""
        if not self.upkeep:
            return 0
        jobs = self.upkeep_per_claim
        if limit := CONF.conductor.max_upkeep_jobs:
            on_board = self._upkeep_jobs.count(jobboard.upkeep_on(self.board))
            jobs = min(jobs, max(0, limit - on_board))
        return jobs * CONF.conductor.upkeep_batch_zones

    def _claim_share(self) -> int:
        """The upkeep rows one claim takes when the board has room: ``upkeep_per_claim``
        jobs' worth."""
        return self.upkeep_per_claim * CONF.conductor.upkeep_batch_zones

    def _give_back(self, unposted: list[objects.PendingJob]) -> None:
        """Release rows this flush will not post (it failed, or they wait for room on
        the board), so that any relay takes them as soon as it may.

        After a failed post every one, not only the one that failed: the rest
        would otherwise wait out their lease. If the database is gone too, this
        relay keeps them (the lease is its own) and posts them first next time.
        """
        try:
            stored_outbox.release_pending_jobs([pending.id for pending in unposted])
        except exceptions.DatabaseUnavailable:
            self._held.extend(unposted)

    def wake(self) -> None:
        """Ask the relay thread to flush now (central calls this after a change)."""
        self._wake.set()

    def start(self) -> None:
        """Run the relay in a thread of its own, unless it was stopped already (a
        daemon told to stop while it started)."""
        if self._stop.is_set():
            return
        thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        thread.start()
        # Set once started: a stop() meanwhile had nothing to join, and the thread
        # ends at its first look at the stop event.
        self._thread = thread

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._more:
                self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except exceptions.ZoneflowError as exc:
                LOG.warning("could not post pending jobs, will retry: %s", exc)
            except Exception:
                LOG.exception("could not post pending jobs, will retry")
