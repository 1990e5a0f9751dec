"""A chaos run: zone jobs flowing while conductors are killed and servers restarted.

Shared by the CI-sized test (tests/functional/test_chaos.py) and the larger
benchmark (bench/chaos.py). Real PostgreSQL, real ZooKeeper, real BIND9
targets, and ``zoneflow conductor`` processes that a chaos thread SIGKILLs at
random moments and starts again; in the middle it also restarts ZooKeeper
once and PostgreSQL once.

The workload is a script per zone, drawn from the seed: create the zone,
change its recordsets a few times (each change an update-zone job whose
serial builds on the one before), and for some zones delete it at the end.
Worker threads play the users, calling central and posting each job at once
as the CLI does (conductors' relays post whatever that misses), or only a
share of them (``Plan.users_post``): the relays post the rest, several
zones' creates, updates or deletes to a job (create-zones, update-zones,
delete-zones), which the checks read zone by zone. The scripts
run without waiting for jobs to finish, so a zone's jobs overlap and may run
in any order on any conductor. The users pause while PostgreSQL restarts
(see Gate): the restart is there for the conductors and mdns.

Everything random comes from one seed, printed first: the same seed gives
the same scripts and the same chaos schedule (the threads' timing differs
from run to run, so a failure may need a few runs to come back).

When the workload is done and no conductor is down any more, the run waits
(bounded) for the outbox, the board and every zone's PENDING status to
empty, and then checks what the servers really hold:

- every job posted ended (``zoneflow job list``) in SUCCESS, or SUPERSEDED
  by a newer change of its zone: none lost, none stuck, none given up;
- every surviving zone is ACTIVE in the database at its last serial, with
  the recordsets its script left, and each BIND9 answers that serial and
  those records;
- every deleted zone is gone from storage and refused by each BIND9.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import math
import pathlib
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import dns.exception
import dns.rcode

from tests import support
from tests.functional.deployment import Deployment, answer, soa_serial
from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.fixtures.postgres import PostgresServer
from tests.functional.fixtures.zookeeper import ZooKeeperServer
from tests.support import eventually

LOG = logging.getLogger("zoneflow.chaos")

DOMAIN = "chaos.example."
EMAIL = "hostmaster@chaos.example"
# Jobs end in these states; a correct run ends every one in SUCCESS, or
# SUPERSEDED when a newer change of its zone overtook it.
ENDED = {"SUCCESS", "SUPERSEDED", "REVERTED", "FAILURE", "REVERT_FAILURE", "CANCELLED", "LOST"}
CORRECT = {"SUCCESS", "SUPERSEDED"}
# The jobs an update rides on while they have not begun (storage/outbox.py).
_RIDDEN = ("create-zone", "update-zone")


@dataclasses.dataclass(frozen=True)
class Plan:
    """How big and how rough one run is."""

    seed: int
    zones: int
    conductors: int = 2
    workers: int = 6
    # Recordset changes per zone (each one update-zone job), drawn in this range.
    changes: tuple[int, int] = (2, 4)
    # Share of zones whose script ends by deleting the zone.
    delete_share: float = 0.3
    # Seconds a user waits between two changes of one zone, drawn in this range.
    gap: tuple[float, float] = (0.0, 2.0)
    # Seconds between two conductor kills, and before a killed one is started again.
    kill_every: tuple[float, float] = (2.0, 5.0)
    restart_after: tuple[float, float] = (0.0, 2.0)
    restart_zookeeper: bool = True
    restart_postgres: bool = True
    # [conductor] batch_zones: most zones one update job carries (None: the default).
    batch_zones: int | None = None
    # Share of changes the users post at once, as the CLI does; the conductors' relays
    # post the others, every relay_interval seconds (None: the default), several
    # zones' updates to a job, as under load.
    users_post: float = 1.0
    relay_interval: float | None = None
    # Bound on the wait for everything to settle once the chaos has stopped.
    settle_timeout: float = 90.0


@dataclasses.dataclass(frozen=True)
class Job:
    """A job the workload caused: a change's kind, zone and serial."""

    kind: str
    zone: str
    zone_id: str
    serial: int
    # When the change was made (UTC, naive, as the job list shows when a job was posted).
    made: datetime.datetime


@dataclasses.dataclass
class ZoneScript:
    """One zone's changes, and what the zone should hold once they are all done."""

    name: str
    ops: list[tuple[str, ...]]
    records: dict[tuple[str, str], set[str]] = dataclasses.field(default_factory=dict)
    removed: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    deleted: bool = False
    zone_id: str | None = None
    serial: int | None = None


