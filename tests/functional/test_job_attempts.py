"""A job that keeps killing its conductor at the same step is given up; operators cancel jobs.

Real ZooKeeper (a killed conductor's claim vanishes with its session and the
job goes back to the board) and real PostgreSQL (the logbook where every
conductor counts the job's attempts), conductors as separate processes.
The poisoned job stands in for one that takes its conductor down every time
at the same step (say, out of memory): its one fake target is slow, and the
test kills each conductor while it runs that target's step.
"""

from __future__ import annotations

import json
import pathlib
import signal
import socket
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from tests.functional.deployment import Deployment
from tests.functional.fixtures.zookeeper import ZooKeeperServer
from tests.support import eventually

# [conductor] max_lost_at_same_step: conductors lost at the step before the job is given up.
SAME_STEP = 2
SLOW_SECONDS = 120


def _pool(name: str, record: pathlib.Path) -> dict[str, Any]:
    return {
        "name": "default",
        "ns_records": [{"hostname": f"ns1.{name}", "priority": 1}],
        "targets": [
            {
                "type": "fake",
                "description": "slow",
                "options": {"record_file": str(record), "delay": SLOW_SECONDS},
            }
        ],
    }


# The waits poll ``zoneflow api`` (a request costs milliseconds, a CLI process a second
# of CPU); the CLI's own job list, show and cancel are checked once each. A job is
# listed once posted, by the CLI or by the API's relay if it took the outbox row
# first: a moment after the CLI returns, so the first look at each job waits.
def _jobs(deployment: Deployment, zone: str) -> list[dict[str, Any]]:
    return [
        j
        for j in deployment.api("GET", "/v2/jobs", all_projects=True)["jobs"]
        if j["zone_name"] == zone
    ]


def _job(deployment: Deployment, zone: str) -> dict[str, Any]:
    (job,) = _jobs(deployment, zone)
    return job


def _created_unrun(deployment: Deployment, zone: str) -> dict[str, Any]:
    """``zone`` created through the CLI while no conductor runs: its job, once listed."""
    deployment.cli("zone", "create", zone, "--email", f"hostmaster@{zone.rstrip('.')}")
    return eventually(
        lambda: next(iter(_jobs(deployment, zone)), None),
        timeout=30,
        what=f"the job of {zone} to be listed",
    )


def _zone(deployment: Deployment, zone: str) -> dict[str, Any]:
    return json.loads(deployment.cli("--json", "zone", "show", zone).stdout)


def _attempts_reach(deployment: Deployment, zone: str, attempts: int) -> Callable[[], bool]:
    return lambda: [j["attempts"] for j in _jobs(deployment, zone)] == [attempts]


def _slow_step_running(deployment: Deployment, job_id: str) -> bool:
    """Whether the job's record shows its target's step running."""
    shown = deployment.api("GET", f"/v2/jobs/{job_id}", all_projects=True)
    return any(
        a["name"].startswith("create-zone-on-target-") and a["state"] == "RUNNING"
        for a in shown["atoms"]
    )


def _conductor_name(pid: int) -> str:
    """What ``zoneflow conductor`` claims jobs as when given no name."""
    return f"{socket.gethostname()}-{pid}"


def test_a_job_that_kills_its_conductors_at_one_step_ends_failed_after_max_lost_at_same_step(
    tmp_path: pathlib.Path, postgres_database: str, zookeeper: ZooKeeperServer
) -> None:
    zone = "poison.example."
    record = tmp_path / "calls.jsonl"
    deployment = Deployment(
        tmp_path,
        database=postgres_database,
        zookeeper_hosts=zookeeper.hosts,
        session_timeout=2,
        # One failed run would be given up: the lost ones are not failures.
        extra_conf={"conductor": {"max_job_attempts": 1, "max_lost_at_same_step": SAME_STEP}},
    )
    try:
        deployment.load_pool(_pool("poison.example.", record))
        deployment.start_api()
        deployment.cli("zone", "create", zone, "--email", "hostmaster@poison.example")
        killed = []
        for attempt in range(1, SAME_STEP + 1):
            name = f"doomed-{attempt}"
            process = deployment.start_conductor(name)
            eventually(
                _attempts_reach(deployment, zone, attempt),
                timeout=60,
                interval=0.3,
                what=f"conductor {name} to start attempt {attempt}",
            )
            eventually(
                lambda: _slow_step_running(deployment, _job(deployment, zone)["id"]),
                timeout=60,
                interval=0.3,
                what=f"conductor {name} to run the slow target's step",
            )
            deployment.kill(name, signal.SIGKILL)
            killed.append(process.pid)

        last = deployment.start_conductor("last")
        eventually(
            lambda: _job(deployment, zone)["state"] == "FAILURE",
            timeout=60,
            interval=0.3,
            what=lambda: (
                f"the last conductor to give the job up: {_job(deployment, zone)}\n"
                f"its log ends: {deployment.log('last')[-3000:]}"
            ),
        )
        job = _job(deployment, zone)
        assert (job["attempts"], job["failed_attempts"], job["lost_attempts"]) == (
            SAME_STEP,
            0,
            SAME_STEP,
        )
        assert job["id"] in job["error"]
        assert (
            f"given up: {SAME_STEP} runs in a row lost their conductor at step " in (job["error"])
        )
        assert "max_lost_at_same_step" in job["error"]
        assert (
            f"conductor {_conductor_name(killed[-1])} was lost (it died or lost its ZooKeeper "
            f"session) while running attempt {SAME_STEP}, at step create-zone-on-target-"
            in job["error"]
        )

        failed = _zone(deployment, zone)
        assert (failed["status"], failed["error"]) == ("ERROR", job["error"])

        listed = deployment.cli("job", "list").stdout
        (row,) = [line for line in listed.splitlines() if line.startswith(job["id"])]
        assert row.split()[4:6] == ["FAILURE", str(SAME_STEP)]
        shown = deployment.cli("job", "show", job["id"]).stdout
        assert f"attempts: {SAME_STEP} (0 failed, {SAME_STEP} lost with their conductor)" in (shown)

        # The last conductor never ran the flow, and the job is off the board.
        assert f"{zone} at serial" not in deployment.log("last"), deployment.log("last")
        assert not record.exists()
        refused = deployment.cli("job", "cancel", job["id"], check=False)
        assert refused.returncode == 1
        assert "has already finished (FAILURE)" in refused.stderr
        assert last.poll() is None, "the conductor that gave the job up keeps running"
    finally:
        deployment.close()


