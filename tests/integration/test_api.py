"""The REST API (Designate's v2) through FastAPI's TestClient, on SQLite and fake targets."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from keystoneauth1 import discover

from tests.integration.conftest import wait_settled
from tests.support import ADMIN, ALICE, ALL_PROJECTS, BOB, RECORDSET_FIELDS, ZONE_FIELDS, eventually
from zoneflow import exceptions
from zoneflow.api import app, schemas, server
from zoneflow.central import zones as central_zones
from zoneflow.dns import zone as dns_zone
from zoneflow.storage import db, models
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads

pytestmark = pytest.mark.usefixtures("fake_pool")


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(app.create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def _zone(client: TestClient, name: str = "example.com.", headers: Any = None, **fields: Any):
    body = {"name": name, "email": f"hostmaster@{name.rstrip('.')}", **fields}
    done = client.post("/v2/zones", json=body, headers=headers or ALICE)
    assert done.status_code == 202, done.text
    return done.json()


def _recordset(client: TestClient, zone: dict, name: str, rtype: str, records: list, **fields):
    done = client.post(
        f"/v2/zones/{zone['id']}/recordsets",
        json={"name": name, "type": rtype, "records": records, **fields},
        headers=ALICE,
    )
    assert done.status_code == 202, done.text
    return done.json()


def _assert_error(done: Any, status: int, error_type: str, *words: str) -> dict:
    assert done.status_code == status, done.text
    body = done.json()
    assert {"code", "type", "message", "request_id"} <= set(body)
    assert body["code"] == status
    assert body["type"] == error_type, body
    assert body["request_id"] == done.headers["X-OpenStack-Request-ID"]
    assert body["request_id"].startswith("req-")
    for word in words:
        assert word in body["message"], body["message"]
    assert "Traceback" not in done.text
    return body


# --- version discovery --------------------------------------------------------------


class _KeystoneSession:
    """Just enough of a keystoneauth Session for its discovery to read the TestClient."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, headers=kwargs.get("headers"))


@pytest.mark.parametrize("url", ["http://testserver", "http://testserver/v2"])
def test_keystoneauth_discovers_v2_from_the_bare_or_versioned_url(
    client: TestClient, url: str
) -> None:
    found = discover.Discover(_KeystoneSession(client), url)  # type: ignore[arg-type]
    assert found.url_for("2") == "http://testserver/v2"
    versions = client.get("/").json()["versions"]
    assert {v["id"]: v["status"] for v in versions} == {"v2": "CURRENT", "v2.0": "SUPPORTED"}
    schemas.Versions.model_validate(client.get("/").json())
    schemas.OneVersion.model_validate(client.get("/v2/").json())


# --- zones --------------------------------------------------------------------------


def test_create_zone_answers_202_pending_with_every_designate_field(client: TestClient) -> None:
    done = client.post(
        "/v2/zones",
        json={"name": "Example.COM.", "email": "hostmaster@example.com", "ttl": 600},
        headers=ALICE,
    )
    assert done.status_code == 202
    zone = done.json()
    assert set(zone) == ZONE_FIELDS
    schemas.Zone.model_validate(zone)
    assert zone["name"] == "example.com."
    assert (zone["status"], zone["action"], zone["type"]) == ("PENDING", "CREATE", "PRIMARY")
    assert (zone["ttl"], zone["project_id"], zone["version"]) == (600, "alice", 1)
    assert zone["serial"] == stored_reads.get_zone(zone["id"]).serial
    assert zone["links"]["self"] == f"http://testserver/v2/zones/{zone['id']}"
    assert done.headers["Location"] == zone["links"]["self"]
    assert client.get(f"/v2/zones/{zone['id']}", headers=ALICE).json() == zone


