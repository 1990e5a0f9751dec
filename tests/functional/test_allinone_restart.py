"""Jobs of an all-in-one killed with SIGKILL end after a restart, none left waiting for good.

The embedded default: SQLite and the in-process zake board, in a real
``zoneflow all-in-one`` process. Its board goes with it when it is killed;
the job records stay in the database, PENDING or RUNNING. After a restart
every one of them either runs again to its end or ends with the reason: a
job whose zone has moved on to a later serial reads SUPERSEDED.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from tests.functional.deployment import Deployment, fake_calls
from tests.support import eventually

# Long enough that the first job is still at its target when the process is
# killed, on a loaded machine too.
TARGET_SECONDS = 20
UNFINISHED = {"PENDING", "RUNNING"}
ADMIN = {"X-Auth-Project-ID": "ops", "X-Roles": "admin", "X-Auth-All-Projects": "true"}


def _jobs(deployment: Deployment) -> list[dict[str, Any]]:
    return list(deployment.api("GET", "/v2/jobs")["jobs"])


def _zone(deployment: Deployment, name: str) -> dict[str, Any]:
    return dict(json.loads(deployment.cli("--json", "zone", "show", name).stdout))


def _start(deployment: Deployment, name: str) -> None:
    process = deployment.start(name, "all-in-one")

    def running() -> bool:
        assert process.poll() is None, deployment.log(name)
        return "all-in-one running" in deployment.log(name)

    eventually(running, timeout=60, interval=0.2, what=f"{name} to run")


def test_jobs_of_a_killed_all_in_one_run_again_or_end_after_a_restart(
    tmp_path: pathlib.Path,
) -> None:
    record = tmp_path / "calls.jsonl"
    deployment = Deployment(
        tmp_path, database=f"sqlite:///{tmp_path}/zoneflow.sqlite", zookeeper_hosts=None
    )
    try:
        deployment.load_pool(
            {
                "name": "default",
                "ns_records": [{"hostname": "ns1.restart.example.", "priority": 1}],
                "targets": [
                    {
                        "type": "fake",
                        "description": "slow",
                        "options": {"record_file": str(record), "delay": TARGET_SECONDS},
                    }
                ],
            }
        )
        _start(deployment, "first")
        moved = deployment.api(
            "POST", "/v2/zones", {"name": "moved.example.", "email": "hostmaster@moved.example"}
        )
        eventually(
            lambda: (
                [j["state"] for j in _jobs(deployment)] == ["RUNNING"]
                and "begin of moved.example." in deployment.log("first")
            ),
            timeout=60,
            interval=0.2,
            what="the create job to run past its begin",
        )
        # A newer change of the same zone, and a zone of its own, behind it. The create
        # has begun (read the zone's serial), so the update does not ride on it: it
        # makes a job of its own, as the create is at its slow target.
        deployment.api(
            "POST",
            f"/v2/zones/{moved['id']}/recordsets",
            {"name": "www.moved.example.", "type": "A", "records": ["192.0.2.1"]},
        )
        deployment.api(
            "POST", "/v2/zones", {"name": "other.example.", "email": "hostmaster@other.example"}
        )
        eventually(
            lambda: len(_jobs(deployment)) == 3,
            timeout=60,
            interval=0.2,
            what="all three jobs to be posted",
        )
        deployment.kill("first")
        before = json.loads(deployment.cli("--json", "job", "list").stdout)
        assert {j["state"] for j in before} <= UNFINISHED, before
        assert fake_calls(record) == [], "killed before any target call completed"

        _start(deployment, "second")
        eventually(
            lambda: not any(j["state"] in UNFINISHED for j in _jobs(deployment)),
            timeout=120,
            interval=0.5,
            what="every job to end after the restart",
        )
        after = {(j["kind"], j["zone_name"], j["serial"]): j for j in _jobs(deployment)}
        moved, other = _zone(deployment, "moved.example."), _zone(deployment, "other.example.")
        assert (moved["status"], other["status"]) == ("ACTIVE", "ACTIVE")
        create_moved = next(
            job
            for (kind, zone, _), job in after.items()
            if (kind, zone) == ("create-zone", "moved.example.")
        )
        assert create_moved["serial"] < moved["serial"]
        assert create_moved["state"] == "SUPERSEDED", create_moved
        assert f"is at serial {moved['serial']}" in create_moved["error"]
        assert not create_moved["failed"]
        assert after[("update-zone", "moved.example.", moved["serial"])]["state"] == "SUCCESS"
        assert after[("create-zone", "other.example.", other["serial"])]["state"] == "SUCCESS"
        # The restart says what became of each lost job.
        assert deployment.log("second").count("was lost with the last all-in-one") == 3
    finally:
        deployment.close()
