"""The spine's failures, as the CLI shows them: a change a dead target fails, and bad
input, on PostgreSQL, ZooKeeper and BIND9 (test_spine.py has the same path working).

Every assertion is about what the nameservers answer, what the database holds or
what the CLI prints, never about what zoneflow says of itself.
"""

from __future__ import annotations

import json

import dns.rcode

from tests.functional.conftest import Bind9Factory
from tests.functional.deployment import Deployment, answer
from tests.functional.test_spine import ZONE, _pool
from tests.support import eventually


def test_a_dead_target_with_threshold_100_reverts_the_create(
    deployment: Deployment, bind9_factory: Bind9Factory
) -> None:
    alive, dead = bind9_factory(2)
    deployment.load_pool(_pool(deployment, [alive, dead]))
    deployment.start_mdns()
    deployment.start_conductor()
    dead.kill()

    done = deployment.cli(
        "zone", "create", ZONE, "--email", "hostmaster@spine.example", "--wait", check=False
    )
    assert done.returncode == 1
    shown = json.loads(deployment.cli("--json", "zone", "show", ZONE).stdout)
    assert shown["status"] == "ERROR"
    assert "1 of 2 targets succeeded" in shown["error"]
    assert "threshold of 100%" in shown["error"]
    # The revert removed the zone from the target that had created it.
    assert eventually(
        lambda: answer(ZONE, "SOA", alive.host, alive.port)[0] == dns.rcode.REFUSED,
        timeout=10,
        what="the surviving BIND9 to stop serving the reverted zone",
    )


def test_ids_and_errors_of_bad_cli_input_are_clear(
    deployment: Deployment, bind9_factory: Bind9Factory
) -> None:
    binds = bind9_factory(1)
    deployment.load_pool(_pool(deployment, binds))
    cases = [
        (("zone", "create", "bad_name.example.", "--email", "a@b.example"), "invalid label"),
        (("zone", "create", "ok.example.", "--email", "nope"), "email 'nope' is invalid"),
        (
            ("zone", "create", "ok.example.", "--email", "a@b.example", "--ttl", "-5"),
            "out of range",
        ),
        (("zone", "create", "ok.example.", "--email", "a@b.example", "--pool", "x"), "pool 'x'"),
        (("zone", "show", "missing.example"), "does not exist"),
        (("pool", "update", "--file", "/nonexistent.yaml"), "cannot read pools file"),
    ]
    for args, message in cases:
        done = deployment.cli(*args, check=False)
        assert done.returncode == 1, args
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert json.loads(deployment.cli("--json", "zone", "list").stdout) == []
