"""BIND9 targets that NOTIFY mdns of each serial they load: a change is ACTIVE at once.

As deployed: real PostgreSQL (its NOTIFY carries the word from mdns to the
conductor: ``[events] driver``'s default, ``auto``, is ``postgres`` on
PostgreSQL, and the test leaves it so), ZooKeeper, BIND9, and
``zoneflow conductor``, ``mdns`` and ``api`` processes. The polls ask their
nameservers only every 30 seconds here, so a zone ACTIVE at its serial well
within that was seen served through its nameservers' word, and nothing else.
"""

from __future__ import annotations

import pathlib
import time

from bench import load
from tests.functional.conftest import Bind9Factory
from tests.functional.deployment import Deployment, soa_serial
from tests.functional.fixtures.ports import HOST
from tests.functional.fixtures.zookeeper import ZooKeeperServer
from tests.support import eventually

ROUND = 30.0  # seconds between a poll's rounds
ZONE = "word.example."


def _active_at(deployment: Deployment, serial: int) -> float:
    """Seconds until the zone is ACTIVE at ``serial`` or later (at most a round)."""
    began = time.monotonic()
    eventually(
        lambda: (
            (stored := deployment.stored_zone(ZONE)) is not None
            and stored["status"] == "ACTIVE"
            and stored["serial"] >= serial
        ),
        timeout=ROUND * 2,
        interval=0.05,
        what=lambda: f"{ZONE} ACTIVE at {serial}: {deployment.stored_zone(ZONE)}",
    )
    return time.monotonic() - began


def test_a_change_is_active_as_soon_as_its_nameservers_say_they_serve_it(
    tmp_path: pathlib.Path,
    postgres_database: str,
    zookeeper: ZooKeeperServer,
    bind9_factory: Bind9Factory,
) -> None:
    deployment = Deployment(
        tmp_path,
        database=postgres_database,
        zookeeper_hosts=zookeeper.hosts,
        extra_conf={
            "flows": {
                "poll_interval": ROUND,
                "poll_interval_max": ROUND,
                "renotify_interval": ROUND * 4,
                "poll_timeout": ROUND * 4,
            },
        },
    )
    try:
        mdns = [(HOST, deployment.mdns_port)]
        binds = bind9_factory(2, also_notify=[mdns, mdns])
        load.start_zoneflow(deployment, binds, conductors=1)

        zone = deployment.api("POST", "/v2/zones", {"name": ZONE, "email": "admin@word.example"})
        took = [_active_at(deployment, zone["serial"])]
        for i in range(3):
            recordset = deployment.api(
                "POST",
                f"/v2/zones/{zone['id']}/recordsets",
                {"name": f"r{i}.{ZONE}", "type": "A", "records": [f"192.0.2.{i + 1}"]},
            )
            took.append(_active_at(deployment, recordset["serial"]))

        # Each well within a round: the polls were woken by the nameservers' word.
        assert max(took) < ROUND / 2, took
        serial = deployment.stored_serial(ZONE)
        assert all(soa_serial(ZONE, b.host, b.port) == serial for b in binds)
        assert deployment.log("mdns").count(f"NOTIFY for {ZONE}") >= 2 * len(took)
    finally:
        deployment.close()
