"""Projects kept apart on every page and action of the dashboard.

As tests/integration/test_api_isolation.py does for the API, the routes are
walked from the application rather than listed by hand, so a page added
later is walked too (one whose path parameter or form this file does not
know fails here until it is added). bob, signed in to another project in
each way the sign-in allows, asks every route with alice's ids: each must
refuse (403, 404) or answer without anything of alice's, and alice's zone,
recordsets and jobs are as they were. alice herself, and an admin of all
projects, read every page with the same ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import routing
from fastapi.testclient import TestClient

from tests.integration.conftest import wait_settled
from zoneflow.api import app
from zoneflow.central import health as central_health
from zoneflow.storage import reads as stored_reads

pytestmark = pytest.mark.usefixtures("fake_pool")

ROOT = "/dashboard"
ZONE = "alice.example."
ALICE_API = {"X-Auth-Project-ID": "alice", "X-Roles": "member"}
# Who bob may say he is at sign-in (noauth): a member or reader of his project, or a
# member asking for all projects (which the API refuses him).
STRANGERS: dict[str, dict[str, str]] = {
    "another project": {"project": "bob", "role": "member"},
    "a reader of another project": {"project": "bob", "role": "reader"},
    "another project asking for all": {"project": "bob", "role": "member", "all_projects": "true"},
}
ALICE = {"project": "alice", "role": "member"}
ALL = {"project": "ops", "role": "admin", "all_projects": "true"}
# What a route that takes a form is sent; a route missing here fails the walk.
FORMS: dict[str, dict[str, str]] = {
    f"{ROOT}/login": {"project": "bob", "role": "member"},
    f"{ROOT}/logout": {},
    f"{ROOT}/zones": {"name": "bob.example.", "email": "h@bob.example"},
    f"{ROOT}/zones/{{zone_id}}/delete": {},
    f"{ROOT}/zones/{{zone_id}}/recover": {},
    f"{ROOT}/zones/{{zone_id}}/recordsets": {"name": "bob", "type": "A", "records": "192.0.2.66"},
    f"{ROOT}/zones/{{zone_id}}/recordsets/{{recordset_id}}": {"records": "192.0.2.66"},
    f"{ROOT}/zones/{{zone_id}}/recordsets/{{recordset_id}}/delete": {},
    f"{ROOT}/targets/{{target_id}}/maintenance": {"maintenance": "on"},
}
# What a route reading a stream or a file is asked.
QUERIES = {f"{ROOT}/events": "follow=false&last_event_id=0"}
# Routes anyone may read (the page's script and style): no project's data in them.
PUBLIC = {f"{ROOT}/static/{{name}}", f"{ROOT}/login"}
# Routes that are an operator's alone: alice is refused them too.
ADMIN_ONLY = re.compile(rf"^{ROOT}/targets/")


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(
        app.create_app(), raise_server_exceptions=False, follow_redirects=False
    ) as test_client:
        yield test_client


@pytest.fixture
def alices(client: TestClient, conductor: object) -> dict[str, str]:
    zone = client.post(
        "/v2/zones", json={"name": ZONE, "email": "h@alice.example"}, headers=ALICE_API
    ).json()
    rs = client.post(
        f"/v2/zones/{zone['id']}/recordsets",
        json={"name": "www.alice.example.", "type": "A", "records": ["192.0.2.1"]},
        headers=ALICE_API,
    ).json()
    assert wait_settled(zone["id"]).status == "ACTIVE"
    jobs = client.get(f"/v2/jobs?zone_id={zone['id']}", headers=ALICE_API).json()["jobs"]
    return {
        "zone_id": zone["id"],
        "recordset_id": rs["id"],
        "job_id": jobs[0]["id"],
        "target_id": central_health.watched_targets()[0].target.id,
        "name": "dashboard.js",
    }


def _routes() -> list[tuple[str, str]]:
    """(method, path template) of every dashboard route the application serves."""
    found = []
    for route in routing.iter_route_contexts(app.create_app().routes):
        if route.path.startswith(ROOT):
            found += [(m, route.path) for m in sorted(route.methods) if m != "HEAD"]
    return found


def _sign_in(client: TestClient, who: dict[str, str]) -> None:
    client.cookies.clear()
    done = client.post(f"{ROOT}/login", data=who)
    assert done.status_code == 303, done.text


def _request(
    client: TestClient, method: str, template: str, ids: dict[str, str], who: dict[str, str]
) -> Any:
    # Each request as the one signed in: an action (sign-out) may have changed it.
    _sign_in(client, who)
    names = re.findall(r"{(\w+)}", template)
    assert set(names) <= set(ids), f"{method} {template}: add a value for {names} to alices()"
    url = template.format(**ids)
    if template in QUERIES:
        url += "?" + QUERIES[template]
    if method == "POST":
        assert template in FORMS, f"POST {template}: add its form to FORMS"
        return client.post(url, data=FORMS[template])
    return client.get(url)


def _what_alice_has(zone_id: str) -> Any:
    zone = stored_reads.get_zone(zone_id)
    return (
        (zone.serial, zone.action, zone.status),
        sorted((r.name, r.type, tuple(r.records)) for r in stored_reads.list_recordsets(zone_id)),
        {t: s.maintenance for t, s in central_health.states().items()},
    )


def test_the_walk_covers_every_page_and_action() -> None:
    walked = set(_routes())
    for expected in (
        ("GET", f"{ROOT}/zones/{{zone_id}}"),
        ("GET", f"{ROOT}/jobs/{{job_id}}"),
        ("GET", f"{ROOT}/targets/{{target_id}}"),
        ("GET", f"{ROOT}/events"),
        ("POST", f"{ROOT}/zones/{{zone_id}}/recordsets/{{recordset_id}}"),
    ):
        assert expected in walked
    assert {t for m, t in walked if m == "POST"} == set(FORMS)


@pytest.mark.parametrize("stranger", STRANGERS)
def test_no_page_or_action_lets_another_project_see_or_change_alices(
    client: TestClient, alices: dict[str, str], stranger: str
) -> None:
    who = STRANGERS[stranger]
    before = _what_alice_has(alices["zone_id"])
    secrets = [alices["zone_id"], alices["recordset_id"], alices["job_id"], ZONE, "192.0.2.1"]
    for method, template in _routes():
        done = _request(client, method, template, alices, who)
        what = f"{stranger}: {method} {template} answered {done.status_code}"
        if template in PUBLIC:
            assert done.status_code in (200, 303), what
        elif "{" in template:
            # A route naming one of alice's things (or an operator's target) refuses.
            assert done.status_code in (403, 404), f"{what}: {done.text[:300]}"
        else:
            assert done.status_code in (200, 303, 403), f"{what}: {done.text[:300]}"
        shown = done.text + done.headers.get("location", "")
        asked = str(done.request.url)
        leaked = [s for s in secrets if s in shown and s not in asked]
        assert not leaked, f"{what} with alice's {leaked}: {shown[:300]}"
    assert _what_alice_has(alices["zone_id"]) == before


def test_alice_and_an_admin_for_all_projects_read_every_page_with_those_ids(
    client: TestClient, alices: dict[str, str]
) -> None:
    for method, template in _routes():
        if method != "GET":
            continue
        for name, who in (("alice", ALICE), ("admin for all projects", ALL)):
            done = _request(client, method, template, alices, who)
            what = f"{name}: GET {template} answered {done.status_code}: {done.text[:300]}"
            if name == "alice" and ADMIN_ONLY.match(template):
                assert done.status_code == 403, what
                continue
            assert done.status_code == 200, what
            if template in (f"{ROOT}/zones", f"{ROOT}/events", f"{ROOT}/jobs"):
                assert alices["zone_id"] in done.text, what
