"""zoneflow's own API endpoints: a zone's targets, jobs, their flows, metrics."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.conftest import load_pool, wait_settled
from tests.support import eventually
from zoneflow.api import app, schemas_zoneflow
from zoneflow.storage import reads as stored_reads

pytestmark = pytest.mark.usefixtures("fake_pool")

ALICE = {"X-Auth-Project-ID": "alice", "X-Roles": "member"}
BOB = {"X-Auth-Project-ID": "bob", "X-Roles": "member"}
ENDED = {"SUCCESS", "SUPERSEDED", "REVERTED", "FAILURE", "CANCELLED", "LOST"}
ALL = {"X-Auth-Project-ID": "ops", "X-Roles": "admin", "X-Auth-All-Projects": "true"}


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(app.create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def _zone(client: TestClient, name: str, headers: dict[str, str]) -> dict[str, Any]:
    done = client.post(
        "/v2/zones",
        json={"name": name, "email": f"hostmaster@{name.rstrip('.')}"},
        headers=headers,
    )
    assert done.status_code == 202, done.text
    return done.json()


def _error(done: Any, status: int, error_type: str) -> dict[str, Any]:
    assert done.status_code == status, done.text
    body = done.json()
    assert (body["code"], body["type"]) == (status, error_type), body
    assert body["request_id"] == done.headers["X-OpenStack-Request-ID"]
    return body


def _jobs(client: TestClient, headers: dict[str, str], query: str = "") -> list[dict[str, Any]]:
    done = client.get(f"/v2/jobs{query}", headers=headers)
    assert done.status_code == 200, done.text
    schemas_zoneflow.JobList.model_validate(done.json())
    return list(done.json()["jobs"])


def _ended_jobs(client: TestClient, headers: dict[str, str], count: int) -> list[dict[str, Any]]:
    """The caller's jobs once ``count`` of them have ended (a zone settles a moment
    before its job's final state is written)."""

    def ended() -> list[dict[str, Any]] | None:
        listed = _jobs(client, headers)
        return listed if len(listed) == count and all(j["state"] in ENDED for j in listed) else None

    return eventually(ended, 20, what=lambda: f"jobs to end: {_jobs(client, headers)}")


# --- /v2/zones/{id}/status ------------------------------------------------------------


def test_zone_status_shows_each_target_serving_the_zones_serial(
    client: TestClient, conductor: object
) -> None:
    zone = _zone(client, "example.com.", ALICE)
    url = f"/v2/zones/{zone['id']}/status"
    pending = client.get(url, headers=ALICE).json()
    schemas_zoneflow.ZoneStatus.model_validate(pending)
    assert wait_settled(zone["id"]).status == "ACTIVE"

    shown = client.get(url, headers=ALICE).json()
    schemas_zoneflow.ZoneStatus.model_validate(shown)
    assert (shown["zone_name"], shown["status"], shown["serial"]) == (
        "example.com.",
        "ACTIVE",
        stored_reads.get_zone(zone["id"]).serial,
    )
    assert [(t["target"], t["type"]) for t in shown["targets"]] == [
        ("fake1", "fake"),
        ("fake2", "fake"),
    ]
    for target in shown["targets"]:
        assert target["serial"] == shown["serial"]
        assert (target["status"], target["current"], target["error"]) == ("ACTIVE", True, None)
        assert target["updated_at"] is not None
    assert shown["links"]["self"].endswith(url)


def test_zone_status_names_the_target_that_failed_and_why(
    client: TestClient, conductor: object
) -> None:
    load_pool({}, {"fail": "create"}, threshold=100)
    zone = _zone(client, "broken.example.", ALICE)
    assert wait_settled(zone["id"]).status == "ERROR"
    shown = client.get(f"/v2/zones/{zone['id']}/status", headers=ALICE).json()
    assert shown["status"] == "ERROR" and shown["error"]
    errors = {t["target"]: t["error"] for t in shown["targets"] if t["status"] == "ERROR"}
    assert "injected failure of create" in errors["fake2"]
    # The job reverted: the target that had the zone had it removed again.
    assert "removed again" in errors["fake1"]
    assert {(t["serial"], t["current"]) for t in shown["targets"]} == {(None, False)}


