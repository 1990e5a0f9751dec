"""The propagation model on the in-process driver: built from storage it holds the
rows storage holds; events keep it fresh (a job's outcome, an audit's or the
inspector's row, mdns seeing a target fetch a serial); zone status, pool status
and their API routes read it.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator

import dns.message
import dns.rdatatype
import pytest
from fastapi.testclient import TestClient

from tests import support
from tests.integration.conftest import CATALOG_POOL, fake_pool_yaml, wait_settled
from zoneflow import cli, model, objects
from zoneflow.api import app
from zoneflow.central import health as central_health
from zoneflow.central import imports_exports, pools
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import status as central_status
from zoneflow.central import upkeep as central_upkeep
from zoneflow.central import zones as central_zones
from zoneflow.flows import retire_target as retire_flows
from zoneflow.mdns import responder as mdns_responder
from zoneflow.storage import db, models
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import status as stored_status

ALICE = {"X-Auth-Project-ID": "alice", "X-Roles": "member"}
ADMIN = {"X-Auth-Project-ID": "ops", "X-Roles": "admin"}
ALL = {"X-Auth-Project-ID": "ops", "X-Roles": "admin", "X-Auth-All-Projects": "true"}
# The address the first fake target's transfers come from, as mdns sees it.
TARGET_HOST = "127.0.0.9"


@pytest.fixture
def pool() -> objects.Pool:
    """Two fake targets; the first is known to mdns by its address."""
    (stored,) = support.store_pools(pools.parse(fake_pool_yaml({"host": TARGET_HOST}, {})))
    return stored


@contextlib.contextmanager
def _running_model() -> Iterator[model.Follower]:
    """This process's running model, as the API server keeps one."""
    running = model.start()
    try:
        assert running.ready.wait(30), "the model was not built"
        yield running
    finally:
        model.stop()


@pytest.fixture
def follower(pool: objects.Pool) -> Iterator[model.Follower]:
    with _running_model() as running:
        yield running


def _zone(name: str, *, project_id: str | None = "alice") -> objects.Zone:
    return central_zones.create_zone(name, f"hostmaster@{name.rstrip('.')}", project_id=project_id)


def _key(rows: list[objects.TargetStatus]) -> dict[tuple[str, str], objects.TargetStatus]:
    return {(row.zone_id, row.target_id): row for row in rows}


def test_the_model_built_from_storage_holds_the_rows_storage_holds(
    pool: objects.Pool, conductor: object
) -> None:
    zones = [_zone(f"z{i}.example.") for i in range(3)]
    for zone in zones:
        assert wait_settled(zone.id).status == objects.Status.ACTIVE
    first, second = pool.targets
    stored_status.set_target_status(
        zones[1].id, second.id, serial=0, status="MISSING", error="rndc delzone by hand"
    )
    picture = model.Picture.load()
    for zone in zones:
        stored = stored_status.list_target_status(zone.id)
        assert len(stored) == 2
        assert _key(picture.rows(zone.id)) == _key(stored)
        assert picture.zones()[zone.id].serial == central_zones.get_zone(zone.id).serial
    assert model.Picture.load(zone_ids=[zones[0].id]).zones().keys() == {zones[0].id}
    (one, two) = picture.summary(pool)
    assert (one.served, one.behind, one.missing, one.error) == (3, 0, 0, 0)
    assert (two.served, two.missing) == (2, 1)


def test_a_row_written_by_the_audit_reaches_the_running_model_at_once(
    pool: objects.Pool, follower: model.Follower, conductor: object
) -> None:
    zone = _zone("example.com.")
    assert wait_settled(zone.id).status == objects.Status.ACTIVE
    first, second = pool.targets
    support.eventually(
        lambda: (
            {s.propagation for s in follower.picture.serving(zone.id, pool)}
            == {model.Propagation.SERVED}
        ),
        what="both targets served in the model, from the job's rows",
    )
    # What the audit writes when it finds the zone gone from a target, as it writes it
    # (its rows were once written without their events: the model missed them).
    central_upkeep.record_findings([(zone.id, (second.id, 0, "MISSING", "not served"))])

    # Applied by the follower's thread, woken by the commit, without a read asking.
    def served() -> dict[str, model.Serving]:
        return {s.target_id: s for s in follower.picture.serving(zone.id, pool)}

    support.eventually(
        lambda: served()[second.id].propagation == model.Propagation.MISSING,
        what="the follower to apply the row's event",
    )
    assert served()[first.id].propagation == model.Propagation.SERVED
    shown = {t.target_id: t for t in central_status.zone_serving(zone.id).targets}
    assert (shown[second.id].current, shown[second.id].status) == (False, "MISSING")
    assert shown[first.id].current