def test_a_change_that_changes_nothing_still_bumps_the_serial_as_designates_does(
    client: TestClient,
) -> None:
    """Designate's central does not compare: PATCH {} and a PUT of the same values set
    the zone PENDING/UPDATE and bump its serial (doc/api.md, "Changes that change
    nothing"); a client waiting for ACTIVE after a change gets one."""
    zone = _zone(client)
    rs = _recordset(client, zone, f"www.{zone['name']}", "A", ["192.0.2.1"], ttl=300)

    def jobs() -> list[tuple[str, int]]:
        with db.reader() as session:
            rows = session.execute(
                sa.select(models.JobOutbox.kind, models.JobOutbox.serial)
                .where(models.JobOutbox.zone_id == zone["id"])
                .order_by(models.JobOutbox.id)
            )
            return [(kind, serial) for kind, serial in rows]

    rs_url = f"/v2/zones/{zone['id']}/recordsets/{rs['id']}"
    for method, url, body in (
        ("PATCH", f"/v2/zones/{zone['id']}", {}),
        ("PUT", rs_url, {}),
        ("PUT", rs_url, {"records": ["192.0.2.1"], "ttl": 300, "description": None}),
    ):
        before = stored_reads.get_zone(zone["id"])
        queued = jobs()
        done = client.request(method, url, json=body, headers=ALICE)
        assert done.status_code == 202, done.text
        assert (done.json()["status"], done.json()["action"]) == ("PENDING", "UPDATE")
        after = stored_reads.get_zone(zone["id"])
        assert after.serial > before.serial
        # Its create waits (nothing runs it here) and carries the change: the
        # zone's updates ride on the job not begun (zoneflow.storage.outbox).
        assert jobs() == [(queued[0][0], after.serial)]


def test_zone_update_and_delete_go_through_their_jobs(
    client: TestClient, conductor: object
) -> None:
    zone = _zone(client)
    assert wait_settled(zone["id"]).status == "ACTIVE"
    done = client.patch(
        f"/v2/zones/{zone['id']}",
        json={"email": "dns@example.com", "ttl": 300, "description": "the example"},
        headers=ALICE,
    )
    assert done.status_code == 202
    updated = done.json()
    assert (updated["email"], updated["ttl"], updated["description"]) == (
        "dns@example.com",
        300,
        "the example",
    )
    assert (updated["status"], updated["action"]) == ("PENDING", "UPDATE")
    assert updated["serial"] > zone["serial"]
    assert updated["version"] == zone["version"] + 1
    assert wait_settled(zone["id"]).status == "ACTIVE"
    cleared = client.patch(
        f"/v2/zones/{zone['id']}", json={"description": None}, headers=ALICE
    ).json()
    assert cleared["description"] is None

    done = client.delete(f"/v2/zones/{zone['id']}", headers=ALICE)
    assert done.status_code == 202
    assert (done.json()["status"], done.json()["action"]) == ("PENDING", "DELETE")
    eventually(
        lambda: client.get(f"/v2/zones/{zone['id']}", headers=ALICE).status_code == 404,
        20,
        what="the deleted zone to be gone",
    )
    _assert_error(
        client.get(f"/v2/zones/{zone['id']}", headers=ALICE), 404, "zone_not_found", zone["id"]
    )


def test_zone_fields_that_cannot_change_are_refused_by_name(client: TestClient) -> None:
    zone = _zone(client)
    for field, value in (("name", "other.com."), ("serial", 5), ("type", "PRIMARY")):
        done = client.patch(f"/v2/zones/{zone['id']}", json={field: value}, headers=ALICE)
        _assert_error(done, 400, "invalid_object", field)
    assert stored_reads.get_zone(zone["id"]).serial == zone["serial"]


def test_secondary_zones_masters_and_attributes_are_refused_with_the_reason(
    client: TestClient,
) -> None:
    base = {"name": "example.com.", "email": "a@example.com"}
    for extra, words in (
        ({"type": "SECONDARY"}, ("type", "PRIMARY")),
        ({"masters": ["192.0.2.1"]}, ("masters", "SECONDARY")),
        ({"attributes": {"tier": "gold"}}, ("attributes", "pool_id")),
    ):
        done = client.post("/v2/zones", json={**base, **extra}, headers=ALICE)
        _assert_error(done, 400, "invalid_object", *words)
    assert central_zones.list_zones() == []


def test_a_zone_goes_to_the_pool_named_by_pool_id(client: TestClient) -> None:
    pool = stored_pools.get_pool("default")
    assert _zone(client, pool_id=pool.id)["pool_id"] == pool.id
    done = client.post(
        "/v2/zones",
        json={"name": "b.example.", "email": "a@b.example", "pool_id": "nowhere"},
        headers=ALICE,
    )
    _assert_error(done, 404, "pool_not_found", "nowhere")