def test_job_cancel_removes_an_unclaimed_job_and_refuses_a_running_one(
    tmp_path: pathlib.Path, deployment: Deployment
) -> None:
    deployment.load_pool(_pool("cancel.example.", tmp_path / "calls.jsonl"))
    deployment.start_api()

    # No conductor yet: the job waits on the board.
    waiting = _created_unrun(deployment, "waiting.cancel.example.")
    cancelled = deployment.cli("job", "cancel", waiting["id"])
    assert f"job {waiting['id']} cancelled" in cancelled.stdout
    assert _job(deployment, "waiting.cancel.example.")["state"] == "CANCELLED"
    zone = _zone(deployment, "waiting.cancel.example.")
    assert zone["status"] == "ERROR" and "cancelled by operator" in zone["error"]

    conductor = deployment.start_conductor()
    deployment.cli("zone", "create", "running.cancel.example.", "--email", "h@cancel.example")
    eventually(
        lambda: [j["state"] for j in _jobs(deployment, "running.cancel.example.")] == ["RUNNING"],
        timeout=60,
        interval=0.3,
        what="the conductor to run the second job",
    )
    running = _job(deployment, "running.cancel.example.")
    refused = deployment.cli("job", "cancel", running["id"], check=False)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr.count("\n") == 1
    assert (
        f"job {running['id']} is claimed by conductor {_conductor_name(conductor.pid)}"
        in refused.stderr
    )
    # The cancelled job was never run: the conductor only started the second one.
    assert "waiting.cancel.example." not in deployment.log("conductor")

    unknown = deployment.cli("job", "cancel", "0000", check=False)
    assert unknown.returncode == 1
    assert unknown.stderr.count("\n") == 1 and "job 0000 does not exist" in unknown.stderr
    # Not SIGTERM: a stopping conductor waits for the slow target's call to return.
    deployment.kill("conductor")


NEWER_FLOW = "zoneflow.flows.zone.flow_of_a_newer_zoneflow"


def _name_flow(deployment: Deployment, job_id: str, factory: str) -> str:
    """Name ``factory`` as job ``job_id``'s flow in its logbook; the name it had."""
    engine = sa.create_engine(deployment.database, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            (meta,) = connection.execute(
                sa.text("SELECT meta FROM flowdetails WHERE parent_uuid = :book"),
                {"book": job_id},
            ).one()
            named = str(meta["factory"]["name"])
            meta["factory"]["name"] = factory
            connection.execute(
                sa.text("UPDATE flowdetails SET meta = :meta WHERE parent_uuid = :book"),
                {"book": job_id, "meta": json.dumps(meta)},
            )
        return named
    finally:
        engine.dispose()


def test_a_job_a_conductor_has_no_flow_for_waits_for_a_conductor_that_has_it(
    deployment: Deployment,
) -> None:
    """As while conductors are upgraded one by one: a job of a kind a newer zoneflow
    posts names a flow that an older conductor's code does not have."""
    deployment.load_pool(
        {
            "name": "default",
            "ns_records": [{"hostname": "ns1.upgrade.example.", "priority": 1}],
            "targets": [{"type": "fake", "description": "fast"}],
        }
    )
    deployment.start_api()
    posted = _created_unrun(deployment, "newer.upgrade.example.")
    flow = _name_flow(deployment, posted["id"], NEWER_FLOW)

    older = deployment.start_conductor("older")
    # A zone created after it is made ACTIVE by the same conductor, which has
    # looked at the board since and left the job there.
    deployment.cli(
        "zone", "create", "later.upgrade.example.", "--email", "h@upgrade.example", "--wait"
    )
    job = _job(deployment, "newer.upgrade.example.")
    assert (job["state"], job["attempts"], job["failed_attempts"]) == ("PENDING", 0, 0)
    assert _zone(deployment, "newer.upgrade.example.")["status"] == "PENDING"
    said = [line for line in deployment.log("older").splitlines() if "is left on the board" in line]
    assert len(said) == 1, said
    assert posted["id"] in said[0] and "upgrade this conductor" in said[0]
    assert older.poll() is None

    _name_flow(deployment, posted["id"], flow)
    deployment.start_conductor("newer")
    eventually(
        lambda: _job(deployment, "newer.upgrade.example.")["state"] == "SUCCESS",
        timeout=60,
        interval=0.3,
        what="a conductor with the flow to run the job",
    )
    assert _zone(deployment, "newer.upgrade.example.")["status"] == "ACTIVE"