@dataclasses.dataclass
class Outcome:
    """What a run did and what it found wrong (``failures`` empty: all correct)."""

    seed: int
    jobs: int = 0
    jobs_listed: int = 0
    duplicate_posts: int = 0
    # Updates with no job of their own: they rode on their zone's job not begun yet.
    coalesced: int = 0
    # Jobs carrying several zones (create-zones, ...), and the zones they carried.
    batches: int = 0
    batched_zones: int = 0
    # Kind of batch -> how many there were.
    batches_of: dict[str, int] = dataclasses.field(default_factory=dict)
    resumed: int = 0
    # Runs lost with their conductor, in all, and the most any one job had.
    lost_runs: int = 0
    most_lost: int = 0
    kills: int = 0
    zookeeper_restarts: int = 0
    postgres_restarts: int = 0
    # Conductors started just as ZooKeeper stopped: they exit saying they cannot reach
    # it (as `zoneflow producer` does), and are started again, as a supervisor would.
    refused_starts: int = 0
    zones_live: int = 0
    zones_deleted: int = 0
    workload_seconds: float = 0.0
    settle_seconds: float = 0.0
    failures: list[str] = dataclasses.field(default_factory=list)
    timeline: list[str] = dataclasses.field(default_factory=list)

    @property
    def jobs_per_second(self) -> float:
        total = self.workload_seconds + self.settle_seconds
        return self.jobs / total if total else 0.0

    def summary(self) -> str:
        return (
            f"chaos seed {self.seed}: {self.jobs} jobs ({self.jobs_listed} listed, "
            f"{self.duplicate_posts} posted twice, {self.coalesced} updates rode on another's "
            f"job, {self.batches} carried {self.batched_zones} zones' changes together: "
            f"{self.batches_of}), "
            f"{self.resumed} resumed after a lost run, "
            f"{self.lost_runs} runs lost with their conductor (at most {self.most_lost} "
            "for one job), "
            f"{self.kills} conductor kills, {self.zookeeper_restarts} ZooKeeper and "
            f"{self.postgres_restarts} PostgreSQL restarts ({self.refused_starts} conductor "
            "starts refused while ZooKeeper restarted); "
            f"{self.zones_live} zones live, "
            f"{self.zones_deleted} deleted; workload {self.workload_seconds:.1f}s, settled "
            f"{self.settle_seconds:.1f}s later ({self.jobs_per_second:.1f} jobs/s); "
            f"{len(self.failures)} failures"
        )

    def report(self) -> str:
        lines = [self.summary()]
        if self.failures:
            lines += ["failures:", *(f"  {f}" for f in self.failures[:50])]
            if len(self.failures) > 50:
                lines.append(f"  ... and {len(self.failures) - 50} more")
        lines += ["timeline:", *(f"  {t}" for t in self.timeline)]
        return "\n".join(lines)


# A ZooKeeper session this short frees a killed conductor's jobs in about 2 s.
SESSION_TIMEOUT = 2
# A conductor dies every few seconds here, far more often than in any deployment,
# and each death takes every job it was running with it: the run uses the
# defaults of [conductor] max_job_attempts and max_lost_attempts, so a job caught
# by several deaths must still end right (runs lost with their conductor are
# bounded apart from failed ones). Not max_lost_at_same_step's: a healthy job
# waiting at its last step (the database stopped, a loaded machine) while three
# conductors in a row are killed on this timer is chance here, where anywhere
# else three deaths in a row at one step are a poison job (a busy run, load 8,
# gave two healthy jobs up so). The poison job has a test of its own
# (test_job_attempts).
CONDUCTOR_CONF = {"max_lost_at_same_step": 10}


def deployment(
    workdir: pathlib.Path, *, database: str, zookeeper_hosts: str, plan: Plan
) -> Deployment:
    """The deployment a chaos run uses: no pool loaded, nothing started yet."""
    conductor: dict[str, Any] = dict(CONDUCTOR_CONF)
    if plan.batch_zones is not None:
        conductor["batch_zones"] = plan.batch_zones
    if plan.relay_interval is not None:
        conductor["relay_interval"] = plan.relay_interval
    return Deployment(
        workdir,
        database=database,
        zookeeper_hosts=zookeeper_hosts,
        session_timeout=SESSION_TIMEOUT,
        extra_conf={"conductor": conductor},
    )


