"""schemathesis against /openapi.json: what the document promises is what is served.

Each operation of the document gets requests generated from it (bodies,
path and query parameters that the schema allows), sent to the app on
SQLite with a pool of fake targets, a zone and a recordset already there.
Each answer must be no 5xx, of a status the document lists for the
operation, of the content type and body schema it declares. After each
operation's run the database must still be whole: no request may have left
half a change behind (see :func:`assert_storage_is_whole`).

Bounded for CI: ``EXAMPLES`` requests per operation, well under a minute
in all.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from zoneflow import objects
from zoneflow.api import app
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.dns import zone as dns_zone
from zoneflow.storage import db, models, tables
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads

EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def seeded(fake_pool: None) -> dict[str, str]:
    """A zone with a recordset, so generated requests also reach real objects."""
    zone = central_zones.create_zone(
        "seed.example.", "hostmaster@seed.example", project_id="noauth-project"
    )
    recordset = central_recordsets.create_recordset(
        zone.id, "www", "A", ["192.0.2.1"], project_id="noauth-project"
    )
    return {"zone_id": zone.id, "recordset_id": recordset.id}


# The app reads the database of each test (see the autouse fixture), not at import.
schema = schemathesis.openapi.from_asgi("/openapi.json", app.create_app())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_every_operation_answers_as_its_document_says(case: Any, seeded: dict[str, str]) -> None:
    n = next(_counter)
    if n % 2:
        _steer(case, seeded, n)
    if case.path == "/v2/events":
        # A stream followed never ends: read what is kept, then stop.
        case.query = {**(case.query or {}), "follow": "false"}
    case.call_and_validate(checks=CHECKS)
    assert_storage_is_whole()


_counter = itertools.count()


def _steer(case: Any, seeded: dict[str, str], n: int) -> None:
    """Make half the requests reach further than a random one would: ids of the
    seeded objects, and a valid name, email or record data in a generated body
    (random text is rarely a domain name), the other fields left as generated."""
    for name, value in seeded.items():
        if case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = value
    body = case.body if isinstance(case.body, dict) else None
    if body is None or case.method not in ("POST", "PUT", "PATCH"):
        return
    if case.path == "/v2/zones":
        body.update(name=f"gen{n}.example.", email="hostmaster@gen.example")
        body.pop("pool_id", None)
    elif case.path == "/v2/zones/{zone_id}" and "email" in body:
        body["email"] = "hostmaster@seed.example"
    elif case.path.endswith("/recordsets"):
        body.update(name=f"h{n}", type="A", records=[f"192.0.2.{n % 250}"])
    elif case.path.endswith("/recordsets/{recordset_id}") and "records" in body:
        body["records"] = [{"address": f"198.51.100.{n % 250}"}]


def assert_storage_is_whole() -> None:
    """What every committed change leaves true, whatever the request was.

    Read with Core statements, each pool once: it runs after each of some two
    thousand requests, and loading every zone through the ORM and its pool
    per zone took a third of this module's time."""
    outbox_table = models.JobOutbox.__table__
    with db.connection() as conn:
        zone_ids = set(conn.scalars(sa.select(tables.zones.c.id)))
        empty = conn.scalars(
            sa.select(tables.recordsets.c.id)
            .outerjoin(tables.records, tables.records.c.recordset_id == tables.recordsets.c.id)
            .group_by(tables.recordsets.c.id)
            .having(sa.func.count(tables.records.c.recordset_id) == 0)
        ).all()
        orphans = conn.scalars(
            sa.select(tables.recordsets.c.id).where(tables.recordsets.c.zone_id.not_in(zone_ids))
        ).all()
        outbox = {
            tuple(row)
            for row in conn.execute(sa.select(outbox_table.c.zone_id, outbox_table.c.serial))
        }
        newest_change = dict(
            conn.execute(
                sa.select(
                    tables.recordsets.c.zone_id, sa.func.max(tables.recordsets.c.serial)
                ).group_by(tables.recordsets.c.zone_id)
            ).all()
        )
    assert empty == [], "recordsets without records"
    assert orphans == [], "recordsets of no zone"
    assert [zone_id for zone_id, _ in outbox if zone_id not in zone_ids] == [], (
        "outbox rows for zones that do not exist"
    )
    pools: dict[str, objects.Pool] = {}
    for zone in stored_reads.list_zones():
        assert zone.status in tuple(objects.Status) and zone.action in tuple(objects.Action)
        assert newest_change.get(zone.id, 0) <= zone.serial, "a recordset newer than its zone"
        # Every change of a live zone has its job waiting (nothing runs them here).
        assert (zone.id, zone.serial) in outbox, f"zone {zone.name} has no job for its serial"
        # mdns could serve it: its SOA renders with the stored serial.
        if zone.pool_id not in pools:
            pools[zone.pool_id] = stored_pools.get_pool(zone.pool_id)
        assert dns_zone.soa_rdata(zone, pools[zone.pool_id]).serial == zone.serial


_NOT_A_UUID = "not-a-uuid"
_SOME_UUID = "6f1a4bde-0000-4000-8000-000000000000"


def test_the_document_declares_the_ids_and_limits_the_server_enforces(fake_pool: None) -> None:
    """A path id declared a UUID is refused when it is not one; ``limit`` is declared
    from 1 (or max), and 0 is refused, 1 and max taken; a 503 declares Retry-After."""
    served = app.create_app()
    document = served.openapi()
    client = TestClient(served, raise_server_exceptions=False)
    ids_checked, lists_checked = set(), 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            parameters = {p["name"]: p for p in operation.get("parameters", [])}
            ids = [name for name, p in parameters.items() if p["in"] == "path"]
            for name in ids:
                declared = parameters[name]["schema"]
                if name == "project_id":  # Keystone's project ids are not UUIDs
                    assert "format" not in declared
                    continue
                assert declared.get("format") == "uuid", (method, path, name)
                if method != "get":
                    continue
                url = path.format(**{other: _SOME_UUID for other in ids} | {name: _NOT_A_UUID})
                answer = client.get(url)
                assert (answer.status_code, answer.json()["type"]) == (400, "invalid_uuid"), url
                ids_checked.add(name)
            if path.startswith("/v2/"):
                unavailable = operation["responses"]["503"]
                assert "Retry-After" in unavailable.get("headers", {}), (method, path)
            if "limit" not in parameters or ids:
                continue
            assert parameters["limit"]["schema"]["oneOf"] == [
                {"type": "integer", "minimum": 1},
                {"type": "string", "enum": ["max"]},
            ]
            for limit, status in (("0", 400), ("-1", 400), ("1", 200), ("max", 200)):
                answer = client.get(f"{path}?limit={limit}&all_projects=true")
                assert answer.status_code == status, (path, limit, answer.text)
            lists_checked += 1
    assert ids_checked >= {"zone_id", "recordset_id", "job_id", "tsigkey_id", "pool_id"}
    assert lists_checked >= 5