# --- recordsets ------------------------------------------------------------------------


def test_recordset_lifecycle_carries_every_field_and_the_serial_of_its_change(
    client: TestClient,
) -> None:
    zone = _zone(client)
    created = _recordset(
        client, zone, "www.example.com.", "A", ["192.0.2.1", "192.0.2.2"], description="web"
    )
    assert set(created) == RECORDSET_FIELDS
    schemas.RecordSet.model_validate(created)
    assert (created["zone_name"], created["project_id"]) == ("example.com.", "alice")
    assert (created["status"], created["action"], created["ttl"]) == ("PENDING", "CREATE", None)
    assert created["serial"] == stored_reads.get_zone(zone["id"]).serial
    url = f"/v2/zones/{zone['id']}/recordsets/{created['id']}"
    assert created["links"]["self"] == f"http://testserver{url}"
    assert client.get(url, headers=ALICE).json() == created

    done = client.put(url, json={"records": ["192.0.2.3"], "ttl": 60}, headers=ALICE)
    assert done.status_code == 202
    updated = done.json()
    assert (updated["records"], updated["ttl"], updated["description"]) == (
        ["192.0.2.3"],
        60,
        "web",
    )
    assert (updated["action"], updated["version"]) == ("UPDATE", 2)
    assert updated["serial"] > created["serial"]
    cleared = client.put(url, json={"ttl": None, "description": None}, headers=ALICE).json()
    assert (cleared["ttl"], cleared["description"], cleared["records"]) == (
        None,
        None,
        ["192.0.2.3"],
    )

    done = client.delete(url, headers=ALICE)
    assert done.status_code == 202
    assert (done.json()["action"], done.json()["status"]) == ("DELETE", "PENDING")
    _assert_error(client.get(url, headers=ALICE), 404, "recordset_not_found")


def test_a_zones_soa_and_apex_ns_are_listed_as_mdns_serves_them_and_cannot_be_changed(
    client: TestClient,
) -> None:
    zone = _zone(client)
    url = f"/v2/zones/{zone['id']}/recordsets"
    _recordset(client, zone, "www.example.com.", "A", ["192.0.2.1"])
    listed = client.get(url, headers=ALICE).json()["recordsets"]
    apex = {rs["type"]: rs for rs in listed if rs["name"] == "example.com."}
    assert set(apex) == {"SOA", "NS"} and len(listed) == 3
    stored = stored_reads.get_zone(zone["id"])
    served = dns_zone.apex_rrsets(stored, stored_pools.get_pool(stored.pool_id))
    for rrset in served:
        shown = apex[rrset.rdtype.name]
        assert set(shown) == RECORDSET_FIELDS
        schemas.RecordSet.model_validate(shown)
        assert shown["records"] == [rdata.to_text() for rdata in rrset]
        assert (shown["zone_name"], shown["project_id"], shown["ttl"]) == (
            "example.com.",
            "alice",
            None,
        )
        # Shown the same by id, in its zone and alone.
        assert client.get(f"{url}/{shown['id']}", headers=ALICE).json() == shown
        assert client.get(f"/v2/recordsets/{shown['id']}", headers=ALICE).json() == shown
    assert apex["SOA"]["records"] == [
        f"ns1.example.org. hostmaster.example.com. {stored.serial} 3600 600 86400 3600"
    ]
    assert apex["NS"]["records"] == ["ns1.example.org."]
    assert (apex["SOA"]["status"], apex["SOA"]["action"]) == ("PENDING", "CREATE")

    # Designate's refusals, and nothing changes.
    soa_url, ns_url = (f"{url}/{apex[t]['id']}" for t in ("SOA", "NS"))
    change = {"records": ["ns9.example.org."]}
    for target in (soa_url, ns_url):
        _assert_error(
            client.put(target, json=change, headers=ALICE),
            400,
            "bad_request",
            "Managed records may not be updated",
        )
    _assert_error(
        client.delete(soa_url, headers=ALICE),
        400,
        "bad_request",
        "Deleting a SOA recordset is not allowed",
    )
    _assert_error(
        client.delete(ns_url, headers=ALICE),
        400,
        "bad_request",
        "Managed records may not be deleted",
    )
    assert stored_reads.get_zone(zone["id"]).serial == stored.serial
    # A delegation below the apex is an ordinary NS recordset.
    _recordset(client, zone, "sub.example.com.", "NS", ["ns.sub.example.com."])

    # The SOA follows the zone's serial; filters and pages take the apex sets in.
    after = client.get(f"{url}/{apex['SOA']['id']}", headers=ALICE).json()
    assert after["records"][0].split()[2] == str(stored_reads.get_zone(zone["id"]).serial)
    assert [
        rs["type"] for rs in client.get(f"{url}?type=SOA", headers=ALICE).json()["recordsets"]
    ] == ["SOA"]
    items, totals = _walk(client, f"{url}?limit=1&sort_key=type")
    assert [rs["type"] for rs in items] == ["A", "NS", "NS", "SOA"]
    assert set(totals) == {4}
    items, _ = _walk(client, f"{url}?limit=1&sort_key=id&sort_dir=desc")
    assert [rs["id"] for rs in items] == sorted((rs["id"] for rs in items), reverse=True)
    assert len(items) == 4


