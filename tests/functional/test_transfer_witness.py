"""What mdns saw of a target's transfers, in the error of a job the target did not follow.

A real deployment (mdns and a conductor as processes, PostgreSQL, ZooKeeper)
and a real BIND9 target. Two ways a target fails to serve a job's serial,
each named by what mdns saw: it transfers the serial again and again and
refuses it (data stored before the rules: a CNAME at the apex), or it never
asks mdns at all (its primaries point elsewhere).
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests import support
from tests.functional.conftest import Bind9Factory
from tests.functional.deployment import Deployment, soa_serial
from tests.functional.fixtures.ports import HOST, free_port
from tests.functional.fixtures.zookeeper import ZooKeeperServer

ZONE = "witness.example."
LABEL = "bind9-2"


@pytest.fixture
def deployment(
    tmp_path: pathlib.Path, postgres_database: str, zookeeper: ZooKeeperServer
) -> Iterator[Deployment]:
    """A deployment whose polls give up after 4 s, NOTIFYing the target each second."""
    deployment = Deployment(
        tmp_path,
        database=postgres_database,
        zookeeper_hosts=zookeeper.hosts,
        extra_conf={"flows": {"poll_timeout": 4, "renotify_interval": 1, "poll_interval": 0.2}},
    )
    yield deployment
    deployment.close()


def _start(deployment: Deployment, target: dict[str, Any], nameserver: dict[str, Any]) -> None:
    deployment.load_pool(
        {
            "name": "default",
            "ns_records": [{"hostname": f"ns1.{ZONE}", "priority": 1}],
            "nameservers": [nameserver],
            "targets": [{**target, "description": LABEL}],
        }
    )
    deployment.start_mdns()
    deployment.start_conductor()


def _create(deployment: Deployment) -> dict[str, Any]:
    done = deployment.cli(
        *("--json", "zone", "create", ZONE, "--email", f"hostmaster@{ZONE}", "--wait"),
        check=False,
    )
    return dict(json.loads(done.stdout))


def _job_errors(deployment: Deployment) -> str:
    return deployment.cli("--json", "job", "list").stdout


def test_a_target_refusing_the_data_it_transfers_is_named_with_its_transfers(
    deployment: Deployment, bind9_factory: Bind9Factory
) -> None:
    (bind,) = bind9_factory(1)
    _start(deployment, bind.pool_target(deployment.masters()), bind.nameserver())
    zone = _create(deployment)
    assert zone["status"] == "ACTIVE", zone
    served = zone["serial"]
    # A CNAME at the apex, as accepted before the rules: straight into storage.
    with support.database(deployment.database):
        support.write_recordset_unchecked(zone["id"], ZONE, "CNAME", ["elsewhere.example.net."])

    done = deployment.cli("--json", "zone", "update", ZONE, "--ttl", "3700", "--wait", check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    updated = json.loads(done.stdout)
    assert updated["status"] == "ERROR", updated
    assert soa_serial(ZONE, bind.host, bind.port) == served  # BIND9 kept the old data
    said = re.search(
        rf"target {LABEL} transferred serial (\d+) from mdns (\d+) times \(last \d+ s ago\) "
        rf"but still serves {served}: the nameserver refuses to load the zone's data "
        r"\(see its log\): a CNAME cannot be at the apex",
        updated["error"],
    )
    assert said, updated["error"]
    assert int(said[1]) == updated["serial"] and int(said[2]) >= 2, updated["error"]
    # The target's own row says so too, and so does the job.
    rows = json.loads(deployment.cli("--json", "zone", "status", ZONE).stdout)
    assert f"target {LABEL} transferred serial" in rows[0]["error"], rows
    assert f"target {LABEL} transferred serial" in _job_errors(deployment)
    # The reason is the one BIND9 gave.
    assert "CNAME and other data" in bind.log_path.read_text(errors="replace")


def test_a_target_that_never_reaches_mdns_is_named_as_such(
    deployment: Deployment, bind9_factory: Bind9Factory
) -> None:
    (bind,) = bind9_factory(1)
    nowhere = (HOST, free_port())  # no mdns there: BIND9's transfers go nowhere
    _start(deployment, bind.pool_target([nowhere]), bind.nameserver())

    zone = _create(deployment)
    assert zone["status"] == "ERROR", zone
    assert soa_serial(ZONE, bind.host, bind.port) is None
    expected = (
        f"target {LABEL} never transferred the zone from mdns at {nowhere[0]}:{nowhere[1]}: "
        "check its primaries, allow-transfer and TSIG key"
    )
    assert expected in zone["error"], zone["error"]
    assert expected in _job_errors(deployment)
