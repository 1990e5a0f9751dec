"""Bad input to every body and every list of the API, one table per resource.

Each resource that takes a JSON body is sent the same malformed bodies
(not JSON, none, not an object, an unknown field, each field of the wrong
type) and then its own bad values (out-of-range TTLs, bad names, bad record
data, duplicates). Every one must be a 4xx with Designate's error body whose
message names the field, and none may change anything.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import ADMIN, ALICE, ALL_PROJECTS, BOB
from zoneflow.api import app
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads

pytestmark = pytest.mark.usefixtures("fake_pool")

SECRET = base64.b64encode(b"a secret for the bad input tests").decode()
MISSING = "6f1a4bde-0000-4000-8000-000000000000"
BAD = "invalid_object"


@dataclasses.dataclass
class Case:
    """A body (or changes to the resource's valid body) and what it must get."""

    body: Any
    status: int
    error_type: str
    words: tuple[str, ...] = ()
    replace: bool = False  # body is the whole body, not changes to the valid one
    headers: dict[str, str] | None = None


def case(changes: Any, error_type: str = BAD, *words: str, status: int = 400, **kw: Any) -> Case:
    return Case(changes, status, error_type, words, **kw)


@dataclasses.dataclass
class Resource:
    method: str
    url: str  # with {zone_id}, {recordset_id}, {tsigkey_id}
    valid: dict[str, Any]  # a body that would be accepted
    cases: list[Case]
    headers: dict[str, str] = dataclasses.field(default_factory=lambda: ALICE)


def _ttls(field: str = "ttl") -> list[Case]:
    return [
        case({field: -1}, BAD, field),
        case({field: 2**31}, BAD, field),
        case({field: 1.5}, BAD, field),
        case({field: True}, BAD, field),
    ]


RESOURCES = {
    "zone create": Resource(
        "POST",
        "/v2/zones",
        {"name": "new.example.", "email": "h@new.example", "ttl": 300, "description": "d"},
        [
            *_ttls(),
            case({"name": ""}, BAD, "name"),
            case({"name": "bad_name.example."}, "invalid_zone_name", "bad_name"),
            case({"name": "com."}, "invalid_zone_name", "com."),
            case({"name": f"{'a' * 64}.example."}, "invalid_zone_name", "a" * 64),
            case({"name": "a" * 300}, BAD, "name"),
            case({"name": "new.example"}, BAD, "name", "does not end with a dot", "new.example."),
            case({"email": "nope"}, BAD, "email"),
            case({"email": None}, BAD, "email"),
            case({"description": "d" * 161}, BAD, "description"),
            case({"description": "a\x00b"}, BAD, "description", "NUL"),
            case({"type": "SECONDARY"}, BAD, "type"),
            case({"masters": ["192.0.2.1"]}, BAD, "masters"),
            case({"attributes": {"tier": "gold"}}, BAD, "attributes"),
            case({"pool_id": MISSING}, "pool_not_found", MISSING, status=404),
            case({"serial": 5}, BAD, "serial"),
            case({"name": "example.com."}, "duplicate_zone", "example.com.", status=409),
            case(
                {"name": "EXAMPLE.com."}, "duplicate_zone", "example.com.", status=409, headers=BOB
            ),
        ],
    ),
    "zone update": Resource(
        "PATCH",
        "/v2/zones/{zone_id}",
        {"email": "h2@example.com", "ttl": 600, "description": "d"},
        [
            *_ttls(),
            case({"ttl": None}, BAD, "ttl"),
            case({"email": None}, BAD, "email"),
            case({"email": "nope"}, BAD, "email"),
            case({"description": "d" * 161}, BAD, "description"),
            case({"description": "a\x00b"}, BAD, "description", "NUL"),
            case({"name": "other.example."}, BAD, "name"),
            case({"serial": 5}, BAD, "serial"),
            case({"pool_id": MISSING}, BAD, "pool_id"),
        ],
    ),
    "recordset create": Resource(
        "POST",
        "/v2/zones/{zone_id}/recordsets",
        {
            "name": "new.example.com.",
            "type": "A",
            "records": ["192.0.2.9"],
            "ttl": 300,
            "description": "d",
        },
        [
            *_ttls(),
            case({"records": ["300.1.1.1"]}, BAD, "records[0]", "300.1.1.1"),
            case({"records": ["192.0.2.1", "nope"]}, BAD, "records[1]", "nope"),
            case({"records": [5]}, BAD, "records[0]"),
            case({"records": None}, BAD, "records"),
            case({"records": []}, BAD, "records", "at least one"),
            case({"records": ["192.0.2.1", "192.0.2.1"]}, BAD, "records[1]", "twice"),
            case({"records": [{"address": "x"}]}, BAD, "records[0].address"),
            case({"records": [{"addr": "192.0.2.1"}]}, BAD, "records[0]", "addr"),
            case({"type": "MX", "records": ["10"]}, BAD, "records[0]", "MX"),
            case({"type": "TXT", "records": ['"a\nb"']}, BAD, "records[0]", "TXT"),
            case({"type": "TXT", "records": ['"a\x00b"']}, BAD, "records", "[0]", "NUL"),
            case({"type": "TXT", "records": [{"text": "a\x00b"}]}, BAD, "[0].text", "NUL"),
            case({"type": "BOGUS"}, BAD, "BOGUS"),
            case({"type": "SOA"}, "bad_request", "Creating a SOA recordset is not allowed"),
            case({"type": ""}, BAD, "type"),
            case({"name": "new"}, BAD, "does not end with a dot", "new.example.com."),
            case({"name": "@"}, BAD, "does not end with a dot", "example.com."),
            case({"type": "CNAME", "records": ["www"]}, BAD, "records[0]", "trailing dot"),
            case({"name": "a b.example.com."}, "invalid_recordset_name", "a b"),
            case({"name": "a.*.example.com."}, "invalid_recordset_name", "a.*"),
            case({"name": f"{'a' * 64}.example.com."}, "invalid_recordset_name", "a" * 64),
            case({"name": "x.other.org."}, "invalid_recordset_location", "x.other.org."),
            case({"description": "a\x00b"}, BAD, "description", "NUL"),
            case({"name": ""}, BAD, "name"),
            case({"id": MISSING}, BAD, "id"),
            case({"zone_id": MISSING}, BAD, "zone_id"),
            case(
                {"name": "www.example.com."}, "duplicate_recordset", "www.example.com.", status=409
            ),
            case(
                {"name": "www.example.com.", "type": "CNAME", "records": ["x.example."]},
                "invalid_recordset_location",
                "CNAME",
            ),
            case(
                {"name": "example.com.", "type": "NS", "records": ["ns.example.org."]},
                "duplicate_recordset",
                "ns_records",
                status=409,
            ),
            case(
                {"name": "example.com.", "type": "CNAME", "records": ["x.example."]},
                "invalid_recordset_location",
                "CNAME",
                "apex",
            ),
            case(
                {"name": "*.sub.example.com.", "type": "NS", "records": ["ns.example.org."]},
                "invalid_recordset_location",
                "*.sub.example.com.",
            ),
        ],
    ),
    "recordset update": Resource(
        "PUT",
        "/v2/zones/{zone_id}/recordsets/{recordset_id}",
        {"records": ["192.0.2.8"], "ttl": 60, "description": "d"},
        [
            *_ttls(),
            case({"records": None}, BAD, "records"),
            case({"records": []}, BAD, "records", "at least one"),
            case({"records": ["nope"]}, BAD, "records[0]", "nope"),
            case({"records": ["192.0.2.8", "192.0.2.8"]}, BAD, "records[1]", "twice"),
            case({"name": "other"}, BAD, "name"),
            case({"type": "AAAA"}, BAD, "type"),
            case({"description": "d" * 161}, BAD, "description"),
            case({"description": "a\x00b"}, BAD, "description", "NUL"),
        ],
    ),
    "tsigkey create": Resource(
        "POST",
        "/v2/tsigkeys",
        {
            "name": "new-key",
            "algorithm": "hmac-sha256",
            "secret": SECRET,
            "scope": "POOL",
            "resource_id": "{pool_id}",
        },
        [
            case({"algorithm": "hmac-rot13"}, BAD, "algorithm"),
            case({"secret": "not base64!"}, BAD, "secret"),
            case({"secret": ""}, BAD, "secret"),
            case({"scope": "TENANT"}, BAD, "scope"),
            case({"resource_id": "nope"}, "invalid_uuid", "resource_id"),
            case({"resource_id": MISSING}, "pool_not_found", MISSING, status=404),
            case({"scope": "ZONE", "resource_id": MISSING}, "zone_not_found", MISSING, status=404),
            case({"name": "bad..name"}, BAD, "name"),
            case({"name": "new\x00key"}, BAD, "name", "NUL"),
            case({"name": "key"}, "duplicate_tsigkey", "key", status=409),
            case({"name": "k2"}, BAD, "algorithm", replace=True),
        ],
        headers=ADMIN,
    ),
    "tsigkey update": Resource(
        "PATCH",
        "/v2/tsigkeys/{tsigkey_id}",
        {"name": "renamed", "algorithm": "hmac-sha512", "secret": SECRET, "scope": "POOL"},
        [
            case({"name": None}, BAD, "name"),
            case({"secret": None}, BAD, "secret"),
            case({"algorithm": "hmac-rot13"}, BAD, "algorithm"),
            case({"resource_id": "nope"}, "invalid_uuid", "resource_id"),
            case({"scope": "TENANT"}, BAD, "scope"),
            case({"id": MISSING}, BAD, "id"),
        ],
        headers=ADMIN,
    ),
    "quota update": Resource(
        "PATCH",
        "/v2/quotas/alice",
        {
            "zones": 5,
            "zone_recordsets": 5,
            "zone_records": 5,
            "recordset_records": 5,
            "api_export_size": 5,
        },
        [
            case({"zones": -2}, BAD, "zones"),
            case({"zones": 2**31}, BAD, "zones"),
            case({"zones": 1.5}, BAD, "zones"),
            case({"zones": None}, BAD, "zones"),
            case({"recordset_records": None}, BAD, "recordset_records"),
            case({"domains": 5}, BAD, "domains"),
        ],
        headers=ADMIN,
    ),
}


def _wrong_type(value: Any) -> Any:
    """A JSON value of another type than ``value``'s."""
    if isinstance(value, (bool, int)):
        return "5"
    if isinstance(value, str):
        return 5
    if isinstance(value, list):
        return "x"
    return [value]


def _malformed(resource: Resource) -> list[Case]:
    """What every resource with a JSON body must refuse, by name of the field."""
    cases = [
        case(b"{nope", "invalid_json", "JSON", replace=True),
        case(b"", "empty_request_body", "body", replace=True),
        case(b'{"name": "x",}', "invalid_json", "JSON", replace=True),
    ]
    cases += [
        case(body, BAD, "JSON object", replace=True) for body in ([], [{}], "x", 5, None, True)
    ]
    cases.append(case({"colour": "red"}, BAD, "colour"))
    cases += [case({f: _wrong_type(v)}, BAD, f) for f, v in resource.valid.items()]
    # A NUL in any text: PostgreSQL refuses it, nameservers and terminals cut the text at it.
    cases += [
        case({f: f"{v}\x00"}, BAD, f) for f, v in resource.valid.items() if isinstance(v, str)
    ]
    return cases


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(app.create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def ids(client: TestClient) -> dict[str, str]:
    def made(done: Any) -> dict[str, Any]:
        assert done.status_code in (201, 202), done.text
        return dict(done.json())

    zone = made(
        client.post(
            "/v2/zones", json={"name": "example.com.", "email": "h@example.com"}, headers=ALICE
        )
    )
    rs = made(
        client.post(
            f"/v2/zones/{zone['id']}/recordsets",
            json={"name": "www.example.com.", "type": "A", "records": ["192.0.2.1"]},
            headers=ALICE,
        )
    )
    pool_id = stored_pools.get_pool("default").id
    key = made(
        client.post(
            "/v2/tsigkeys",
            json={
                "name": "key",
                "algorithm": "hmac-sha256",
                "secret": SECRET,
                "scope": "POOL",
                "resource_id": pool_id,
            },
            headers=ADMIN,
        )
    )
    return {
        "zone_id": zone["id"],
        "recordset_id": rs["id"],
        "tsigkey_id": key["id"],
        "pool_id": pool_id,
    }


def _state(client: TestClient, ids: dict[str, str]) -> Any:
    zone = stored_reads.get_zone(ids["zone_id"])
    return (
        (zone.serial, zone.email, zone.ttl, zone.description),
        [(rs.name, rs.type, rs.records, rs.ttl) for rs in stored_reads.list_recordsets(zone.id)],
        [z.name for z in stored_reads.list_zones()],
        client.get("/v2/tsigkeys", headers=ADMIN).json()["tsigkeys"],
        client.get("/v2/quotas/alice", headers=ADMIN).json(),
    )


@pytest.mark.parametrize("name", RESOURCES)
def test_every_bad_body_is_a_4xx_naming_the_field_and_changes_nothing(
    client: TestClient, ids: dict[str, str], name: str
) -> None:
    resource = RESOURCES[name]
    url = resource.url.format(**ids)
    valid = {k: v.format(**ids) if isinstance(v, str) else v for k, v in resource.valid.items()}
    before = _state(client, ids)
    for bad in [*_malformed(resource), *resource.cases]:
        headers = {**(bad.headers or resource.headers), "Content-Type": "application/json"}
        if isinstance(bad.body, bytes):
            content = bad.body
        else:
            content = json.dumps(bad.body if bad.replace else {**valid, **bad.body}).encode()
        done = client.request(resource.method, url, content=content, headers=headers)
        what = f"{name} with {content[:80]!r}: {done.status_code} {done.text[:300]}"
        assert done.status_code == bad.status, what
        body = done.json()
        assert (body["code"], body["type"]) == (bad.status, bad.error_type), what
        assert body["request_id"] == done.headers["X-OpenStack-Request-ID"], what
        for word in bad.words:
            assert word in body["message"], what
        assert "Traceback" not in done.text
    assert _state(client, ids) == before
    # The valid body itself is accepted: the refusals above are the bad parts.
    done = client.request(resource.method, url, json=valid, headers=resource.headers)
    assert done.status_code in (200, 201, 202), done.text


LISTS = [
    "/v2/zones",
    "/v2/zones/{zone_id}/recordsets",
    "/v2/recordsets",
    "/v2/zones/tasks/exports",
    "/v2/zones/tasks/imports",
    "/v2/tsigkeys",
    "/v2/service_statuses",
    "/v2/pools",
    "/v2/jobs",
]


@pytest.mark.parametrize("template", LISTS)
def test_every_list_refuses_bad_paging_and_unknown_filters(
    client: TestClient, ids: dict[str, str], template: str
) -> None:
    url = template.format(**ids)
    for query, error_type, word in (
        ("limit=0", "invalid_limit", "limit"),
        ("limit=abc", "invalid_limit", "limit"),
        ("limit=-1", "invalid_limit", "limit"),
        ("sort_key=colour", "invalid_sort_key", "colour"),
        ("sort_dir=up", "invalid_sort_dir", "up"),
        (f"marker={MISSING}", "marker_not_found", MISSING),
        ("colour=red", "bad_request", "colour"),
        ("limit=1&limit=2", "bad_request", "limit"),
    ):
        done = client.get(f"{url}?{query}", headers=ALL_PROJECTS)
        what = f"GET {url}?{query}: {done.status_code} {done.text[:300]}"
        assert done.status_code == 400, what
        body = done.json()
        assert body["type"] == error_type and word in body["message"], what
    done = client.get(f"{url}?limit=1&sort_dir=desc", headers=ALL_PROJECTS)
    assert done.status_code == 200, done.text
    assert set(done.json()) >= {"links", "metadata"}


def test_the_openapi_document_offers_null_only_where_it_is_taken(client: TestClient) -> None:
    bodies = client.get("/openapi.json").json()["components"]["schemas"]
    for model, field in (
        ("ZoneUpdate", "email"),
        ("ZoneUpdate", "ttl"),
        ("RecordSetUpdate", "records"),
        ("TsigKeyUpdate", "secret"),
        ("QuotasUpdate", "zones"),
    ):
        assert "null" not in json.dumps(bodies[model]["properties"][field]), (model, field)
    assert {"type": "null"} in bodies["RecordSetUpdate"]["properties"]["ttl"]["anyOf"]
    assert {"type": "null"} in bodies["ZoneUpdate"]["properties"]["description"]["anyOf"]


@pytest.mark.parametrize(
    "value",
    [b"alice\x01", b"alice\x7f", b"\xffalice", b"alice\x1b[31m", b"a" * 256],
    ids=["control", "delete", "latin-1", "escape", "too-long"],
)
@pytest.mark.parametrize(
    "name", ["X-Auth-Project-ID", "X-Project-Id", "X-Auth-Sudo-Project-ID", "X-Roles"]
)
def test_an_identity_header_that_is_not_printable_text_is_refused(
    client: TestClient, ids: dict[str, str], name: str, value: bytes
) -> None:
    before = _state(client, ids)
    for method, url, body in (
        ("GET", "/v2/zones", None),
        ("POST", "/v2/zones", {"name": "header.example.", "email": "h@header.example"}),
    ):
        done = client.request(method, url, json=body, headers={**ADMIN, name: value})
        what = f"{method} {url} with {name}: {value!r}: {done.status_code} {done.text[:300]}"
        assert done.status_code == 400, what
        assert done.json()["type"] == "bad_request", what
        assert name in done.json()["message"], what
    assert _state(client, ids) == before


@pytest.mark.parametrize(
    ("method", "template", "allowed"),
    [
        ("DELETE", "/v2/zones", "GET, POST"),
        ("PUT", "/v2/zones/{zone_id}", "GET, PATCH, DELETE"),
        ("POST", "/v2/zones/{zone_id}/recordsets/{recordset_id}", "GET, PUT, DELETE"),
        ("POST", "/v2/pools", "GET"),
        ("DELETE", "/v2/jobs/", "GET"),
    ],
)
def test_a_method_a_resource_does_not_have_is_a_405_with_allow(
    client: TestClient, ids: dict[str, str], method: str, template: str, allowed: str
) -> None:
    done = client.request(method, template.format(**ids), headers=ADMIN)

    assert done.status_code == 405, done.text
    assert done.headers["Allow"] == allowed
    assert done.json()["type"] == "method_not_allowed"
    assert allowed in done.json()["message"]
