"""The jobboard: ZooKeeper through kazoo for real deployments, zake in one process.

With ``[jobboard] backend = zake`` the board lives in this process's memory
(all-in-one mode and unit tests); every board opened in the process shares
it. With ``zookeeper`` the board is TaskFlow's ZooKeeper jobboard, shared by
every conductor and API process of the deployment.

A conductor opens the board on a KazooClient of its own (:func:`client`),
passed to TaskFlow's board with ``client=``: the conductor's claim watch and
its fence need that session, which TaskFlow keeps private. A board given a
client does not stop it on close(): :func:`close` does, when given it.
"""

from __future__ import annotations

import logging
import posixpath
import threading
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any

from kazoo import exceptions as kazoo_exc
from kazoo.handlers import threading as kazoo_threading
from kazoo.recipe import watchers
from taskflow import exceptions as tf_exc
from taskflow.jobs import backends
from taskflow.jobs import base as tf_jobs
from taskflow.utils import kazoo_utils

from zoneflow import exceptions
from zoneflow.taskflow_adapter import options

if TYPE_CHECKING:
    from zake import fake_client, fake_storage

LOG = logging.getLogger(__name__)
CONF = options.CONF


_zake_lock = threading.Lock()
_zake_storage: fake_storage.FakeStorage | None = None


def _zake_client() -> fake_client.FakeClient:
    # Imported here: zake costs every process that imports this module 80 ms
    # (its version module loads pkg_resources), and only the in-process board
    # needs it.
    from zake import fake_client, fake_storage

    global _zake_storage
    with _zake_lock:
        if _zake_storage is None:
            _zake_storage = fake_storage.FakeStorage(kazoo_threading.SequentialThreadingHandler())
        return fake_client.FakeClient(storage=_zake_storage)


def reset_zake() -> None:
    """Start the in-process board afresh (tests)."""
    global _zake_storage
    with _zake_lock:
        _zake_storage = None


def describe() -> str:
    if CONF.jobboard.backend == "zake":
        return "the in-process zake jobboard"
    return f"ZooKeeper at {CONF.jobboard.hosts}"


def _conf() -> dict[str, Any]:
    conf: dict[str, Any] = {"board": "zookeeper", "path": CONF.jobboard.path}
    if CONF.jobboard.backend != "zake":
        conf["hosts"] = CONF.jobboard.hosts
        conf["timeout"] = CONF.jobboard.session_timeout
    return conf


def client() -> Any:
    """A ZooKeeper client, not yet started, for :func:`connect` (zake's in-process one
    with ``[jobboard] backend = zake``)."""
    if CONF.jobboard.backend == "zake":
        return _zake_client()
    # TaskFlow's own recipe, so the session is the one its board would have made.
    return kazoo_utils.make_client(_conf())


class _WakeUp:
    """An item for futurist's worker thread to run: nothing, so it looks again
    whether it must stop instead of waiting out its one-second poll."""

    def run(self) -> None:
        pass


_WAKE_UP = _WakeUp()


def close(board: Any, client: Any = None) -> None:
    """Close a board without waiting for its idle notifier thread, then stop
    ``client`` (the one it was connected with, if the caller made it).

    TaskFlow's close() shuts the board's notifier pool down and waits for
    its thread, which polls its queue once a second: a stopping conductor
    waited up to a second for a thread with nothing left to deliver, and so
    did every CLI change after posting its job (futurist joins the thread at
    exit too). The pool is told to stop without waiting, and its thread is
    woken by one empty item, after which it sees it must stop.
    """
    # Private: TaskFlow's close() offers no way not to wait for it.
    notifier = getattr(board, "_worker", None)
    if notifier is not None:
        notifier.shutdown(wait=False)
        notifier._work_queue.put(_WAKE_UP)
        board._worker = None
    board.close()
    if client is not None and CONF.jobboard.backend != "zake":
        kazoo_utils.finalize_client(client)


def connect(persistence: Any, *, name: str = "zoneflow", client: Any = None) -> Any:
    """Open and connect a jobboard; raise JobboardUnavailable with advice if it can't.

    ``client`` (see :func:`client`) stays the caller's to stop; without one
    the board makes its own and stops it when closed."""
    if client is None and CONF.jobboard.backend == "zake":
        client = _zake_client()
    board = backends.fetch(name, _conf(), client=client, persistence=persistence)
    try:
        board.connect(timeout=CONF.jobboard.connect_timeout)
    except (tf_exc.JobFailure, kazoo_exc.KazooException, OSError) as exc:
        board.close()
        raise exceptions.JobboardUnavailable(
            f"cannot reach {describe()} (the jobboard): {_cause(exc)}; start ZooKeeper or fix "
            "[jobboard] hosts in zoneflow.conf (ZooKeeper 3.5+ also needs "
            "4lw.commands.whitelist=* in zoo.cfg)"
        ) from exc
    return board