def test_names_without_their_trailing_dot_are_refused_as_designate_refuses_them(
    client: TestClient,
) -> None:
    done = client.post(
        "/v2/zones", json={"name": "example.org", "email": "h@example.org"}, headers=ALICE
    )
    body = _assert_error(done, 400, "invalid_object", "does not end with a dot", "example.org.")
    assert body["errors"]["errors"][0]["path"] == ["name"]
    zone = _zone(client)
    url = f"/v2/zones/{zone['id']}/recordsets"
    for name, advice in (("mail", "mail.example.com."), ("@", "example.com.")):
        body = {"name": name, "type": "A", "records": ["192.0.2.1"]}
        done = client.post(url, json=body, headers=ALICE)
        _assert_error(done, 400, "invalid_object", "does not end with a dot", advice)
    for records in (["10 mx1"], [{"priority": 10, "exchange": "mx1"}]):
        body = {"name": "example.com.", "type": "MX", "records": records}
        done = client.post(url, json=body, headers=ALICE)
        _assert_error(done, 400, "invalid_object", "records[0]", "10 mx1.example.com.")
    created = _recordset(client, zone, "mail.example.com.", "MX", ["10 mx1.example.com."])
    assert created["records"] == ["10 mx1.example.com."]
    url = f"{url}/{created['id']}"
    _assert_error(
        client.put(url, json={"records": ["20 mx2"]}, headers=ALICE),
        400,
        "invalid_object",
        "trailing dot",
    )
    assert [z["name"] for z in client.get("/v2/zones", headers=ALICE).json()["zones"]] == [
        "example.com."
    ]
    assert client.get(url, headers=ALICE).json()["records"] == ["10 mx1.example.com."]
    assert stored_reads.get_zone(zone["id"]).serial == created["serial"]
    for field in ("name", "type"):
        done = client.put(url, json={field: "x"}, headers=ALICE)
        _assert_error(done, 400, "invalid_object", field)


def test_bad_recordsets_get_designate_errors_naming_what_is_wrong(client: TestClient) -> None:
    zone = _zone(client)
    url = f"/v2/zones/{zone['id']}/recordsets"
    _recordset(client, zone, f"www.{zone['name']}", "A", ["192.0.2.1"])
    ip = ["192.0.2.1"]

    def body(name: str, rtype: str, records: Any, **extra: Any) -> dict:
        return {"name": name, "type": rtype, "records": records, **extra}

    cases = [
        (body("www.example.com.", "A", ["192.0.2.9"]), 409, "duplicate_recordset"),
        (body("www.example.com.", "CNAME", ["x.example."]), 400, "invalid_recordset_location"),
        (body("a.example.com.", "A", ["300.1.1.1"]), 400, "invalid_object", "300.1.1.1"),
        (body("a.example.com.", "A", "192.0.2.1"), 400, "invalid_object", "records"),
        (body("a.example.com.", "A", [1]), 400, "invalid_object", "records[0]"),
        (body("a.example.com.", "A", ip, ttl=-1), 400, "invalid_object", "ttl"),
        (body("a.example.com.", "A", ip, ttl=2**31), 400, "invalid_object", "ttl"),
        (body("a.example.com.", "BOGUS", ["x"]), 400, "invalid_object", "BOGUS"),
        (
            body("a.example.com.", "SOA", ["x"]),
            400,
            "bad_request",
            "Creating a SOA recordset is not allowed",
        ),
        (body("a b.example.com.", "A", ip), 400, "invalid_recordset_name"),
        (body("x.other.org.", "A", ip), 400, "invalid_recordset_location"),
        (body("a.example.com.", "A", []), 400, "invalid_object", "at least one"),
        (body("a.example.com.", "A", ip, id="x"), 400, "invalid_object", "id"),
        (body("example.com.", "NS", ["ns.example.org."]), 409, "duplicate_recordset", "ns_records"),
    ]
    serial = stored_reads.get_zone(zone["id"]).serial
    for body, status, error_type, *words in cases:
        _assert_error(client.post(url, json=body, headers=ALICE), status, error_type, *words)
    assert stored_reads.get_zone(zone["id"]).serial == serial
    assert len(stored_reads.list_recordsets(zone["id"])) == 1