def test_a_change_makes_every_target_behind_until_its_job_verifies_it(
    pool: objects.Pool, follower: model.Follower, conductor: object
) -> None:
    zone = _zone("example.com.")
    assert wait_settled(zone.id).status == objects.Status.ACTIVE
    # Central reads the model settled: the zone's rows are those of its job.
    assert all(t.current for t in central_status.zone_serving(zone.id).targets)
    central_recordsets.create_recordset("example.com.", "www", "A", ["192.0.2.1"])
    # The new serial is wanted at once; the rows still say the old one.
    found = follower.settled().summary(pool)
    assert {(s.served, s.behind) for s in found} <= {(0, 1), (1, 0)}
    assert wait_settled(zone.id).status == objects.Status.ACTIVE
    assert [(s.served, s.behind) for s in follower.settled().summary(pool)] == [(1, 0), (1, 0)]


def test_a_deleted_zone_leaves_the_model(
    pool: objects.Pool, follower: model.Follower, conductor: object
) -> None:
    zone = _zone("example.com.")
    assert wait_settled(zone.id).status == objects.Status.ACTIVE
    central_zones.delete_zone(zone.id)
    support.eventually(
        lambda: zone.id not in follower.settled().zones(), what="the zone to leave the model"
    )
    assert follower.picture.rows(zone.id) == []


def _axfr(responder: mdns_responder.Responder, address: str) -> None:
    wire = dns.message.make_query("example.com.", dns.rdatatype.AXFR).to_wire()
    list(responder.answer(wire, tcp=True, peer="test", address=address))


def _soa(responder: mdns_responder.Responder, address: str) -> None:
    wire = dns.message.make_query("example.com.", dns.rdatatype.SOA).to_wire()
    list(responder.answer(wire, tcp=False, peer="test", address=address))


def test_a_target_transferring_a_serial_from_mdns_is_served_in_the_model(
    pool: objects.Pool, follower: model.Follower
) -> None:
    # No conductor: no job records anything, only mdns sees the target.
    zone = _zone("example.com.")
    first, second = pool.targets
    responder = mdns_responder.Responder()
    _soa(responder, TARGET_HOST)
    responder.transfer_log.flush()
    (asked, other) = follower.settled().serving(zone.id, pool)
    assert (asked.propagation, asked.seen_by) == (model.Propagation.MISSING, "SOA")
    assert asked.last_seen is not None and other.last_seen is None
    _axfr(responder, TARGET_HOST)
    # A client that is no target of the pool changes nothing.
    _axfr(responder, "127.0.0.77")
    responder.transfer_log.flush()
    served = {s.target_id: s for s in follower.settled().serving(zone.id, pool)}
    assert (served[first.id].propagation, served[first.id].serial) == (
        model.Propagation.SERVED,
        zone.serial,
    )
    assert served[first.id].seen_by == "AXFR"
    assert served[second.id].propagation == model.Propagation.MISSING
    # The model built from storage sees the transfer too (the transfer log).
    (rebuilt, _) = model.Picture.load().serving(zone.id, pool)
    assert (rebuilt.propagation, rebuilt.seen_by) == (model.Propagation.SERVED, "AXFR")


def test_a_row_recorded_after_a_transfer_speaks_for_the_target(
    pool: objects.Pool, follower: model.Follower
) -> None:
    zone = _zone("example.com.")
    first, _ = pool.targets
    responder = mdns_responder.Responder()
    _axfr(responder, TARGET_HOST)
    responder.transfer_log.flush()
    stored_status.set_target_status(zone.id, first.id, serial=0, status="MISSING")
    (served, _) = follower.settled().serving(zone.id, pool)
    assert (served.propagation, served.seen_by) == (model.Propagation.MISSING, "recorded")


