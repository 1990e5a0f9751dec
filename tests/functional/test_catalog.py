"""Catalog zones (RFC 9432): targets learn of zones from the pool's catalog alone.

The pool's targets have rndc settings that cannot work (a closed port), so
any per-zone command would fail the job: the zones that BIND9 ends up
answering came through the catalog mdns serves, nothing else.
"""

from __future__ import annotations

import json

import dns.rcode

from tests.functional.conftest import start_server
from tests.functional.deployment import Deployment, answer, soa_serial
from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.fixtures.ports import HOST, free_port, wait_for

CATALOG = "catalog.zoneflow.test."
ZONES = [f"member{index:02d}.example." for index in range(20)]
REMOVED = ZONES[3:18:3]  # five of them


def _catalog_pool(deployment: Deployment, binds: list[Bind9Server]) -> dict:
    targets = []
    for bind in binds:
        target = bind.pool_target(deployment.masters())
        target["options"]["rndc_port"] = free_port()  # nobody listens: rndc would fail
        targets.append(target)
    return {
        "name": "default",
        "ns_records": [{"hostname": "ns1.example.org.", "priority": 1}],
        "nameservers": [b.nameserver() for b in binds],
        "targets": targets,
        "catalog_zone": {"catalog_zone_fqdn": CATALOG, "catalog_zone_refresh": 5},
        "provisioning": "catalog",
    }


def _served(bind: Bind9Server) -> set[str]:
    return {zone for zone in ZONES if soa_serial(zone, bind.host, bind.port) is not None}


def test_twenty_zones_in_and_five_out_through_the_catalog_alone(deployment: Deployment) -> None:
    bind = start_server(lambda: Bind9Server(catalog=(CATALOG, HOST, deployment.mdns_port)))
    try:
        deployment.load_pool(_catalog_pool(deployment, [bind]))
        deployment.start_mdns()
        deployment.start_conductor()

        for zone in ZONES:
            deployment.cli("zone", "create", zone, "--email", "hostmaster@example.org")
        wait_for(lambda: _served(bind) == set(ZONES), timeout=60, what="all 20 zones served")
        for zone in REMOVED:
            deployment.cli("zone", "delete", zone)
        wait_for(
            lambda: _served(bind) == set(ZONES) - set(REMOVED),
            timeout=60,
            what="exactly 15 zones served",
        )

        for zone in REMOVED:
            assert answer(zone, "SOA", bind.host, bind.port)[0] == dns.rcode.REFUSED
        shown = {
            z["name"]: z["status"]
            for z in json.loads(deployment.cli("--json", "zone", "list").stdout)
        }
        wait_for(
            lambda: all(
                z["status"] == "ACTIVE"
                for z in json.loads(deployment.cli("--json", "zone", "list").stdout)
            ),
            timeout=60,
            what="every job to finish ACTIVE",
        )
        assert set(shown) <= set(ZONES)
        # No per-zone rndc call: each would have failed on the closed port.
        assert "rndc" not in deployment.log("conductor")
    finally:
        bind.close()
