"""Jobs that keep failing end as FAILURE after max_job_attempts; jobs whose conductors
die under them do not, unless they take their conductor down at the same step every
time; operators can cancel jobs.

A real conductor over the zake jobboard runs the jobs. A job is "poisoned" by
making one of its tasks raise StorageFailure, one of the errors for which
TaskFlow's conductor hands a job back to the board instead of consuming it;
unbounded, the job would be claimed again forever. A conductor "dies" at a
step (see Deaths) the way an out-of-memory kill takes it: its ZooKeeper
session ends, so its claim vanishes and the job goes back to the board, and
it does nothing more.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from oslo_config import cfg
from taskflow import exceptions as tf_exc
from taskflow.persistence import backends as tf_backends
from taskflow.persistence import models as tf_models

from tests import support
from tests.integration.conftest import fake_pool_yaml
from tests.support import eventually, holds
from zoneflow import cli, exceptions, jobs, objects
from zoneflow.central import changes as central_changes
from zoneflow.central import pools
from zoneflow.central import zones as central_zones
from zoneflow.conductor import daemon
from zoneflow.engine.relay import OutboxRelay
from zoneflow.flows.consensus import ConsensusCheck
from zoneflow.flows.on_target import ZoneActionOnTarget
from zoneflow.flows.status import UpdateStatus
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import persistence

ZONE = "example.com"


class Counter:
    """Counts calls of a wrapped function, thread-safely."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.calls += 1
        return self.func(*args, **kwargs)


