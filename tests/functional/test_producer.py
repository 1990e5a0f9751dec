"""The producer against real servers: BIND9 targets, ZooKeeper, PostgreSQL.

- the audit restores a zone removed by hand (``rndc delzone``) from one
  target, removes a deleted zone from a target that missed the delete, and
  leaves a zone zoneflow never managed (``rndc addzone`` by hand) alone;
- three producers share the shards; one SIGKILLed, its shards move to the
  other two within seconds, and each zone left in ERROR is recovered by
  exactly one recover-zone job.

Assertions are about what each BIND9 answers, what BIND9 logged of the rndc
commands it received, the heartbeats in ``/v2/service_statuses`` and the
jobs ``zoneflow job list`` shows.
"""

from __future__ import annotations

import json
import pathlib
import re
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import dns.rcode
import pytest

from tests.functional.conftest import Bind9Factory
from tests.functional.deployment import Deployment, answer, soa_serial
from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.fixtures.zookeeper import ZooKeeperServer
from tests.support import eventually
from zoneflow.producer import shards

AUDIT_INTERVAL = 4.0
SHARDS = 12
SESSION_TIMEOUT = 4.0
RECOVERY_INTERVAL = 15


def _deployment(
    tmp_path: pathlib.Path, database: str, zookeeper: ZooKeeperServer, producer: dict
) -> Deployment:
    return Deployment(
        tmp_path,
        database=database,
        zookeeper_hosts=zookeeper.hosts,
        session_timeout=SESSION_TIMEOUT,
        extra_conf={
            # A party of this test's own on the worker's shared ZooKeeper.
            "producer": {
                "shards": SHARDS,
                "rebalance_wait": 0.5,
                "shard_path": f"/test-{uuid.uuid4().hex}/shards",
                **producer,
            },
            "heartbeat": {"interval": 0.5},
            "flows": {"poll_timeout": 4},
        },
    )


@pytest.fixture
def auditing(
    tmp_path: pathlib.Path, postgres_database: str, zookeeper: ZooKeeperServer
) -> Iterator[Deployment]:
    """A deployment whose producer audits every AUDIT_INTERVAL seconds (no recovery
    pass: what is repaired here is the audit's doing)."""
    deployment = _deployment(
        tmp_path,
        postgres_database,
        zookeeper,
        {"audit_interval": AUDIT_INTERVAL, "recovery_interval": 0, "audit_timeout": 0.5},
    )
    yield deployment
    deployment.close()


def _pool(deployment: Deployment, binds: list[Bind9Server], *, threshold: int) -> None:
    deployment.load_pool(
        {
            "name": "default",
            "threshold_percentage": threshold,
            "ns_records": [{"hostname": "ns1.producer.example.", "priority": 1}],
            "nameservers": [b.nameserver() for b in binds],
            "targets": [b.pool_target(deployment.masters()) for b in binds],
        }
    )
    deployment.start_mdns()
    deployment.start_conductor()


def _create(deployment: Deployment, name: str) -> int:
    zone = json.loads(
        deployment.cli(
            "--json", "zone", "create", name, "--email", "hostmaster@producer.example", "--wait"
        ).stdout
    )
    assert zone["status"] == "ACTIVE", zone
    return int(zone["serial"])


def _refused(name: str, bind: Bind9Server) -> bool:
    return answer(name, "SOA", bind.host, bind.port)[0] == dns.rcode.REFUSED


def _rndc_commands(bind: Bind9Server, name: str) -> list[str]:
    return [
        line
        for line in bind.log_path.read_text(errors="replace").splitlines()
        if "received control channel command" in line and name.rstrip(".") in line
    ]


def _add_by_hand(bind: Bind9Server, name: str, serial: int) -> None:
    """A primary zone added with rndc addzone, from a zone file of its own."""
    path = bind.workdir / f"hand-{name}db"
    path.write_text(
        # An NS outside the zone: one inside would need an address record.
        f"$TTL 300\n@ IN SOA ns1.elsewhere.example. hostmaster.{name} {serial} 3600 600 "
        "86400 300\n@ IN NS ns1.elsewhere.example.\n"
    )
    bind.rndc("addzone", name, f'{{ type primary; file "{path}"; }};')
    eventually(lambda: soa_serial(name, bind.host, bind.port) == serial, timeout=30)


def _jobs(deployment: Deployment) -> list[dict]:
    return json.loads(deployment.cli("--json", "job", "list").stdout)