def test_pool_status_prints_each_targets_counts(
    pool: objects.Pool, conductor: object, capsys: pytest.CaptureFixture[str]
) -> None:
    zones = [_zone(f"z{i}.example.") for i in range(2)]
    for zone in zones:
        assert wait_settled(zone.id).status == objects.Status.ACTIVE
    first, second = pool.targets
    stored_status.set_target_status(zones[0].id, second.id, serial=0, status="ERROR", error="x")
    assert cli.main(["pool", "status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"pool default ({pool.id}): 2 zones"
    table = [line.split() for line in out[1:]]
    assert table[0] == ["target", "served", "behind", "missing", "error", "state", "last", "seen"]
    assert sorted(row[:6] for row in table[1:]) == [
        ["fake1", "2", "0", "0", "0", "-"],
        ["fake2", "1", "0", "0", "1", "-"],
    ]
    assert cli.main(["--json", "pool", "status", "default"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["zones"] == 2
    assert sorted((t["target"], t["served"], t["error"]) for t in shown["targets"]) == [
        ("fake1", 2, 0),
        ("fake2", 1, 1),
    ]
    assert cli.main(["pool", "status", "nosuchpool"]) != 0
    assert "nosuchpool" in capsys.readouterr().err


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(app.create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def test_pool_status_route_is_for_admins_and_reads_the_model(
    pool: objects.Pool, follower: model.Follower, conductor: object, client: TestClient
) -> None:
    zone = _zone("example.com.")
    assert wait_settled(zone.id).status == objects.Status.ACTIVE
    url = f"/v2/pools/{pool.id}/status"
    assert client.get(url, headers=ALICE).status_code == 403
    shown = client.get(url, headers=ADMIN)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert (body["pool_name"], body["zones"]) == ("default", 1)
    assert sorted((t["target"], t["served"], t["missing"]) for t in body["targets"]) == [
        ("fake1", 1, 0),
        ("fake2", 1, 0),
    ]
    assert all(t["last_seen"] for t in body["targets"])
    assert body["links"]["self"].endswith(url)
    missing = client.get(f"/v2/pools/{'0' * 8}-0000-0000-0000-{'0' * 12}/status", headers=ADMIN)
    assert (missing.status_code, missing.json()["type"]) == (404, "pool_not_found")
    assert client.get("/v2/pools/not-a-uuid/status", headers=ADMIN).status_code == 400
    second = pool.targets[1]
    stored_status.set_target_status(zone.id, second.id, serial=0, status="MISSING")
    body = client.get(url, headers=ALL).json()
    assert {t["target_id"]: t["missing"] for t in body["targets"]} == {
        pool.targets[0].id: 0,
        second.id: 1,
    }
    status = client.get(f"/v2/zones/{zone.id}/status", headers=ALICE).json()
    assert {t["target_id"]: (t["current"], t["seen_by"]) for t in status["targets"]} == {
        pool.targets[0].id: (True, "recorded"),
        second.id: (False, "recorded"),
    }
    assert stored_pools.get_pool(pool.id).id == pool.id


def test_a_targets_health_and_maintenance_reach_the_model_and_a_model_built_later(
    pool: objects.Pool, follower: model.Follower
) -> None:
    first, second = pool.targets
    central_health.target_down(second, since=models.utcnow(), reason="no answer", zones=0)
    central_health.set_maintenance(first.id, on=True)

    def states(picture: model.Picture) -> dict[str, str | None]:
        return {s.target_id: s.state for s in picture.summary(pool)}

    expected = {first.id: "UP, in maintenance", second.id: "DOWN"}
    assert states(follower.settled()) == expected  # from the events, as they came
    assert states(model.Picture.load(pool_id=pool.id)) == expected  # from storage, after
    (summary,) = [s for s in follower.picture.summary(pool) if s.target_id == second.id]
    assert summary.last_seen is not None


def test_a_target_down_or_in_maintenance_shows_its_zones_behind_then_served_again(
    pool: objects.Pool, follower: model.Follower, conductor: object
) -> None:
    """The inspector marks a down target's rows BEHIND, and back, in statements that
    publish only its target event: the running model applies the marks with it, and
    says what storage says throughout (it kept showing them served)."""
    zone = _zone("example.com.")
    assert wait_settled(zone.id).status == objects.Status.ACTIVE
    first, second = pool.targets

    def running() -> dict[str, model.Propagation]:
        return {s.target_id: s.propagation for s in follower.settled().serving(zone.id, pool)}

    def stored() -> dict[str, model.Propagation]:
        picture = model.Picture.load(pool_id=pool.id)
        return {s.target_id: s.propagation for s in picture.serving(zone.id, pool)}

    served, behind = model.Propagation.SERVED, model.Propagation.BEHIND
    support.eventually(lambda: running() == {first.id: served, second.id: served}, what="served")
    central_health.target_down(second, since=models.utcnow(), reason="no answer", zones=1)
    assert running() == stored() == {first.id: served, second.id: behind}
    assert central_health.target_up(second) == 0  # it missed no change: nothing to recover
    assert running() == stored() == {first.id: served, second.id: served}
    central_health.set_maintenance(first.id, on=True)
    assert running() == stored() == {first.id: behind, second.id: served}
    central_health.set_maintenance(first.id, on=False)  # catching up: nothing missed
    assert running() == stored() == {first.id: served, second.id: served}


def _drift_shown(client: TestClient) -> float:
    (line,) = [
        line
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("zoneflow_model_drift_total ")
    ]
    return float(line.split()[1])


def _served_everywhere(zone: objects.Zone, pool: objects.Pool) -> None:
    """Rows saying every target of the pool serves the zone, as a job writes them."""
    stored_status.set_target_statuses(
        zone.id, [(t.id, zone.serial, objects.Status.ACTIVE, None) for t in pool.targets]
    )


def _statuses(picture: model.Picture, zone_id: str) -> dict[str, str]:
    return {row.target_id: row.status for row in picture.rows(zone_id)}


def test_a_retired_targets_drain_and_removal_reach_the_running_model(
    pool: objects.Pool, follower: model.Follower
) -> None:
    """A drain records each zone it deleted from a retired target, and dropping the
    drained target deletes its rows with it: the running model says what storage says
    at each step (it went on showing the target's rows until the process restarted)."""
    # No conductor: the drain and the drop are run by hand, one step at a time.
    zone = _zone("example.com.")
    first, second = pool.targets
    active = objects.Status.ACTIVE
    _served_everywhere(zone, pool)
    assert _statuses(follower.settled(), zone.id) == {first.id: active, second.id: active}
    pools.store(pools.parse(fake_pool_yaml({"host": TARGET_HOST})))  # the second retired

    assert retire_flows.DrainTarget().execute(target_id=second.id) == 1
    expected = {first.id: active, second.id: objects.Status.DELETED}
    assert _statuses(follower.settled(), zone.id) == expected
    assert _statuses(model.Picture.load(), zone.id) == expected

    retire_flows.DropTarget().execute(target_id=second.id)
    assert _statuses(follower.settled(), zone.id) == {first.id: active}
    assert _statuses(model.Picture.load(), zone.id) == {first.id: active}
    assert follower.sweep() == 0, "the running model differed from storage"


def test_a_target_a_catalog_pool_no_longer_lists_leaves_the_running_model() -> None:
    both = "{type: fake, description: fake1}, {type: fake, description: fake2}"
    (pool,) = support.store_pools(pools.parse(CATALOG_POOL.replace("TARGETS", both)))
    zone = _zone("example.com.")
    first, second = pool.targets
    _served_everywhere(zone, pool)
    with _running_model() as running:
        assert _statuses(running.settled(), zone.id).keys() == {first.id, second.id}
        one = "{type: fake, description: fake1}"
        (update,) = pools.store(pools.parse(CATALOG_POOL.replace("TARGETS", one)))
        assert [t.id for t in update.removed_targets] == [second.id]
        assert _statuses(running.settled(), zone.id).keys() == {first.id}
        assert running.sweep() == 0, "the running model differed from storage"


def test_the_running_model_reads_storage_again_for_what_came_without_an_event(
    pool: objects.Pool,
    override: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
    client: TestClient,
) -> None:
    """Every ``model_sweep_interval`` the model is read from storage again: a row
    changed by hand (no event) is shown, and said to have differed (the log, the
    API's /metrics), and what mdns saw only on the stream (a target's SOA query,
    published but not stored) is kept."""
    caplog.set_level(logging.WARNING, logger="zoneflow.model.follower")
    override("events", model_sweep_interval=1.0)
    zone = _zone("example.com.")
    first, second = pool.targets
    _served_everywhere(zone, pool)
    assert _drift_shown(client) == 0
    with _running_model() as running:
        responder = mdns_responder.Responder()
        _soa(responder, TARGET_HOST)
        responder.transfer_log.flush()
        assert running.settled().serving(zone.id, pool)[0].seen_by == "SOA"
        with db.writer() as session:  # as an operator's SQL would: no event
            row = session.get(models.ZoneTargetStatus, (zone.id, second.id))
            assert row is not None
            row.status, row.error = "MISSING", "deleted by hand"

        def shown() -> dict[str, model.Propagation]:
            return {s.target_id: s.propagation for s in running.settled().serving(zone.id, pool)}

        support.eventually(
            lambda: shown()[second.id] == model.Propagation.MISSING,
            what="the model to be read from storage again",
        )
        served = running.settled().serving(zone.id, pool)
        assert (served[0].propagation, served[0].seen_by) == (model.Propagation.SERVED, "SOA")
        support.eventually(lambda: _drift_shown(client) == 1, what="/metrics to show the drift")
    differed = [r.getMessage() for r in caplog.records if "differed" in r.getMessage()]
    assert differed and "1 zone(s) and row(s) differed" in differed[0], differed


IMPORTED = """\
$ORIGIN imported.example.
@ 3600 IN SOA ns1.example.org. hostmaster.imported.example. 1 3600 600 86400 300
www 300 IN A 192.0.2.7
"""


def test_an_imported_zone_is_in_the_model_before_its_job_runs(
    pool: objects.Pool, follower: model.Follower
) -> None:
    # No conductor: the import's zone is PENDING, known only by its create event.
    task = imports_exports.import_zone(IMPORTED, project_id="alice")
    assert task.status == objects.Status.COMPLETE, task.message
    assert task.zone_id in follower.settled().zones()
    assert [s.missing for s in follower.picture.summary(pool)] == [1, 1]
