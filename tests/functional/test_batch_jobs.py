"""Jobs carrying the creates, updates, deletes or recoveries of several zones
(create-zones, update-zones, delete-zones, recover-zones), as deployed: real
ZooKeeper and PostgreSQL, ``zoneflow conductor`` processes, and BIND9 targets.

The changes are made in this process, through central, while no conductor
runs: they wait in the outbox, and the first relay to claim them (the
conductor's, once started) puts them in one job, as under load.
"""

from __future__ import annotations

import json
import pathlib
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from tests import support
from tests.functional.conftest import Bind9Factory
from tests.functional.deployment import (
    Deployment,
    answer,
    fake_calls,
    fast_and_slow_pool,
    soa_serial,
)
from tests.functional.fixtures.zookeeper import ZooKeeperServer
from tests.support import eventually
from zoneflow.jobs import steps

EMAIL = "hostmaster@batch.example"
SLOW_SECONDS = 2


@pytest.fixture
def user_config() -> Iterator[None]:
    """This process plays the users on the deployment's config; default config after."""
    from zoneflow import config

    yield
    config.setup([])


def _as_users(deployment: Deployment) -> None:
    from zoneflow import config

    config.setup([str(deployment.conf)])


def _zones_active(deployment: Deployment, names: list[str], serials: dict[str, int]) -> None:
    def settled() -> bool:
        stored = [deployment.stored_zone(name) or {} for name in names]
        return all(
            z.get("status") == "ACTIVE" and z.get("serial") == serials.get(name, z.get("serial"))
            for name, z in zip(names, stored, strict=True)
        )

    eventually(
        settled,
        timeout=90,
        interval=0.3,
        what=lambda: f"every zone ACTIVE: {[deployment.stored_zone(n) for n in names]}",
    )


def _bind9_pool(deployment: Deployment, binds: list[Any], threshold: int = 100) -> None:
    """A pool of these BIND9 servers, mdns for them to transfer from, and this
    process set to play the users."""
    deployment.load_pool(
        {
            "name": "default",
            "threshold_percentage": threshold,
            "ns_records": [{"hostname": "ns1.batch.example.", "priority": 1}],
            "nameservers": [b.nameserver() for b in binds],
            "targets": [b.pool_target(deployment.masters()) for b in binds],
        }
    )
    deployment.start_mdns()
    _as_users(deployment)


def _create(deployment: Deployment, names: list[str]) -> dict[str, str]:
    """The zones made ACTIVE by a conductor that is stopped after: name -> id."""
    from zoneflow.central import zones as central_zones

    ids = {name: central_zones.create_zone(name, EMAIL).id for name in names}
    deployment.start_conductor("creator")
    _zones_active(deployment, names, {})
    deployment.kill("creator", signal.SIGTERM)
    return ids


def _update(ids: dict[str, str], address: str) -> dict[str, int]:
    """Each zone's www A record set to ``address``, left in the outbox: name -> serial."""
    from zoneflow.central import recordsets as central_recordsets

    return {
        name: central_recordsets.create_recordset(zone_id, "www", "A", [address]).serial
        for name, zone_id in ids.items()
    }


def _jobs(deployment: Deployment, kind: str) -> list[dict[str, Any]]:
    listed = json.loads(deployment.cli("--json", "job", "list", "--limit", "0").stdout)
    return [job for job in listed if job["kind"] == kind]


def _ended(deployment: Deployment, kind: str) -> list[dict[str, Any]]:
    """The jobs of ``kind``, once all have ended: the zones' statuses are written
    before a job's end is stored."""
    return support.eventually(
        lambda: (
            (found := _jobs(deployment, kind))
            and all(job["state"] in ("SUCCESS", "FAILURE", "REVERTED") for job in found)
            and found
        ),
        timeout=30,
        interval=0.5,
        what="the batch to end",
    )