def test_malformed_requests_get_designate_errors(client: TestClient) -> None:
    zone = _zone(client)
    _assert_error(
        client.post("/v2/zones", content=b"{nope", headers={"Content-Type": "application/json"}),
        400,
        "invalid_json",
    )
    _assert_error(client.post("/v2/zones"), 400, "empty_request_body")
    _assert_error(client.post("/v2/zones", json=[1, 2]), 400, "invalid_object", "JSON object")
    _assert_error(client.post("/v2/zones", json={"email": "a@b.c"}), 400, "invalid_object", "name")
    _assert_error(
        client.post("/v2/zones", json={"name": "b.example.", "email": "a@b.c", "ttl": "300"}),
        400,
        "invalid_object",
        "ttl",
    )
    _assert_error(
        client.post("/v2/zones", json={"name": "bad_name.example.", "email": "a@b.c"}),
        400,
        "invalid_zone_name",
        "bad_name",
    )
    _assert_error(
        client.post("/v2/zones", json={"name": "b.example.", "email": "nope"}),
        400,
        "invalid_object",
        "nope",
    )
    _assert_error(
        client.post("/v2/zones", json={"name": "b.example.", "email": "a@b.c", "ttl": 2**31}),
        400,
        "invalid_object",
        "ttl",
    )
    _assert_error(
        client.post("/v2/zones", json={"name": "example.com.", "email": "a@b.c"}, headers=BOB),
        409,
        "duplicate_zone",
        "example.com.",
    )
    _assert_error(client.get("/v2/zones/not-a-uuid"), 400, "invalid_uuid", "not-a-uuid")
    _assert_error(
        client.get(f"/v2/zones/{zone['id']}/recordsets/nope"), 400, "invalid_uuid", "recordset_id"
    )
    _assert_error(client.get("/v2/nothing"), 404, "not_found", "/v2/nothing")
    _assert_error(client.put("/v2/zones"), 405, "method_not_allowed")