def test_zone_status_of_another_project_is_not_found(client: TestClient) -> None:
    zone = _zone(client, "example.com.", ALICE)
    _error(client.get(f"/v2/zones/{zone['id']}/status", headers=BOB), 404, "zone_not_found")
    assert client.get(f"/v2/zones/{zone['id']}/status", headers=ALL).status_code == 200


# --- /v2/jobs -------------------------------------------------------------------------------


def test_jobs_show_state_and_atoms_of_each_change(client: TestClient, conductor: object) -> None:
    zone = _zone(client, "example.com.", ALICE)
    assert wait_settled(zone["id"]).status == "ACTIVE"
    (job,) = _ended_jobs(client, ALICE, 1)
    assert (job["kind"], job["zone_id"], job["zone_name"]) == (
        "create-zone",
        zone["id"],
        "example.com.",
    )
    assert (job["state"], job["project_id"], job["attempts"]) == ("SUCCESS", "alice", 1)
    assert job["serial"] == stored_reads.get_zone(zone["id"]).serial
    assert job["links"]["flow"] == f"http://testserver/v2/jobs/{job['id']}/flow.svg"

    shown = client.get(f"/v2/jobs/{job['id']}", headers=ALICE).json()
    schemas_zoneflow.JobDetail.model_validate(shown)
    # (updated_at moves once more as the conductor lets go of the job)
    assert {k: v for k, v in shown.items() if k not in ("atoms", "runs", "updated_at")} == {
        k: v for k, v in job.items() if k != "updated_at"
    }
    assert (job["failed_attempts"], job["lost_attempts"]) == (0, 0)
    assert shown["runs"] == [
        {
            "number": 1,
            "conductor": "unit-conductor",
            "ended": "finished",
            "step": None,
            "error": None,
        }
    ]
    atoms = {a["name"]: a for a in shown["atoms"]}
    assert {a["state"] for a in atoms.values()} == {"SUCCESS"}
    assert any(name.startswith("create-zone-on-target-") for name in atoms)
    assert all(a["error"] is None for a in atoms.values())


def test_jobs_list_newest_first_with_pages_and_filters(
    client: TestClient, conductor: object, override: Callable[..., None]
) -> None:
    override("conductor", batch_zones=1)  # a job per zone, however fast they come
    zones = [_zone(client, f"z{i}.example.", ALICE) for i in range(3)]
    for zone in zones:
        wait_settled(zone["id"])
    listed = _ended_jobs(client, ALICE, 3)
    assert [j["zone_name"] for j in listed] == ["z2.example.", "z1.example.", "z0.example."]
    assert [j["zone_name"] for j in _jobs(client, ALICE, "?sort_dir=asc")] == [
        "z0.example.",
        "z1.example.",
        "z2.example.",
    ]

    first = client.get("/v2/jobs?limit=2", headers=ALICE).json()
    assert len(first["jobs"]) == 2 and first["metadata"]["total_count"] == 3
    second = client.get(first["links"]["next"], headers=ALICE).json()
    assert [j["zone_name"] for j in second["jobs"]] == ["z0.example."]
    assert "next" not in second["links"]

    assert [j["zone_name"] for j in _jobs(client, ALICE, f"?zone_id={zones[1]['id']}")] == [
        "z1.example."
    ]
    assert len(_jobs(client, ALICE, "?zone_name=z0.example&state=success")) == 1
    assert _jobs(client, ALICE, "?kind=delete-zone") == []
    _error(client.get("/v2/jobs?color=red", headers=ALICE), 400, "bad_request")
    _error(client.get("/v2/jobs?sort_key=name", headers=ALICE), 400, "invalid_sort_key")
    _error(client.get(f"/v2/jobs?marker={zones[0]['id']}", headers=ALICE), 400, "marker_not_found")


