"""python-designateclient against a real ``zoneflow api``, conductor, mdns and BIND9, for
the rest of Designate's v2: exports, imports, TSIG keys, /v2/recordsets, pools,
service statuses, quotas and limits.

What is asserted about DNS is what BIND9 serves: an export is compared with
the zone BIND9 hands out by AXFR, an imported zone is queried on BIND9, and
the key BIND9 transfers with is one mdns only learnt through /v2/tsigkeys.
"""

from __future__ import annotations

import base64
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.tsig
import dns.zone
import pytest
from designateclient import exceptions as client_errors
from designateclient.v2 import client as designate
from designateclient.v2.cli import quotas as quota_cli
from designateclient.v2.cli import recordsets as recordset_cli
from designateclient.v2.cli import service_statuses as status_cli
from designateclient.v2.cli import tsigkeys as tsigkey_cli
from designateclient.v2.cli import zones as zone_cli

from tests.functional.conftest import start_server
from tests.functional.deployment import Deployment, answer
from tests.functional.designate import noauth_client, settled
from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.fixtures.ports import HOST
from tests.support import POOL_FIELDS, RECORDSET_FIELDS, ask_udp, eventually

ZONE = "exported.example."
IMPORTED = "imported.example."
KEY = "api-xfr-key"
SECRET = base64.b64encode(b"BIND9 and mdns share this secret").decode()
ZONE_FILE = f"""\
$ORIGIN {IMPORTED}
$TTL 300
@     IN SOA ns1.api.example. hostmaster.{IMPORTED} 1 3600 600 86400 300
@     IN NS  ns1.api.example.
@     IN MX  10 mail
www   IN A   192.0.2.80
www   IN A   192.0.2.81
mail  60 IN A 192.0.2.25
alias IN CNAME www
"""
EXPORT_FIELDS = {
    "id",
    "status",
    "message",
    "location",
    "zone_id",
    "project_id",
    "created_at",
    "updated_at",
    "version",
    "links",
}
IMPORT_FIELDS = EXPORT_FIELDS - {"location"}
# Designate's fields of each object (designate/objects/adapters/api_v2/*.py), which the
# openstack CLI's show commands print whole.
SERVICE_STATUS_FIELDS = {
    "id",
    "hostname",
    "service_name",
    "status",
    "stats",
    "capabilities",
    "heartbeated_at",
    "created_at",
    "updated_at",
    "links",
}
TSIGKEY_FIELDS = {
    "id",
    "name",
    "algorithm",
    "secret",
    "scope",
    "resource_id",
    "created_at",
    "updated_at",
    "links",
}
LIMIT_FIELDS = {
    "max_zones",
    "max_zone_recordsets",
    "max_zone_records",
    "max_recordset_records",
    "min_ttl",
    "max_zone_name_length",
    "max_recordset_name_length",
    "max_page_limit",
}


def _complete(shown: Any, fields: set[str], list_command: Any = None) -> None:
    """Every field Designate shows, and every column the CLI's list prints."""
    assert set(shown) == fields, set(shown) ^ fields
    if list_command is not None:
        assert set(list_command.columns) <= fields


def _mdns_knows_key(deployment: Deployment) -> bool:
    """A query signed with the key gets a reply signed with it (not BADKEY)."""
    query = dns.message.make_query(ZONE, "SOA")
    query.use_tsig(dns.tsig.Key(KEY, SECRET, dns.tsig.HMAC_SHA256))
    ask_udp(query, HOST, deployment.mdns_port)  # raises on BADKEY
    return True


def test_designateclient_exports_imports_and_signs_transfers_with_an_api_key(
    deployment: Deployment,
) -> None:
    bind = start_server(lambda: Bind9Server(tsig_keys={KEY: SECRET}))
    try:
        deployment.load_pool(
            {
                "name": "default",
                "ns_records": [{"hostname": "ns1.api.example.", "priority": 1}],
                "nameservers": [bind.nameserver()],
                "targets": [bind.pool_target(deployment.masters(), tsig_key_name=KEY)],
            }
        )
        deployment.start_mdns()
        deployment.start_conductor()
        deployment.start_api()
        client = noauth_client(deployment)
        _run_scenario(deployment, client, bind)
    finally:
        bind.close()
    assert "Traceback" not in deployment.log("api")
    assert SECRET not in deployment.log("mdns")


