"""The propagation model with real servers: a row written in another process
reaches ``zoneflow api``'s model through PostgreSQL's NOTIFY; a real BIND9
transferring a zone from mdns (AXFR, then IXFR after a NOTIFY) shows in the
model as served, with no job recording anything.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import dns.rcode
import pytest

from tests import support
from tests.functional.deployment import Deployment
from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.test_mdns_bind9 import add_secondary, served_serial
from zoneflow import events, model, objects
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import status as central_status
from zoneflow.central import zones as central_zones
from zoneflow.dns import query
from zoneflow.mdns import server as mdns_server
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import status as stored_status

ZONE = "example.com."


@pytest.fixture
def api_on_postgres(tmp_path: pathlib.Path, postgres_database: str) -> Iterator[Deployment]:
    """``zoneflow api`` on PostgreSQL with the postgres event driver, its poll interval a
    minute: within a test, only a NOTIFY can wake its model. No conductor."""
    deployment = Deployment(
        tmp_path,
        database=postgres_database,
        zookeeper_hosts=None,
        extra_conf={"events": {"driver": "postgres", "poll_interval": 60}},
    )
    deployment.load_pool(
        {
            "name": "default",
            "ns_records": [{"hostname": "ns1.example.org.", "priority": 1}],
            "targets": [{"type": "fake", "description": "fake1"}],
        }
    )
    deployment.start_api()
    # This process writes as the audit or the inspector would, in another process.
    with support.database(postgres_database):
        yield deployment
    deployment.close()


def _target(shown: dict[str, Any]) -> dict[str, Any]:
    (target,) = shown["targets"]
    return target


def test_a_row_written_in_another_process_reaches_the_apis_model_by_notify(
    api_on_postgres: Deployment,
) -> None:
    deployment = api_on_postgres
    zone = deployment.api("POST", "/v2/zones", {"name": ZONE, "email": "h@example.com"})
    url = f"/v2/zones/{zone['id']}/status"
    # No conductor: nothing has reached the target.
    assert _target(deployment.api("GET", url))["status"] == "PENDING"
    pool = stored_pools.get_pool("default")
    (fake,) = pool.targets
    pool_url = f"/v2/pools/{pool.id}/status"
    assert _target(deployment.api("GET", pool_url))["missing"] == 1

    stored_status.set_target_status(
        zone["id"], fake.id, serial=zone["serial"], status=objects.Status.ACTIVE
    )
    shown = support.eventually(
        lambda: (t := _target(deployment.api("GET", url)))["current"] and t,
        timeout=30,
        what="the API's model to take the row written in this process",
    )
    assert (shown["serial"], shown["seen_by"]) == (zone["serial"], "recorded")
    assert _target(deployment.api("GET", pool_url))["served"] == 1

    # The audit finds the zone gone from the target: not shown served there any more.
    stored_status.set_target_status(zone["id"], fake.id, serial=0, status="MISSING")
    shown = support.eventually(
        lambda: (t := _target(deployment.api("GET", url)))["status"] == "MISSING" and t,
        timeout=30,
        what="the API's model to take the MISSING row",
    )
    assert not shown["current"]
    summary = _target(deployment.api("GET", pool_url))
    assert (summary["served"], summary["missing"]) == (0, 1)


BIND_POOL = """
- name: default
  ns_records: [{hostname: ns1.example.org., priority: 1}]
  targets:
    - {type: fake, description: bind, options: {host: 127.0.0.1}}
"""


@pytest.fixture
def following(tmp_path: pathlib.Path) -> Iterator[model.Follower]:
    """A database with one target at 127.0.0.1 (where BIND9 transfers from), and this
    process's running model (the in-process driver: mdns's writes here wake it)."""
    with support.database(f"sqlite:///{tmp_path}/zoneflow.sqlite", pools_yaml=BIND_POOL):
        running = model.start()
        assert running.ready.wait(30), "the model was not built"
        yield running
        model.stop()
        events.reset()


@pytest.fixture
def mdns(following: model.Follower) -> Iterator[mdns_server.MdnsServer]:
    server = mdns_server.MdnsServer("127.0.0.1", 0)
    server.start_in_thread()
    yield server
    server.stop_thread()


def _served(zone_id: str) -> central_status.TargetServing:
    (target,) = central_status.zone_serving(zone_id).targets
    return target


def test_bind9_transferring_from_mdns_is_served_in_the_model(
    bind9: Bind9Server, mdns: mdns_server.MdnsServer, following: model.Follower
) -> None:
    zone = central_zones.create_zone(ZONE, "hostmaster@example.com")
    central_recordsets.create_recordset(ZONE, "www", "A", ["192.0.2.1"])
    serial = stored_reads.get_zone(zone.id).serial
    assert (_served(zone.id).status, _served(zone.id).current) == ("PENDING", False)

    # No conductor, no job: the zone is put on BIND9 by hand, which transfers it.
    add_secondary(bind9, mdns)
    support.eventually(lambda: served_serial(bind9) == serial, timeout=30, what="BIND9's AXFR")
    shown = support.eventually(
        lambda: (t := _served(zone.id)).current and t,
        timeout=30,
        what="the model to see BIND9 transfer the serial",
    )
    assert (shown.serial, shown.seen_by) == (serial, "AXFR")
    assert stored_status.list_target_status(zone.id) == []

    # A change: wanted at once, so the target is behind until it fetches it.
    central_recordsets.create_recordset(ZONE, "new", "TXT", ['"fresh"'])
    newer = stored_reads.get_zone(zone.id).serial
    assert not _served(zone.id).current
    assert query.send_notify(ZONE, bind9.host, bind9.port, serial=newer) == dns.rcode.NOERROR
    support.eventually(lambda: served_serial(bind9) == newer, timeout=30, what="BIND9's IXFR")
    shown = support.eventually(
        lambda: (t := _served(zone.id)).current and t,
        timeout=30,
        what="the model to see BIND9 fetch the new serial",
    )
    assert shown.serial == newer
    # BIND9 asks with its serial (IXFR-QUERY), then transfers the change (IXFR).
    assert shown.seen_by in {"IXFR", "IXFR-QUERY", "SOA"}