class Conductors:
    """Starts in-process conductors, counting their claims; stops them after the test."""

    def __init__(self) -> None:
        self.running: list[daemon.Conductor] = []
        self.claims = Counter(lambda *_: None)
        self.failed: list[str] = []

    def start(self, name: str = "unit-conductor") -> daemon.Conductor:
        conductor = daemon.Conductor(name)
        conductor.board.claim = self._count(conductor.board.claim)  # type: ignore[method-assign]
        conductor.notifier.register(
            "job_failed", lambda _event, details: self.failed.append(details["reason"])
        )
        assert conductor.relay is not None
        central_changes.on_change(conductor.relay.wake)
        conductor.start()
        self.running.append(conductor)
        return conductor

    def _count(self, claim: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            result = claim(*args, **kwargs)
            self.claims(*args)  # only claims that succeeded
            return result

        return counted

    def stop(self, conductor: daemon.Conductor) -> None:
        conductor.stop()
        self.running.remove(conductor)
        central_changes._listeners.remove(conductor.relay.wake)  # type: ignore[union-attr]

    def start_next(self, name: str, deaths: Deaths) -> None:
        """Start conductor ``name`` once the one before it has died."""
        self.start(name)
        if name in deaths.at:
            eventually(lambda: name in deaths.dead, 20, what=f"conductor {name} to die")


class Deaths:
    """Conductors that die at a step of a job, one conductor alive at a time.

    ``at`` maps a conductor's name to the step (a label of :func:`_dying_at`)
    whose task takes it down as an out-of-memory kill would: its ZooKeeper
    session ends (zake drops the claim's lock with it), it claims nothing
    more, and the task never returns while the test runs, so the conductor
    writes nothing more about the job. After the test the tasks return and
    their stopped conductors suspend what they held.
    """

    def __init__(self, conductors: Conductors) -> None:
        self.conductors = conductors
        self.at: dict[str, str] = {}
        self.dead: list[str] = []
        self.steps: list[tuple[str, str]] = []  # (conductor, step) of every task run
        self._release = threading.Event()

    def step(self, label: str) -> None:
        alive = [c for c in self.conductors.running if c.name not in self.dead]
        if len(alive) != 1:
            return
        (conductor,) = alive
        self.steps.append((conductor.name, label))
        if self.at.get(conductor.name) != label:
            return
        self.dead.append(conductor.name)
        # Its records are written before it dies: the step it dies at, RUNNING, is
        # where its run is found lost (a busy run found the one before it instead).
        persistence.get_backend().flush()
        assert conductor.relay is not None
        conductor.relay.stop()
        conductor._conductor.stop()
        conductor._client.close()
        self._release.wait()

    def release(self) -> None:
        self._release.set()


@pytest.fixture
def conductors() -> Iterator[Conductors]:
    started = Conductors()
    yield started
    for conductor in list(started.running):
        started.stop(conductor)
    central_changes._listeners.clear()


@pytest.fixture
def deaths(conductors: Conductors, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deaths]:
    """Conductors die where the test says (see Deaths), at the job's target step
    (``on-target``), its consensus check or its last step."""
    dying = Deaths(conductors)
    for task_class, label in (
        (ZoneActionOnTarget, "on-target"),
        (ConsensusCheck, "consensus-check"),
        (UpdateStatus, "update-status"),
    ):
        _dying_at(monkeypatch, dying, task_class, label)
    yield dying
    dying.release()


def _dying_at(
    monkeypatch: pytest.MonkeyPatch, deaths: Deaths, task_class: type, label: str
) -> None:
    original = task_class.execute

    # wraps: TaskFlow reads what a task requires from its execute's signature.
    @functools.wraps(original)
    def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        deaths.step(label)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(task_class, "execute", execute)


@pytest.fixture
def conf(request: pytest.FixtureRequest) -> Iterator[None]:
    """[conductor] options as the test's parameter gives them, the defaults after."""
    for name, value in request.param.items():
        cfg.CONF.set_override(name, value, group="conductor")
    yield
    for name in request.param:
        cfg.CONF.clear_override(name, group="conductor")


@pytest.fixture
def max_attempts() -> Iterator[int]:
    cfg.CONF.set_override("max_job_attempts", 2, group="conductor")
    yield 2
    cfg.CONF.clear_override("max_job_attempts", group="conductor")


def _load(*targets: dict[str, object]) -> objects.Pool:
    (pool,) = support.store_pools(pools.parse(fake_pool_yaml(*targets)))
    return pool


def _poison(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> list[str]:
    """Make every run of ZoneActionOnTarget raise ``exc``; return the list of runs."""
    runs: list[str] = []

    # The task's own arguments: the flow may be one built before this patch (see flows.zone).
    def execute(self: ZoneActionOnTarget, zone_id: str, serial: int, **_: Any) -> None:
        runs.append(zone_id)
        raise exc

    monkeypatch.setattr(ZoneActionOnTarget, "execute", execute)
    return runs


def _post_pending(board: Any) -> str:
    (job_id,) = OutboxRelay(board, persistence.get_backend()).flush()
    return job_id


def _job_until(
    job_id: str, done: Callable[[jobs.JobInfo], bool], timeout: float = 20
) -> jobs.JobInfo:

    def ended() -> jobs.JobInfo | None:
        job = jobs.get_job(persistence.get_backend(), job_id)
        return job if done(job) else None

    return eventually(
        ended, timeout, what=lambda: f"job {jobs.get_job(persistence.get_backend(), job_id)}"
    )


def _only_job(timeout: float = 10) -> jobs.JobInfo:
    """The one job there is, once the relay has posted it."""
    (job,) = eventually(
        lambda: jobs.list_jobs(persistence.get_backend()), timeout, what="a job to be posted"
    )
    return job


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _on_board(board: Any) -> list[str]:
    return [j.book_uuid for j in board.iterjobs(ensure_fresh=True)]


# --- bounded attempts -----------------------------------------------------------


def test_a_job_whose_run_keeps_raising_ends_failed_after_max_job_attempts(
    monkeypatch: pytest.MonkeyPatch,
    conductors: Conductors,
    board: Any,
    max_attempts: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _load({})
    runs = _poison(monkeypatch, tf_exc.StorageFailure("the database went away"))
    conductors.start()
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    job = _job_until(_only_job().id, lambda j: j.state == jobs.Outcome.FAILURE)

    holds(  # room for claims that must not happen
        lambda: len(runs) == max_attempts and conductors.claims.calls == max_attempts,
        1.0,
        what=f"{max_attempts} runs and claims, no more",
    )
    assert len(runs) == max_attempts
    assert conductors.claims.calls == max_attempts
    assert _on_board(board) == []
    assert (job.attempts, job.failed_attempts, job.lost_attempts) == (max_attempts, 2, 0)
    assert [(r.number, r.ended) for r in job.runs] == [(1, "failed"), (2, "failed")]
    assert job.error is not None
    assert f"job {job.id} given up after {max_attempts} failed attempts" in job.error
    assert "StorageFailure: the database went away" in job.error
    assert conductors.failed == [job.error]

    settled = stored_zones.get_zone_any(zone.id)
    assert settled is not None
    assert (settled.status, settled.error) == (objects.Status.ERROR, job.error)

    code, out, _ = _cli(capsys, "job", "list")
    assert code == 0
    assert job.id in out and "FAILURE" in out
    code, out, _ = _cli(capsys, "job", "show", job.id)
    assert code == 0
    assert f"attempts: {max_attempts}" in out and f"error: {job.error}" in out


def test_a_task_raising_an_unexpected_error_reverts_once_and_is_not_retried(
    monkeypatch: pytest.MonkeyPatch, conductors: Conductors, board: Any
) -> None:
    _load({})
    runs = _poison(monkeypatch, RuntimeError("unexpected"))
    conductors.start()
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    job = _job_until(_only_job().id, lambda j: j.state == "REVERTED" and not _on_board(board))

    assert (len(runs), conductors.claims.calls, job.attempts) == (1, 1, 1)
    assert conductors.failed == []
    settled = stored_zones.get_zone_any(zone.id)
    assert settled is not None
    assert (settled.status, settled.error) == (objects.Status.ERROR, "unexpected")


def _dead_conductors(job_id: str, count: int) -> None:
    """What claims by conductors that died before their run did anything leave behind."""
    limits = jobs.Limits(failed=99, lost=99, same_step=99)
    for n in range(count):
        jobs.begin_attempt(persistence.get_backend(), job_id, conductor=f"dead-{n}", limits=limits)


@pytest.mark.parametrize("conf", [{"max_lost_at_same_step": 2}], indirect=True)
def test_a_job_whose_conductors_died_at_the_same_step_is_given_up_without_running_again(
    monkeypatch: pytest.MonkeyPatch, conductors: Conductors, board: Any, conf: None
) -> None:
    _load({})
    runs = _poison(monkeypatch, RuntimeError("must not run"))
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    job_id = _post_pending(board)
    _dead_conductors(job_id, 2)

    conductors.start()
    job = _job_until(job_id, lambda j: j.state == jobs.Outcome.FAILURE)
    assert runs == []
    assert (job.attempts, job.failed_attempts, job.lost_attempts) == (2, 0, 2)
    assert job.error is not None
    assert (
        f"job {job_id} given up: 2 runs in a row lost their conductor before its first step"
        in job.error
    )
    assert "max_lost_at_same_step" in job.error
    assert "conductor dead-1 was lost (it died or lost its ZooKeeper session)" in job.error
    # The job's record is written FAILURE first, then its zone ERROR (a busy run read
    # the zone in between).
    settled = eventually(lambda: _left_pending(zone.id), 20, what="the zone to leave PENDING")
    assert (settled.status, settled.error) == (objects.Status.ERROR, job.error)


def _left_pending(zone_id: str) -> objects.Zone | None:
    zone = stored_zones.get_zone_any(zone_id)
    return zone if zone is not None and zone.status != objects.Status.PENDING else None


@pytest.mark.parametrize(
    "conf", [{"max_lost_attempts": 2, "max_lost_at_same_step": 10}], indirect=True
)
def test_a_job_lost_with_max_lost_attempts_conductors_is_given_up(
    monkeypatch: pytest.MonkeyPatch, conductors: Conductors, board: Any, conf: None
) -> None:
    _load({})
    runs = _poison(monkeypatch, RuntimeError("must not run"))
    central_zones.create_zone(ZONE, "hostmaster@example.com")
    job_id = _post_pending(board)
    _dead_conductors(job_id, 2)

    conductors.start()
    job = _job_until(job_id, lambda j: j.state == jobs.Outcome.FAILURE)
    assert runs == []
    assert job.error is not None
    assert f"job {job_id} given up after 2 runs lost with their conductor" in job.error
    assert "max_lost_attempts" in job.error


def test_a_job_whose_conductors_die_under_it_at_different_steps_succeeds(
    conductors: Conductors,
    deaths: Deaths,
    board: Any,
    max_attempts: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (pool,) = [_load({})]
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    # More deaths than max_job_attempts (2): each at a step after the one before.
    deaths.at = {"c1": "on-target", "c2": "consensus-check", "c3": "update-status"}
    for name in ("c1", "c2", "c3", "c4"):
        conductors.start_next(name, deaths)
    job = _job_until(_only_job().id, lambda j: j.state == "SUCCESS")

    assert deaths.dead == ["c1", "c2", "c3"]
    assert (job.attempts, job.failed_attempts, job.lost_attempts) == (4, 0, 3)
    (target,) = pool.targets
    assert [(r.conductor, r.ended, r.step) for r in job.runs] == [
        ("c1", "lost", f"at step create-zone-on-target-{target.id}"),
        ("c2", "lost", "at step consensus-check"),
        ("c3", "lost", "at step update-status"),
        ("c4", "finished", None),
    ]
    assert conductors.failed == []
    served = stored_zones.get_zone_any(zone.id)
    assert served is not None and served.status == objects.Status.ACTIVE

    code, out, _ = _cli(capsys, "job", "show", job.id)
    assert code == 0
    assert "attempts: 4 (0 failed, 3 lost with their conductor)" in out
    assert "c2         lost      at step consensus-check" in out


def test_a_job_that_kills_its_conductor_at_the_same_step_every_time_is_given_up(
    conductors: Conductors, deaths: Deaths, board: Any
) -> None:
    (pool,) = [_load({})]
    (target,) = pool.targets
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    # [conductor] max_lost_at_same_step is 3: the fourth conductor gives it up.
    deaths.at = {name: "on-target" for name in ("c1", "c2", "c3", "c4")}
    for name in ("c1", "c2", "c3"):
        conductors.start_next(name, deaths)
    # The engine's writer writes behind it: a conductor dying as the task begins can
    # leave its run recorded at the step before, and then c4's death at the target
    # step is the third in a row there, and the conductor after it gives the job up.
    conductors.start("c4")
    eventually(
        lambda: _only_job().state == jobs.Outcome.FAILURE or "c4" in deaths.dead,
        20,
        what="c4 to give the job up, or to die at the target step too",
    )
    if "c4" in deaths.dead:
        conductors.start("last")
    job = _job_until(_only_job().id, lambda j: j.state == jobs.Outcome.FAILURE)

    # The conductor that gave it up never ran it, and keeps running.
    died = [c for c, _ in deaths.steps]
    assert died in (["c1", "c2", "c3"], ["c1", "c2", "c3", "c4"])
    runs = len(died)
    assert (job.attempts, job.failed_attempts, job.lost_attempts) == (runs, 0, runs)
    step = f"at step create-zone-on-target-{target.id}"
    assert job.error == (
        f"job {job.id} given up: 3 runs in a row lost their conductor {step}, without "
        "progress in between: a job that takes its conductor down there every time "
        f"([conductor] max_lost_at_same_step); last error: conductor c{runs} was lost (it "
        f"died or lost its ZooKeeper session) while running attempt {runs}, {step}"
    )
    # The job's record says FAILURE first; the conductor's notice and the zone's
    # ERROR follow it (a clean run read them in between).
    eventually(
        lambda: conductors.failed == [job.error],
        10,
        what=lambda: f"the conductor's notice of the give-up: {conductors.failed}",
    )
    eventually(lambda: _on_board(board) == [], 10, what="the job to leave the board")
    failed = eventually(lambda: _left_pending(zone.id), 20, what="the zone to leave PENDING")
    assert (failed.status, failed.error) == (objects.Status.ERROR, job.error)


def test_a_run_suspended_by_a_stopping_conductor_is_not_counted(
    conductors: Conductors, board: Any
) -> None:
    _load({"delay": 1})
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    first = conductors.start("first")
    job_id = _job_until(_only_job().id, lambda j: j.state == "RUNNING").id
    conductors.stop(first)

    job = jobs.get_job(persistence.get_backend(), job_id)
    assert (job.state, job.attempts) == ("SUSPENDED", 0)
    assert _on_board(board) == [job_id]

    conductors.start("second")
    job = _job_until(job_id, lambda j: j.state == "SUCCESS")
    assert job.attempts == 1
    served = stored_zones.get_zone_any(zone.id)
    assert served is not None and served.status == objects.Status.ACTIVE


def _set_flow_factory(job_id: str, factory: str | None = None) -> str:
    """Name ``factory`` as the flow of job ``job_id`` in its logbook (None: leave it);
    the factory named before."""
    backend = persistence.get_backend()
    with contextlib.closing(backend.get_connection()) as connection:
        book = connection.get_logbook(job_id)
        (flow,) = book
        named = str(flow.meta["factory"]["name"])
        if factory is not None:
            flow.meta["factory"]["name"] = factory
            connection.save_logbook(book)
    return named


def test_a_job_whose_flow_a_conductor_lacks_is_left_on_the_board_for_one_that_has_it(
    conductors: Conductors, board: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """As while conductors are upgraded one by one: a job a newer zoneflow posted names a
    flow the older conductors' code does not have."""
    _load({})
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    job_id = _post_pending(board)
    factory = _set_flow_factory(job_id, "zoneflow.flows.zone.flow_of_a_newer_zoneflow")

    conductors.start("older")
    # It claims the job once and hands it back uncounted, then claims it no more: a
    # zone created after it is made ACTIVE by a job the same conductor claims.
    later = central_zones.create_zone("later.example.com", "hostmaster@example.com")
    eventually(
        lambda: stored_zones.get_zone_any(later.id).status == objects.Status.ACTIVE,  # type: ignore[union-attr]
        what="the later zone ACTIVE",
    )
    job = jobs.get_job(persistence.get_backend(), job_id)
    assert (job.state, job.attempts, job.failed_attempts, job.lost_attempts) == ("PENDING", 0, 0, 0)
    assert job_id in _on_board(board)
    assert board.find_owner(next(j for j in board.iterjobs() if j.book_uuid == job_id)) is None
    assert conductors.claims.calls == 2  # the job once, the later zone's job once
    assert stored_zones.get_zone_any(zone.id).status == objects.Status.PENDING  # type: ignore[union-attr]
    (said,) = [r.getMessage() for r in caplog.records if "is left on the board" in r.getMessage()]
    assert job_id in said and "upgrade this conductor" in said

    # A conductor whose code has the flow runs it.
    _set_flow_factory(job_id, factory)
    conductors.start("newer")
    assert _job_until(job_id, lambda j: j.state == "SUCCESS").attempts == 1
    assert stored_zones.get_zone_any(zone.id).status == objects.Status.ACTIVE  # type: ignore[union-attr]


def _zookeeper_restarting(board: Any, name: str, *, times: int, made: bool) -> Counter:
    """Make ``board.<name>(job, who)`` fail its first ``times`` calls as a ZooKeeper
    restart does: after making the change (``made``: only the answer was lost) or
    before. Returns the count of failed calls."""
    call = getattr(board, name)
    failed = Counter(lambda *_: None)

    def restarting(job: Any, who: str) -> None:
        if failed.calls < times:
            if made:
                call(job, who)
            failed(job)
            raise tf_exc.JobFailure(f"{name} failure: ConnectionLoss")
        call(job, who)

    setattr(board, name, restarting)
    return failed


def test_a_finished_job_whose_removal_fails_leaves_the_board_once_zookeeper_answers(
    conductors: Conductors, board: Any
) -> None:
    _load({})
    conductor = conductors.start()
    failed = _zookeeper_restarting(conductor.board, "consume", times=2, made=False)
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    job = _job_until(_only_job().id, lambda j: j.state == "SUCCESS")

    # Not left on the board under this conductor's lock for as long as it lives.
    eventually(lambda: _on_board(board) == [], 10, what="the job to leave the board")
    assert failed.calls == 2
    assert jobs.get_job(persistence.get_backend(), job.id).attempts == 1
    served = stored_zones.get_zone_any(zone.id)
    assert served is not None and served.status == objects.Status.ACTIVE


def test_a_job_whose_claim_was_made_but_unanswered_is_run_by_the_conductor_holding_it(
    conductors: Conductors, board: Any
) -> None:
    _load({})
    conductor = conductors.start()
    # ZooKeeper makes the first claim, and the answer is lost.
    lost = _zookeeper_restarting(conductor.board, "claim", times=1, made=True)
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")

    # Not left on the board under this conductor's lock, never run.
    job = _job_until(_only_job().id, lambda j: j.state == "SUCCESS")
    assert lost.calls == 1
    assert job.attempts == 1
    served = stored_zones.get_zone_any(zone.id)
    assert served is not None and served.status == objects.Status.ACTIVE


# --- job cancel ----------------------------------------------------------------


def test_cancel_takes_an_unclaimed_job_off_the_board_and_puts_its_zone_in_error(
    capsys: pytest.CaptureFixture[str], board: Any
) -> None:
    _load({})
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    job_id = _post_pending(board)

    code, out, err = _cli(capsys, "job", "cancel", job_id)
    assert (code, err) == (0, "")
    assert f"job {job_id} cancelled" in out
    assert _on_board(board) == []
    cancelled = stored_zones.get_zone_any(zone.id)
    assert cancelled is not None
    assert cancelled.status == objects.Status.ERROR
    assert cancelled.error is not None and "cancelled by operator" in cancelled.error
    assert job_id in cancelled.error
    job = jobs.get_job(persistence.get_backend(), job_id)
    assert job.state == jobs.Outcome.CANCELLED
    code, out, _ = _cli(capsys, "job", "list")
    assert "CANCELLED" in out


def test_cancel_of_a_job_lost_from_the_board_cancels_it_in_the_database(
    capsys: pytest.CaptureFixture[str], board: Any
) -> None:
    _load({})
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    job_id = _post_pending(board)
    (posted,) = board.iterjobs(ensure_fresh=True)
    board.claim(posted, "unit-test")
    board.consume(posted, "unit-test")

    code, _, err = _cli(capsys, "job", "cancel", job_id)
    assert (code, err) == (0, "")
    assert jobs.get_job(persistence.get_backend(), job_id).state == jobs.Outcome.CANCELLED
    stuck = stored_zones.get_zone_any(zone.id)
    assert stuck is not None and stuck.status == objects.Status.ERROR


def test_cancel_refuses_a_job_a_conductor_is_running_and_names_the_conductor(
    capsys: pytest.CaptureFixture[str], conductors: Conductors
) -> None:
    _load({"delay": 2})
    conductors.start("busy-conductor")
    central_zones.create_zone(ZONE, "hostmaster@example.com")
    job_id = _job_until(_only_job().id, lambda j: j.state == "RUNNING").id

    code, out, err = _cli(capsys, "job", "cancel", job_id)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert f"job {job_id} is claimed by conductor busy-conductor" in err
    assert _job_until(job_id, lambda j: j.state == "SUCCESS")


def test_a_cancelled_job_left_on_the_board_is_removed_unrun(
    monkeypatch: pytest.MonkeyPatch, conductors: Conductors, board: Any
) -> None:
    _load({})
    runs = _poison(monkeypatch, RuntimeError("must not run"))
    central_zones.create_zone(ZONE, "hostmaster@example.com")
    job_id = _post_pending(board)
    # A cancel whose last step, taking the job off the board, did not happen.
    jobs.attempts.end(
        persistence.get_backend(), job_id, jobs.Outcome.CANCELLED, "cancelled by operator"
    )

    conductors.start()
    eventually(lambda: _on_board(board) == [], 10, what="the job to leave the board")
    assert runs == []
    assert jobs.get_job(persistence.get_backend(), job_id).state == jobs.Outcome.CANCELLED


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("unknown", "job 0000 does not exist: 'zoneflow job list' shows the jobs there are"),
        ("finished", "has already finished (SUCCESS): there is nothing to cancel"),
    ],
)
def test_cancel_errors_are_one_line_with_exit_1(
    capsys: pytest.CaptureFixture[str], conductors: Conductors, setup: str, message: str
) -> None:
    job_id = "0000"
    if setup == "finished":
        _load({})
        conductors.start()
        central_zones.create_zone(ZONE, "hostmaster@example.com")
        job_id = _job_until(_only_job().id, lambda j: j.state == "SUCCESS").id
    code, out, err = _cli(capsys, "job", "cancel", job_id)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and err.startswith("zoneflow: error: ")
    assert message in err


def test_a_job_whose_attempt_cannot_be_counted_is_not_claimed_again_in_a_tight_loop(
    monkeypatch: pytest.MonkeyPatch, conductors: Conductors
) -> None:
    _load({})
    counting = Counter(lambda *_, **__: None)

    def database_down(*args: Any, **kwargs: Any) -> None:
        counting(*args, **kwargs)
        raise exceptions.DatabaseUnavailable("the database at test is unreachable")

    monkeypatch.setattr(jobs, "begin_attempt", database_down)
    conductors.start()
    central_zones.create_zone(ZONE, "hostmaster@example.com")
    _only_job()
    holds(lambda: counting.calls <= 4, 2.5, what="at most 4 claims in 2.5 s")

    # Handed back after a pause each time (bounded.HAND_BACK_PAUSE), not
    # claimed again at once: a thousand claims a second, before.
    assert 1 <= counting.calls <= 4, counting.calls
    assert conductors.claims.calls == counting.calls


def test_attempts_are_counted_on_taskflow_s_own_in_memory_backend() -> None:
    memory = tf_backends.fetch({"connection": "memory://"})
    book = tf_models.LogBook("a job", uuid="6f1a4bde-0000-4000-8000-000000000001")
    with contextlib.closing(memory.get_connection()) as connection:
        connection.save_logbook(book)

    limits = jobs.Limits(failed=3, lost=10, same_step=3)
    first = jobs.begin_attempt(memory, book.uuid, conductor="c1", limits=limits)
    second = jobs.begin_attempt(memory, book.uuid, conductor="c2", limits=limits)

    assert (first.number, second.number) == (1, 2)
    assert (second.lost, second.lost_in_a_row) == (1, 1)
    assert second.previous_error == (
        "conductor c1 was lost (it died or lost its ZooKeeper session) while running "
        "attempt 1, before its first step"
    )
    with contextlib.closing(memory.get_connection()) as connection:
        assert connection.get_logbook(book.uuid).meta["attempts"] == 2
