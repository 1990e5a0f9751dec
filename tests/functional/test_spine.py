"""The whole data path with real servers: CLI → PostgreSQL → ZooKeeper → conductor → BIND9.

Every assertion is about what the nameservers answer to DNS queries or what
the database holds, never about what zoneflow says of itself.
"""

from __future__ import annotations

import json

import dns.rcode

from tests.functional.conftest import Bind9Factory
from tests.functional.deployment import Deployment, answer, soa_serial

ZONE = "spine.example."

# Every command and daemon a fresh interpreter (not forked from the fork server):
# the spine runs as a user runs it. Its failures (test_spine_failures.py) run forked:
# a fresh interpreter costs a second or two of CPU for each command.
FRESH_INTERPRETERS = True


def _pool(deployment: Deployment, binds: list, *, threshold: int = 100) -> dict:
    return {
        "name": "default",
        "threshold_percentage": threshold,
        "ns_records": [{"hostname": "ns1.spine.example.", "priority": 1}],
        "nameservers": [b.nameserver() for b in binds],
        "targets": [b.pool_target(deployment.masters()) for b in binds],
    }


def _stored_serial(deployment: Deployment, zone: str) -> int:
    shown = json.loads(deployment.cli("--json", "zone", "show", zone).stdout)
    return int(shown["serial"])


def test_zone_lifecycle_through_the_cli_is_served_by_both_bind9(
    deployment: Deployment, bind9_factory: Bind9Factory
) -> None:
    binds = bind9_factory(2)
    deployment.load_pool(_pool(deployment, binds))
    deployment.start_mdns()
    deployment.start_conductor()

    deployment.cli("zone", "create", ZONE, "--email", "hostmaster@spine.example", "--wait")
    for args in (
        (f"www.{ZONE}", "A", "--record", "192.0.2.10", "--record", "192.0.2.11"),
        (f"www.{ZONE}", "AAAA", "--record", "2001:db8::10"),
        (ZONE, "MX", "--record", "10 mail.spine.example."),
        (ZONE, "TXT", "--record", '"v=spf1 -all"'),
    ):
        deployment.cli("recordset", "create", ZONE, *args, "--wait")

    serial = _stored_serial(deployment, ZONE)
    status = json.loads(deployment.cli("--json", "zone", "show", ZONE).stdout)["status"]
    assert status == "ACTIVE"
    for bind in binds:
        assert soa_serial(ZONE, bind.host, bind.port) == serial
        assert answer(f"www.{ZONE}", "A", bind.host, bind.port) == (
            dns.rcode.NOERROR,
            {"192.0.2.10", "192.0.2.11"},
        )
        assert answer(f"www.{ZONE}", "AAAA", bind.host, bind.port)[1] == {"2001:db8::10"}
        assert answer(ZONE, "MX", bind.host, bind.port)[1] == {"10 mail.spine.example."}
        assert answer(ZONE, "TXT", bind.host, bind.port)[1] == {'"v=spf1 -all"'}

    deployment.cli(
        "recordset", "create", ZONE, f"api.{ZONE}", "A", "--record", "192.0.2.80", "--wait"
    )
    newer = _stored_serial(deployment, ZONE)
    assert newer > serial
    for bind in binds:
        assert soa_serial(ZONE, bind.host, bind.port) == newer
        assert answer(f"api.{ZONE}", "A", bind.host, bind.port)[1] == {"192.0.2.80"}

    status_rows = json.loads(deployment.cli("--json", "zone", "status", ZONE).stdout)
    assert sorted((r["serial"], r["status"]) for r in status_rows) == [(newer, "ACTIVE")] * 2

    deployment.cli("zone", "delete", ZONE, "--wait")
    for bind in binds:
        assert answer(ZONE, "SOA", bind.host, bind.port)[0] == dns.rcode.REFUSED
    listed = deployment.cli("zone", "list").stdout
    assert ZONE not in listed