def _fast_and_slow(
    workdir: pathlib.Path, database: str, zookeeper: ZooKeeperServer, record: pathlib.Path
) -> Deployment:
    """A deployment on a pool of two fake targets recording their calls in ``record``,
    one slow (fast_and_slow_pool), whose conductors lose their jobs 2 s after a
    SIGKILL; this process set to play the users."""
    deployment = Deployment(
        workdir, database=database, zookeeper_hosts=zookeeper.hosts, session_timeout=2
    )
    deployment.load_pool(fast_and_slow_pool("ns1.batch.example.", record, SLOW_SECONDS))
    _as_users(deployment)
    return deployment


@pytest.mark.usefixtures("user_config")
def test_a_batch_resumes_after_kill_9_and_redoes_only_the_target_in_flight(
    tmp_path: pathlib.Path, postgres_database: str, zookeeper: ZooKeeperServer
) -> None:
    names = [f"z{i}.resume-batch.example." for i in range(3)]
    record = tmp_path / "calls.jsonl"
    deployment = _fast_and_slow(tmp_path, postgres_database, zookeeper, record)
    try:
        ids = _create(deployment, names)
        serials = _update(ids, "192.0.2.10")

        first = deployment.start_conductor("first")
        # The fast target has every zone updated and its step stored as done; the
        # slow one is still at its first zone.
        eventually(
            lambda: sum(c["op"] == "update" for c in fake_calls(record)) == len(names),
            timeout=30,
            what="the fast target's updates",
        )
        fast = next(c["target"] for c in fake_calls(record) if c["op"] == "update")
        eventually(
            lambda: deployment.step_stored_done(steps.on_target("update", fast).name),
            timeout=30,
            what="the fast target's step stored",
        )
        deployment.kill("first")

        second = deployment.start_conductor("second")
        _zones_active(deployment, names, serials)
        updates = [c for c in fake_calls(record) if c["op"] == "update"]
        on_fast = sorted((c["zone"], c["pid"]) for c in updates if c["target"] == fast)
        assert on_fast == [(name, first.pid) for name in names], "the fast target ran once"
        by_second = {c["zone"] for c in updates if c["target"] != fast and c["pid"] == second.pid}
        assert by_second == set(names), "the second conductor redid the slow target's task"

        (job,) = _ended(deployment, "update-zones")
        assert (job["state"], job["lost_attempts"]) == ("SUCCESS", 1)
        assert {(z["name"], z["serial"]) for z in job["zones"]} == set(serials.items())
    finally:
        deployment.close()


@pytest.mark.usefixtures("user_config")
def test_a_recovery_batch_resumes_after_kill_9_and_redoes_only_the_target_in_flight(
    tmp_path: pathlib.Path, postgres_database: str, zookeeper: ZooKeeperServer
) -> None:
    from zoneflow import objects
    from zoneflow.central import zones as central_zones
    from zoneflow.storage import pools as stored_pools
    from zoneflow.storage import status as stored_status

    names = [f"z{i}.resume-recovery.example." for i in range(3)]
    record = tmp_path / "calls.jsonl"
    deployment = _fast_and_slow(tmp_path, postgres_database, zookeeper, record)
    try:
        ids = _create(deployment, names)
        # Every zone in ERROR, lost by both targets (as a restore of both from an old
        # backup would leave them); recovered together while no conductor runs.
        targets = [t.id for t in stored_pools.get_pool("default").targets]
        for name, zone_id in ids.items():
            lost = [(target, 0, objects.Status.ERROR, "lost") for target in targets]
            stored_status.set_target_statuses(zone_id, lost)
            serial = deployment.stored_zone(name)["serial"]
            stored_status.set_zone_status(zone_id, serial=serial, status=objects.Status.ERROR)
            central_zones.recover_zone(name)
        created = len(fake_calls(record))

        first = deployment.start_conductor("first")
        # The fast target has every zone made again and its step stored as done; the
        # slow one is still at its first zone.
        eventually(
            lambda: len(fake_calls(record)) - created >= len(names),
            timeout=30,
            what="the fast target's creates",
        )
        fast = fake_calls(record)[created]["target"]
        eventually(
            lambda: deployment.step_stored_done(steps.on_target("recover", fast).name),
            timeout=30,
            what="the fast target's step stored",
        )
        deployment.kill("first")

        second = deployment.start_conductor("second")
        _zones_active(deployment, names, {})
        again = fake_calls(record)[created:]
        on_fast = sorted((c["zone"], c["pid"]) for c in again if c["target"] == fast)
        assert on_fast == [(name, first.pid) for name in names], "the fast target ran once"
        by_second = {c["zone"] for c in again if c["target"] != fast and c["pid"] == second.pid}
        assert by_second == set(names), "the second conductor redid the slow target's task"

        (job,) = _ended(deployment, "recover-zones")
        assert (job["state"], job["lost_attempts"]) == ("SUCCESS", 1)
        assert sorted(z["name"] for z in job["zones"]) == names
    finally:
        deployment.close()


