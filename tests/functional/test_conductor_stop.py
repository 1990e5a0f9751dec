"""A conductor stopped with SIGTERM says so and leaves promptly.

Real ZooKeeper and PostgreSQL, the conductor a real process. Stopping is
not losing a session: the log must not tell an operator that the
conductor's jobs "belong to other conductors now", and the process must not
keep a deploy or a restart waiting.
"""

from __future__ import annotations

import pathlib
import signal
import time

from tests.functional.deployment import Deployment
from tests.functional.fixtures.zookeeper import ZooKeeperServer
from tests.support import eventually

# What "promptly" means here: well under the 3-8 s it took.
STOP_SECONDS = 1.5


def test_sigterm_stops_a_conductor_in_order_and_promptly(
    tmp_path: pathlib.Path, postgres_database: str, zookeeper: ZooKeeperServer
) -> None:
    deployment = Deployment(tmp_path, database=postgres_database, zookeeper_hosts=zookeeper.hosts)
    try:
        deployment.load_pool(
            {
                "name": "default",
                "ns_records": [{"hostname": "ns1.stop.example.", "priority": 1}],
                "targets": [{"type": "fake", "description": "fake1"}],
            }
        )
        conductor = deployment.start_conductor()
        eventually(
            lambda: "watching ZooKeeper" in deployment.log("conductor"),
            timeout=60,
            what="the conductor to watch the board",
        )
        # A job run first: the conductor has claimed, run and consumed one.
        deployment.cli(
            "zone", "create", "stop.example.", "--email", "hostmaster@stop.example", "--wait"
        )

        started = time.monotonic()
        conductor.send_signal(signal.SIGTERM)
        conductor.wait(timeout=30)
        took = time.monotonic() - started

        log = deployment.log("conductor")
        assert conductor.returncode == 0, log
        assert took < STOP_SECONDS, f"the conductor took {took:.1f}s to stop:\n{log}"
        assert "stopped" in log.splitlines()[-1], log
        assert "session" not in log and "belong to other conductors" not in log, log
    finally:
        deployment.close()