def test_the_audit_restores_a_zone_deleted_by_hand_and_leaves_an_unmanaged_zone_alone(
    auditing: Deployment, bind9_factory: Bind9Factory
) -> None:
    first, second = bind9_factory(2)
    _pool(auditing, [first, second], threshold=100)
    serial = _create(auditing, "kept.producer.example.")
    _add_by_hand(first, "hand.producer.example.", 77)
    auditing.start_api()
    auditing.start("producer", "producer")

    second.rndc("delzone", "kept.producer.example.")
    removed_at = time.monotonic()
    assert _refused("kept.producer.example.", second)

    eventually(
        lambda: soa_serial("kept.producer.example.", second.host, second.port) == serial,
        timeout=120,
        what="the audit to restore the zone on the BIND9 it was deleted from",
    )
    restored_after = time.monotonic() - removed_at
    print(f"restored {restored_after:.1f} s after rndc delzone (audit interval {AUDIT_INTERVAL})")
    assert soa_serial("kept.producer.example.", first.host, first.port) == serial
    recoveries = [j for j in _jobs(auditing) if j["kind"] == "recover-zone"]
    assert len(recoveries) == 1, recoveries
    kept = auditing.stored_zone("kept.producer.example.")
    assert kept is not None
    eventually(
        lambda: (
            {
                (r["status"], r["serial"])
                for r in auditing.api("GET", f"/v2/zones/{kept['id']}/status", all_projects=True)[
                    "targets"
                ]
            }
            == {("ACTIVE", serial)}
        ),
        timeout=60,
        what="both targets' rows ACTIVE at the serial",
    )

    # Two more audits later, the zone zoneflow never managed is still served
    # as it was, and no rndc command ever named it but the operator's own.
    audits = _audits(auditing)
    eventually(lambda: _audits(auditing) >= audits + 2, timeout=60, what="two more audits")
    assert soa_serial("hand.producer.example.", first.host, first.port) == 77
    assert len(_rndc_commands(first, "hand.producer.example.")) == 1
    assert _rndc_commands(second, "hand.producer.example.") == []


def _producers(deployment: Deployment) -> dict[str, dict]:
    """The producers' heartbeats (``/v2/service_statuses``), by hostname."""
    found = deployment.api("GET", "/v2/service_statuses?limit=1000")["service_statuses"]
    return {s["hostname"]: s for s in found if s["service_name"] == "producer"}


def _hostname(deployment: Deployment, name: str) -> str:
    return f"{socket.gethostname()}-{deployment.processes[name].pid}"


def _audits(deployment: Deployment) -> int:
    return sum(int(s["stats"].get("audits", 0)) for s in _producers(deployment).values())


def test_the_audit_removes_a_deleted_zone_from_a_target_that_missed_the_delete(
    auditing: Deployment, bind9_factory: Bind9Factory
) -> None:
    first, second = bind9_factory(2)
    # 50%: the delete succeeds on the one target it reaches.
    _pool(auditing, [first, second], threshold=50)
    name = "gone.producer.example."
    _create(auditing, name)
    # The secondary's copy on disk, so that it serves the zone again after a restart.
    eventually(
        lambda: list(second.workdir.glob("zoneflow-gone.producer.example-*.db")),
        timeout=30,
        what="BIND9 to write the zone's file",
    )
    second.kill()
    auditing.cli("zone", "delete", name, "--wait")
    assert _refused(name, first)
    second.start()
    assert soa_serial(name, second.host, second.port) is not None, (
        "the restarted BIND9 serves the zone whose delete it missed"
    )

    auditing.start_api()
    auditing.start("producer", "producer")
    eventually(
        lambda: _refused(name, second),
        timeout=120,
        what="the audit to remove the deleted zone from the BIND9 that missed the delete",
    )
    assert any("delzone" in line for line in _rndc_commands(second, name))
    assert _refused(name, first)
    assert json.loads(auditing.cli("--json", "zone", "list").stdout) == []


@pytest.fixture
def recovering(
    tmp_path: pathlib.Path, postgres_database: str, zookeeper: ZooKeeperServer
) -> Iterator[Deployment]:
    """A deployment whose producers only recover, first RECOVERY_INTERVAL seconds
    after they start: time enough to kill one before it recovers anything."""
    deployment = _deployment(
        tmp_path,
        postgres_database,
        zookeeper,
        {"recovery_interval": RECOVERY_INTERVAL, "audit_interval": 0, "purge_interval": 0},
    )
    yield deployment
    deployment.close()