@pytest.mark.usefixtures("user_config")
def test_bind9_serves_every_zone_a_batch_carries(
    tmp_path: pathlib.Path,
    postgres_database: str,
    zookeeper: ZooKeeperServer,
    bind9_factory: Bind9Factory,
) -> None:
    names = [f"z{i}.bind-batch.example." for i in range(5)]
    binds = bind9_factory(2)
    deployment = Deployment(tmp_path, database=postgres_database, zookeeper_hosts=zookeeper.hosts)
    try:
        _bind9_pool(deployment, binds)
        ids = _create(deployment, names)
        serials = _update(ids, "192.0.2.20")
        deployment.start_api()  # its relay, like the conductor's, posts what it claims

        deployment.start_conductor("batcher")
        _zones_active(deployment, names, serials)
        for bind in binds:
            for name in names:
                assert soa_serial(name, bind.host, bind.port) == serials[name]
                assert answer(f"www.{name}", "A", bind.host, bind.port)[1] == {"192.0.2.20"}
        (job,) = _ended(deployment, "update-zones")
        assert job["state"] == "SUCCESS"
        assert sorted(z["name"] for z in job["zones"]) == names
        # Each zone's jobs, asked by any zone of the batch, hold the batch.
        for zone_id in ids.values():
            listed = deployment.api("GET", f"/v2/jobs?zone_id={zone_id}", all_projects=True)
            assert job["id"] in [j["id"] for j in listed["jobs"]]
        # So do the CLI's, by the zone's name or id, with the zone's create job.
        for zone in (names[3], ids[names[3]]):
            found = json.loads(deployment.cli("--json", "job", "list", "--zone", zone).stdout)
            kinds = sorted(j["kind"] for j in found)
            assert kinds in (["create-zone", "update-zones"], ["create-zones", "update-zones"])
            assert job["id"] in [j["id"] for j in found]
        only = deployment.cli("--json", "job", "list", "--zone", names[3], "--kind", "update-zones")
        assert [j["id"] for j in json.loads(only.stdout)] == [job["id"]]
        assert (
            json.loads(deployment.cli("--json", "job", "list", "--state", "failure").stdout) == []
        )
    finally:
        deployment.close()