def _run_scenario(deployment: Deployment, client: designate.Client, bind: Bind9Server) -> None:
    # Pools and services, as an operator sees them.
    (pool,) = client.pools.list()
    assert pool["ns_records"] == [{"hostname": "ns1.api.example.", "priority": 1}]
    _complete(pool, POOL_FIELDS)

    # Each service reports itself once running; the conductor, started without
    # waiting, may not have yet (a slow CI machine showed it).
    def all_three() -> list[Any] | None:
        listed = client.service_statuses.list()
        return listed if len(listed) == 3 else None

    statuses = eventually(
        all_three, timeout=30, interval=0.2, what="api, conductor and mdns to report their status"
    )
    assert sorted((s["service_name"], s["status"]) for s in statuses) == [
        ("api", "UP"),
        ("conductor", "UP"),
        ("mdns", "UP"),
    ]
    for status in statuses:
        _complete(status, SERVICE_STATUS_FIELDS, status_cli.ListServiceStatusesCommand)
        status_cli._format_status(dict(status))  # what 'openstack dns service list' does
    shown_status = client.service_statuses.get(statuses[0]["id"])
    _complete(shown_status, SERVICE_STATUS_FIELDS)

    # The pool's transfers need KEY; mdns learns it only from the API.
    with pytest.raises(dns.tsig.PeerBadKey):
        _mdns_knows_key(deployment)
    key = client.tsigkeys.create(KEY, "hmac-sha256", SECRET, "POOL", pool["id"])
    _complete(key, TSIGKEY_FIELDS, tsigkey_cli.ListTSIGKeysCommand)
    tsigkey_cli._format_tsigkey(dict(key))
    (listed_key,) = client.tsigkeys.list()
    assert listed_key == key
    assert (key["name"], key["scope"], key["resource_id"]) == (KEY, "POOL", pool["id"])
    assert client.tsigkeys.get(KEY)["id"] == key["id"]  # by name, as the CLI resolves it
    eventually(
        lambda: _mdns_knows_key(deployment),
        timeout=15,
        what="mdns to read the API's key",
        ignore=(dns.tsig.PeerError, dns.exception.Timeout),
    )

    zone = client.zones.create(ZONE, email="hostmaster@exported.example", ttl=600)
    client.recordsets.create(zone["id"], "www", "A", ["192.0.2.10", "192.0.2.11"], ttl=120)
    client.recordsets.create(zone["id"], ZONE, "MX", ["10 mail.exported.example."])
    client.recordsets.create(zone["id"], "txt", "TXT", ['"v=spf1 -all"'])
    shown = settled(client, zone["id"])
    assert shown["status"] == "ACTIVE"  # BIND9 transferred it, signed with the API's key
    assert answer(f"www.{ZONE}", "A", bind.host, bind.port) == (
        dns.rcode.NOERROR,
        {"192.0.2.10", "192.0.2.11"},
    )

    # Export: the zone file is what BIND9 serves by AXFR.
    task = client.zone_exports.create(zone["id"])
    assert task["status"] == "COMPLETE"
    _complete(task, EXPORT_FIELDS, zone_cli.ListZoneExportsCommand)
    zone_cli._format_zone_export_record(dict(task))
    record = client.zone_exports.get_export_record(task["id"])
    assert record["location"] == f"designate://v2/zones/tasks/exports/{task['id']}/export"
    text = client.zone_exports.get_export(task["id"])
    exported = dns.zone.from_text(text, relativize=False)
    served = dns.zone.from_xfr(
        dns.query.xfr(bind.host, ZONE, port=bind.port, relativize=False), relativize=False
    )
    assert exported == served
    assert exported.get_rdataset(ZONE, "SOA")[0].serial == shown["serial"]
    assert [e["id"] for e in client.zone_exports.list()] == [task["id"]]

    # /v2/recordsets finds the address in any zone.
    found = client.recordsets.list_all_zones(criterion={"data": "192.0.2.11"})
    assert [(rs["name"], rs["zone_id"]) for rs in found] == [(f"www.{ZONE}", zone["id"])]
    _complete(found[0], RECORDSET_FIELDS, recordset_cli.ListRecordSetsCommand)

    # Import: the zone is created whole and BIND9 serves it.
    imported = client.zone_imports.create(ZONE_FILE)
    assert imported["status"] == "COMPLETE", imported
    _complete(imported, IMPORT_FIELDS, zone_cli.ListZoneImportsCommand)
    zone_cli._format_zone_import_record(dict(imported))
    assert settled(client, imported["zone_id"])["status"] == "ACTIVE"
    assert answer(f"www.{IMPORTED}", "A", bind.host, bind.port) == (
        dns.rcode.NOERROR,
        {"192.0.2.80", "192.0.2.81"},
    )
    assert answer(IMPORTED, "MX", bind.host, bind.port)[1] == {f"10 mail.{IMPORTED}"}
    assert answer(f"alias.{IMPORTED}", "CNAME", bind.host, bind.port)[1] == {f"www.{IMPORTED}"}
    assert answer(IMPORTED, "NS", bind.host, bind.port)[1] == {"ns1.api.example."}

    # A bad line: ERROR naming it, and nothing is created.
    bad = client.zone_imports.create(
        ZONE_FILE.replace(IMPORTED, "broken.example.").replace("192.0.2.81", "192.0.2.300")
    )
    assert bad["status"] == "ERROR" and bad["zone_id"] is None
    assert "line 7" in bad["message"] and "192.0.2.300" in bad["message"]
    with pytest.raises(client_errors.NotFound):
        client.zones.get("broken.example.")
    assert {i["status"] for i in client.zone_imports.list()} == {"COMPLETE", "ERROR"}

    # Another project sees none of it.
    stranger = noauth_client(deployment, **{"X-Auth-Project-ID": "stranger", "X-Roles": "member"})
    assert list(stranger.zone_exports.list()) == []
    assert list(stranger.zone_imports.list()) == []
    assert list(stranger.recordsets.list_all_zones(criterion={"data": "192.0.2.11"})) == []
    for call in (
        lambda: stranger.zone_exports.get_export_record(task["id"]),
        lambda: stranger.zone_exports.get_export(task["id"]),
        lambda: stranger.zone_imports.get_import_record(imported["id"]),
        lambda: stranger.zone_exports.create(zone["id"]),
    ):
        with pytest.raises(client_errors.NotFound):
            call()
    with pytest.raises(client_errors.Forbidden):
        stranger.tsigkeys.list()

    # Tasks are deleted; the TSIG key is renamed, then deleted.
    client.zone_exports.delete(task["id"])
    client.zone_imports.delete(bad["id"])
    assert [i["id"] for i in client.zone_imports.list()] == [imported["id"]]
    renamed = client.tsigkeys.update(key["id"], {"name": "renamed-key"})
    assert renamed["name"] == "renamed-key"
    _complete(renamed, TSIGKEY_FIELDS)
    client.tsigkeys.delete(key["id"])
    assert list(client.tsigkeys.list()) == []