def test_a_project_sees_only_the_jobs_of_its_own_zones(
    client: TestClient, conductor: object
) -> None:
    alices = _zone(client, "alice.example.", ALICE)
    bobs = _zone(client, "bob.example.", BOB)
    wait_settled(alices["id"])
    wait_settled(bobs["id"])
    deleted = client.delete(f"/v2/zones/{alices['id']}", headers=ALICE)
    assert deleted.status_code == 202
    wait_settled(alices["id"])

    # Alice's zone is gone, its two jobs are still hers.
    alice_jobs = _ended_jobs(client, ALICE, 2)
    assert sorted(j["kind"] for j in alice_jobs) == ["create-zone", "delete-zone"]
    assert {j["project_id"] for j in alice_jobs} == {"alice"}
    (bob_job,) = _jobs(client, BOB)
    assert bob_job["zone_name"] == "bob.example."
    assert len(_jobs(client, ALL)) == 3
    # An admin without all-projects sees its own project's jobs only.
    assert _jobs(client, {"X-Auth-Project-ID": "ops", "X-Roles": "admin"}) == []

    for url in (f"/v2/jobs/{bob_job['id']}", f"/v2/jobs/{bob_job['id']}/flow.svg"):
        body = _error(client.get(url, headers=ALICE), 404, "job_not_found")
        assert "bob" not in body["message"]
        assert client.get(url, headers=BOB).status_code == 200
        assert client.get(url, headers=ALL).status_code == 200
    missing = "00000000-0000-4000-8000-000000000000"
    _error(client.get(f"/v2/jobs/{missing}", headers=ALL), 404, "job_not_found")
    _error(client.get("/v2/jobs/not-a-job", headers=ALICE), 400, "invalid_uuid")


