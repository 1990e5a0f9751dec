"""The event stream on the in-process driver: what is published, when, and to whom.

Changes made through central publish in their own transaction; a job's end is
published by the conductor; the rate limit coalesces a key's states; a stale
publisher is reaped; ``/v2/events`` keeps projects apart, filters, and resumes
with Last-Event-ID without losing an event.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests import support
from tests.integration.conftest import wait_settled
from zoneflow import events, exceptions, objects
from zoneflow.api import app, server
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.conductor import daemon
from zoneflow.storage import db, models
from zoneflow.storage import events as stored
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import status as stored_status

pytestmark = pytest.mark.usefixtures("fake_pool")

ALICE = {"X-Auth-Project-ID": "alice", "X-Roles": "member"}
BOB = {"X-Auth-Project-ID": "bob", "X-Roles": "member"}
ALL = {"X-Auth-Project-ID": "ops", "X-Roles": "admin", "X-Auth-All-Projects": "true"}
EVERYTHING = objects.EventFilter()


def _kept(wanted: objects.EventFilter = EVERYTHING) -> list[objects.Event]:
    return stored.after(0, wanted)


def test_a_committed_change_reaches_a_subscriber_with_table_key_action_value_topic() -> None:
    subscription = events.subscribe(EVERYTHING)
    zone = central_zones.create_zone("example.com.", "h@example.com", project_id="alice")
    (event,) = subscription.next(timeout=30)
    assert (event.topic, event.table, event.key, event.action) == (
        "zone",
        "zones",
        zone.id,
        "CREATE",
    )
    assert event.value["name"] == "example.com." and event.value["status"] == "PENDING"
    assert (event.project_id, event.zone_id) == ("alice", zone.id)
    rs = central_recordsets.create_recordset(
        "example.com.", "www", "A", ["192.0.2.1"], project_id="alice"
    )
    (event,) = subscription.next(timeout=30)
    assert (event.topic, event.key, event.action, event.project_id) == (
        "recordset",
        rs.id,
        "CREATE",
        "alice",
    )
    assert event.value["records"] == ["192.0.2.1"]
    assert subscription.next(timeout=0) == []


def test_a_rolled_back_change_publishes_nothing() -> None:
    subscription = events.subscribe(EVERYTHING)
    zone = central_zones.create_zone("example.com.", "h@example.com")
    with pytest.raises(RuntimeError), db.writer() as session:
        session.execute(sa.update(models.Zone).values(ttl=999))
        stored.record(session, objects.EventTopic.ZONE, dataclasses.replace(zone, ttl=999))
        raise RuntimeError("the change fails after its event was written")
    # Refused in its transaction: nothing of it is published either.
    with pytest.raises(exceptions.DuplicateZone):
        central_zones.create_zone("example.com.", "h@example.com")
    central_zones.create_zone("after.example.", "h@example.com")
    seen = [(e.value["name"], e.value["ttl"]) for e in _all_until(subscription, "after.example.")]
    assert seen == [("example.com.", 3600), ("after.example.", 3600)]
    assert [e.value["name"] for e in _kept()] == ["example.com.", "after.example."]


def _pool_id() -> str:
    return stored_pools.get_pool("default").id


def _all_until(subscription: events.Subscription, name: str) -> list[objects.Event]:
    seen: list[objects.Event] = []
    support.eventually(
        lambda: (
            seen.extend(subscription.next(timeout=1)) or name in [e.value.get("name") for e in seen]
        ),
        what=f"the event of {name}",
    )
    return seen


def test_a_job_publishes_its_end_each_tasks_state_and_the_zone_its_new_status(
    conductor: object,
) -> None:
    subscription = events.subscribe(objects.EventFilter(topics=frozenset({"job", "zone", "task"})))
    zone = central_zones.create_zone("example.com.", "h@example.com", project_id="alice")
    assert wait_settled(zone.id).status == "ACTIVE"
    seen: list[objects.Event] = []
    newest: dict[str, str] = {}  # each task's newest state, as the task events tell

    def every_task_ended() -> bool:
        fresh = subscription.next(timeout=1)
        seen.extend(fresh)
        for event in fresh:
            if event.topic == "task":
                newest.update({name: task["state"] for name, task in event.value["tasks"].items()})
        ends = [e.value["atoms"] for e in seen if e.topic == "job"]
        return bool(ends) and newest == ends[0]

    support.eventually(every_task_ended, what=lambda: f"the job's end and its tasks in {seen}")
    statuses = [(e.value["status"], e.action) for e in seen if e.topic == "zone"]
    assert statuses[:2] == [("PENDING", "CREATE"), ("ACTIVE", "ACTIVE")], statuses
    (job,) = [e for e in seen if e.topic == "job"]
    assert job.action == "SUCCESS" and job.project_id == "alice" and job.zone_id == zone.id
    assert job.value["kind"] == "create-zone" and job.value["serial"] == zone.serial
    assert job.value["atoms"]["update-status"] == "SUCCESS"
    # The job's tasks publish under its id, each event carrying several of them.
    tasks = [e for e in seen if e.topic == "task"]
    assert {(e.project_id, e.zone_id, e.key, e.value["job_id"]) for e in tasks} == {
        ("alice", zone.id, job.key, job.key)
    }
    # Each task carries when the engine changed its state and when it began, at or
    # before the event's writing.
    for event in tasks:
        for name, task in event.value["tasks"].items():
            changed = _naive_utc(task["changed_at"])
            started = _naive_utc(task["started_at"])
            assert zone.created_at <= started <= changed <= event.created_at, (name, event)


def test_a_write_of_a_zones_target_rows_publishes_one_event_with_each_as_stored() -> None:
    """What each target serves goes in one event per zone and write (a change on 8
    targets wrote 8 events, more than half of all its events), each row as stored:
    the served serial kept when a lower one is written, as the table keeps it."""
    zone = central_zones.create_zone("example.com.", "h@example.com", project_id="alice")
    with db.reader() as session:
        first, second = session.scalars(sa.select(models.PoolTarget.id)).all()
    stored_status.set_target_statuses(
        zone.id, [(first, zone.serial, "ACTIVE", None), (second, zone.serial, "ACTIVE", None)]
    )
    subscription = events.subscribe(objects.EventFilter(topics=frozenset({"propagation"})))
    stored_status.set_target_statuses(
        zone.id,
        [(first, zone.serial - 1, "ERROR", "refused"), (second, zone.serial, "ACTIVE", None)],
    )

    (event,) = subscription.next(timeout=30)
    assert (event.table, event.key, event.action) == ("zone_target_status", zone.id, "ACTIVE,ERROR")
    assert (event.project_id, event.zone_id, event.value["zone_id"]) == ("alice", zone.id, zone.id)
    rows = event.value["targets"]
    assert set(rows) == {first, second}
    assert (rows[first]["serial"], rows[first]["status"], rows[first]["error"]) == (
        zone.serial,
        "ERROR",
        "refused",
    )
    assert (rows[second]["serial"], rows[second]["status"]) == (zone.serial, "ACTIVE")
    assert subscription.next(timeout=0) == []


def _naive_utc(stamp: str) -> datetime.datetime:
    at = datetime.datetime.fromisoformat(stamp)
    assert at.tzinfo is not None, stamp
    return at.astimezone(datetime.UTC).replace(tzinfo=None)


def test_the_rate_limit_coalesces_a_keys_states_so_the_newest_wins() -> None:
    publisher = events.Publisher("limited", rate_limit=0.5)
    publisher.start()
    try:
        publisher.publish(_job_event("job-1", "state-1"))
        support.eventually(lambda: _states("job-1") == ["state-1"], what="the first state")
        publisher.publish(_job_event("job-1", "state-2"))
        # Another key is not held back by the first one's turn.
        publisher.publish(_job_event("job-2", "state-1"))
        support.eventually(lambda: _states("job-2") == ["state-1"], what="job-2's state")
        # job-1's next turn is two seconds after its first: state-2 waits for it...
        support.holds(lambda: _states("job-1") == ["state-1"], 0.5, what="job-1's turn")
        for state in range(3, 6):
            publisher.publish(_job_event("job-1", f"state-{state}"))
        # ...and the newest state takes its place.
        support.eventually(
            lambda: _states("job-1")[-1] == "state-5",
            what=lambda: f"job-1's newest state, once its turn came (so far {_states('job-1')})",
        )
    finally:
        publisher.stop()
    assert _states("job-1") == ["state-1", "state-5"]


def test_a_jobs_task_states_waiting_for_their_turn_merge_into_one_event() -> None:
    publisher = events.Publisher("merging", rate_limit=0.5)
    publisher.start()
    try:
        publisher.publish(_task_event("begin", "RUNNING"), merge=daemon._merged_task_states)
        support.eventually(lambda: _states("job-1") == ["RUNNING"], what="the first state")
        # The job's next turn is two seconds after its first: these wait for it, together.
        for name, state in [("begin", "SUCCESS"), ("poll", "RUNNING"), ("poll", "FAILURE")]:
            publisher.publish(_task_event(name, state), merge=daemon._merged_task_states)
        support.eventually(lambda: len(_states("job-1")) == 2, what="the job's second event")
    finally:
        publisher.stop()
    first, second = [e.value["tasks"] for e in _kept() if e.key == "job-1"]
    assert {name: task["state"] for name, task in first.items()} == {"begin": "RUNNING"}
    assert {name: task["state"] for name, task in second.items()} == {
        "begin": "SUCCESS",
        "poll": "FAILURE",
    }
    assert _states("job-1") == ["RUNNING", "FAILURE"]


def _task_event(name: str, state: str) -> stored.NewEvent:
    task = {"state": state, "changed_at": "2026-12-06T12:00:00+00:00", "started_at": None}
    return daemon.task_states("job-1", state, {name: task}, None, None)


def _states(key: str) -> list[str]:
    return [e.action for e in _kept() if e.key == key]


def test_stopping_a_publisher_publishes_what_waits_for_its_turn() -> None:
    publisher = events.Publisher("stopping", rate_limit=0.01)
    publisher.start()
    publisher.publish(_job_event("job-1", "RUNNING"))
    support.eventually(lambda: _states("job-1") == ["RUNNING"], what="the first state")
    publisher.publish(_job_event("job-1", "SUCCESS"))
    assert [p.name for p in stored.list_publishers()] == ["stopping"]
    publisher.stop()
    assert _states("job-1") == ["RUNNING", "SUCCESS"]
    assert [p.name for p in stored.list_publishers()] == []


def test_a_publisher_counts_what_it_appended_and_when() -> None:
    stored.touch_publisher("counting", hostname="here", pid=3)
    (before,) = stored.list_publishers()
    stored.append(
        [_job_event("job-1", "RUNNING"), _job_event("job-2", "RUNNING")], publisher="counting"
    )
    stored.append([_job_event("job-1", "SUCCESS")], publisher="counting")
    (after,) = stored.list_publishers()
    assert (before.published, after.published) == (0, 3)
    assert after.last_activity >= before.last_activity
    assert _states("job-1") == ["RUNNING", "SUCCESS"] and _states("job-2") == ["RUNNING"]


def _job_event(key: str, state: str) -> stored.NewEvent:
    return stored.NewEvent(objects.EventTopic.JOB, "jobs", key, state, {"state": state})


def test_a_stale_publisher_is_reaped_by_a_live_ones_heartbeat(override: Any) -> None:
    override("events", publisher_timeout=30)
    stored.touch_publisher("ghost-1", hostname="gone", pid=1)
    with db.writer() as session:
        session.execute(
            sa.update(models.EventPublisher).values(
                last_activity=models.utcnow() - datetime.timedelta(minutes=5)
            )
        )
    stored.touch_publisher("quiet-but-alive", hostname="here", pid=2)
    live = events.Publisher("live")
    live.beat()
    assert [p.name for p in stored.list_publishers()] == ["live", "quiet-but-alive"]


# --- /v2/events --------------------------------------------------------------


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(app.create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def _messages(text: str) -> list[dict[str, Any]]:
    """The SSE messages of a stream: each message's id, event and data."""
    found = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in block.splitlines()
            if ": " in line and not line.startswith(":")
        )
        if "data" in fields:
            data = json.loads(fields["data"])
            assert str(data["id"]) == fields["id"] and data["type"] == fields["event"]
            found.append(data)
    return found


