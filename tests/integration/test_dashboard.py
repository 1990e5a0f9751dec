"""The dashboard's pages and actions, in process (a SQLite database, a zake board, fake
targets): each page shows what the API shows the same caller, each action changes what
the API's would, and a refusal is the API's own words."""

from __future__ import annotations

import datetime
import html
import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from tests import support
from tests.integration.conftest import load_pool, wait_settled
from zoneflow import objects
from zoneflow.api import app, server
from zoneflow.central import health as central_health
from zoneflow.storage import reads as stored_reads

pytestmark = pytest.mark.usefixtures("fake_pool")

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
ALICE_API = {"X-Auth-Project-ID": "alice", "X-Roles": "member"}
ADMIN_API = {"X-Auth-Project-ID": "ops", "X-Roles": "admin", "X-Auth-All-Projects": "true"}


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(
        app.create_app(), raise_server_exceptions=False, follow_redirects=False
    ) as test_client:
        yield test_client


def sign_in(client: TestClient, project: str, role: str, *, all_projects: bool = False) -> None:
    form = {"project": project, "role": role, "next": "/dashboard/"}
    if all_projects:
        form["all_projects"] = "true"
    done = client.post("/dashboard/login", data=form)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/dashboard/"


def create_zone(client: TestClient, name: str) -> str:
    done = client.post("/dashboard/zones", data={"name": name, "email": f"h@{name}"})
    assert done.status_code == 303, done.text
    return done.headers["location"].rsplit("/", 1)[1]


def error_message(page: str) -> str:
    """The error a page shows, as text."""
    found = re.search(r'id="error-message">(.*?)</p>', page, re.DOTALL)
    assert found, page[:1000]
    return html.unescape(found.group(1))


def api_message(done: httpx.Response) -> str:
    return str(done.json()["message"])


# --- where a browser lands ----------------------------------------------------------------


def test_a_browser_asking_for_the_root_is_sent_to_the_dashboard(client: TestClient) -> None:
    done = client.get("/", headers=HTML)
    assert (done.status_code, done.headers["location"]) == (303, "/dashboard/")


def test_the_api_server_serves_the_dashboard_to_a_browser() -> None:
    running = server.ApiServer("127.0.0.1", 0)
    running.start()
    try:
        with httpx.Client(base_url=running.url, headers=HTML, timeout=30) as browser:
            landed = browser.get("/", follow_redirects=True)
        assert landed.status_code == 200
        assert str(landed.url).startswith(f"{running.url}/dashboard/login?next=")
        assert '<form method="post" action="/dashboard/login"' in landed.text
    finally:
        running.stop()


def test_an_api_client_asking_for_the_root_still_gets_the_versions(client: TestClient) -> None:
    for accept in ("application/json", "*/*", None):
        done = client.get("/", headers={"Accept": accept} if accept else {})
        assert done.status_code == 200
        assert [v["id"] for v in done.json()["versions"]] == ["v2", "v2.0"]


def test_a_page_without_an_identity_asks_to_sign_in_and_comes_back(client: TestClient) -> None:
    done = client.get("/dashboard/zones?q=x")
    assert done.status_code == 303
    assert done.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Fzones%3Fq%3Dx"
    form = client.get(done.headers["location"])
    assert form.status_code == 200
    assert 'value="/dashboard/zones?q=x"' in form.text
    assert '<label for="project">' in form.text and '<label for="role">' in form.text


def test_signing_in_refuses_an_unknown_role_saying_which_are_known(client: TestClient) -> None:
    done = client.post("/dashboard/login", data={"project": "alice", "role": "god"})
    assert done.status_code == 400
    assert "give one of reader, member, admin" in error_message(done.text)
    assert "zoneflow_project" not in done.headers.get("set-cookie", "")


def test_signing_in_never_sends_the_browser_to_another_site(client: TestClient) -> None:
    done = client.post(
        "/dashboard/login", data={"project": "a", "role": "member", "next": "https://evil.example/"}
    )
    assert done.headers["location"] == "/dashboard/"


def test_signing_out_forgets_the_identity(client: TestClient) -> None:
    sign_in(client, "alice", "member")
    assert client.get("/dashboard/zones").status_code == 200
    client.post("/dashboard/logout")
    assert client.get("/dashboard/zones").status_code == 303


def test_headers_the_browser_sends_do_not_change_who_it_is(client: TestClient) -> None:
    sign_in(client, "bob", "member")
    alices = client.post(
        "/v2/zones", json={"name": "alice.example.", "email": "h@alice.example"}, headers=ALICE_API
    ).json()
    done = client.get(f"/dashboard/zones/{alices['id']}", headers=ALICE_API)
    assert done.status_code == 404