def test_a_jobs_flow_is_svg_naming_its_atoms_coloured_by_state(
    client: TestClient, conductor: object
) -> None:
    load_pool({}, {"fail": "create"}, threshold=100)
    zone = _zone(client, "broken.example.", ALICE)
    assert wait_settled(zone["id"]).status == "ERROR"
    (job,) = _ended_jobs(client, ALICE, 1)
    atoms = client.get(f"/v2/jobs/{job['id']}", headers=ALICE).json()["atoms"]
    assert any(a["error"] for a in atoms)

    done = client.get(f"/v2/jobs/{job['id']}/flow.svg", headers=ALICE)
    assert done.status_code == 200
    assert done.headers["content-type"] == "image/svg+xml"
    svg = ET.fromstring(done.content)
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    texts = " ".join(t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text"))
    for atom in atoms:
        assert atom["name"] in texts, atom["name"]
    assert job["state"] in texts
    assert "fake2" in texts  # the failed target's atom is named by its label


def test_jobs_of_zones_made_outside_any_project_are_for_all_projects_only(
    client: TestClient, conductor: object
) -> None:
    from zoneflow.central import zones as central_zones

    zone = central_zones.create_zone("cli.example.", "hostmaster@cli.example")
    wait_settled(zone.id)
    assert _jobs(client, ALICE) == []
    (job,) = _ended_jobs(client, ALL, 1)
    assert (job["zone_name"], job["project_id"]) == ("cli.example.", None)


# --- /metrics ---------------------------------------------------------------------------------


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_and_time_requests_by_route_template(client: TestClient) -> None:
    before = client.get("/metrics").text
    zone = _zone(client, "example.com.", ALICE)
    client.get(f"/v2/zones/{zone['id']}", headers=ALICE)
    client.get(f"/v2/zones/{zone['id']}", headers=BOB)
    client.get("/nothing/here")

    done = client.get("/metrics")
    assert done.status_code == 200
    assert done.headers["content-type"].startswith("text/plain")
    after = done.text
    route = "/v2/zones/{zone_id}"

    def grew(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    assert grew("zoneflow_api_requests_total", method="GET", route=route, status="200") == 1
    assert grew("zoneflow_api_requests_total", method="GET", route=route, status="404") == 1
    assert grew("zoneflow_api_requests_total", method="POST", route="/v2/zones", status="202") == 1
    assert grew("zoneflow_api_requests_total", route="unmatched", status="404") == 1
    assert grew("zoneflow_api_request_seconds_count", method="GET", route=route) == 2
    assert zone["id"] not in after  # no series per zone
    # The engines' metrics are in the same document.
    assert "# TYPE zoneflow_jobs_running gauge" in after
    assert re.search(r"^zoneflow_api_requests_in_progress \d", after, re.M)


def test_metrics_include_the_jobs_a_conductor_in_this_process_ran(
    client: TestClient, conductor: object
) -> None:
    def successes() -> float:
        # One kind's line: jobs of other kinds run by earlier tests have lines of their own.
        text = client.get("/metrics").text
        return _sample(text, "zoneflow_jobs_total", kind="create-zone", state="SUCCESS")

    before = successes()
    zone = _zone(client, "example.com.", ALICE)
    wait_settled(zone["id"])
    # The job is counted as it ends, a moment after it has settled its zone.
    eventually(lambda: successes() > before, timeout=20, what="the job counted in /metrics")
    assert successes() == before + 1


# --- records as fields -------------------------------------------------------------------


def test_records_may_be_given_as_fields_and_are_shown_both_ways(client: TestClient) -> None:
    zone = _zone(client, "example.com.", ALICE)
    url = f"/v2/zones/{zone['id']}/recordsets"
    done = client.post(
        f"{url}?records_data=true",
        json={
            "name": "_sip._tcp.example.com.",
            "type": "SRV",
            "records": [
                {"priority": 10, "weight": 5, "port": 5060, "target": "sip.example.com."},
                "20 0 5060 backup.example.net.",
            ],
        },
        headers=ALICE,
    )
    assert done.status_code == 202, done.text
    created = done.json()
    assert created["records"] == ["10 5 5060 sip.example.com.", "20 0 5060 backup.example.net."]
    assert created["records_data"] == [
        {"priority": 10, "weight": 5, "port": 5060, "target": "sip.example.com."},
        {"priority": 20, "weight": 0, "port": 5060, "target": "backup.example.net."},
    ]
    rs_url = f"{url}/{created['id']}"
    # Designate's clients see text only, as from Designate.
    assert "records_data" not in client.get(rs_url, headers=ALICE).json()
    shown = client.get(f"{rs_url}?records_data=true", headers=ALICE).json()
    assert shown["records_data"] == created["records_data"]
    listed = client.get(f"{url}?records_data=true&type=SRV", headers=ALICE).json()
    assert listed["recordsets"][0]["records_data"] == created["records_data"]

    done = client.put(
        rs_url,
        json={"records": [{"priority": 1, "weight": 1, "port": 1, "target": "x.example.com."}]},
        headers=ALICE,
    )
    assert done.status_code == 202, done.text
    assert done.json()["records"] == ["1 1 1 x.example.com."]


def test_bad_record_fields_get_designate_errors_naming_the_field(client: TestClient) -> None:
    zone = _zone(client, "example.com.", ALICE)
    url = f"/v2/zones/{zone['id']}/recordsets"
    for records, words in (
        ([{"priority": 10}], ["records[0].exchange", "missing"]),
        (
            ["10 mail.example.com.", {"priority": 99999, "exchange": "m"}],
            ["records[1].priority", "65535"],
        ),
        ([{"priority": 10, "exchange": "m", "ttl": 5}], ["records[0].ttl", "not a field"]),
    ):
        done = client.post(
            url, json={"name": "example.com.", "type": "MX", "records": records}, headers=ALICE
        )
        body = _error(done, 400, "invalid_object")
        for word in words:
            assert word in body["message"], body["message"]
    body = _error(
        client.post(
            url, json={"name": "example.com.", "type": "MX", "records": [7]}, headers=ALICE
        ),
        400,
        "invalid_object",
    )
    assert "records[0]" in body["message"]
    _error(client.get(f"{url}?records_data=maybe", headers=ALICE), 400, "invalid_object")
    listed = client.get(url, headers=ALICE).json()["recordsets"]
    assert sorted(rs["type"] for rs in listed) == ["NS", "SOA"]  # the zone's own, nothing else


# --- /openapi.json -------------------------------------------------------------------------


def test_openapi_lists_every_route_and_only_statuses_that_are_served(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert {
        "/v2/zones/{zone_id}/status",
        "/v2/jobs",
        "/v2/jobs/{job_id}",
        "/v2/jobs/{job_id}/flow.svg",
        "/metrics",
    } <= set(document["paths"])
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            # A refused request is a 400 with Designate's body, never FastAPI's 422.
            assert "422" not in operation["responses"], (method, path)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    flow = document["paths"]["/v2/jobs/{job_id}/flow.svg"]["get"]["responses"]["200"]
    assert list(flow["content"]) == ["image/svg+xml"]
    create = document["paths"]["/v2/zones/{zone_id}/recordsets"]["post"]
    params = {p["name"] for p in create["parameters"]}
    assert "records_data" in params
