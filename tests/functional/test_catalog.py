"""Catalog zones (RFC 9432): targets learn of zones from the pool's catalog alone.

One pool holds a BIND9 and a Knot target, both consumers of the pool's
catalog. Their control settings cannot work (BIND9's rndc port is closed,
Knot's knotc socket does not exist), so any per-zone command would fail the
job: the zones each server ends up answering came through the catalog mdns
serves, nothing else.

Zones are created and deleted through the REST API: one process that
answers each request in milliseconds, where a CLI process per zone took 3 to
9 s to start on a busy machine (25 of them were nine tenths of this test's
time). The CLI's own zone commands are tested in test_spine.py.
"""

from __future__ import annotations

import re
from typing import Any

import dns.rcode

from tests.functional.conftest import start_server
from tests.functional.deployment import Deployment, answer, soa_serial
from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.fixtures.knot import KnotServer
from tests.functional.fixtures.ports import HOST, free_port
from tests.support import eventually

CATALOG = "catalog.zoneflow.test."
ZONES = [f"member{index:02d}.example." for index in range(20)]
REMOVED = ZONES[3:18:3]  # five of them

Consumer = Bind9Server | KnotServer


def _catalog_pool(deployment: Deployment, bind: Bind9Server, knot: KnotServer) -> dict[str, Any]:
    bind_target = bind.pool_target(deployment.masters())
    bind_target["options"]["rndc_port"] = free_port()  # nobody listens: rndc would fail
    knot_target = knot.pool_target(deployment.masters())
    # No such socket: knotc would fail.
    knot_target["options"]["knotc_socket"] = str(knot.workdir / "absent" / "knot.sock")
    return {
        "name": "default",
        "ns_records": [{"hostname": "ns1.example.org.", "priority": 1}],
        "nameservers": [bind.nameserver(), knot.nameserver()],
        "targets": [bind_target, knot_target],
        "catalog_zone": {"catalog_zone_fqdn": CATALOG, "catalog_zone_refresh": 5},
        "provisioning": "catalog",
    }


def _served(server: Consumer) -> set[str]:
    return {zone for zone in ZONES if soa_serial(zone, server.host, server.port) is not None}


def _all_serve(servers: list[Consumer], zones: set[str]) -> bool:
    return all(_served(server) == zones for server in servers)


def test_twenty_zones_in_and_five_out_through_the_catalog_alone(deployment: Deployment) -> None:
    primary = (CATALOG, HOST, deployment.mdns_port)
    bind = start_server(lambda: Bind9Server(catalog=primary))
    knot = None
    try:
        knot = start_server(lambda: KnotServer(catalog=primary))
        servers: list[Consumer] = [bind, knot]
        deployment.load_pool(_catalog_pool(deployment, bind, knot))
        deployment.start_mdns()
        deployment.start_api()
        deployment.start_conductor()

        ids = deployment.api_create_zones(ZONES, "hostmaster@example.org")
        eventually(
            lambda: _all_serve(servers, set(ZONES)),
            timeout=60,
            what="all 20 zones served by BIND9 and Knot",
        )
        for zone in REMOVED:
            deployment.api("DELETE", f"/v2/zones/{ids[zone]}")
        eventually(
            lambda: _all_serve(servers, set(ZONES) - set(REMOVED)),
            timeout=60,
            what="exactly 15 zones served by BIND9 and Knot",
        )

        for server in servers:
            for zone in REMOVED:
                rcode = answer(zone, "SOA", server.host, server.port)[0]
                assert rcode in (dns.rcode.REFUSED, dns.rcode.NOTAUTH), (server.name, zone)
        shown = deployment.api_zone_statuses()
        eventually(
            lambda: all(s == "ACTIVE" for s in deployment.api_zone_statuses().values()),
            timeout=60,
            what="every job to finish ACTIVE",
        )
        assert set(shown) <= set(ZONES)
        # The consumers took the deletes as differences of the catalog (IXFR): the
        # members that left, not every member again.
        left = re.findall(
            r"IXFR of catalog \S+ from serial \d+ to \d+ to .*: (\d+) members left",
            deployment.log("mdns"),
        )
        assert any(int(count) > 0 for count in left), left
        # No per-zone rndc or knotc call: each would have failed.
        conductor_log = deployment.log("conductor")
        assert "rndc" not in conductor_log
        assert "knotc" not in conductor_log
    finally:
        bind.close()
        if knot is not None:
            knot.close()
