"""GET /v2/jobs, the dashboard's jobs and ``zoneflow job list`` read one page at a time,
chosen by the database: order, marker, limit, filters, the project's zones, links.

The jobs are logbooks written as posting writes them, each with the flow state and
the status its last task gave the zone that make its state, so that every state a
job can be in is listed without running a conductor.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from taskflow import states
from taskflow.persistence import models

from zoneflow import cli, jobs, objects
from zoneflow.api import app
from zoneflow.central import jobs as central_jobs
from zoneflow.central import zones as central_zones
from zoneflow.taskflow_adapter import jobboard, persistence

pytestmark = pytest.mark.usefixtures("fake_pool")

ALICE = {"X-Auth-Project-ID": "alice", "X-Roles": "member"}
BOB = {"X-Auth-Project-ID": "bob", "X-Roles": "member"}
ALL = {"X-Auth-Project-ID": "ops", "X-Roles": "admin", "X-Auth-All-Projects": "true"}
T0 = datetime.datetime(2026, 12, 1, 12, 0, 0)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(app.create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def write_job(
    zone: objects.Zone | None,
    *,
    created: datetime.datetime,
    kind: str = "update-zone",
    flow_state: str | None = states.SUCCESS,
    status: str | None = "ACTIVE",
    outcome: str | None = None,
    flow_changed: datetime.datetime | None = None,
) -> str:
    """A job's logbook as posting writes it, at the state these make; its id."""
    book = models.LogBook(f"{kind}-{uuid.uuid4().hex[:8]}", uuid=str(uuid.uuid4()))
    book.created_at = created
    if zone is None:  # a job about a pool target (retire-target)
        book.meta = {"kind": kind, "target_id": "t-1", "target": "fake1"}
    else:
        book.meta = {"kind": kind, "zone_id": zone.id, "zone_name": zone.name, "serial": 7}
    if outcome is not None:
        book.meta.update(outcome=outcome, error=f"ended {outcome} by zoneflow")
    flow = models.FlowDetail(kind, uuid.uuid4().hex)
    flow.state = flow_state
    if status is not None:
        atom = models.TaskDetail(jobs.STATUS_ATOM, uuid.uuid4().hex)
        atom.state = states.SUCCESS
        atom.results = status
        flow.add(atom)
    book.add(flow)
    book.updated_at = created  # add() stamped it with the time now
    backend = persistence.get_backend()
    with contextlib.closing(backend.get_connection()) as connection:
        assert connection.add_logbook(book)
    if flow_changed is not None:
        flows = sa.table("flowdetails", sa.column("uuid"), sa.column("updated_at", sa.DateTime))
        with backend.engine.begin() as conn:
            conn.execute(
                flows.update().where(flows.c.uuid == flow.uuid).values(updated_at=flow_changed)
            )
    return str(book.uuid)


