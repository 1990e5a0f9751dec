"""Whole-zone rules: zoneflow refuses, at write time, data a nameserver would refuse to load.

The rules themselves are checked against BIND9 and Knot in
tests/functional/test_zone_rules.py; here, that each one is enforced where
recordsets are written (central, the API, imports), with nothing written when
refused, and that data stored before the rules does not block other changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import support
from tests.support import ALICE
from zoneflow import exceptions, objects
from zoneflow.api import app
from zoneflow.central import imports_exports
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.dns import rules
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import recordsets as stored_recordsets

pytestmark = pytest.mark.usefixtures("fake_pool")

ZONE = "example.com."
DS = "12345 8 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE5BEA7B17C2E8ACAE8D21CB9A"


def _zone() -> objects.Zone:
    return central_zones.create_zone(ZONE, "hostmaster@example.com")


def _snapshot(zone: objects.Zone) -> tuple[int, int, list[tuple[str, str]]]:
    return (
        stored_reads.get_zone(zone.id).serial,
        support.count_pending_jobs(),
        [(rs.name, rs.type) for rs in stored_reads.list_recordsets(zone.id)],
    )


@pytest.mark.parametrize(
    ("existing", "refused", "words"),
    [
        ([], ("@", "CNAME", ["x.example.net."]), ("CNAME", "apex", ZONE, "SOA and NS")),
        ([], (ZONE, "CNAME", ["x.example.net."]), ("CNAME", "apex")),
        ([("www", "A", ["192.0.2.1"])], ("www", "CNAME", ["x.example.net."]), ("www", "A")),
        ([("www", "CNAME", ["x.example.net."])], ("www", "TXT", ['"t"']), ("www", "TXT")),
        ([("sub", "NS", ["ns.example.net."])], ("sub", "CNAME", ["x.example.net."]), ("NS",)),
        ([("sub", "DS", [DS])], ("sub", "CNAME", ["x.example.net."]), ("sub", "DS")),
        ([], ("@", "DS", [DS]), ("DS", "apex", "parent")),
        ([], ("*.sub", "NS", ["ns.example.net."]), ("*.sub.example.com.", "wildcard")),
    ],
)
def test_central_refuses_each_rule_naming_the_record_and_writes_nothing(
    existing: list[tuple[str, str, list[str]]],
    refused: tuple[str, str, list[str]],
    words: tuple[str, ...],
) -> None:
    zone = _zone()
    for name, rtype, records in existing:
        central_recordsets.create_recordset(ZONE, name, rtype, records)
    before = _snapshot(zone)
    with pytest.raises(exceptions.InvalidRecordSetLocation) as refusal:
        central_recordsets.create_recordset(ZONE, *refused)
    for word in words:
        assert word in refusal.value.message, refusal.value.message
    assert _snapshot(zone) == before


def test_dname_rules_refuse_what_knot_and_bind9_refuse() -> None:
    """DNAME is no type users can write (as in Designate); its rules are still the
    nameservers', for whatever reaches a zone."""
    below = rules.problems(
        ZONE, [rules.Shape(f"d.{ZONE}", "DNAME"), rules.Shape(f"x.d.{ZONE}", "A")]
    )
    assert [p.rule for p in below] == ["below-dname"]
    assert f"x.d.{ZONE}" in below[0].message
    apex = rules.problems(ZONE, [rules.Shape(ZONE, "DNAME"), rules.Shape(f"www.{ZONE}", "A")])
    assert [p.rule for p in apex] == ["below-dname"]
    assert rules.problems(ZONE, [rules.Shape(ZONE, "DNAME")]) == []
    beside_ns = rules.problems(
        ZONE, [rules.Shape(f"d.{ZONE}", "DNAME"), rules.Shape(f"d.{ZONE}", "NS")]
    )
    assert [p.rule for p in beside_ns] == ["dname-ns"]