# --- zones and recordsets -------------------------------------------------------------------


def test_a_zone_created_in_the_page_is_stored_and_its_matrix_shows_each_target_serving_it(
    client: TestClient, conductor: object
) -> None:
    sign_in(client, "alice", "member")
    zone_id = create_zone(client, "made.example.")
    stored = stored_reads.get_zone(zone_id, project_id="alice")
    assert stored.name == "made.example."
    assert wait_settled(zone_id).status == objects.Status.ACTIVE
    page = client.get(f"/dashboard/zones/{zone_id}")
    assert page.status_code == 200
    assert "made.example." in page.text
    matrix = client.get(f"/dashboard/zones/{zone_id}?part=live_matrix")
    assert matrix.text.lstrip().startswith('<table id="matrix">')
    serials = re.findall(r'data-serial="(\d*)" data-current="(\w+)"', matrix.text)
    assert serials == [(str(stored.serial), "true")] * 2
    listed = client.get("/dashboard/zones?q=made")
    assert f'/dashboard/zones/{zone_id}"' in listed.text
    assert "made.example." not in client.get("/dashboard/zones?q=other").text


def test_the_zone_list_is_paged(client: TestClient) -> None:
    raised = client.patch("/v2/quotas/alice", json={"zones": 100}, headers=ADMIN_API)
    assert raised.status_code == 200, raised.text
    sign_in(client, "alice", "member")
    for i in range(27):
        create_zone(client, f"z{i:02d}.paged.example.")
    first = client.get("/dashboard/zones")
    assert first.text.count('<tr data-zone="') == 25
    following = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert following, first.text
    second = client.get(following.group(1).replace("&amp;", "&"))
    assert second.text.count('<tr data-zone="') == 2
    assert "z26.paged.example." in second.text


def test_a_zone_refused_is_shown_in_the_apis_words(client: TestClient) -> None:
    sign_in(client, "alice", "member")
    create_zone(client, "twice.example.")
    done = client.post("/dashboard/zones", data={"name": "twice.example.", "email": "h@x.example"})
    by_api = client.post(
        "/v2/zones", json={"name": "twice.example.", "email": "h@x.example"}, headers=ALICE_API
    )
    assert done.status_code == by_api.status_code == 409
    assert error_message(done.text) == api_message(by_api)
    assert "duplicate_zone" in done.text


def test_recordsets_are_created_changed_and_deleted_from_the_zone_page(
    client: TestClient, conductor: object
) -> None:
    sign_in(client, "alice", "member")
    zone_id = create_zone(client, "records.example.")
    wait_settled(zone_id)
    done = client.post(
        f"/dashboard/zones/{zone_id}/recordsets",
        data={"name": "www", "type": "A", "records": "192.0.2.1\n192.0.2.2\n", "ttl": "300"},
    )
    assert done.status_code == 303, done.text
    (www,) = [r for r in stored_reads.list_recordsets(zone_id) if r.type == "A"]
    assert (www.name, sorted(www.records), www.ttl) == (
        "www.records.example.",
        ["192.0.2.1", "192.0.2.2"],
        300,
    )
    done = client.post(
        f"/dashboard/zones/{zone_id}/recordsets/{www.id}",
        data={"records": "192.0.2.9", "ttl": ""},
    )
    assert done.status_code == 303, done.text
    (changed,) = [r for r in stored_reads.list_recordsets(zone_id) if r.type == "A"]
    assert (changed.records, changed.ttl) == (("192.0.2.9",), None) or (
        list(changed.records),
        changed.ttl,
    ) == (["192.0.2.9"], None)
    assert "192.0.2.9" in client.get(f"/dashboard/zones/{zone_id}?part=live_recordsets").text
    done = client.post(f"/dashboard/zones/{zone_id}/recordsets/{www.id}/delete")
    assert done.status_code == 303
    assert not [r for r in stored_reads.list_recordsets(zone_id) if r.type == "A"]