def pool(deployment: Deployment, binds: list[Bind9Server]) -> dict[str, Any]:
    return {
        "name": "default",
        "ns_records": [{"hostname": f"ns1.{DOMAIN}", "priority": 1}],
        "nameservers": [b.nameserver() for b in binds],
        "targets": [b.pool_target(deployment.masters()) for b in binds],
    }


def scripts(plan: Plan) -> list[ZoneScript]:
    """Each zone's changes, drawn from the seed."""
    made = []
    for index in range(plan.zones):
        rng = random.Random(f"{plan.seed}/zone/{index}")
        script = ZoneScript(name=f"z{index}.{plan.seed % 100000}.{DOMAIN}", ops=[("create",)])
        names: list[str] = []
        for change in range(rng.randint(*plan.changes)):
            choice = rng.random() if names else 0.0
            if choice < 0.5:
                label = f"h{change}"
                names.append(label)
                script.ops.append(("rs_create", label, *_addresses(rng)))
            elif choice < 0.8:
                script.ops.append(("rs_update", rng.choice(names), *_addresses(rng)))
            else:
                label = rng.choice(names)
                names.remove(label)
                script.ops.append(("rs_delete", label))
        if rng.random() < plan.delete_share:
            script.ops.append(("delete",))
        made.append(script)
    return made


def _addresses(rng: random.Random) -> list[str]:
    return [f"192.0.2.{n}" for n in sorted(rng.sample(range(1, 255), rng.randint(1, 2)))]