def test_designateclient_quotas_and_limits_are_enforced_per_project(
    deployment: Deployment,
) -> None:
    deployment.load_pool(
        {
            "name": "default",
            "ns_records": [{"hostname": "ns1.api.example.", "priority": 1}],
            "targets": [{"type": "fake", "description": "fake1"}],
        }
    )
    deployment.start_api()
    admin = noauth_client(deployment)
    member = noauth_client(deployment, **{"X-Auth-Project-ID": "small", "X-Roles": "member"})

    defaults = member.quotas.list("small")
    assert defaults == {
        "zones": 10,
        "zone_recordsets": 500,
        "zone_records": 500,
        "recordset_records": 20,
        "api_export_size": 1000,
    }
    assert set(quota_cli.DNS_QUOTAS) == set(defaults)  # every quota the CLI can set
    updated = admin.quotas.update("small", {"zones": 1, "recordset_records": 2})
    assert (updated["zones"], updated["recordset_records"]) == (1, 2)
    limits = member.limits.get()
    _complete(limits, LIMIT_FIELDS)
    assert (limits["max_zones"], limits["max_recordset_records"]) == (1, 2)
    with pytest.raises(client_errors.Forbidden):
        member.quotas.update("small", {"zones": 100})

    zone = member.zones.create("small.example.", email="hostmaster@small.example")
    with pytest.raises(client_errors.OverQuota) as over:
        member.zones.create("second.example.", email="hostmaster@small.example")
    assert (over.value.code, over.value.type) == (413, "over_quota")
    assert "zones" in over.value.message
    with pytest.raises(client_errors.OverQuota):
        member.recordsets.create(zone["id"], "www", "A", ["192.0.2.1", "192.0.2.2", "192.0.2.3"])
    member.recordsets.create(zone["id"], "www", "A", ["192.0.2.1", "192.0.2.2"])

    admin.quotas.reset("small")
    assert member.quotas.list("small") == defaults
    member.zones.create("second.example.", email="hostmaster@small.example")
    assert "Traceback" not in deployment.log("api")
