"""The inspector on SQLite and fake targets, its health checks answered by the test:
DOWN (state, rows behind, alarm), UP (recovery of exactly what was missed),
maintenance (left out of thresholds, caught up before it counts), bad input."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import support
from tests.functional import forkserver
from tests.integration.conftest import load_pool, running_conductor, wait_settled
from zoneflow import events, exceptions, objects
from zoneflow.api import app as api_app
from zoneflow.central import health
from zoneflow.central import jobs as central_jobs
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.engine.relay import OutboxRelay
from zoneflow.inspector.daemon import Inspector
from zoneflow.storage import outbox as stored_outbox
from zoneflow.storage import status as stored_status
from zoneflow.taskflow_adapter import persistence

HEALTHY, FAILING = {"host": "127.0.0.1", "port": 5301}, {"host": "127.0.0.1", "port": 5302}


@pytest.fixture(autouse=True)
def _one_attempt(override: Callable[..., None]) -> None:
    override("flows", target_attempts=1, target_retry_delay=0)


class Answers:
    """The health checks' results, set by the test: the ports that do not answer."""

    def __init__(self) -> None:
        self.silent: set[int] = set()

    def __call__(self, host: str, port: int) -> str | None:
        return f"{host}:{port} did not answer" if port in self.silent else None


@pytest.fixture
def answers() -> Answers:
    return Answers()


@pytest.fixture
def inspector(answers: Answers) -> Iterator[Inspector]:
    watching = Inspector(check=answers)
    watching.refresh()
    yield watching
    watching.stop()


def _rows(zone_id: str) -> dict[str, objects.TargetStatus]:
    return {row.target_id: row for row in stored_status.list_target_status(zone_id)}


def _create(name: str) -> objects.Zone:
    zone = central_zones.create_zone(name, "h@example.com")
    settled = wait_settled(zone.id)
    assert settled.status == objects.Status.ACTIVE, settled.error
    return settled


def _recover_jobs() -> set[str]:
    page = central_jobs.find_jobs({}, objects.Paging(limit=100))
    return {job.info.zone_id for job in page.items if job.info.kind == objects.JobKind.RECOVER_ZONE}


@pytest.mark.usefixtures("conductor")
def test_a_silent_target_is_down_its_rows_behind_and_the_alarm_published(
    answers: Answers, inspector: Inspector
) -> None:
    healthy, failing = load_pool(HEALTHY, FAILING).targets
    zones = [_create(name) for name in ("a.example.", "b.example.")]
    inspector.refresh()
    alarms = events.subscribe(objects.EventFilter(topics=frozenset({"alarm", "target"})))

    answers.silent.add(FAILING["port"])
    assert inspector.tick() == [] and inspector.tick() == []
    ((target, went),) = inspector.tick()

    assert (target.id, went.health) == (failing.id, objects.TargetHealth.DOWN)
    state = health.states()[failing.id]
    assert (state.health, state.since) == (objects.TargetHealth.DOWN, went.since)
    for zone in zones:
        rows = _rows(zone.id)
        assert (rows[failing.id].status, rows[failing.id].serial) == (objects.BEHIND, zone.serial)
        assert rows[healthy.id].status == objects.Status.ACTIVE
    published = alarms.next(timeout=10)
    assert [(e.topic, e.key, e.action) for e in published] == [
        ("alarm", failing.id, "DOWN"),
        ("target", failing.id, "DOWN"),
    ]
    assert published[0].value["zones_behind"] == 2
    assert published[0].value["zones"] == 2
    assert "did not answer" in published[0].value["reason"]
    assert inspector.tick() == [], "DOWN once: no second alarm while it stays silent"


