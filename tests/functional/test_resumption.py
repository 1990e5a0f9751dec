"""A job survives SIGKILL of its conductor: another conductor resumes it.

Real ZooKeeper (the dead conductor's claim vanishes with its session) and
real PostgreSQL (the persisted atom states). The targets are fake backends
that write a line to a file when a call *completes*, so the file shows
which target work was done, by which process, and how often.
"""

from __future__ import annotations

import json
import pathlib

from tests.functional.deployment import Deployment, fake_calls, fast_and_slow_pool
from tests.functional.fixtures.zookeeper import ZooKeeperServer
from tests.support import eventually
from zoneflow.jobs import steps

ZONE = "resume.example."
SLOW_SECONDS = 6


def test_a_job_resumes_on_another_conductor_after_kill_9(
    tmp_path: pathlib.Path, postgres_database: str, zookeeper: ZooKeeperServer
) -> None:
    record = tmp_path / "calls.jsonl"
    deployment = Deployment(
        tmp_path, database=postgres_database, zookeeper_hosts=zookeeper.hosts, session_timeout=2
    )
    try:
        deployment.load_pool(fast_and_slow_pool("ns1.resume.example.", record, SLOW_SECONDS))
        first = deployment.start_conductor("first")
        deployment.cli("zone", "create", ZONE, "--email", "hostmaster@resume.example")

        # Part-way: the fast target is done, and its step stored as done (the
        # call is recorded a moment before), the slow one is still working.
        eventually(
            lambda: len(fake_calls(record)) == 1, timeout=30, what="the fast target's create"
        )
        fast = steps.on_target("create", fake_calls(record)[0]["target"]).name
        eventually(
            lambda: deployment.step_stored_done(fast), timeout=30, what="the fast step stored"
        )
        deployment.kill("first")
        assert len(fake_calls(record)) == 1

        second = deployment.start_conductor("second")
        eventually(
            lambda: (deployment.stored_zone(ZONE) or {}).get("status") == "ACTIVE",
            timeout=60,
            interval=0.5,
            what="the second conductor to finish the job",
        )
        calls = fake_calls(record)
        assert sorted(c["op"] for c in calls) == ["create", "create"]
        by_target = {c["target"]: c["pid"] for c in calls}
        assert len(by_target) == 2, "each target was created exactly once"
        pids = sorted(by_target.values())
        assert pids == sorted([first.pid, second.pid])

        jobs = json.loads(deployment.cli("--json", "job", "list").stdout)
        assert [j["state"] for j in jobs] == ["SUCCESS"]
    finally:
        deployment.close()


def test_two_conductors_share_the_board_and_run_each_job_once(
    tmp_path: pathlib.Path, postgres_database: str, zookeeper: ZooKeeperServer
) -> None:
    record = tmp_path / "calls.jsonl"
    deployment = Deployment(tmp_path, database=postgres_database, zookeeper_hosts=zookeeper.hosts)
    try:
        deployment.load_pool(
            {
                "name": "default",
                "ns_records": [{"hostname": "ns1.share.example.", "priority": 1}],
                "targets": [
                    {
                        "type": "fake",
                        "description": "a",
                        "options": {"record_file": str(record), "delay": 0.2},
                    },
                    {
                        "type": "fake",
                        "description": "b",
                        "options": {"record_file": str(record), "delay": 0.2},
                    },
                ],
            }
        )
        deployment.start_api()
        conductors = [deployment.start_conductor(f"c{i}") for i in (1, 2)]
        zones = [f"z{i}.share.example." for i in range(12)]
        # Through the API: the twelve jobs come at once, and both conductors
        # have work at the same time (a CLI process per zone took seconds each).
        deployment.api_create_zones(zones, "hostmaster@share.example")
        eventually(
            lambda: set(deployment.api_zone_statuses().values()) == {"ACTIVE"},
            timeout=90,
            interval=0.2,
            what=lambda: f"every zone to become ACTIVE: {deployment.api_zone_statuses()}",
        )
        calls = fake_calls(record)
        per_zone_target = sorted((c["zone"], c["target"]) for c in calls)
        assert len(per_zone_target) == 2 * len(zones)
        assert len(set(per_zone_target)) == len(per_zone_target), "no job ran twice"
        assert {c["pid"] for c in calls} <= {p.pid for p in conductors}
    finally:
        deployment.close()