def test_an_unexpected_failure_is_a_500_body_without_its_details(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("password=hunter2 leaked by a bug")

    monkeypatch.setattr(central_zones, "find_zones", explode)
    body = _assert_error(client.get("/v2/zones"), 500, "unknown", "request_id")
    assert "hunter2" not in str(body)
    assert body["request_id"] in caplog.text
    assert "Traceback" in caplog.text


def test_a_trailing_slash_is_the_same_url(client: TestClient) -> None:
    zone = _zone(client)
    assert client.get("/v2/zones/", headers=ALICE).json()["zones"][0]["id"] == zone["id"]
    assert client.get(f"/v2/zones/{zone['id']}/", headers=ALICE).status_code == 200


def test_openapi_document_describes_the_routes(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert {
        "/",
        "/v2",
        "/v2/zones",
        "/v2/zones/{zone_id}",
        "/v2/zones/{zone_id}/recordsets",
        "/v2/zones/{zone_id}/recordsets/{recordset_id}",
    } <= set(document["paths"])
    listed = {p["name"] for p in document["paths"]["/v2/zones"]["get"]["parameters"]}
    assert {"limit", "marker", "sort_key", "sort_dir", "name", "status", "ttl"} <= listed
    assert "404" in document["paths"]["/v2/zones/{zone_id}"]["get"]["responses"]


# --- lists: pages and filters -------------------------------------------------------------


def _walk(client: TestClient, url: str, headers: Any = ALICE) -> tuple[list[dict], list[int]]:
    """Every item of a list by following links.next, and each page's total_count."""
    items, totals = [], []
    while url:
        done = client.get(url, headers=headers)
        assert done.status_code == 200, done.text
        body = done.json()
        key = "zones" if "zones" in body else "recordsets"
        items += body[key]
        totals.append(body["metadata"]["total_count"])
        url = body["links"].get("next", "")
    return items, totals


def test_zone_pages_follow_links_next_in_sort_order(client: TestClient) -> None:
    names = [f"z{i}.example." for i in (3, 1, 4, 0, 2)]
    for name in names:
        _zone(client, name)
    items, totals = _walk(client, "/v2/zones?limit=2")
    assert [z["name"] for z in items] == names  # created_at order by default
    assert totals == [5, 5, 5]
    page = client.get("/v2/zones?limit=2", headers=ALICE).json()
    assert page["links"]["self"] == "http://testserver/v2/zones?limit=2"
    assert page["links"]["next"] == (
        f"http://testserver/v2/zones?limit=2&marker={page['zones'][1]['id']}"
    )
    items, _ = _walk(client, "/v2/zones?limit=2&sort_key=name&sort_dir=desc")
    assert [z["name"] for z in items] == sorted(names, reverse=True)
    assert "next" not in client.get("/v2/zones?limit=5", headers=ALICE).json()["links"]
    assert len(client.get("/v2/zones?limit=max", headers=ALICE).json()["zones"]) == 5


def test_pages_over_a_nullable_sort_key_hold_every_item_once(client: TestClient) -> None:
    zone = _zone(client)
    ttls = [None, 300, None, 60, 300, None, 60]
    for i, ttl in enumerate(ttls):
        _recordset(client, zone, f"h{i}.example.com.", "A", ["192.0.2.1"], ttl=ttl)
    url = f"/v2/zones/{zone['id']}/recordsets"
    for direction in ("asc", "desc"):
        items, _ = _walk(client, f"{url}?limit=2&sort_key=ttl&sort_dir={direction}")
        # The zone's SOA and NS are listed too, without a TTL of their own.
        apex = ["example.com.", "example.com."]
        assert sorted(rs["name"] for rs in items) == sorted(
            [*apex, *(f"h{i}.example.com." for i in range(7))]
        )
        shown = [rs["ttl"] for rs in items]
        nulls_first = [None] * 5 + [60, 60, 300, 300]
        assert shown == (nulls_first if direction == "asc" else nulls_first[::-1])


def test_bad_paging_gets_designate_errors(client: TestClient) -> None:
    _zone(client)
    for query, error_type in (
        ("limit=0", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("sort_key=email", "invalid_sort_key"),
        ("sort_dir=up", "invalid_sort_dir"),
        ("marker=6f1a4bde-0000-4000-8000-000000000000", "marker_not_found"),
        ("colour=blue", "bad_request"),
        ("ttl=long", "bad_request"),
        ("name=a.example.&name=b.example.", "bad_request"),
    ):
        _assert_error(client.get(f"/v2/zones?{query}", headers=ALICE), 400, error_type)


def test_zone_filters_match_designate_wildcards(client: TestClient) -> None:
    _zone(client, "alpha.example.", ttl=300, description="Web servers")
    _zone(client, "beta.example.", ttl=600, description="mail")
    _zone(client, "alpha.test.", ttl=300)

    def names(query: str) -> list[str]:
        done = client.get(f"/v2/zones?{query}", headers=ALICE)
        assert done.status_code == 200, done.text
        return sorted(z["name"] for z in done.json()["zones"])

    assert names("name=alpha.example.") == ["alpha.example."]
    assert names("name=alpha.*") == ["alpha.example.", "alpha.test."]
    assert names("name=*.example.") == ["alpha.example.", "beta.example."]
    assert names("name=alpha") == []
    assert names("ttl=300") == ["alpha.example.", "alpha.test."]
    assert names("description=*web*") == ["alpha.example."]
    assert names("email=hostmaster@beta.example") == ["beta.example."]
    assert names("status=PENDING&type=PRIMARY") == [
        "alpha.example.",
        "alpha.test.",
        "beta.example.",
    ]
    assert names("status=ACTIVE") == []
    assert names("type=SECONDARY") == []
    assert names("name=alpha_*") == []  # _ and % are literal, only * is a wildcard
    done = client.get("/v2/zones?name=alpha.*&limit=1", headers=ALICE).json()
    assert done["metadata"]["total_count"] == 2


def test_recordset_filters_match_name_type_data_ttl_and_description(client: TestClient) -> None:
    zone = _zone(client)
    _recordset(client, zone, f"www.{zone['name']}", "A", ["192.0.2.1", "192.0.2.2"], ttl=60)
    _recordset(client, zone, f"www.{zone['name']}", "AAAA", ["2001:db8::1"], description="v6 web")
    _recordset(client, zone, f"mail.{zone['name']}", "A", ["192.0.2.25"])
    url = f"/v2/zones/{zone['id']}/recordsets"

    def found(query: str) -> list[tuple[str, str]]:
        done = client.get(f"{url}?{query}", headers=ALICE)
        assert done.status_code == 200, done.text
        return sorted((rs["name"], rs["type"]) for rs in done.json()["recordsets"])

    www_a = ("www.example.com.", "A")
    assert found("name=www.example.com.") == [www_a, ("www.example.com.", "AAAA")]
    assert found("type=a") == [("mail.example.com.", "A"), www_a]
    assert found("data=192.0.2.2") == [www_a]
    assert found("data=192.0.2.*") == [("mail.example.com.", "A"), www_a]
    assert found("ttl=60") == [www_a]
    assert found("description=v6*") == [("www.example.com.", "AAAA")]
    assert found("status=PENDING&action=CREATE&name=mail*") == [("mail.example.com.", "A")]
    _assert_error(client.get(f"{url}?email=x", headers=ALICE), 400, "bad_request", "email")


# --- projects -------------------------------------------------------------------------------


def test_a_project_cannot_see_or_touch_another_projects_zones(client: TestClient) -> None:
    zone = _zone(client, headers=ALICE)
    rs = _recordset(client, zone, f"www.{zone['name']}", "A", ["192.0.2.1"])
    zone_url = f"/v2/zones/{zone['id']}"
    rs_url = f"{zone_url}/recordsets/{rs['id']}"
    serial = stored_reads.get_zone(zone["id"]).serial

    assert client.get("/v2/zones", headers=BOB).json()["zones"] == []
    assert client.get("/v2/zones?name=example.com.", headers=BOB).json()["metadata"] == {
        "total_count": 0
    }
    for done in (
        client.get(zone_url, headers=BOB),
        client.patch(zone_url, json={"ttl": 5}, headers=BOB),
        client.delete(zone_url, headers=BOB),
        client.get(f"{zone_url}/recordsets", headers=BOB),
        client.post(
            f"{zone_url}/recordsets",
            json={"name": "x.alice.example.", "type": "A", "records": ["192.0.2.9"]},
            headers=BOB,
        ),
        client.get(rs_url, headers=BOB),
        client.put(rs_url, json={"records": ["192.0.2.9"]}, headers=BOB),
        client.delete(rs_url, headers=BOB),
    ):
        _assert_error(done, 404, "zone_not_found")
    assert stored_reads.get_zone(zone["id"]).serial == serial
    assert stored_reads.get_zone(zone["id"]).action == "CREATE"

    # A recordset id is found only under its own zone, even by its owner.
    other = _zone(client, "other.example.", headers=ALICE)
    _assert_error(
        client.get(f"/v2/zones/{other['id']}/recordsets/{rs['id']}", headers=ALICE),
        404,
        "recordset_not_found",
    )


def test_a_project_cannot_create_a_zone_inside_or_above_another_projects_zone(
    client: TestClient,
) -> None:
    """On the same nameservers a subzone answers for names of its parent: bob's
    www.example.com. would take over alice's www (Designate's illegal_child)."""
    _zone(client, "example.com.", headers=ALICE)
    _zone(client, "sub.alice.example.", headers=ALICE)
    for name, error_type, words in (
        ("www.example.com.", "illegal_child", ("inside zone example.com.",)),
        ("a.b.example.com.", "illegal_child", ("inside zone example.com.",)),
        ("alice.example.", "illegal_parent", ("sub.alice.example.",)),
    ):
        done = client.post("/v2/zones", json={"name": name, "email": "h@bob.example"}, headers=BOB)
        _assert_error(done, 403, error_type, *words)
    # A name that only ends like alice's zone is no subzone of it.
    _zone(client, "notexample.com.", headers=BOB)
    # alice nests her own zones, both ways.
    _zone(client, "www.example.com.", headers=ALICE)
    _zone(client, "alice.example.", headers=ALICE)
    # An import is held to the same rule: an ERROR task, nothing made.
    task = client.post(
        "/v2/zones/tasks/imports",
        content=b"$ORIGIN x.example.com.\n@ 300 IN SOA ns1. h.x.example.com. 1 1 1 1 1\n",
        headers={**BOB, "Content-Type": "text/dns"},
    ).json()
    assert (task["status"], task["zone_id"]) == ("ERROR", None)
    assert "inside zone example.com." in task["message"]
    assert [z["name"] for z in client.get("/v2/zones", headers=BOB).json()["zones"]] == [
        "notexample.com."
    ]


def test_admin_sees_all_projects_only_when_asking_and_may_act_as_one(
    client: TestClient,
) -> None:
    alices = _zone(client, "alice.example.", headers=ALICE)
    _zone(client, "bob.example.", headers=BOB)
    assert client.get("/v2/zones", headers=ADMIN).json()["zones"] == []
    listed = client.get("/v2/zones", headers=ALL_PROJECTS).json()["zones"]
    assert sorted((z["name"], z["project_id"]) for z in listed) == [
        ("alice.example.", "alice"),
        ("bob.example.", "bob"),
    ]
    assert len(client.get("/v2/zones?all_projects=true", headers=ADMIN).json()["zones"]) == 2
    assert client.get(f"/v2/zones/{alices['id']}", headers=ALL_PROJECTS).status_code == 200

    _assert_error(
        client.get("/v2/zones", headers={**ALICE, "X-Auth-All-Projects": "true"}),
        403,
        "forbidden",
        "admin",
    )
    _assert_error(client.get("/v2/zones?all_tenants=1", headers=ALICE), 403, "forbidden")

    sudo = {**ADMIN, "X-Auth-Sudo-Project-ID": "alice"}
    assert [z["name"] for z in client.get("/v2/zones", headers=sudo).json()["zones"]] == [
        "alice.example."
    ]
    assert _zone(client, "made-for.example.", headers=sudo)["project_id"] == "alice"
    _assert_error(
        client.get("/v2/zones", headers={**BOB, "X-Auth-Sudo-Project-ID": "alice"}),
        403,
        "forbidden",
        "admin",
    )


def test_noauth_without_headers_is_designates_default_admin_project(client: TestClient) -> None:
    zone = client.post("/v2/zones", json={"name": "a.example.", "email": "h@a.example"}).json()
    assert zone["project_id"] == "noauth-project"
    by_keystone_header = client.get("/v2/zones", headers={"X-Project-Id": "noauth-project"})
    assert [z["id"] for z in by_keystone_header.json()["zones"]] == [zone["id"]]
    assert client.get("/v2/zones", headers={"X-Auth-All-Projects": "True"}).status_code == 200


# --- serving ----------------------------------------------------------------------------------


def test_the_server_answers_on_its_port_and_a_taken_port_is_a_clear_error() -> None:
    running = server.ApiServer("127.0.0.1", 0)
    running.start()
    try:
        with urllib.request.urlopen(f"{running.url}/v2/zones", timeout=5) as response:
            assert json.load(response)["zones"] == []
            assert response.headers["X-OpenStack-Request-ID"].startswith("req-")
        with pytest.raises(
            exceptions.InvalidConfig, match=f"cannot listen on 127.0.0.1:{running.port}"
        ):
            server.ApiServer("127.0.0.1", running.port)
    finally:
        running.stop()


def test_an_unknown_auth_strategy_is_a_clear_configuration_error(override: Any) -> None:
    override("api", auth_strategy="kerberos")
    with pytest.raises(exceptions.InvalidConfig, match="auth_strategy 'kerberos'"):
        app.create_app()