def test_a_bad_record_is_refused_in_the_apis_words(client: TestClient, conductor: object) -> None:
    sign_in(client, "alice", "member")
    zone_id = create_zone(client, "bad.example.")
    done = client.post(
        f"/dashboard/zones/{zone_id}/recordsets",
        data={"name": "www.bad.example.", "type": "A", "records": "not-an-address"},
    )
    by_api = client.post(
        f"/v2/zones/{zone_id}/recordsets",
        json={"name": "www.bad.example.", "type": "A", "records": ["not-an-address"]},
        headers=ALICE_API,
    )
    assert done.status_code == by_api.status_code == 400
    assert error_message(done.text) == api_message(by_api)
    ttl = client.post(
        f"/dashboard/zones/{zone_id}/recordsets",
        data={"name": "www", "type": "A", "records": "192.0.2.1", "ttl": "soon"},
    )
    assert ttl.status_code == 400
    assert "'soon' is not a whole number" in error_message(ttl.text)


def test_a_zone_is_recovered_and_deleted_from_its_page(
    client: TestClient, conductor: object
) -> None:
    sign_in(client, "alice", "member")
    zone_id = create_zone(client, "gone.example.")
    wait_settled(zone_id)
    assert client.post(f"/dashboard/zones/{zone_id}/recover").status_code == 303
    wait_settled(zone_id)
    assert client.post(f"/dashboard/zones/{zone_id}/delete").status_code == 303
    assert stored_reads.get_zone(zone_id).action == objects.Action.DELETE


def test_a_reader_sees_no_forms_and_is_refused_changes_as_the_api_refuses_them(
    client: TestClient,
) -> None:
    sign_in(client, "alice", "reader")
    page = client.get("/dashboard/zones")
    assert page.status_code == 200 and "Create zone" not in page.text
    done = client.post("/dashboard/zones", data={"name": "r.example.", "email": "h@r.example"})
    by_api = client.post(
        "/v2/zones",
        json={"name": "r.example.", "email": "h@r.example"},
        headers={**ALICE_API, "X-Roles": "reader"},
    )
    assert done.status_code == by_api.status_code == 403
    assert error_message(done.text) == api_message(by_api)


def test_a_live_part_unknown_to_the_page_is_refused(client: TestClient) -> None:
    sign_in(client, "alice", "member")
    done = client.get("/dashboard/zones?part=main")
    assert done.status_code == 400
    assert "give one of live_zones" in done.text


# --- jobs --------------------------------------------------------------------------------------


def test_a_jobs_page_draws_its_graph_with_every_task_state_and_timing(
    client: TestClient, conductor: object
) -> None:
    sign_in(client, "alice", "member")
    zone_id = create_zone(client, "graph.example.")
    wait_settled(zone_id)
    (job,) = client.get(f"/v2/jobs?zone_id={zone_id}", headers=ALICE_API).json()["jobs"]
    listed = client.get("/dashboard/jobs")
    assert f'/dashboard/jobs/{job["id"]}"' in listed.text

    # Timings come from the task events the conductor published: its publisher
    # writes them a moment after the tasks ran, not in the job's transactions.
    def timed() -> httpx.Response | None:
        shown = client.get(f"/dashboard/jobs/{job['id']}")
        return shown if re.search(r"\d+\.\d{3} s</td>", shown.text) else None

    page = support.eventually(timed, what="the job's page with its task timings")
    assert page.status_code == 200
    shown = client.get(f"/v2/jobs/{job['id']}", headers=ALICE_API).json()
    assert page.text.count('<g id="node') >= len(shown["atoms"])
    # Graphviz escapes '-' in its titles; a browser reads them unescaped.
    titles = {html.unescape(t) for t in re.findall(r"<title>(.*?)</title>", page.text)}
    for atom in shown["atoms"]:
        assert atom["name"] in titles
        row = re.search(rf'<tr data-task="{re.escape(atom["name"])}">(.*?)</tr>', page.text, re.S)
        assert row and atom["state"] in row.group(1)
    assert f'href="/dashboard/zones/{zone_id}"' in page.text
    # A live refresh draws its part alone: the table again, not the graph.
    tasks = client.get(f"/dashboard/jobs/{job['id']}?part=live_tasks")
    assert tasks.text.lstrip().startswith('<table id="tasks">') and "<svg" not in tasks.text
    assert re.search(r"\d+\.\d{3} s</td>", tasks.text)
    history = client.get(f"/dashboard/zones/{zone_id}?part=live_history")
    assert f'/dashboard/jobs/{job["id"]}"' in history.text


