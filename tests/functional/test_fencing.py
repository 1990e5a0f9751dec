"""A conductor paused past its ZooKeeper session stops, instead of racing the new owner.

Real ZooKeeper and PostgreSQL; fake targets that write a line when a call
completes. The first conductor is frozen (SIGSTOP) while a slow target works,
long enough for its session to expire; a second conductor resumes the job and
finishes it. When the first is thawed (SIGCONT), its next task finds its claim
gone and the flow stops there: no status written over the new owner's, and no
revert undoing what the new owner did.
"""

from __future__ import annotations

import json
import pathlib
import signal

from tests.functional.deployment import Deployment, fake_calls, fast_and_slow_pool
from tests.functional.fixtures.zookeeper import ZooKeeperServer
from tests.support import eventually, holds

ZONE = "fence.example."
SESSION_TIMEOUT = 2
# The first conductor is frozen while it is inside the slow target's call, which
# the test sees as "the fast target's create, and only it, is recorded". That
# window opens when the job starts, before the CLI that posted it has returned:
# at 4 s a busy machine's CLI returned after it had closed (bench/busy_runs.py).
SLOW_SECONDS = 15
# Each wait below ends as soon as its condition holds; its bound is for a loaded machine.


def _status(deployment: Deployment) -> str:
    return str(json.loads(deployment.cli("--json", "zone", "show", ZONE).stdout)["status"])


def test_a_conductor_thawed_after_losing_its_session_changes_nothing_more(
    tmp_path: pathlib.Path, postgres_database: str, zookeeper: ZooKeeperServer
) -> None:
    record = tmp_path / "calls.jsonl"
    deployment = Deployment(
        tmp_path,
        database=postgres_database,
        zookeeper_hosts=zookeeper.hosts,
        session_timeout=SESSION_TIMEOUT,
    )
    try:
        deployment.load_pool(fast_and_slow_pool("ns1.fence.example.", record, SLOW_SECONDS))
        first = deployment.start_conductor("first")
        deployment.cli("zone", "create", ZONE, "--email", "hostmaster@fence.example")
        eventually(
            lambda: len(fake_calls(record)) == 1, timeout=120, what="the fast target's create"
        )

        deployment.kill("first", signal.SIGSTOP)  # frozen in the slow target's call
        second = deployment.start_conductor("second")
        eventually(
            lambda: _status(deployment) == "ACTIVE",
            timeout=120,
            interval=0.5,
            what="the second conductor to finish the job",
        )
        deployment.kill("first", signal.SIGCONT)
        eventually(
            lambda: "another conductor owns this job" in deployment.log("first"),
            timeout=60,
            what="the thawed conductor to find its claim gone",
        )
        # Room for anything it might still (wrongly) do, watched throughout.
        holds(
            lambda: "Job completed successfully" not in deployment.log("first"),
            1.0,
            interval=0.1,
            what="the thawed conductor not completing the job",
        )

        first_log = deployment.log("first")
        assert "Job completed successfully" not in first_log
        assert _status(deployment) == "ACTIVE"
        calls = fake_calls(record)
        # Only creates: no revert ran on either side. The slow create may
        # have finished once in each process (the overlap tasks must bear).
        assert {c["op"] for c in calls} == {"create"}
        assert {c["pid"] for c in calls} <= {first.pid, second.pid}
        jobs = json.loads(deployment.cli("--json", "job", "list").stdout)
        assert [j["state"] for j in jobs] == ["SUCCESS"]
    finally:
        deployment.kill("first", signal.SIGCONT) if deployment.processes[
            "first"
        ].poll() is None else None
        deployment.close()