def test_a_return_is_seen_by_an_inspector_that_did_not_record_the_failure(
    answers: Answers, inspector: Inspector
) -> None:
    _, failing = load_pool(HEALTHY, FAILING).targets
    inspector.refresh()
    other = Inspector(check=answers)
    other.refresh()
    answers.silent.add(FAILING["port"])
    for _ in range(3):
        inspector.tick()
    assert health.states()[failing.id].health == objects.TargetHealth.DOWN

    answers.silent.clear()
    other.refresh()
    assert other.tick() == []
    ((target, went),) = other.tick()
    assert (target.id, went.health) == (failing.id, objects.TargetHealth.UP)
    assert health.states() == {}
    other.stop()


def test_the_map_of_zones_follows_creates_and_deletes_without_a_refresh_tick(
    override: Callable[..., None], answers: Answers
) -> None:
    override("inspector", refresh_interval=3600)
    _, target = load_pool(HEALTHY, FAILING).targets
    watching = Inspector(check=answers)
    watching.start()
    try:
        zone = central_zones.create_zone("mapped.example.", "h@example.com")
        support.eventually(lambda: watching.zones_of(target.id) == [zone.id], what="the map")
    finally:
        watching.stop()


def _started(watching: Inspector, *, targets: int) -> Inspector:
    """``watching`` started, once the tick it makes at start is over.

    That tick finds every target answering and starts each one's count of
    misses again: made after a miss the test reports, on a busy machine, it
    wiped that miss out and the target went DOWN one tick late.
    """
    watching.start()
    support.eventually(
        lambda: watching.counters.checks >= targets, what="the inspector's tick at start"
    )
    return watching


@pytest.mark.usefixtures("conductor")
def test_a_job_failing_on_a_target_counts_as_one_of_its_misses(
    override: Callable[..., None], answers: Answers
) -> None:
    override("inspector", interval=3600)  # one tick at start; the test ticks the rest
    _, failing = load_pool(HEALTHY, {**FAILING, "fail": "create"}).targets
    watching = _started(Inspector(check=answers), targets=2)
    try:
        zone = central_zones.create_zone("failed.example.", "h@example.com")
        assert wait_settled(zone.id).status == objects.Status.ERROR
        # Every ERROR row counts (the healthy target's too: its create was undone), and
        # the next answer wipes a miss out: only the silent target goes DOWN.
        support.eventually(lambda: watching.counters.reported == 2, what="the failures reported")
        answers.silent.add(FAILING["port"])
        assert watching.tick() == []
        ((target, went),) = watching.tick()
        assert (target.id, went.health) == (failing.id, objects.TargetHealth.DOWN)
        assert set(health.states()) == {failing.id}
    finally:
        watching.stop()


def test_the_zones_of_a_batch_failing_on_a_target_together_count_as_one_miss(
    answers: Answers, inspector: Inspector
) -> None:
    """A batch's poll that timed out on a slow target fails each of its zones there;
    counted one each, three made the target DOWN though it answered every check."""
    _, failing = load_pool(HEALTHY, FAILING).targets
    inspector.refresh()
    for name in ("one.example.", "two.example.", "three.example."):
        zone = central_zones.create_zone(name, "h@example.com")
        stored_status.set_zone_status(
            zone.id,
            serial=zone.serial,
            status=objects.Status.ERROR,
            error="below the threshold",
            targets=[(failing.id, 0, objects.Status.ERROR, "after 15s: zone not served")],
        )
        inspector.reported_failures(zone.id)

    assert inspector.counters.reported == 1
    assert inspector.tick() == [], "it answers: it was slow, not gone"
    assert failing.id not in health.states()

    # After a check, the next batch's failure counts again.
    inspector.reported_failures(zone.id)
    assert inspector.counters.reported == 2


def test_an_audit_that_got_no_answer_from_a_target_counts_as_one_of_its_misses(
    override: Callable[..., None], answers: Answers
) -> None:
    override("inspector", interval=3600)  # one tick at start; the test ticks the rest
    _, silent = load_pool(HEALTHY, FAILING).targets
    watching = _started(Inspector(check=answers), targets=2)
    try:
        health.audit_unanswered(silent.id, 100)  # what the producer's audit calls
        support.eventually(lambda: watching.counters.reported == 1, what="the audit's report")
        answers.silent.add(FAILING["port"])
        assert watching.tick() == []
        ((target, went),) = watching.tick()
        assert (target.id, went.health) == (silent.id, objects.TargetHealth.DOWN)
    finally:
        watching.stop()


