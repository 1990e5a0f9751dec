"""A pool target really down: what a create leaves, and `zoneflow zone recover` after.

Two BIND9 servers behind mdns, one of them killed (SIGKILL) before the zone
is created. Assertions are about what each BIND9 answers, what the CLI shows
and what BIND9 logged of the rndc commands it received.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import dns.rcode
import pytest

from tests.functional.conftest import Bind9Factory
from tests.functional.deployment import Deployment, answer, soa_serial
from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.fixtures.zookeeper import ZooKeeperServer
from tests.support import eventually
from zoneflow.central import pools

ZONE = "recover.example."


@pytest.fixture
def deployment(
    tmp_path: pathlib.Path, postgres_database: str, zookeeper: ZooKeeperServer
) -> Iterator[Deployment]:
    """The conftest deployment, with a shorter poll: a dead nameserver is waited
    for poll_timeout seconds before it counts as lagging."""
    deployment = Deployment(
        tmp_path,
        database=postgres_database,
        zookeeper_hosts=zookeeper.hosts,
        extra_conf={"flows": {"poll_timeout": 4}},
    )
    yield deployment
    deployment.close()


def _start(deployment: Deployment, binds: list[Bind9Server], *, threshold: int) -> None:
    deployment.load_pool(
        {
            "name": "default",
            "threshold_percentage": threshold,
            "ns_records": [{"hostname": "ns1.recover.example.", "priority": 1}],
            "nameservers": [b.nameserver() for b in binds],
            "targets": [b.pool_target(deployment.masters()) for b in binds],
        }
    )
    deployment.start_mdns()
    deployment.start_conductor()


def _json(deployment: Deployment, *args: str) -> dict:
    return json.loads(deployment.cli("--json", *args).stdout)


def _rows(deployment: Deployment, binds: list[Bind9Server]) -> dict[int, dict]:
    """`zone status` rows keyed by each BIND9's DNS port."""
    port_of = {
        pools.target_id("default", "bind9", t["options"], t): b.port
        for b in binds
        for t in [b.pool_target(deployment.masters())]
    }
    rows = json.loads(deployment.cli("--json", "zone", "status", ZONE).stdout)
    return {port_of[r["target_id"]]: r for r in rows}


def _rndc_commands(bind: Bind9Server) -> list[str]:
    return [
        line
        for line in bind.log_path.read_text(errors="replace").splitlines()
        if "received control channel command" in line
    ]


def _serves(bind: Bind9Server, serial: int) -> bool:
    return soa_serial(ZONE, bind.host, bind.port) == serial


def test_threshold_100_reverts_the_create_and_recover_creates_it_on_both(
    deployment: Deployment, bind9_factory: Bind9Factory
) -> None:
    alive, dead = bind9_factory(2)
    _start(deployment, [alive, dead], threshold=100)
    dead.kill()

    done = deployment.cli(
        *("--json", "zone", "create", ZONE, "--email", "hostmaster@recover.example", "--wait"),
        check=False,
    )
    assert done.returncode == 1
    zone = json.loads(done.stdout)
    assert (zone["status"], zone["action"]) == ("ERROR", "CREATE")
    assert "1 of 2 targets succeeded, below the pool's threshold of 100%" in zone["error"]
    assert eventually(
        lambda: answer(ZONE, "SOA", alive.host, alive.port)[0] == dns.rcode.REFUSED,
        timeout=10,
        what="the surviving BIND9 to stop serving the reverted zone",
    )
    rows = _rows(deployment, [alive, dead])
    assert rows[alive.port]["status"] == "ERROR"
    assert rows[alive.port]["error"].startswith("created, then removed again: 1 of 2 targets")
    assert rows[dead.port]["status"] == "ERROR"
    assert "rndc cannot connect" in rows[dead.port]["error"]

    dead.start()
    recovered = _json(deployment, "zone", "recover", ZONE, "--wait")
    assert (recovered["status"], recovered["action"]) == ("ACTIVE", "NONE")
    for bind in (alive, dead):
        assert _serves(bind, zone["serial"])
    assert {(r["status"], r["serial"]) for r in _rows(deployment, [alive, dead]).values()} == {
        ("ACTIVE", zone["serial"])
    }


def test_threshold_50_creates_with_the_dead_target_in_error_and_recover_touches_only_it(
    deployment: Deployment, bind9_factory: Bind9Factory
) -> None:
    alive, dead = bind9_factory(2)
    _start(deployment, [alive, dead], threshold=50)
    dead.kill()

    zone = _json(
        deployment, "zone", "create", ZONE, "--email", "hostmaster@recover.example", "--wait"
    )
    serial = zone["serial"]
    assert zone["status"] == "ACTIVE"
    assert _serves(alive, serial)
    rows = _rows(deployment, [alive, dead])
    assert (rows[alive.port]["status"], rows[alive.port]["serial"]) == ("ACTIVE", serial)
    assert rows[dead.port]["status"] == "ERROR"
    assert "rndc cannot connect" in rows[dead.port]["error"]
    text = deployment.cli("zone", "status", ZONE).stdout
    dead_line = next(line for line in text.splitlines() if f":{dead.port}" in line)
    assert "ERROR" in dead_line and "rndc cannot connect" in dead_line

    dead.start()
    assert answer(ZONE, "SOA", dead.host, dead.port)[0] == dns.rcode.REFUSED
    rndc_before = _rndc_commands(alive)
    recovered = _json(deployment, "zone", "recover", ZONE, "--wait")

    assert (recovered["status"], recovered["serial"]) == ("ACTIVE", serial)
    assert _serves(dead, serial), "the restarted BIND9 serves the stored serial"
    assert _serves(alive, serial)
    assert _rndc_commands(alive) == rndc_before, "no rndc command reached the healthy BIND9"
    assert any(f"addzone {ZONE}" in line for line in _rndc_commands(dead))
    after = _rows(deployment, [alive, dead])
    assert after[alive.port] == rows[alive.port], "the healthy target's row was not rewritten"
    assert (after[dead.port]["status"], after[dead.port]["serial"]) == ("ACTIVE", serial)
    assert after[dead.port]["error"] is None
