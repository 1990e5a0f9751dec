"""Zone flows on the fake backend, run by a real conductor over the zake jobboard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from taskflow import engines, task
from taskflow.engines.action_engine import compiler

from tests.integration.conftest import load_pool, wait_settled
from zoneflow import flows, objects
from zoneflow.backends.impl_fake import FakeBackend
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import status as stored_status
from zoneflow.storage import targets as stored_targets
from zoneflow.taskflow_adapter import engine as adapter_engine


@pytest.mark.usefixtures("conductor")
def test_create_zone_reaches_every_target_and_goes_active() -> None:
    pool = load_pool({}, {})
    zone = central_zones.create_zone("example.com", "hostmaster@example.com")
    assert wait_settled(zone.id).status == objects.Status.ACTIVE
    for target in pool.targets:
        assert FakeBackend.served(target.id) == {"example.com.": zone.serial}
    assert {(s.status, s.serial) for s in stored_status.list_target_status(zone.id)} == {
        (objects.Status.ACTIVE, zone.serial)
    }


@pytest.mark.usefixtures("conductor")
def test_create_zone_reverts_when_below_threshold() -> None:
    pool = load_pool({}, {"fail": "create"}, threshold=100)
    zone = central_zones.create_zone("example.com", "hostmaster@example.com")
    settled = wait_settled(zone.id)
    assert settled.status == objects.Status.ERROR
    assert settled.error is not None and "1 of 2 targets succeeded" in settled.error
    healthy, broken = pool.targets
    assert FakeBackend.served(healthy.id) == {}, "the revert removed the zone again"
    assert FakeBackend.served(broken.id) == {}


@pytest.mark.usefixtures("conductor")
def test_create_zone_succeeds_at_threshold_with_the_failed_target_in_error() -> None:
    pool = load_pool({}, {"fail": "create"}, threshold=50)
    zone = central_zones.create_zone("example.com", "hostmaster@example.com")
    assert wait_settled(zone.id).status == objects.Status.ACTIVE
    rows = {s.target_id: s for s in stored_status.list_target_status(zone.id)}
    healthy, broken = pool.targets
    assert rows[healthy.id].status == objects.Status.ACTIVE
    assert rows[broken.id].status == objects.Status.ERROR
    assert rows[broken.id].error


@pytest.mark.usefixtures("conductor")
def test_a_target_that_fails_twice_then_works_is_retried() -> None:
    pool = load_pool({"fail": "create", "fail_times": 2})
    zone = central_zones.create_zone("example.com", "hostmaster@example.com")
    assert wait_settled(zone.id).status == objects.Status.ACTIVE
    assert FakeBackend.served(pool.targets[0].id) == {"example.com.": zone.serial}


@pytest.mark.usefixtures("conductor")
def test_delete_zone_removes_it_from_every_target_and_frees_the_name() -> None:
    pool = load_pool({}, {})
    zone = central_zones.create_zone("example.com", "hostmaster@example.com")
    wait_settled(zone.id)
    central_zones.delete_zone("example.com")
    assert wait_settled(zone.id).status == objects.Status.DELETED
    for target in pool.targets:
        assert FakeBackend.served(target.id) == {}
    assert stored_reads.list_zones() == []


@pytest.mark.usefixtures("conductor")
def test_a_failed_delete_leaves_the_zone_in_error_for_another_try() -> None:
    load_pool({"fail": "delete"})
    zone = central_zones.create_zone("example.com", "hostmaster@example.com")
    wait_settled(zone.id)
    central_zones.delete_zone("example.com")
    failed = wait_settled(zone.id)
    assert (failed.status, failed.action) == (objects.Status.ERROR, objects.Action.DELETE)
    assert stored_reads.get_zone("example.com").id == zone.id


@pytest.mark.usefixtures("conductor")
def test_only_the_newest_job_sets_the_zone_status() -> None:
    load_pool({"delay": 0.2})
    zone = central_zones.create_zone("example.com", "hostmaster@example.com")
    for i in range(3):
        central_recordsets.create_recordset("example.com", f"h{i}", "A", [f"192.0.2.{i}"])
    newest = stored_reads.get_zone(zone.id).serial
    settled = wait_settled(zone.id)
    assert settled.status == objects.Status.ACTIVE
    assert settled.serial == newest
    assert {rs.status for rs in stored_reads.list_recordsets(zone.id)} == {objects.Status.ACTIVE}


@pytest.mark.usefixtures("conductor")
def test_a_job_reads_its_targets_once_for_all_of_them(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = load_pool({}, {}, {})
    reads: dict[str, int] = {"all targets": 0, "one target": 0}
    read_all, read_one = stored_targets.get_target_actions, stored_targets.get_target_action

    def counted_all(*args: Any) -> Any:
        reads["all targets"] += 1
        return read_all(*args)

    def counted_one(*args: Any) -> Any:
        reads["one target"] += 1
        return read_one(*args)

    monkeypatch.setattr(stored_targets, "get_target_actions", counted_all)
    monkeypatch.setattr(stored_targets, "get_target_action", counted_one)
    zone = central_zones.create_zone("once.example", "hostmaster@example.com")

    assert wait_settled(zone.id).status == objects.Status.ACTIVE
    for target in pool.targets:
        assert FakeBackend.served(target.id) == {"once.example.": zone.serial}
    # The begin task's read, left in the run's scratch; no target's task read its own.
    assert reads == {"all targets": 1, "one target": 0}


@pytest.mark.usefixtures("conductor")
def test_jobs_on_one_pool_share_its_flow_and_run_side_by_side() -> None:
    pool = load_pool({"delay": 0.1}, {"delay": 0.1}, {"delay": 0.1})
    arguments = flows.pool_args(pool)
    flow = flows.FACTORIES["create-zone"](**arguments)
    assert flows.FACTORIES["create-zone"](**json.loads(json.dumps(arguments))) is flow
    assert flows.FACTORIES["create-zone"](**{**arguments, "threshold": 50}) is not flow
    # Compiled once for all the engines that run it.
    compilations = []
    for _ in range(2):
        engine = engines.load(flow, engine=adapter_engine.NAME)
        engine.compile()
        compilations.append(engine.compilation)
    assert compilations[0] is compilations[1]
    # TaskFlow would hang every run's progress listener on the one shared task.
    graph = compilations[0].execution_graph
    atoms = [node for node, kind in graph.nodes(data="kind") if kind == compiler.TASK]
    assert atoms
    assert not any(a.notifier.can_be_registered(task.EVENT_UPDATE_PROGRESS) for a in atoms)

    # Five jobs at once on the one flow: each ends with its own zone on every target.
    zones = [central_zones.create_zone(f"z{i}.example", "hostmaster@example.com") for i in range(5)]
    for zone in zones:
        assert wait_settled(zone.id).status == objects.Status.ACTIVE
    for target in pool.targets:
        assert FakeBackend.served(target.id) == {z.name: z.serial for z in zones}
    for zone in zones:
        assert {(s.target_id, s.serial) for s in stored_status.list_target_status(zone.id)} == {
            (t.id, zone.serial) for t in pool.targets
        }