@pytest.mark.usefixtures("conductor")
def test_a_target_back_gets_recovery_for_exactly_the_zones_it_missed(
    answers: Answers, inspector: Inspector
) -> None:
    healthy, failing = load_pool(HEALTHY, {**FAILING, "fail": "update"}).targets
    inspector.refresh()
    unchanged, changed = _create("unchanged.example."), _create("changed.example.")
    answers.silent.add(FAILING["port"])
    for _ in range(3):
        inspector.tick()
    assert health.states()[failing.id].health == objects.TargetHealth.DOWN

    central_recordsets.create_recordset(changed.id, "www", "A", ["192.0.2.1"])
    failed = wait_settled(changed.id)
    assert failed.status == objects.Status.ERROR
    ups = events.subscribe(objects.EventFilter(topics=frozenset({"target"})))

    answers.silent.clear()
    assert inspector.tick() == []
    ((target, went),) = inspector.tick()

    assert (target.id, went.health) == (failing.id, objects.TargetHealth.UP)
    assert failing.id not in health.states()
    (up,) = ups.next(timeout=10)
    assert (up.action, up.value["recovering"]) == ("UP", 1)
    assert support.eventually(lambda: _recover_jobs() == {changed.id}, what="one recover job")
    assert _rows(unchanged.id)[failing.id].status == objects.Status.ACTIVE, (
        "a zone it served as it is is served again, without a job"
    )


def test_a_target_back_leaves_a_zone_whose_change_is_in_flight_to_its_job(
    answers: Answers, inspector: Inspector
) -> None:
    """Under load a target seen DOWN for a moment came back to a recovery of every zone
    with a change in flight. The zone whose job ended without the target is
    recovered; the one whose job still runs is left to it."""
    targets = load_pool(HEALTHY, FAILING).targets
    inspector.refresh()
    ended, in_flight = (
        central_zones.create_zone(name, "h@example.com")
        for name in ("ended.example.", "in-flight.example.")
    )
    for zone in (ended, in_flight):
        stored_status.set_zone_status(
            zone.id,
            serial=zone.serial,
            status=objects.Status.ACTIVE,
            targets=[(t.id, zone.serial, objects.Status.ACTIVE, None) for t in targets],
        )
    _take_jobs()
    answers.silent.add(FAILING["port"])
    for _ in range(3):
        inspector.tick()
    failing = targets[1]
    assert health.states()[failing.id].health == objects.TargetHealth.DOWN
    changed = {
        zone.id: central_recordsets.create_recordset(zone.id, "www", "A", ["192.0.2.1"]).serial
        for zone in (ended, in_flight)
    }
    # The first change's job has ended: the target failed it, the zone is in ERROR.
    assert (objects.JobKind.UPDATE_ZONE, ended.id) in _take_jobs(ended.id)
    stored_status.set_zone_status(
        ended.id,
        serial=changed[ended.id],
        status=objects.Status.ERROR,
        error="1 of 2 targets succeeded",
        targets=[(failing.id, 0, objects.Status.ERROR, "did not answer")],
    )
    ups = events.subscribe(objects.EventFilter(topics=frozenset({"target"})))

    answers.silent.clear()
    assert inspector.tick() == []
    ((target, went),) = inspector.tick()

    assert (target.id, went.health) == (failing.id, objects.TargetHealth.UP)
    (up,) = ups.next(timeout=10)
    assert (up.action, up.value["recovering"]) == ("UP", 1)
    assert sorted(_take_jobs()) == sorted(
        [(objects.JobKind.RECOVER_ZONE, ended.id), (objects.JobKind.UPDATE_ZONE, in_flight.id)]
    ), "the zone in flight has no job but its own"