def _two_projects() -> tuple[objects.Zone, objects.Zone]:
    alices = central_zones.create_zone("alice.example.", "h@alice.example", project_id="alice")
    central_recordsets.create_recordset(
        "alice.example.", "www", "A", ["192.0.2.1"], project_id="alice"
    )
    bobs = central_zones.create_zone("bob.example.", "h@bob.example", project_id="bob")
    central_recordsets.create_recordset("bob.example.", "www", "A", ["192.0.2.2"], project_id="bob")
    return alices, bobs


def test_the_stream_keeps_each_project_to_its_own_events(client: TestClient) -> None:
    alices, bobs = _two_projects()
    for headers, zone in ((ALICE, alices), (BOB, bobs)):
        done = client.get("/v2/events?follow=false", headers=headers)
        assert done.status_code == 200 and done.headers["content-type"].startswith(
            "text/event-stream"
        )
        shown = _messages(done.text)
        assert [(m["type"], m["zone_id"]) for m in shown] == [
            ("zone", zone.id),
            ("recordset", zone.id),
        ]
    # Asking for another project's events within one's own finds none.
    assert _messages(client.get("/v2/events?follow=false&project_id=bob", headers=ALICE).text) == []
    everyone = _messages(client.get("/v2/events?follow=false", headers=ALL).text)
    assert {m["project_id"] for m in everyone} == {"alice", "bob"}
    only_bob = client.get("/v2/events?follow=false&project_id=bob", headers=ALL).text
    assert {m["project_id"] for m in _messages(only_bob)} == {"bob"}