def listed(client: TestClient, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    done = client.get(f"/v2/jobs{query}", headers=headers)
    assert done.status_code == 200, done.text
    return dict(done.json())


def ids(body: dict[str, Any]) -> list[str]:
    return [job["id"] for job in body["jobs"]]


def follow(client: TestClient, headers: dict[str, str], query: str) -> list[list[str]]:
    """Every page, following links.next from the first."""
    body = listed(client, headers, query)
    pages = [ids(body)]
    while "next" in body["links"]:
        link = urllib.parse.urlsplit(body["links"]["next"])
        body = listed(client, headers, f"?{link.query}")
        pages.append(ids(body))
    return pages


def zone(name: str, project: str | None) -> objects.Zone:
    return central_zones.create_zone(name, f"hostmaster@{name}", project_id=project)


def test_jobs_are_paged_newest_first_by_marker_with_a_next_link(client: TestClient) -> None:
    a1, a2, b1 = (
        zone("a1.example.", "alice"),
        zone("a2.example.", "alice"),
        zone("b.example.", "bob"),
    )
    # Two jobs share each instant: the id orders them, and no page loses or repeats one.
    alice = [
        write_job((a1, a2)[n % 2], created=T0 + datetime.timedelta(seconds=n // 2))
        for n in range(7)
    ]
    write_job(b1, created=T0 + datetime.timedelta(seconds=1))
    newest_first = sorted(alice, key=lambda j: (alice.index(j) // 2, j), reverse=True)

    pages = follow(client, ALICE, "?limit=3")

    assert pages == [newest_first[0:3], newest_first[3:6], newest_first[6:7]]
    first = listed(client, ALICE, "?limit=3")
    assert first["metadata"]["total_count"] == 7
    assert first["links"]["next"] == (f"http://testserver/v2/jobs?limit=3&marker={newest_first[2]}")
    assert sum(follow(client, ALICE, "?limit=3&sort_dir=asc"), []) == newest_first[::-1]
    # A page that is exactly the last one has no next link.
    assert "next" not in listed(client, ALICE, f"?limit=3&marker={newest_first[3]}")["links"]


def test_jobs_sorted_by_their_last_change_take_the_flows_when_later(client: TestClient) -> None:
    a = zone("a.example.", "alice")
    old_but_busy = write_job(a, created=T0, flow_changed=T0 + datetime.timedelta(hours=2))
    newer = write_job(a, created=T0 + datetime.timedelta(hours=1))
    newest = write_job(a, created=T0 + datetime.timedelta(hours=3))

    assert sum(follow(client, ALICE, "?sort_key=updated_at&limit=1"), []) == [
        newest,
        old_but_busy,
        newer,
    ]
    shown = {j["id"]: j["updated_at"] for j in listed(client, ALICE)["jobs"]}
    assert shown[old_but_busy].startswith("2026-12-01T14:00:00")


def test_the_state_filter_picks_the_jobs_each_job_shows_that_state(client: TestClient) -> None:
    a = zone("a.example.", "alice")
    made = {
        "pending": write_job(a, created=T0, flow_state=None, status=None),
        "running": write_job(a, created=T0, flow_state=states.RUNNING, status=None),
        "success": write_job(a, created=T0, status="ACTIVE"),
        "deleted": write_job(a, created=T0, kind="delete-zone", status="DELETED"),
        "error": write_job(a, created=T0, status="ERROR"),
        "superseded": write_job(a, created=T0, status="SUPERSEDED"),
        "not-activated": write_job(a, created=T0, status="PENDING"),
        "reverted": write_job(a, created=T0, flow_state=states.REVERTED, status=None),
        "cancelled": write_job(a, created=T0, flow_state=states.RUNNING, outcome="CANCELLED"),
        "lost": write_job(a, created=T0, flow_state=None, status=None, outcome="LOST"),
    }
    shown = {
        name: client.get(f"/v2/jobs/{job}", headers=ALICE).json()["state"]
        for name, job in made.items()
    }
    assert shown == {
        "pending": "PENDING",
        "running": "RUNNING",
        "success": "SUCCESS",
        "deleted": "SUCCESS",
        "error": "FAILURE",
        "superseded": "SUPERSEDED",
        "not-activated": "SUPERSEDED",
        "reverted": "REVERTED",
        "cancelled": "CANCELLED",
        "lost": "LOST",
    }
    for state in set(shown.values()):
        body = listed(client, ALICE, f"?state={state.lower()}&limit=1")
        expected = {made[name] for name, seen in shown.items() if seen == state}
        assert body["metadata"]["total_count"] == len(expected), state
        assert set(sum(follow(client, ALICE, f"?state={state}&limit=1"), [])) == expected, state


def test_jobs_are_filtered_by_zone_name_and_kind(client: TestClient) -> None:
    a, b = zone("a.example.", "alice"), zone("b.example.", "alice")
    a_update = write_job(a, created=T0)
    a_delete = write_job(a, created=T0 + datetime.timedelta(seconds=1), kind="delete-zone")
    b_update = write_job(b, created=T0 + datetime.timedelta(seconds=2))

    assert ids(listed(client, ALICE, f"?zone_id={a.id}")) == [a_delete, a_update]
    assert ids(listed(client, ALICE, "?zone_name=B.example")) == [b_update]
    assert ids(listed(client, ALICE, "?kind=update-zone")) == [b_update, a_update]
    both = listed(client, ALICE, f"?zone_id={a.id}&kind=delete-zone&state=SUCCESS")
    assert ids(both) == [a_delete] and both["metadata"]["total_count"] == 1
    assert ids(listed(client, ALICE, f"?zone_id={b.id}&kind=delete-zone")) == []


def test_a_project_lists_only_its_own_zones_jobs(client: TestClient) -> None:
    a, b = zone("a.example.", "alice"), zone("b.example.", "bob")
    alice = [write_job(a, created=T0 + datetime.timedelta(seconds=n)) for n in range(3)]
    bob = write_job(b, created=T0 + datetime.timedelta(seconds=10))
    target_job = write_job(None, created=T0 + datetime.timedelta(seconds=11), kind="retire-target")
    central_zones.delete_zone(a.id, project_id="alice")
    alice.append(write_job(a, created=T0 + datetime.timedelta(seconds=12), kind="delete-zone"))

    mine = listed(client, ALICE)
    # The deleted zone's jobs are still alice's; none of bob's, no target's job.
    assert ids(mine) == alice[::-1] and mine["metadata"]["total_count"] == 4
    assert {j["project_id"] for j in mine["jobs"]} == {"alice"}
    assert ids(listed(client, BOB)) == [bob]
    everyone = listed(client, ALL)
    assert ids(everyone) == [alice[3], target_job, bob, *alice[2::-1]]
    assert [j["project_id"] for j in everyone["jobs"][:3]] == ["alice", None, "bob"]
    # An admin without all-projects sees its own project's jobs: none.
    assert ids(listed(client, {"X-Auth-Project-ID": "ops", "X-Roles": "admin"})) == []
    # Another project's job is no marker of this list, as a missing one.
    for marker in (bob, str(uuid.uuid4())):
        done = client.get(f"/v2/jobs?marker={marker}", headers=ALICE)
        assert done.status_code == 400 and done.json()["type"] == "marker_not_found", done.text
    # A filter on another project's zone finds nothing, and counts nothing.
    other = listed(client, ALICE, f"?zone_id={b.id}")
    assert ids(other) == [] and other["metadata"]["total_count"] == 0


@pytest.fixture
def count_built(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """``count_built()`` starts counting the logbooks read whole (assembled into TaskFlow's
    objects): the list it returns gets each one's uuid."""

    def start() -> list[str]:
        built: list[str] = []
        assemble = persistence._assemble_book

        def counted(book_row: Any, *args: Any) -> models.LogBook:
            built.append(book_row.uuid)
            return assemble(book_row, *args)

        monkeypatch.setattr(persistence, "_assemble_book", counted)
        return built

    return start


def test_a_page_reads_only_its_own_jobs_logbooks(
    client: TestClient, count_built: Callable[[], list[str]]
) -> None:
    """The list used to read every job's logbook, flows and atoms into Python at each
    request: GET /v2/jobs never answered at 10,000 jobs."""
    a = zone("a.example.", "alice")
    for n in range(40):
        write_job(a, created=T0 + datetime.timedelta(seconds=n))
    built = count_built()

    body = listed(client, ALICE, "?limit=5&state=SUCCESS")
    assert len(body["jobs"]) == 5 and body["metadata"]["total_count"] == 40
    assert sorted(built) == sorted(ids(body))
    built.clear()
    page = central_jobs.find_jobs(
        {}, objects.Paging(5, marker=ids(body)[-1], sort_dir=objects.DESC), project_id="alice"
    )
    assert len(page.items) == 5 and sorted(built) == sorted(job.info.id for job in page.items)


def test_zoneflow_job_list_reads_pages_and_goes_on_after_a_marker(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = zone("a.example.", "alice")
    made = [write_job(a, created=T0 + datetime.timedelta(seconds=n)) for n in range(7)]
    monkeypatch.setattr(jobs.records, "PAGE", 3)  # several pages for a whole list

    assert cli.main(["--json", "job", "list", "--limit", "0"]) == 0
    assert [j["id"] for j in json.loads(capsys.readouterr().out)] == made[::-1]
    # A short id will do as a marker, as for 'job show'.
    assert cli.main(["--json", "job", "list", "--limit", "2", "--marker", made[4][:8]]) == 0
    assert [j["id"] for j in json.loads(capsys.readouterr().out)] == [made[3], made[2]]
    assert cli.main(["job", "list", "--limit", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "id", "kind", "zone_name", "serial", "state", "attempts", "updated_at", "error"
    ]  # fmt: skip
    assert [line.split()[0] for line in table[1:]] == [made[6], made[5]]


def test_a_purge_reads_only_the_old_ended_jobs(count_built: Callable[[], list[str]]) -> None:
    a = zone("a.example.", "alice")
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    recent = [write_job(a, created=now) for _ in range(20)]
    old = now - datetime.timedelta(days=2)
    ended = [
        write_job(a, created=old),
        write_job(a, created=old, status="ERROR"),
        write_job(a, created=old, flow_state=states.RUNNING, outcome="CANCELLED"),
    ]
    running = write_job(a, created=old, flow_state=states.RUNNING, status=None)
    built = count_built()

    backend = persistence.get_backend()
    assert jobs.purge(backend, older_than=datetime.timedelta(days=1)) == 3

    assert sorted(built) == sorted(ended)
    left = {job.id for job in jobs.list_jobs(backend)}
    assert left == {*recent, running}


def test_a_restart_reads_only_the_unfinished_jobs(count_built: Callable[[], list[str]]) -> None:
    """An all-in-one that starts again takes back the jobs its board lost with it."""
    a = zone("a.example.", "alice")
    ended = [write_job(a, created=T0 + datetime.timedelta(seconds=n)) for n in range(20)]
    running = write_job(a, created=T0, flow_state=states.RUNNING, status=None)
    waiting = write_job(a, created=T0, flow_state=None, status=None)
    built = count_built()
    backend = persistence.get_backend()
    board = jobboard.connect(backend)
    try:
        taken = jobs.take_back_unfinished(board, backend)
    finally:
        board.close()

    assert {job.id for job, _ in taken} == {running, waiting}
    assert not set(built) & set(ended)
    # The zone is at a later serial than the lost jobs': a newer job carries it on.
    assert {job.id: jobs.get_job(backend, job.id).state for job, _ in taken} == {
        running: "SUPERSEDED",
        waiting: "SUPERSEDED",
    }