def _take_jobs(zone_id: str | None = None) -> list[tuple[str, str | None]]:
    """The jobs waiting in the outbox (of ``zone_id``, or all), taken out of it:
    (kind, zone id)."""
    taken = []
    for pending in stored_outbox.claim_pending_jobs(lease=0):
        if zone_id is None or pending.zone_id == zone_id:
            stored_outbox.remove_pending_job(pending.id)
            taken.append((pending.kind, pending.zone_id))
    return taken


@pytest.mark.usefixtures("conductor")
def test_a_target_in_maintenance_is_left_out_of_the_threshold_and_caught_up_after(
    inspector: Inspector,
) -> None:
    healthy, failing = load_pool(HEALTHY, {**FAILING, "fail": "update", "fail_times": 1}).targets
    inspector.refresh()
    zone, other = _create("changed.example."), _create("other.example.")
    target, state = health.set_maintenance("fake2", on=True)
    assert (target.id, state.maintenance, state.counted) == (failing.id, "ON", False)
    assert {_rows(z.id)[failing.id].status for z in (zone, other)} == {objects.BEHIND}

    central_recordsets.create_recordset(zone.id, "www", "A", ["192.0.2.1"])
    settled = wait_settled(zone.id)
    assert settled.status == objects.Status.ACTIVE, "100% of the counted targets succeeded"
    rows = _rows(zone.id)
    assert (rows[healthy.id].status, rows[healthy.id].serial) == ("ACTIVE", settled.serial)
    assert rows[failing.id].status == objects.Status.ERROR, "recorded behind"

    _, state = health.set_maintenance(failing.id, on=False)
    assert (state.maintenance, state.counted) == ("CATCHING_UP", False)
    assert support.eventually(lambda: _recover_jobs() == {zone.id}, what="one recover job")
    support.eventually(
        lambda: _rows(zone.id)[failing.id].status == objects.Status.ACTIVE,
        what="the recover job to bring the target to the zone's serial",
    )
    support.eventually(
        lambda: inspector.tick() is not None and failing.id not in health.states(),
        what="the target to be counted again",
    )
    assert _rows(other.id)[failing.id].status == objects.Status.ACTIVE


@pytest.mark.usefixtures("conductor")
def test_a_catch_up_whose_job_failed_is_posted_again(
    override: Callable[..., None], inspector: Inspector
) -> None:
    override("inspector", catch_up_retry=1)
    # The create fails there, and so does the first recovery's: the second one works.
    _, failing = load_pool(HEALTHY, {**FAILING, "fail": "create", "fail_times": 2}).targets
    inspector.refresh()
    health.set_maintenance(failing.id, on=True)
    zone = _create("created.example.")
    assert _rows(zone.id)[failing.id].status == objects.Status.ERROR
    health.set_maintenance(failing.id, on=False)
    support.eventually(
        lambda: inspector.tick() is not None and failing.id not in health.states(),
        what="a second recovery, then the target counted again",
    )
    assert _rows(zone.id)[failing.id].status == objects.Status.ACTIVE
    page = central_jobs.find_jobs({}, objects.Paging(limit=100))
    recoveries = [j for j in page.items if j.info.kind == objects.JobKind.RECOVER_ZONE]
    assert len(recoveries) == 2, "the first failed there, the second was posted again"


def test_a_catch_up_whose_job_is_only_slow_is_not_posted_again(
    inspector: Inspector, board: Any
) -> None:
    _, failing = load_pool(HEALTHY, {**FAILING, "fail": "create", "fail_times": 1}).targets
    inspector.refresh()
    health.set_maintenance(failing.id, on=True)
    with running_conductor():
        zone = _create("slow.example.")
    assert _rows(zone.id)[failing.id].status == objects.Status.ERROR
    health.set_maintenance(failing.id, on=False)
    assert health.retry_catch_up(failing) == 0, "its recovery waits in the outbox"
    OutboxRelay(board, persistence.get_backend()).flush()
    assert _recover_jobs() == {zone.id}
    assert health.retry_catch_up(failing) == 0, "its recovery is on the board, unclaimed"
    with running_conductor():
        support.eventually(
            lambda: inspector.tick() is not None and failing.id not in health.states(),
            what="the one recovery, then the target counted again",
        )
    assert _rows(zone.id)[failing.id].status == objects.Status.ACTIVE
    page = central_jobs.find_jobs({}, objects.Paging(limit=100))
    assert [j.info.kind for j in page.items].count(objects.JobKind.RECOVER_ZONE) == 1