def test_the_stream_filters_by_zone_and_type(client: TestClient) -> None:
    alices, bobs = _two_projects()
    by_zone = client.get(f"/v2/events?follow=false&zone_id={bobs.id}", headers=ALL).text
    assert {m["zone_id"] for m in _messages(by_zone)} == {bobs.id}
    by_type = client.get("/v2/events?follow=false&type=recordset", headers=ALL).text
    assert [m["type"] for m in _messages(by_type)] == ["recordset", "recordset"]
    both = client.get("/v2/events?follow=false&type=zone,recordset", headers=ALICE).text
    assert len(_messages(both)) == 2
    refused = client.get("/v2/events?type=zones", headers=ALL)
    assert refused.status_code == 400
    assert "unknown event type zones" in refused.json()["message"]
    bad_id = client.get("/v2/events", headers={**ALL, "Last-Event-ID": "yesterday"})
    assert bad_id.status_code == 400 and "Last-Event-ID" in bad_id.json()["message"]


def test_a_client_that_reconnects_with_last_event_id_misses_nothing(override: Any) -> None:
    """Live, over HTTP: the first connection reads two events and drops; changes are made
    while no one listens; the second connection, with the last id seen, gets exactly those."""
    override("events", poll_interval=0.2)
    running = server.ApiServer("127.0.0.1", 0)
    running.start()
    try:
        with httpx.Client(base_url=running.url, timeout=30) as http:
            central_zones.create_zone("before.example.", "h@example.com", project_id="alice")
            with http.stream("GET", "/v2/events?last_event_id=0", headers=ALICE) as live:
                lines = live.iter_lines()
                first = _read(lines, 1)
                central_zones.create_zone("live.example.", "h@example.com", project_id="alice")
                first += _read(lines, 1)
            assert [m["value"]["name"] for m in first] == ["before.example.", "live.example."]
            # While no one listens: alice's changes, and bob's she must not see.
            central_zones.create_zone("missed.example.", "h@example.com", project_id="alice")
            central_zones.create_zone("bobs.example.", "h@example.com", project_id="bob")
            central_zones.update_zone("missed.example.", ttl=600, project_id="alice")
            resumed = {**ALICE, "Last-Event-ID": str(first[-1]["id"])}
            with http.stream("GET", "/v2/events", headers=resumed) as live:
                again = _read(live.iter_lines(), 2)
            assert [(m["value"]["name"], m["action"]) for m in again] == [
                ("missed.example.", "CREATE"),
                ("missed.example.", "UPDATE"),
            ]
    finally:
        running.stop()


def _read(lines: Iterator[str], count: int) -> list[dict[str, Any]]:
    """The next ``count`` messages of a live stream's lines (keep-alive comments skipped)."""
    found: list[dict[str, Any]] = []
    block = ""
    while len(found) < count:
        line = next(lines)
        if line:
            block += line + "\n"
            continue
        found += _messages(block)
        block = ""
    return found