def changes_on(board: Any) -> set[str]:
    """The jobs of users' changes (not :data:`UPKEEP`) ``board`` holds, waiting or
    running (their uuids), from its own list: no read of ZooKeeper."""
    # Private, as in ClaimableJobs: the public iterjobs() reads every job's state.
    return {job.uuid for job in board._fetch_jobs() if job.priority not in UPKEEP}  # noqa: SLF001


def upkeep_on(board: Any) -> set[str]:
    """The upkeep jobs (:data:`UPKEEP`) ``board`` holds, waiting or running (their
    uuids), from its own list: no read of ZooKeeper."""
    return {job.uuid for job in board._fetch_jobs() if job.priority in UPKEEP}  # noqa: SLF001


def on_job_gone(board: Any, callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever ``board`` sees a job leave it (ended, or cancelled)."""
    board.notifier.register(tf_jobs.REMOVAL, lambda _event, **_details: callback())


class ClaimableJobs:
    """A jobboard as a conductor's loop sees it: only the jobs worth a claim.

    TaskFlow's conductor loop asks every job on the board for its state
    before it tries to claim it: two ZooKeeper reads per job each time it
    looks, for the jobs it runs itself and those other conductors hold as
    much as for a new one. With many jobs in flight that was most of
    ZooKeeper's work, and a new job waited for those reads before its claim.

    Here the loop is given, without a read, the jobs whose lock this view's
    watch has not seen (a claim is a ``<job>.lock`` node beside the job's)
    and that ``running`` (job uuids) does not name. The claim itself is the
    test: ZooKeeper refuses it atomically if the job was claimed or consumed
    meanwhile, which the loop expects. ``on_change`` is called whenever the
    board's nodes change, so the loop looks again when a lock goes (a job
    handed back, or its conductor's session ended). Every other call goes
    to the board itself. ``client`` is the one the board was connected with.

    The view lists a job of a higher priority first (a user's change before
    a backfill's upkeep), then the oldest (:func:`claim_order`). So that a
    board never empty of changes still gets its upkeep done, one claim in
    :attr:`OLDEST_EVERY` goes to the oldest job listed, whatever its
    priority: the view puts it first when the claims before it all passed
    over an older one. And so that a change never waits for a slot behind
    a backfill, the conductor runs at most ``upkeep_slots`` upkeep jobs
    (:data:`UPKEEP`) at once: while that many of those it claimed still
    run, the view lists no other. A job the conductor cannot run (:meth:`leave`)
    is never listed again.
    """

    #: One claim in this many goes to the oldest job on the board.
    OLDEST_EVERY = 5

    def __init__(
        self,
        board: Any,
        *,
        client: Any,
        running: Callable[[], Collection[str]],
        on_change: Callable[[], None],
        upkeep_slots: int | None = None,
    ) -> None:
        self._board = board
        self._running = running
        self._on_change = on_change
        self._upkeep_slots = upkeep_slots
        # The upkeep jobs this view claimed that may still run (job uuids).
        self._upkeep_running: set[str] = set()
        self._locked: frozenset[str] = frozenset()
        # Jobs whose claim may have been made, unanswered: tried again though locked.
        self._doubtful: set[str] = set()
        # Jobs this conductor cannot run (their flow is not in its code): left to others.
        self._left: set[str] = set()
        # Claims in a row that took a job while an older one waited, and the
        # oldest job the last look listed (its sequence number) until it is claimed.
        self._passed_over = 0
        self._oldest: int | None = None
        self._watch = watchers.ChildrenWatch(
            client,
            board.path,
            self._seen,
            allow_session_lost=True,
        )

    def _seen(self, children: list[str]) -> None:
        postfix = self._board.LOCK_POSTFIX
        self._locked = frozenset(c[: -len(postfix)] for c in children if c.endswith(postfix))
        self._on_change()

    def iterjobs(self, only_unclaimed: bool = False, ensure_fresh: bool = False) -> Iterator[Any]:
        running = set(self._running())
        self._upkeep_running &= running
        if ensure_fresh:
            # TaskFlow's periodic full look (every 30 s), reads and all: the
            # safety net for anything a watch missed.
            fresh = self._board.iterjobs(only_unclaimed=True, ensure_fresh=True)
            return self._within_slots(
                self._in_claim_order([job for job in fresh if job.uuid not in self._left])
            )
        locked = self._locked
        # The board's own list, as its iterator reads it.
        # Private: the public iterjobs() reads every job's state, the very reads this
        # view exists to skip, and TaskFlow has no public list without them.
        known = self._board._fetch_jobs()  # noqa: SLF001
        on_board = {job.uuid for job in known}
        self._doubtful &= on_board
        self._left &= on_board
        claimable = [
            job
            for job in known
            if job.uuid not in self._left
            and (
                job.uuid in self._doubtful
                or (posixpath.basename(job.path) not in locked and job.uuid not in running)
            )
        ]
        return self._within_slots(self._in_claim_order(claimable))

    def leave(self, job_uuid: str) -> None:
        """Claim this job no more: the conductor cannot run it (see Ended.FOREIGN)."""
        self._left.add(job_uuid)

    def _within_slots(self, jobs: list[Any]) -> Iterator[Any]:
        """``jobs``, but no upkeep job while the conductor runs its share of them (asked
        at each job: the loop claims one after another as it goes)."""
        for job in jobs:
            if (
                self._upkeep_slots is not None
                and job.priority in UPKEEP
                and len(self._upkeep_running) >= self._upkeep_slots
                and job.uuid not in self._doubtful
            ):
                continue
            yield job

    def _in_claim_order(self, jobs: list[Any]) -> list[Any]:
        """``jobs`` by priority then age, the oldest first if its turn has come."""
        ordered = sorted(jobs, key=claim_order)
        self._oldest = min((job.sequence for job in ordered), default=None)
        if ordered and self._passed_over >= self.OLDEST_EVERY - 1:
            oldest = next(job for job in ordered if job.sequence == self._oldest)
            ordered.remove(oldest)
            ordered.insert(0, oldest)
        return ordered

    def claim(self, job: Any, who: str) -> None:
        """Claim a job, counting as made a claim whose answer was lost but which
        ZooKeeper made (it was restarting).

        Otherwise the job would stay on the board under this conductor's lock,
        which outlives a ZooKeeper restart with its session, and nobody would
        run it: no conductor tries to claim a job it sees locked. When ZooKeeper
        cannot say who holds the job, the claim is tried again on the next look.
        """
        try:
            self._board.claim(job, who)
        except tf_exc.JobFailure:
            try:
                owner = self._board.find_owner(job)
            except tf_exc.JobFailure:
                self._doubtful.add(job.uuid)
                raise
            if owner != who or job.uuid in self._running():
                self._doubtful.discard(job.uuid)
                raise
            LOG.info("job %s: its claim was made, though ZooKeeper's answer was lost", job.uuid)
        self._doubtful.discard(job.uuid)
        self._claimed(job)

    def _claimed(self, job: Any) -> None:
        """Count an upkeep job claimed, and a claim that passed over the oldest job
        listed (see OLDEST_EVERY)."""
        if job.priority in UPKEEP:
            self._upkeep_running.add(job.uuid)
        if job.sequence == self._oldest:
            self._passed_over, self._oldest = 0, None
        elif self._oldest is not None:
            self._passed_over += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._board, name)


# TaskFlow's priorities, the first claimed first.
_PRIORITIES = (
    tf_jobs.JobPriority.VERY_HIGH,
    tf_jobs.JobPriority.HIGH,
    tf_jobs.JobPriority.NORMAL,
    tf_jobs.JobPriority.LOW,
    tf_jobs.JobPriority.VERY_LOW,
)
_RANK = {priority: rank for rank, priority in enumerate(_PRIORITIES)}

#: The priorities of upkeep: work nobody waits for (zoneflow.jobs.board posts it LOW).
UPKEEP = frozenset({tf_jobs.JobPriority.LOW, tf_jobs.JobPriority.VERY_LOW})


def claim_order(job: Any) -> tuple[int, int]:
    """Where a job goes in a conductor's claims: a higher priority first, then the oldest.

    TaskFlow's boards say they list jobs so, and sort them the other way:
    TaskFlow 6.5's ZookeeperJob.__lt__ puts a LOW job before a HIGH one. The
    view sorts them itself.
    """
    return _RANK[job.priority], job.sequence


def _cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc) or type(exc).__name__