def test_a_failed_change_shows_its_reverted_tasks_and_the_reason(
    client: TestClient, conductor: object
) -> None:
    load_pool({}, {"fail": "create"}, threshold=100)
    sign_in(client, "alice", "member")
    zone_id = create_zone(client, "reverted.example.")

    # The zone reads ERROR a moment before its job has ended and recorded why.
    def ended() -> dict[str, object] | None:
        listed = client.get(f"/v2/jobs?zone_id={zone_id}", headers=ALICE_API).json()["jobs"]
        return listed[0] if listed and listed[0]["error"] else None

    job = support.eventually(ended, what=f"zone {zone_id}'s job to end with its reason")
    page = client.get(f"/dashboard/jobs/{job['id']}")
    assert 'id="job-reason"' in page.text
    assert job["error"] and html.escape(job["error"], quote=False) in page.text.replace(
        "&#39;", "'"
    )
    assert "REVERTED" in page.text


# --- the operator's view ------------------------------------------------------------------------


def test_the_overview_shows_targets_daemons_and_an_open_alarm_to_an_admin(
    client: TestClient,
) -> None:
    sign_in(client, "ops", "admin")
    (down, up) = [w.target for w in central_health.watched_targets()]
    page = client.get("/dashboard/")
    assert page.text.count('data-health="UP"') == 2
    assert "No open alarm" in page.text
    central_health.target_down(
        down, since=datetime.datetime.now(datetime.UTC), reason="no answer to SOA", zones=0
    )
    alarms = client.get("/dashboard/?part=live_alarms")
    assert f'class="alarm" data-target="{down.id}"' in alarms.text
    pools = client.get("/dashboard/?part=live_pools")
    assert 'data-health="DOWN"' in pools.text and 'data-health="UP"' in pools.text


def test_a_member_sees_no_pools_or_alarms(client: TestClient) -> None:
    sign_in(client, "alice", "member")
    page = client.get("/dashboard/")
    assert page.status_code == 200
    assert "data-health" not in page.text and "sign in with the admin role" in page.text


def test_an_admin_puts_a_target_in_maintenance_and_back(client: TestClient) -> None:
    sign_in(client, "ops", "admin")
    target = central_health.watched_targets()[0].target
    done = client.post(f"/dashboard/targets/{target.id}/maintenance", data={"maintenance": "on"})
    assert done.status_code == 303, done.text
    assert central_health.states()[target.id].maintenance == objects.Maintenance.ON
    page = client.get(f"/dashboard/targets/{target.id}")
    assert "End maintenance" in page.text
    client.post(f"/dashboard/targets/{target.id}/maintenance", data={"maintenance": "off"})
    assert central_health.states()[target.id].maintenance != objects.Maintenance.ON


def test_a_member_may_not_touch_a_targets_maintenance(client: TestClient) -> None:
    sign_in(client, "alice", "member")
    target = central_health.watched_targets()[0].target
    done = client.post(f"/dashboard/targets/{target.id}/maintenance", data={"maintenance": "on"})
    assert done.status_code == 403
    assert "needs the admin role" in error_message(done.text)
    assert target.id not in central_health.states() or (
        central_health.states()[target.id].maintenance != objects.Maintenance.ON
    )


def test_a_target_page_lists_the_zones_it_is_behind_on(
    client: TestClient, conductor: object
) -> None:
    pool = load_pool({}, {"fail": "create"}, threshold=50)
    broken = pool.targets[1]
    sign_in(client, "ops", "admin")
    zone_id = create_zone(client, "behind.example.")
    assert wait_settled(zone_id).status == objects.Status.ACTIVE
    page = client.get(f"/dashboard/targets/{broken.id}")
    assert page.status_code == 200
    assert f'href="/dashboard/zones/{zone_id}">behind.example.</a>' in page.text
    healthy = client.get(f"/dashboard/targets/{pool.targets[0].id}")
    assert "behind.example." not in healthy.text


# --- the stream the pages follow -------------------------------------------------------------


def test_the_pages_stream_is_the_callers_events(client: TestClient, conductor: object) -> None:
    alices = client.post(
        "/v2/zones", json={"name": "seen.example.", "email": "h@seen.example"}, headers=ALICE_API
    ).json()
    wait_settled(alices["id"])
    sign_in(client, "alice", "reader")
    mine = client.get("/dashboard/events?follow=false&last_event_id=0")
    assert mine.status_code == 200
    assert alices["id"] in mine.text and "event: task" in mine.text
    sign_in(client, "bob", "member")
    assert alices["id"] not in client.get("/dashboard/events?follow=false&last_event_id=0").text


def test_the_static_files_are_served_from_the_package(client: TestClient) -> None:
    script = client.get("/dashboard/static/dashboard.js")
    assert script.status_code == 200 and "EventSource" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert client.get("/dashboard/static/../app.py").status_code == 404