class Gate:
    """Lets the users' calls through, except while PostgreSQL is being restarted.

    The users are not what is under test: a restart must hit the conductors
    and mdns mid-job, not leave a user unsure whether a change committed.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open = True
        self._inside = 0

    @contextlib.contextmanager
    def passing(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: self._open, timeout=120)
            self._inside += 1
        try:
            yield
        finally:
            with self._cond:
                self._inside -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def closed(self) -> Iterator[None]:
        with self._cond:
            self._open = False
            self._cond.wait_for(lambda: self._inside == 0, timeout=60)
        try:
            yield
        finally:
            with self._cond:
                self._open = True
                self._cond.notify_all()


class Run:
    """One chaos run against a deployment whose pool and mdns are set up."""

    def __init__(
        self,
        plan: Plan,
        deployment: Deployment,
        binds: list[Bind9Server],
        zookeeper: ZooKeeperServer,
        postgres: PostgresServer,
        *,
        say: Callable[[str], None] = print,
        replay: str = "replay: seed {seed}",
    ) -> None:
        """``say`` prints progress; ``replay`` says how to run this seed again."""
        self.plan = plan
        self.deployment = deployment
        self.binds = binds
        self.zookeeper = zookeeper
        self.postgres = postgres
        self.say = say
        self.replay = replay
        self.outcome = Outcome(seed=plan.seed)
        self.scripts = scripts(plan)
        self.jobs: list[Job] = []
        self._listed: list[dict[str, Any]] = []
        self.gate = Gate()
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._workload_done = threading.Event()
        # When ZooKeeper last came back from a restart (monotonic).
        self._zookeeper_back = -math.inf
        self._conductors = [f"conductor-{i + 1}" for i in range(plan.conductors)]
        self._relay: Any = None

    # --- the run -------------------------------------------------------------------

    def run(self) -> Outcome:
        from zoneflow import config
        from zoneflow.engine.relay import OutboxRelay
        from zoneflow.taskflow_adapter import jobboard, persistence

        self.say(f"chaos seed {self.plan.seed} ({self.replay.format(seed=self.plan.seed)})")
        config.setup([str(self.deployment.conf)])
        # What this process (the users, the chaos) did, beside the daemons' logs.
        log = logging.FileHandler(self.deployment.workdir / "users.log")
        log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.setLevel(logging.INFO)
        logging.getLogger().addHandler(log)
        level = logging.getLogger("zoneflow").level
        logging.getLogger("zoneflow").setLevel(logging.INFO)
        board = jobboard.connect(persistence.get_backend(), name="chaos-users")
        self._relay = OutboxRelay(board, persistence.get_backend())
        try:
            for name in self._conductors:
                self.deployment.start_conductor(name)
            for name in self._conductors:
                self._wait_watching(name)
            self._event(f"{len(self._conductors)} conductors watching; workload starts")
            self._started = time.monotonic()
            chaos = threading.Thread(target=self._chaos, name="chaos", daemon=True)
            chaos.start()
            self._workload()
            self.outcome.workload_seconds = time.monotonic() - self._started
            self._workload_done.set()
            chaos.join(timeout=120)
            if chaos.is_alive():
                self.outcome.failures.append("the chaos thread did not stop within 120 s")
            settled = time.monotonic()
            self._settle(board)
            self.outcome.settle_seconds = time.monotonic() - settled
            self._event("settled" if not self.outcome.failures else "did not settle")
            self._check()
        finally:
            board.close()
            persistence.reset()
            logging.getLogger().removeHandler(log)
            logging.getLogger("zoneflow").setLevel(level)
            log.close()
        return self.outcome

    def _wait_watching(self, name: str) -> None:
        process = self.deployment.processes[name]
        eventually(
            lambda: process.poll() is None and "watching" in self.deployment.log(name),
            timeout=60,
            what=f"{name} to watch the board (see {self.deployment.workdir}/{name}.log)",
        )

    def _event(self, text: str) -> None:
        line = f"{time.monotonic() - self._started:7.2f}s {text}"
        LOG.info("%s", line)
        with self._lock:
            self.outcome.timeline.append(line)

    # --- users -----------------------------------------------------------------------

    def _workload(self) -> None:
        todo: queue.Queue[ZoneScript] = queue.Queue()
        for script in self.scripts:
            todo.put(script)
        errors: list[str] = []

        def user(number: int) -> None:
            rng = random.Random(f"{self.plan.seed}/user/{number}")
            while True:
                try:
                    script = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    self._play(script, rng)
                except Exception as exc:  # noqa: BLE001 - reported as a failure of the run
                    LOG.exception("user %d: %s failed", number, script.name)
                    errors.append(f"{script.name}: the user's change failed: {exc!r}")

        users = [
            threading.Thread(target=user, args=(n,), name=f"user-{n}")
            for n in range(self.plan.workers)
        ]
        for thread in users:
            thread.start()
        for thread in users:
            thread.join(timeout=600)
            if thread.is_alive():
                errors.append(f"{thread.name} did not finish its changes within 600 s")
        self.outcome.failures += errors

    def _play(self, script: ZoneScript, rng: random.Random) -> None:
        from zoneflow.central import recordsets as central_recordsets
        from zoneflow.central import zones as central_zones

        for op in script.ops:
            # The workload's pace (the plan's gap between operations), not a wait.
            time.sleep(rng.uniform(*self.plan.gap) if op[0] != "create" else 0)
            kind = "update-zone"
            with self.gate.passing():
                if op[0] == "create":
                    zone = central_zones.create_zone(script.name, EMAIL)
                    script.zone_id, serial, kind = zone.id, zone.serial, "create-zone"
                elif op[0] == "rs_create":
                    label, *addresses = op[1:]
                    serial = central_recordsets.create_recordset(
                        script.name, label, "A", addresses
                    ).serial
                    script.records[(label, "A")] = set(addresses)
                elif op[0] == "rs_update":
                    label, *addresses = op[1:]
                    serial = central_recordsets.update_recordset(
                        script.name, label, rtype="A", records=addresses
                    ).serial
                    script.records[(label, "A")] = set(addresses)
                elif op[0] == "rs_delete":
                    serial = central_recordsets.delete_recordset(
                        script.name, op[1], rtype="A"
                    ).serial
                    del script.records[(op[1], "A")]
                    script.removed.add((op[1], "A"))
                else:
                    serial = central_zones.delete_zone(script.name).serial
                    script.deleted, kind = True, "delete-zone"
                assert script.zone_id is not None
                script.serial = serial
                made = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
                with self._lock:
                    self.jobs.append(Job(kind, script.name, script.zone_id, serial, made))
                # Drawn only for a share below 1: the default plan replays as before.
                if self.plan.users_post >= 1 or rng.random() < self.plan.users_post:
                    self._post()

    def _post(self) -> None:
        """Post the outbox now, as the CLI does after a change (a miss is the relays' to post)."""
        try:
            self._relay.flush()
        except Exception as exc:  # noqa: BLE001 - the change is saved; a relay posts it later
            LOG.info("posting from the users' side failed (a relay will post it): %s", exc)

    # --- chaos -------------------------------------------------------------------------

    def _chaos(self) -> None:
        down: dict[str, float] = {}  # conductor -> when it is started again
        try:
            self._havoc(down)
        except Exception as exc:  # noqa: BLE001 - reported as a failure of the run
            LOG.exception("the chaos thread failed")
            self.outcome.failures.append(f"the chaos thread failed: {exc!r}")
        finally:
            for name in down:
                self.deployment.start_conductor(name)
                self._event(f"{name} started again")

    def _havoc(self, down: dict[str, float]) -> None:
        rng = random.Random(f"{self.plan.seed}/chaos")
        # The two restarts land in the middle of the workload, a third and two thirds in.
        planned = []
        if self.plan.restart_zookeeper:
            planned.append(("zookeeper", 1 / 3))
        if self.plan.restart_postgres:
            planned.append(("postgres", 2 / 3))
        next_kill = time.monotonic() + rng.uniform(*self.plan.kill_every)
        while not self._workload_done.is_set():
            now = time.monotonic()
            for name, at in sorted(down.items()):
                if now >= at:
                    self.deployment.start_conductor(name)
                    del down[name]
                    self._event(f"{name} started again")
            if planned and self._progress() >= planned[0][1]:
                self._restart(planned.pop(0)[0])
                continue
            for name in self._conductors:
                code = self.deployment.processes[name].poll()
                if name not in down and code is not None:
                    if self._refused_for_zookeeper(name, code, now):
                        self.outcome.refused_starts += 1
                        self._event(f"{name} could not reach ZooKeeper as it restarted")
                    else:
                        self.outcome.failures.append(f"{name} exited by itself with status {code}")
                        self._event(f"{name} exited by itself with status {code}")
                    down[name] = now
            if now >= next_kill:
                alive = [c for c in self._conductors if c not in down]
                if alive:
                    victim = rng.choice(alive)
                    with contextlib.suppress(ProcessLookupError):  # it died by itself just now
                        self.deployment.kill(victim)
                    self.outcome.kills += 1
                    down[victim] = now + rng.uniform(*self.plan.restart_after)
                    self._event(f"{victim} killed (SIGKILL)")
                next_kill = now + rng.uniform(*self.plan.kill_every)
            time.sleep(0.05)  # the kill schedule's tick, not a wait for a result
        for planned_kind, _ in planned:
            # The workload ended before its middle was reached: restart now.
            self._restart(planned_kind)

    def _refused_for_zookeeper(self, name: str, code: int, now: float) -> bool:
        """A conductor started as ZooKeeper stopped waits ``[jobboard] connect_timeout``
        (5 s) for it, then exits 1 with a clear error: by design, not a failure. Only
        an exit within that of ZooKeeper's return, saying so, counts as such."""
        if code != 1 or now - self._zookeeper_back > 10.0:
            return False
        last = self.deployment.log(name).rstrip().rsplit("\n", 1)[-1]
        return last.startswith("zoneflow: error: cannot reach ZooKeeper")

    def _progress(self) -> float:
        expected = sum(len(s.ops) for s in self.scripts)
        with self._lock:
            return len(self.jobs) / expected

    def _restart(self, what: str) -> None:
        if what == "zookeeper":
            self._event("ZooKeeper stopping")
            self.zookeeper.restart()
            self.outcome.zookeeper_restarts += 1
            self._zookeeper_back = time.monotonic()
            self._event("ZooKeeper serving again")
        else:
            with self.gate.closed():
                self._event("PostgreSQL stopping")
                self.postgres.restart()
                self.outcome.postgres_restarts += 1
                self._event("PostgreSQL serving again")

    # --- settling and checking -----------------------------------------------------------

    def _settle(self, board: Any) -> None:
        """Wait (bounded) until no conductor is down and nothing is left to do."""
        from zoneflow.storage import reads as stored_reads

        for name in self._conductors:
            self._wait_watching(name)
        left: dict[str, Any] = {}
        told = [time.monotonic()]

        def quiet() -> bool:
            left.clear()
            if outbox := support.count_pending_jobs():
                left["outbox rows"] = outbox
            if on_board := [str(j.book_uuid) for j in board.iterjobs(ensure_fresh=True)]:
                left["jobs on the board"] = on_board
            if pending := [z.name for z in stored_reads.list_zones() if z.status == "PENDING"]:
                left["PENDING zones"] = pending
            if left and time.monotonic() - told[0] >= 3:
                told[0] = time.monotonic()
                counts = {k: v if isinstance(v, int) else len(v) for k, v in left.items()}
                self._event(f"waiting for {json.dumps(counts)}: {json.dumps(left)[:300]}")
            return not left

        try:
            eventually(quiet, timeout=self.plan.settle_timeout, interval=0.5, what="quiet")
        except TimeoutError:
            self.outcome.failures.append(
                f"still not settled {self.plan.settle_timeout:g}s after the chaos stopped "
                f"(stuck): {json.dumps(left)[:2000]}"
            )

    def _check(self) -> None:
        self._check_conductors()
        self._check_jobs()
        self._check_zones()

    def _check_conductors(self) -> None:
        for name in self._conductors:
            code = self.deployment.processes[name].poll()
            if code is not None:
                self.outcome.failures.append(
                    f"{name} exited by itself with status {code} (see its log)"
                )

    def _check_jobs(self) -> None:
        done = self.deployment.cli("--json", "job", "list", "--limit", "0")
        (self.deployment.workdir / "jobs.json").write_text(done.stdout)
        jobs = json.loads(done.stdout)
        listed = self._listed = [zone_job for job in jobs for zone_job in _per_zone(job)]
        self.outcome.jobs = len(self.jobs)
        self.outcome.jobs_listed = len(jobs)
        self.outcome.resumed = sum(1 for j in jobs if int(j["attempts"]) > 1)
        lost = [int(j.get("lost_attempts", 0)) for j in jobs]
        self.outcome.lost_runs, self.outcome.most_lost = sum(lost), max(lost, default=0)
        carried = [len(j["zones"]) for j in jobs if len(j["zones"]) > 1]
        self.outcome.batches, self.outcome.batched_zones = len(carried), sum(carried)
        for job in jobs:
            if len(job["zones"]) > 1:
                kinds = self.outcome.batches_of
                kinds[job["kind"]] = kinds.get(job["kind"], 0) + 1
        by_key: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
        for job in listed:
            by_key.setdefault((job["zone_id"], int(job["serial"]), job["kind"]), []).append(job)
        expected = {(j.zone_id, j.serial, j.kind): j for j in self.jobs}
        for key, job in expected.items():
            if key in by_key:
                continue
            if self._rode(job, listed):
                self.outcome.coalesced += 1
                continue
            self.outcome.failures.append(
                f"lost: {job.kind} of {job.zone} serial {job.serial} was never posted"
            )
        for key, found in by_key.items():
            if key not in expected and not self._raised(key, expected):
                self.outcome.failures.append(f"a job nobody asked for: {found}")
            self.outcome.duplicate_posts += len(found) - 1
            for job in found:
                if job["state"] not in CORRECT:
                    where = "stuck" if job["state"] not in ENDED else "ended wrong"
                    self.outcome.failures.append(
                        f"{where}: job {job['id']} ({job['kind']} {job['zone_name']} serial "
                        f"{job['serial']}) is {job['state']} after {job['attempts']} attempts: "
                        f"{job.get('error')}"
                    )

    @staticmethod
    def _rode(change: Any, listed: list[dict[str, Any]]) -> bool:
        """Whether a change listed with no job at its serial is carried by its zone's job.

        An update made while its zone's create or update job has not begun
        rides on that job (storage/outbox.py), which brings the zone to its
        latest serial; a create whose row an update raised before it was posted
        is listed at the update's serial (see _raised). Whether the zone ended
        right is checked from the zone and the nameservers.
        """
        carriers = _RIDDEN if change.kind == "update-zone" else (change.kind,)
        return change.kind in _RIDDEN and any(
            job["zone_id"] == change.zone_id and job["kind"] in carriers for job in listed
        )

    @staticmethod
    def _raised(key: tuple[str, int, str], expected: dict[tuple[str, int, str], Any]) -> bool:
        """Whether a job was posted at a later change's serial: updates that rode on its
        outbox row before the relay posted it raised the row's serial to theirs."""
        zone_id, serial, kind = key
        return kind in _RIDDEN and any((zone_id, serial, later) in expected for later in _RIDDEN)

    def _check_zones(self) -> None:
        from zoneflow.storage import zones as stored_zones

        for script in self.scripts:
            if script.zone_id is None:
                continue
            failures = len(self.outcome.failures)
            self._check_zone(script, stored_zones.get_zone_any(script.zone_id))
            if len(self.outcome.failures) > failures:
                self.outcome.failures.append(f"  {script.name} jobs: {self._jobs_of(script)}")

    def _jobs_of(self, script: ZoneScript) -> str:
        """The zone's jobs as listed, oldest first: kind, serial, state, attempts, id, and
        how long after the change the job was posted (whole seconds, as listed)."""
        made = {(j.serial, j.kind): j.made for j in self.jobs if j.zone_id == script.zone_id}
        mine = sorted(
            (j for j in self._listed if j["zone_id"] == script.zone_id),
            key=lambda j: (int(j["serial"]), j["created_at"] or ""),
        )

        def posted(job: dict[str, Any]) -> str:
            change = made.get((int(job["serial"]), job["kind"]))
            if change is None or not job["created_at"]:
                return "?"
            delay = datetime.datetime.fromisoformat(job["created_at"]) - change
            return f"{delay.total_seconds():+.0f}s"

        return "; ".join(
            f"{j['kind']} {j['serial']} {j['state']} x{j['attempts']} {j['id'][:8]} "
            f"posted {posted(j)}"
            for j in mine
        )

    def _check_zone(self, script: ZoneScript, zone: Any) -> None:
        if script.deleted:
            self.outcome.zones_deleted += 1
            if zone is not None and (zone.status != "DELETED" or not _soft_deleted(script)):
                self.outcome.failures.append(
                    f"{script.name} was deleted but storage holds it as "
                    f"{zone.status}/{zone.action}: {zone.error}"
                )
            for bind in self.binds:
                rcode = _rcode(script.name, bind)
                if rcode != dns.rcode.REFUSED:
                    self.outcome.failures.append(
                        f"{script.name} was deleted but {_where(bind)} answers "
                        f"{dns.rcode.to_text(rcode) if rcode is not None else 'nothing'}"
                    )
            return
        self.outcome.zones_live += 1
        if zone is None or zone.status != "ACTIVE" or zone.serial != script.serial:
            state = "missing" if zone is None else f"{zone.status}/{zone.action} {zone.error}"
            serial = None if zone is None else zone.serial
            self.outcome.failures.append(
                f"{script.name} should be ACTIVE at serial {script.serial}, storage has "
                f"serial {serial}: {state}"
            )
        self._check_served(script)

    def _check_served(self, script: ZoneScript) -> None:
        for bind in self.binds:
            try:
                serial = soa_serial(script.name, bind.host, bind.port)
            except dns.exception.DNSException as exc:
                serial = f"no answer ({exc})"  # type: ignore[assignment]
            if serial != script.serial:
                self.outcome.failures.append(
                    f"{script.name}: {_where(bind)} serves serial {serial}, not {script.serial}"
                )
                continue
            for (label, rtype), records in sorted(script.records.items()):
                seen = answer(f"{label}.{script.name}", rtype, bind.host, bind.port)[1]
                if seen != records:
                    self.outcome.failures.append(
                        f"{script.name}: {_where(bind)} answers {label} {rtype} {sorted(seen)}, "
                        f"not {sorted(records)}"
                    )
            for label, rtype in sorted(script.removed - set(script.records)):
                seen = answer(f"{label}.{script.name}", rtype, bind.host, bind.port)[1]
                if seen:
                    self.outcome.failures.append(
                        f"{script.name}: {_where(bind)} still answers removed {label} {rtype} "
                        f"{sorted(seen)}"
                    )


def _per_zone(job: dict[str, Any]) -> list[dict[str, Any]]:
    """A listed job as one entry per zone it carries: a batch (create-zones,
    update-zones, delete-zones) reads as each zone's own job (create-zone, ...) at
    the serial its change was posted at."""
    from zoneflow import objects

    kind = objects.JobKind(job["kind"])
    if kind not in objects.ONE_OF:
        return [job]
    one = str(objects.ONE_OF[kind])
    return [
        dict(job, kind=one, zone_id=z["id"], zone_name=z["name"], serial=z["serial"])
        for z in job["zones"]
    ]


def _soft_deleted(script: ZoneScript) -> bool:
    from zoneflow.storage import zones as stored_zones

    assert script.zone_id is not None
    return stored_zones.zone_is_deleted(script.zone_id)


def _rcode(zone: str, bind: Bind9Server) -> int | None:
    try:
        return answer(zone, "SOA", bind.host, bind.port)[0]
    except dns.exception.DNSException:
        return None


def _where(bind: Bind9Server) -> str:
    return f"BIND9 {bind.host}:{bind.port}"