def test_three_producers_one_killed_its_shards_move_and_each_zone_is_recovered_once(
    recovering: Deployment, bind9_factory: Bind9Factory
) -> None:
    (bind,) = bind9_factory(1)
    _pool(recovering, [bind], threshold=100)
    recovering.start_api()

    # Zones left in ERROR: their creates failed on the dead target.
    bind.kill()
    names = [f"z{i}.producer.example." for i in range(24)]
    ids = recovering.api_create_zones(names, "hostmaster@producer.example")
    eventually(
        lambda: set(recovering.api_zone_statuses().values()) == {"ERROR"},
        timeout=120,
        what="every create to fail",
    )
    bind.start()

    for name in ("p1", "p2", "p3"):
        recovering.start(name, "producer")
    hosts = {name: _hostname(recovering, name) for name in ("p1", "p2", "p3")}
    held: dict[str, int] = {}

    def shared(among: tuple[str, ...]) -> bool:
        beats = _producers(recovering)
        held.clear()
        held.update(
            {n: int(beats.get(hosts[n], {}).get("stats", {}).get("shards_held", 0)) for n in among}
        )
        return all(held.values()) and sum(held.values()) == SHARDS

    eventually(lambda: shared(("p1", "p2", "p3")), timeout=60, what=lambda: f"shares {held}")
    killed_shards = _shards_in_log(recovering, "p3")
    recovering.kill("p3")
    killed_at = time.monotonic()
    eventually(lambda: shared(("p1", "p2")), timeout=60, what=lambda: f"shares {held}")
    moved_after = time.monotonic() - killed_at
    print(f"p3's shards moved {moved_after:.1f} s after its SIGKILL (session {SESSION_TIMEOUT} s)")
    assert moved_after < SESSION_TIMEOUT + 10

    eventually(
        lambda: set(recovering.api_zone_statuses().values()) == {"ACTIVE"},
        timeout=180,
        what=lambda: f"every zone recovered: {Counter(recovering.api_zone_statuses().values())}",
    )
    for name in names:
        assert soa_serial(name, bind.host, bind.port) is not None, name
    recoveries = Counter(
        zone["name"]
        for job in _jobs(recovering)
        if job["kind"] in ("recover-zone", "recover-zones")
        for zone in job["zones"]
    )
    assert recoveries == Counter(names), "each zone recovered by exactly one job"
    in_killed = [n for n in names if shards.shard_of(ids[n], SHARDS) in killed_shards]
    assert in_killed, f"no zone fell in the killed producer's shards {killed_shards}"
    # Who recovered what, from the producers' logs: each zone once, and the
    # killed producer's zones by the two others.
    recovered_by = {
        name: re.findall(r"recovering (\S+) \(ERROR", recovering.log(name))
        for name in ("p1", "p2", "p3")
    }
    assert sorted(sum(recovered_by.values(), [])) == sorted(names)
    assert recovered_by["p3"] == [], "killed before its first recovery pass"
    assert set(in_killed) <= set(recovered_by["p1"] + recovered_by["p2"])


def _shards_in_log(deployment: Deployment, name: str) -> set[int]:
    """The shards a producer said it held last (its log names them)."""
    lines = re.findall(r"now holds \d+ of \d+ shards: \[([\d, ]*)\]", deployment.log(name))
    assert lines, deployment.log(name)
    return {int(n) for n in lines[-1].split(",") if n.strip()}


def test_all_in_one_runs_a_producer_whose_audit_restores_a_zone_deleted_by_hand(
    tmp_path: pathlib.Path, bind9: Bind9Server
) -> None:
    """The embedded default (SQLite, zake): the producer holds every shard alone."""
    deployment = Deployment(
        tmp_path,
        database=f"sqlite:///{tmp_path}/zoneflow.sqlite",
        zookeeper_hosts=None,
        extra_conf={
            "producer": {"audit_interval": AUDIT_INTERVAL, "audit_timeout": 0.5},
            "heartbeat": {"interval": 0.5},
            "flows": {"poll_timeout": 4},
        },
    )
    try:
        deployment.load_pool(
            {
                "name": "default",
                "ns_records": [{"hostname": "ns1.producer.example.", "priority": 1}],
                "nameservers": [bind9.nameserver()],
                "targets": [bind9.pool_target(deployment.masters())],
            }
        )
        process = deployment.start("aio", "all-in-one")
        eventually(
            lambda: process.poll() is None and "all-in-one running" in deployment.log("aio"),
            timeout=60,
            what=lambda: f"all-in-one to run:\n{deployment.log('aio')}",
        )
        serial = _create(deployment, "aio.producer.example.")
        bind9.rndc("delzone", "aio.producer.example.")
        assert _refused("aio.producer.example.", bind9)
        eventually(
            lambda: soa_serial("aio.producer.example.", bind9.host, bind9.port) == serial,
            timeout=120,
            what="the all-in-one's audit to restore the zone",
        )
        (beat,) = _producers(deployment).values()
        assert (beat["status"], beat["stats"]["shards_held"]) == ("UP", 64)
    finally:
        deployment.close()
