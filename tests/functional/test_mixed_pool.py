"""One pool of BIND9, Knot, PowerDNS and NSD behind one threshold, through zoneflow.

Each server is configured by its own backend (rndc, knotc, the PowerDNS
API, nsd-control) and pulls from the same mdns; what is checked is what
each one answers.
"""

from __future__ import annotations

import json
from typing import Any

import dns.rcode

from tests.functional.conftest import Bind9Factory, NSDFactory
from tests.functional.deployment import Deployment, answer, soa_serial
from tests.functional.fixtures.knot import KnotServer
from tests.functional.fixtures.pdns import PowerDNSServer
from tests.support import eventually

ZONE = "mixed.example."
LATER = "later.example."


def _show(deployment: Deployment, zone: str) -> dict[str, Any]:
    return json.loads(deployment.cli("--json", "zone", "show", zone).stdout)


def test_a_pool_of_all_four_kinds_serves_every_change(
    deployment: Deployment,
    bind9_factory: Bind9Factory,
    knot: KnotServer,
    pdns: PowerDNSServer,
    nsd_factory: NSDFactory,
) -> None:
    masters = deployment.masters()
    # Every kind as it ships, BIND9 without the settings doc/backends.md recommends.
    [bind] = bind9_factory(1, options=())
    nsd = nsd_factory(masters)
    servers = [bind, knot, pdns, nsd]
    deployment.load_pool(
        {
            "name": "default",
            "threshold_percentage": 75,
            "ns_records": [{"hostname": "ns1.mixed.example.", "priority": 1}],
            "nameservers": [s.nameserver() for s in servers],
            "targets": [
                bind.pool_target(masters),
                knot.pool_target(masters),
                pdns.pool_target(masters),
                nsd.pool_target(masters),
            ],
        }
    )
    deployment.start_mdns()
    deployment.start_conductor()

    deployment.cli("zone", "create", ZONE, "--email", "hostmaster@mixed.example", "--wait")
    deployment.cli(
        "recordset", "create", ZONE, f"www.{ZONE}", "A", "--record", "192.0.2.80", "--wait"
    )
    shown = _show(deployment, ZONE)
    assert shown["status"] == "ACTIVE"
    for server in servers:
        assert soa_serial(ZONE, server.host, server.port) == shown["serial"], server.name
        assert answer(f"www.{ZONE}", "A", server.host, server.port) == (
            dns.rcode.NOERROR,
            {"192.0.2.80"},
        ), server.name

    # One of four down: 3 of 4 nameservers serve, which meets 75%.
    pdns.stop()
    deployment.cli("zone", "create", LATER, "--email", "hostmaster@later.example", "--wait")
    later = _show(deployment, LATER)
    assert later["status"] == "ACTIVE"
    for server in (bind, knot, nsd):
        assert soa_serial(LATER, server.host, server.port) == later["serial"], server.name

    deployment.cli("zone", "delete", ZONE, "--wait")
    for server in (bind, knot, nsd):
        eventually(
            lambda server=server: (
                answer(ZONE, "SOA", server.host, server.port)[0]
                in (dns.rcode.REFUSED, dns.rcode.NOTAUTH)
            ),
            timeout=10,
            what=f"{server.name} to stop answering for {ZONE}",
        )