def test_what_the_nameservers_load_is_accepted() -> None:
    """Missing glue, an in-zone NS target without addresses, data below a delegation,
    a CNAME with names below it, a wildcard CNAME: both servers load these."""
    zone = _zone()
    for name, rtype, records in [
        ("sub", "NS", ["ns.sub.example.com."]),
        ("other", "NS", ["ns.example.com."]),
        ("www.other", "A", ["192.0.2.1"]),
        ("a", "CNAME", ["x.example.net."]),
        ("b.a", "A", ["192.0.2.2"]),
        ("*", "CNAME", ["x.example.net."]),
        ("ds", "DS", [DS]),
        ("@", "MX", ["10 mail.example.com."]),
    ]:
        central_recordsets.create_recordset(ZONE, name, rtype, records)
    assert len(stored_reads.list_recordsets(zone.id)) == 8


def test_data_stored_before_the_rules_blocks_no_other_change_and_can_be_mended() -> None:
    zone = _zone()
    # As data written before these rules were: straight into storage, unchecked.
    legacy = support.write_recordset_unchecked(zone.id, ZONE, "CNAME", ["x.example.net."])
    central_recordsets.create_recordset(ZONE, "www", "A", ["192.0.2.1"])
    # More data beside the CNAME is a new problem, refused.
    with pytest.raises(exceptions.InvalidRecordSetLocation):
        central_recordsets.create_recordset(ZONE, "@", "MX", ["10 mail.example.com."])
    central_recordsets.delete_recordset(ZONE, legacy.id)
    central_recordsets.create_recordset(ZONE, "@", "MX", ["10 mail.example.com."])
    assert {rs.type for rs in stored_reads.list_recordsets(zone.id)} == {"A", "MX"}


def test_the_rules_read_only_names_related_to_the_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A write reads the names at, above and below the written one (an '_' in a name
    is no LIKE wildcard there)."""
    _zone()
    for name in ("a_b", "axb", "x.a_b", "deep.x.a_b", "deep.x.axb", "other"):
        central_recordsets.create_recordset(ZONE, name, "A", ["192.0.2.1"])
    seen: list[list[tuple[str, str]]] = []
    read = stored_recordsets.related_recordsets

    def spied(*args: Any) -> list[tuple[str, str]]:
        seen.append(read(*args))
        return seen[-1]

    monkeypatch.setattr(stored_recordsets, "related_recordsets", spied)
    central_recordsets.create_recordset(ZONE, "x.a_b", "TXT", ['"t"'])
    assert sorted(seen[0]) == [
        (f"a_b.{ZONE}", "A"),
        (f"deep.x.a_b.{ZONE}", "A"),
        (f"x.a_b.{ZONE}", "A"),
    ]


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(app.create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def test_the_api_refuses_a_cname_at_the_apex_with_designates_400(client: TestClient) -> None:
    done = client.post(
        "/v2/zones", json={"name": ZONE, "email": "hostmaster@example.com"}, headers=ALICE
    )
    zone_id = done.json()["id"]
    refused = client.post(
        f"/v2/zones/{zone_id}/recordsets",
        json={"name": ZONE, "type": "CNAME", "records": ["x.example.net."]},
        headers=ALICE,
    )
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert (body["code"], body["type"]) == (400, "invalid_recordset_location")
    assert "apex" in body["message"] and "CNAME" in body["message"]
    assert stored_reads.list_recordsets(zone_id) == []


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("@ IN CNAME x.example.net.", ("line 5", "CNAME")),
        (f"@ IN DS {DS}", ("DS", "apex")),
        ("*.sub IN NS ns.example.net.", ("*.sub.example.com.", "wildcard")),
    ],
)
def test_an_import_breaking_a_rule_creates_nothing(line: str, words: tuple[str, ...]) -> None:
    text = (
        f"$ORIGIN {ZONE}\n$TTL 600\n"
        "@ IN SOA ns1.example.org. hostmaster.example.com. 1 3600 600 86400 300\n"
        "@ IN NS ns1.example.org.\n"
        f"{line}\n"
    )
    task = imports_exports.import_zone(text)
    assert (task.status, task.zone_id) == (objects.Status.ERROR, None)
    for word in words:
        assert word in (task.message or ""), task.message
    assert central_zones.list_zones() == []