@pytest.mark.usefixtures("user_config")
def test_bind9_serves_a_batch_of_creates_and_drops_a_batch_of_deletes(
    tmp_path: pathlib.Path,
    postgres_database: str,
    zookeeper: ZooKeeperServer,
    bind9_factory: Bind9Factory,
) -> None:
    """Zones created, then deleted, while no conductor runs: the first conductor's
    relay claims each lot at once and puts it in one create-zones, then one
    delete-zones job; real BIND9 serves, then refuses, every zone."""
    from zoneflow.central import zones as central_zones

    names = [f"z{i}.bind-lots.example." for i in range(5)]
    binds = bind9_factory(2)
    deployment = Deployment(tmp_path, database=postgres_database, zookeeper_hosts=zookeeper.hosts)
    try:
        _bind9_pool(deployment, binds)
        ids = _create(deployment, names)
        (created,) = _ended(deployment, "create-zones")
        assert created["state"] == "SUCCESS"
        assert sorted(z["name"] for z in created["zones"]) == names
        stored = {name: deployment.stored_zone(name) or {} for name in names}
        for bind in binds:
            for name in names:
                assert soa_serial(name, bind.host, bind.port) == stored[name]["serial"]

        for name in names:
            central_zones.delete_zone(name)
        deployment.start_conductor("deleter")
        eventually(
            lambda: all(deployment.stored_zone(name) is None for name in names),
            timeout=90,
            interval=0.3,
            what="every zone deleted",
        )
        (deleted,) = _ended(deployment, "delete-zones")
        assert deleted["state"] == "SUCCESS"
        assert {z["id"] for z in deleted["zones"]} == set(ids.values())
        for bind in binds:
            for name in names:
                assert soa_serial(name, bind.host, bind.port) is None, f"{name} still served"
    finally:
        deployment.close()


@pytest.mark.usefixtures("user_config")
def test_a_batch_tries_a_dead_bind9_for_one_zone_and_each_zone_reaches_it_when_it_is_back(
    tmp_path: pathlib.Path,
    postgres_database: str,
    zookeeper: ZooKeeperServer,
    bind9_factory: Bind9Factory,
) -> None:
    """A BIND9 that does not answer fails a create-zones job's first zone after its
    tries and the others untried (each would have waited out its own tries); at a
    threshold of 50 % every zone is ACTIVE on the other, and once the dead BIND9 is
    back (the inspector sees it) every zone reaches it with no operator."""
    from zoneflow.central import zones as central_zones

    names = [f"z{i}.bind-dead.example." for i in range(5)]
    alive, dead = bind9_factory(2)
    deployment = Deployment(tmp_path, database=postgres_database, zookeeper_hosts=zookeeper.hosts)
    try:
        _bind9_pool(deployment, [alive, dead], threshold=50)
        dead.kill()
        ids = {name: central_zones.create_zone(name, EMAIL).id for name in names}
        # Started once every create waits: the first relay to claim takes them all.
        deployment.start_api()
        deployment.start("inspector", "inspector")
        deployment.start_conductor("batcher")
        _zones_active(deployment, names, {})
        (created,) = _ended(deployment, "create-zones")
        assert sorted(z["name"] for z in created["zones"]) == names
        serials = {name: deployment.stored_serial(name) for name in names}
        for name in names:
            assert soa_serial(name, alive.host, alive.port) == serials[name]

        def target_rows(zone_id: str) -> list[dict[str, Any]]:
            path = f"/v2/zones/{zone_id}/status"
            return deployment.api("GET", path, all_projects=True)["targets"]

        errors = {}
        for name, zone_id in ids.items():
            (row,) = [r for r in target_rows(zone_id) if r["status"] != "ACTIVE"]
            errors[name] = row["error"]
        tried = [name for name, error in errors.items() if not error.startswith("not tried")]
        assert len(tried) == 1, errors
        assert "rndc cannot connect" in errors[tried[0]]
        for name in set(names) - set(tried):
            assert errors[name].startswith(f"not tried: the target did not answer for {tried[0]}")

        dead.start()
        for name in names:
            eventually(
                lambda name=name: soa_serial(name, dead.host, dead.port) == serials[name],
                timeout=60,
                interval=0.2,
                what=f"{name} served by the BIND9 that came back",
                ignore=(OSError,),
            )
        for zone_id in ids.values():
            eventually(
                lambda zone_id=zone_id: (
                    {(r["status"], r["current"]) for r in target_rows(zone_id)}
                    == {("ACTIVE", True)}
                ),
                timeout=30,
                what="every target's row ACTIVE and current",
            )
    finally:
        deployment.close()