@pytest.mark.usefixtures("conductor")
def test_without_maintenance_the_same_failure_fails_the_change() -> None:
    load_pool(HEALTHY, {**FAILING, "fail": "update", "fail_times": 1})
    zone = _create("changed.example.")
    central_recordsets.create_recordset(zone.id, "www", "A", ["192.0.2.1"])
    assert wait_settled(zone.id).status == objects.Status.ERROR


def test_an_unknown_target_is_a_clear_error() -> None:
    load_pool(HEALTHY, FAILING)
    with pytest.raises(exceptions.TargetNotFound) as raised:
        health.set_maintenance("nosuch", on=True)
    assert str(raised.value) == (
        "no pool target is named 'nosuch': give a target's id or description as "
        "'zoneflow pool show' or GET /v2/targets lists them (targets: fake1, fake2)"
    )
    assert health.states() == {}


def _cli(database: str, tmp_path: Any, *args: str) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "zoneflow.conf"
    conf.write_text(f"[database]\nconnection = {database}\n")
    return forkserver.run(["--config-file", str(conf), *args], workdir=tmp_path)


def test_the_cli_turns_maintenance_on_and_names_an_unknown_target(
    database: str, tmp_path: Any
) -> None:
    _, failing = load_pool(HEALTHY, FAILING).targets
    missing = _cli(database, tmp_path, "pool", "target", "maintenance", "nosuch", "on")
    assert missing.returncode == 1
    assert "no pool target is named 'nosuch'" in missing.stderr
    assert "Traceback" not in missing.stderr

    done = _cli(database, tmp_path, "--json", "pool", "target", "maintenance", "fake2", "on")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["maintenance"] == "ON"
    assert health.states()[failing.id].maintenance == "ON"
    shown = _cli(database, tmp_path, "pool", "show")
    assert "UP, maintenance ON" in shown.stdout


def test_the_api_sets_maintenance_and_refuses_bad_input() -> None:
    _, failing = load_pool(HEALTHY, FAILING).targets
    client = TestClient(api_app.create_app(), raise_server_exceptions=False)
    admin = {**support.ADMIN}
    path = f"/v2/targets/{failing.id}/maintenance"
    done = client.put(path, json={"maintenance": True}, headers=admin)
    assert done.status_code == 200, done.text
    assert (done.json()["target_id"], done.json()["maintenance"]) == (failing.id, "ON")
    listed = client.get("/v2/targets", headers=admin).json()["targets"]
    assert {t["target"]: t["counted"] for t in listed} == {"fake1": True, "fake2": False}

    unknown = "/v2/targets/6f1a4bde-0000-4000-8000-000000000000/maintenance"
    missing = client.put(unknown, json={"maintenance": True}, headers=admin)
    assert (missing.status_code, missing.json()["type"]) == (404, "target_not_found")
    assert "no pool target is named" in missing.json()["message"]
    named = client.put("/v2/targets/fake2/maintenance", json={"maintenance": True}, headers=admin)
    assert (named.status_code, named.json()["type"]) == (400, "invalid_uuid")
    wrong = client.put(path, json={"maintenance": "yes"}, headers=admin)
    assert wrong.status_code == 400, wrong.text
    user = client.put(path, json={"maintenance": False}, headers=support.ALICE)
    assert user.status_code == 403
    assert health.states()[failing.id].maintenance == "ON"
