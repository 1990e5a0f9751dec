"""`zoneflow targets up`: a pool of your own, as README's "Using it" shows it.

The command runs local nameservers and writes their pools.yaml; loaded with
`pool update` and served by `zoneflow all-in-one`, a zone created with the
CLI is served by every one of them. SIGTERM or SIGHUP then stops them all.
"""

from __future__ import annotations

import json
import pathlib
import signal

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import yaml

from tests.functional import foreground
from tests.functional.deployment import Deployment
from tests.functional.fixtures.ports import HOST
from tests.support import eventually

ZONE = "mine.example."


def _serial_served(port: int) -> int | None:
    query = dns.message.make_query(ZONE, dns.rdatatype.SOA)
    answer = dns.query.udp(query, HOST, port=port, timeout=2)
    if answer.rcode() != dns.rcode.NOERROR or not answer.answer:
        return None
    return int(answer.answer[0][0].serial)


@pytest.mark.parametrize(
    ("kind", "sig"), [("bind9", signal.SIGTERM), ("knot", signal.SIGHUP)], ids=["bind9", "knot"]
)
def test_targets_up_runs_a_pool_that_serves_zones_and_stops_on_a_signal(
    tmp_path: pathlib.Path, kind: str, sig: signal.Signals
) -> None:
    deployment = Deployment(
        tmp_path, database=f"sqlite:///{tmp_path}/zoneflow.sqlite", zookeeper_hosts=None
    )
    try:
        targets_dir = tmp_path / "targets"
        up = deployment.start(
            "targets", "targets", "up", "--kind", kind, "--count", "2", "--dir", str(targets_dir)
        )
        eventually(
            lambda: up.poll() is not None or "serving until" in deployment.log("targets"),
            timeout=60,
            what="targets up to serve",
        )
        assert up.poll() is None, deployment.log("targets")
        servers = foreground.children(up.pid)
        assert len(servers) == 2, f"expected two {kind} servers, found pids {servers}"
        pools_file = targets_dir / "pools.yaml"
        assert f"zoneflow pool update --file {pools_file}" in deployment.log("targets")

        deployment.cli("db", "sync")
        loaded = deployment.cli("pool", "update", "--file", str(pools_file)).stdout
        assert "pool default: 2 target(s), 2 nameserver(s)" in loaded
        allinone = deployment.start("all-in-one", "all-in-one")
        eventually(
            lambda: deployment.mdns_answers(allinone, "all-in-one"),
            timeout=60,
            what="all-in-one's mdns to answer",
            ignore=(OSError, dns.exception.Timeout),
        )
        created = deployment.cli(
            "--json", "zone", "create", ZONE, "--email", "me@mine.example", "--wait"
        ).stdout
        assert json.loads(created)["status"] == "ACTIVE", created
        serial = json.loads(created)["serial"]
        for port in _nameserver_ports(pools_file):
            assert _serial_served(port) == serial, f"{kind} on port {port} lacks {ZONE}"

        code = foreground.stop_and_check(up, sig, servers, foreground.pool_ports(pools_file))
        assert code == 0, deployment.log("targets")
        assert "stopped every server" in deployment.log("targets")
    finally:
        deployment.close()


def _nameserver_ports(pools_file: pathlib.Path) -> list[int]:
    (pool,) = yaml.safe_load(pools_file.read_text())
    return [int(nameserver["port"]) for nameserver in pool["nameservers"]]
