"""Projects kept apart on every route the API serves.

The tests walk the application's routes rather than a list written by hand, so a route
added later is walked too: one whose path parameter or body this file does
not know fails here until it is added below, and then has to keep another
project's data out like every other route. Each route is asked with alice's
ids by bob (a member of another project), by bob pretending to be alice
(sudo) and by bob asking for all projects; each must refuse (403, 404) or
answer without anything of alice's. The same reads by alice and by an admin
with all projects succeed, which proves the ids are the right ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import routing
from fastapi.testclient import TestClient

from tests.integration.conftest import wait_settled
from zoneflow import heartbeat
from zoneflow.api import app
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads

pytestmark = pytest.mark.usefixtures("fake_pool")

ALICE = {"X-Auth-Project-ID": "alice", "X-Roles": "member"}
BOB = {"X-Auth-Project-ID": "bob", "X-Roles": "member"}
ALL = {"X-Auth-Project-ID": "ops", "X-Roles": "admin", "X-Auth-All-Projects": "true"}
STRANGERS = {
    "another project": BOB,
    "another project acting as alice": {**BOB, "X-Auth-Sudo-Project-ID": "alice"},
    "another project asking for all": {**BOB, "X-Auth-All-Projects": "true"},
    "a reader of another project": {**BOB, "X-Roles": "reader"},
}
ZONE = "alice.example."
IMPORTED = "imported-alice.example."
ZONE_FILE = """\
$ORIGIN {origin}
$TTL 300
@    IN SOA ns1.example.org. hostmaster.{origin} 1 3600 600 86400 300
www  IN A   192.0.2.7
"""

# What a route that takes a body is sent; a route missing here fails the test.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v2/zones"): {"json": {"name": "bob.example.", "email": "h@bob.example"}},
    ("PATCH", "/v2/zones/{zone_id}"): {"json": {"ttl": 600, "description": "bob was here"}},
    ("POST", "/v2/zones/{zone_id}/recordsets"): {
        "json": {"name": "bob.alice.example.", "type": "A", "records": ["192.0.2.66"]}
    },
    ("PUT", "/v2/zones/{zone_id}/recordsets/{recordset_id}"): {
        "json": {"records": ["192.0.2.66"], "ttl": 60}
    },
    ("POST", "/v2/zones/{zone_id}/tasks/export"): {},
    ("POST", "/v2/zones/tasks/imports"): {
        "content": ZONE_FILE.format(origin="imported-bob.example.").encode(),
        "headers": {"Content-Type": "text/dns"},
    },
    ("POST", "/v2/tsigkeys"): {
        "json": {
            "name": "bobs-key",
            "algorithm": "hmac-sha256",
            "secret": "c2VjcmV0IG9mIGJvYg==",
            "scope": "ZONE",
            "resource_id": "{zone_id}",
        }
    },
    ("PATCH", "/v2/tsigkeys/{tsigkey_id}"): {"json": {"name": "stolen"}},
    ("PATCH", "/v2/quotas/{project_id}"): {"json": {"zones": 1000}},
    # Ending a maintenance never begun: the operator's change, and nothing changes.
    ("PUT", "/v2/targets/{target_id}/maintenance"): {"json": {"maintenance": False}},
}
# A filter on each list that could reach alice's items if it ignored the project.
LIST_FILTERS = {
    "/v2/zones": "name={zone_name}",
    "/v2/recordsets": "zone_id={zone_id}",
    "/v2/jobs": "zone_id={zone_id}",
    "/v2/zones/tasks/exports": "zone_id={zone_id}",
    "/v2/zones/tasks/imports": "zone_id={imported_zone_id}",
}
# A stream is read from its first event kept to its end (alice's changes are in it),
# rather than followed.
STREAMS = {"/v2/events": "follow=false&last_event_id=0"}
# Routes that are an operator's alone: alice is refused them too.
ADMIN_ONLY = re.compile(r"^/v2/(pools|service_statuses|targets|tsigkeys)")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(app.create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def alices(client: TestClient, conductor: object) -> dict[str, str]:
    """Every kind of thing alice can own, settled, by the name of the path parameter
    that reaches it."""
    zone = _ok(
        client.post("/v2/zones", json={"name": ZONE, "email": "h@alice.example"}, headers=ALICE)
    )
    rs = _ok(
        client.post(
            f"/v2/zones/{zone['id']}/recordsets",
            json={"name": "www.alice.example.", "type": "A", "records": ["192.0.2.1"]},
            headers=ALICE,
        )
    )
    assert wait_settled(zone["id"]).status == "ACTIVE"
    export = _ok(client.post(f"/v2/zones/{zone['id']}/tasks/export", headers=ALICE))
    imported = _ok(
        client.post(
            "/v2/zones/tasks/imports",
            content=ZONE_FILE.format(origin=IMPORTED).encode(),
            headers={**ALICE, "Content-Type": "text/dns"},
        )
    )
    assert imported["status"] == "COMPLETE", imported
    wait_settled(imported["zone_id"])
    jobs = _ok(client.get(f"/v2/jobs?zone_id={zone['id']}", headers=ALICE))["jobs"]
    key = _ok(
        client.post(
            "/v2/tsigkeys",
            json={
                "name": "alices-key",
                "algorithm": "hmac-sha256",
                "secret": "c2VjcmV0IG9mIGFsaWNl",
                "scope": "ZONE",
                "resource_id": zone["id"],
            },
            headers=ALL,
        )
    )
    heartbeat.Heartbeat(heartbeat.MDNS, hostname="alice-host-1").beat()
    (status,) = _ok(client.get("/v2/service_statuses?hostname=alice-host-1", headers=ALL))[
        "service_statuses"
    ]
    return {
        "zone_id": zone["id"],
        "zone_name": ZONE,
        "recordset_id": rs["id"],
        "export_id": export["id"],
        "import_id": imported["id"],
        "imported_zone_id": imported["zone_id"],
        "job_id": jobs[0]["id"],
        "tsigkey_id": key["id"],
        "pool_id": stored_pools.get_pool("default").id,
        "target_id": stored_pools.get_pool("default").targets[0].id,
        "service_status_id": status["id"],
        "project_id": "alice",
    }


def _ok(done: Any) -> Any:
    assert done.status_code in (200, 201, 202), done.text
    return done.json()


# The dashboard's pages answer HTML: tests/integration/test_dashboard_isolation.py
# walks them the same way.
DASHBOARD = "/dashboard"


def _routes() -> list[tuple[str, str]]:
    """(method, path template) of every route of the API the application serves."""
    found = []
    for route in routing.iter_route_contexts(app.create_app().routes):
        assert route.path and route.methods, f"{route!r}: walk it here too"
        if route.path.startswith(DASHBOARD):
            continue
        found += [(method, route.path) for method in sorted(route.methods) if method != "HEAD"]
    return found


def _request(
    client: TestClient, method: str, template: str, ids: dict[str, str], headers: dict[str, str]
) -> Any:
    def fill(text: str) -> str:
        names = re.findall(r"{(\w+)}", text)
        unknown = set(names) - set(ids)
        assert not unknown, f"{method} {template}: add a value for {unknown} to alices()"
        return text.format(**ids)

    kwargs: dict[str, Any] = {}
    if method in ("POST", "PUT", "PATCH"):
        assert (method, template) in BODIES, f"{method} {template}: add its body to BODIES"
        kwargs = dict(BODIES[(method, template)])
        if "json" in kwargs:
            kwargs["json"] = {
                k: fill(v) if isinstance(v, str) else v for k, v in kwargs["json"].items()
            }
    kwargs["headers"] = {**headers, **kwargs.get("headers", {})}
    url = fill(template)
    if template in LIST_FILTERS and method == "GET":
        url += "?" + fill(LIST_FILTERS[template])
    if template in STREAMS:
        url += "?" + STREAMS[template]
    return client.request(method, url, **kwargs)


def _shown(done: Any) -> str:
    """What an answer shows, but the links of a list, which repeat the query it was asked."""
    if done.headers.get("content-type") != "application/json":
        return str(done.text)
    body = done.json()
    if isinstance(body, dict) and "metadata" in body:
        body = {key: value for key, value in body.items() if key != "links"}
    return json.dumps(body)


def _what_alice_has(client: TestClient, ids: dict[str, str]) -> dict[str, Any]:
    zone = stored_reads.get_zone(ids["zone_id"])
    return {
        "zone": (zone.serial, zone.ttl, zone.description, zone.action),
        "recordsets": sorted(
            (rs.name, rs.type, tuple(rs.records), rs.ttl)
            for rs in stored_reads.list_recordsets(ids["zone_id"])
        ),
        "imported": stored_reads.get_zone(ids["imported_zone_id"]).serial,
        "export": client.get(f"/v2/zones/tasks/exports/{ids['export_id']}", headers=ALICE).json(),
        "import": client.get(f"/v2/zones/tasks/imports/{ids['import_id']}", headers=ALICE).json(),
        "key": client.get(f"/v2/tsigkeys/{ids['tsigkey_id']}", headers=ALL).json(),
        "quotas": client.get("/v2/quotas", headers=ALICE).json(),
    }


def test_the_walk_covers_every_route_of_the_api() -> None:
    walked = {template for _, template in _routes()}
    for expected in (
        "/v2/zones/{zone_id}/recordsets/{recordset_id}",
        "/v2/recordsets",
        "/v2/jobs/{job_id}/flow.svg",
        "/v2/zones/{zone_id}/status",
        "/v2/zones/tasks/exports/{export_id}/export",
        "/v2/quotas/{project_id}",
        "/v2/pools/{pool_id}/status",
        "/v2/targets/{target_id}/maintenance",
        "/metrics",
    ):
        assert expected in walked


@pytest.mark.parametrize("stranger", STRANGERS)
def test_no_route_lets_another_project_see_or_change_alices_zones(
    client: TestClient, alices: dict[str, str], stranger: str
) -> None:
    headers = STRANGERS[stranger]
    before = _what_alice_has(client, alices)
    secrets = [v for k, v in alices.items() if k not in ("pool_id", "target_id", "project_id")]
    secrets += [IMPORTED, "alice"]
    for method, template in _routes():
        done = _request(client, method, template, alices, headers)
        what = f"{stranger}: {method} {template} answered {done.status_code}"
        asked = str(done.request.url) + done.request.content.decode()
        if done.status_code in (403, 404):
            body = done.json()
            assert body["code"] == done.status_code and body["request_id"], what
            shown = body["message"]
        else:
            # A route naming one of alice's things by its path must refuse outright.
            assert "{" not in template, f"{what}: {done.text[:300]}"
            assert done.status_code < 300, f"{what}: {done.text}"
            shown = _shown(done)
            if method == "GET" and template in LIST_FILTERS:
                assert done.json()["metadata"]["total_count"] == 0, f"{what}: {shown[:300]}"
        leaked = [secret for secret in secrets if secret in shown and secret not in asked]
        assert not leaked, f"{what} with alice's {leaked}: {shown[:300]}"
    assert _what_alice_has(client, alices) == before


def test_alice_and_an_admin_for_all_projects_read_every_route_with_those_ids(
    client: TestClient, alices: dict[str, str]
) -> None:
    for method, template in _routes():
        if method != "GET":
            continue
        for who, headers in (("alice", ALICE), ("admin for all projects", ALL)):
            done = _request(client, method, template, alices, headers)
            what = f"{who}: GET {template} answered {done.status_code}: {done.text[:300]}"
            if who == "alice" and ADMIN_ONLY.match(template):
                assert done.status_code == 403, what
                continue
            assert done.status_code == 200, what
            if template in LIST_FILTERS:
                assert done.json()["metadata"]["total_count"] >= 1, what
            if template in STREAMS:
                assert alices["zone_id"] in done.text, what


# Designate's status for each change (designate/api/v2/controllers): 202 for what a
# job carries to the nameservers, 201/200/204 for what is done at once.
STATUSES = {
    ("POST", "/v2/zones"): 202,
    ("PATCH", "/v2/zones/{zone_id}"): 202,
    ("DELETE", "/v2/zones/{zone_id}"): 202,
    ("POST", "/v2/zones/{zone_id}/recordsets"): 202,
    ("PUT", "/v2/zones/{zone_id}/recordsets/{recordset_id}"): 202,
    ("DELETE", "/v2/zones/{zone_id}/recordsets/{recordset_id}"): 202,
    ("POST", "/v2/zones/{zone_id}/tasks/export"): 202,
    ("DELETE", "/v2/zones/tasks/exports/{export_id}"): 204,
    ("POST", "/v2/zones/tasks/imports"): 202,
    ("DELETE", "/v2/zones/tasks/imports/{import_id}"): 204,
    ("POST", "/v2/tsigkeys"): 201,
    ("PATCH", "/v2/tsigkeys/{tsigkey_id}"): 200,
    ("DELETE", "/v2/tsigkeys/{tsigkey_id}"): 204,
    ("PATCH", "/v2/quotas/{project_id}"): 200,
    ("DELETE", "/v2/quotas/{project_id}"): 204,
    ("PUT", "/v2/targets/{target_id}/maintenance"): 200,
}


def test_the_owner_makes_each_change_with_designates_status(
    client: TestClient, alices: dict[str, str]
) -> None:
    """The writes the walk sends succeed for their owner (alice, or an admin for what
    is an operator's), so a stranger's 403/404 is the project check and not a bad
    request; and each answers the status Designate does."""
    writes = [(m, t) for m, t in _routes() if m in WRITES]
    assert {*writes} == set(STATUSES), "add the new route's status to STATUSES"
    zone_delete = ("DELETE", "/v2/zones/{zone_id}")
    writes.remove(zone_delete)
    for method, template in [*writes, zone_delete]:  # the zone last: the others need it
        operators = ADMIN_ONLY.match(template) or "{project_id}" in template
        done = _request(client, method, template, alices, ALL if operators else ALICE)
        assert done.status_code == STATUSES[(method, template)], f"{method} {template}: {done.text}"
