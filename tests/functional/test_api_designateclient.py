"""python-designateclient against a real ``zoneflow api``, conductor, mdns and BIND9.

The client is the real package from PyPI, on a keystoneauth session with the
noauth plugin (keystoneauth's own discovery of GET / is tested in
tests/integration/test_api.py). Every assertion about DNS is what BIND9
answers (dnspython); every object the client gets back is checked for each
field the openstack CLI prints, and formatted the way the CLI does.
"""

from __future__ import annotations

from typing import Any

import dns.rcode
import pytest
from designateclient import exceptions as client_errors
from designateclient.v2 import utils as client_utils
from designateclient.v2.cli import recordsets as recordset_cli
from designateclient.v2.cli import zones as zone_cli

from tests.functional.conftest import Bind9Factory
from tests.functional.deployment import Deployment, answer, soa_serial
from tests.functional.designate import noauth_client, settled
from tests.support import RECORDSET_FIELDS, ZONE_FIELDS, eventually

ZONE = "api.example."


def _complete_zone(zone: dict[str, Any]) -> None:
    assert set(zone) == ZONE_FIELDS, set(zone) ^ ZONE_FIELDS
    zone_cli._format_zone(dict(zone))  # what 'openstack zone show' does with it


def _complete_recordset(recordset: dict[str, Any]) -> None:
    assert set(recordset) == RECORDSET_FIELDS, set(recordset) ^ RECORDSET_FIELDS
    recordset_cli._format_recordset(dict(recordset))


def test_designateclient_drives_zones_and_recordsets_onto_bind9(
    deployment: Deployment, bind9_factory: Bind9Factory
) -> None:
    (bind,) = bind9_factory(1)
    deployment.load_pool(
        {
            "name": "default",
            "ns_records": [{"hostname": "ns1.api.example.", "priority": 1}],
            "nameservers": [bind.nameserver()],
            "targets": [bind.pool_target(deployment.masters())],
        }
    )
    deployment.start_mdns()
    deployment.start_conductor()
    deployment.start_api()
    client = noauth_client(deployment)

    created = client.zones.create(ZONE, email="hostmaster@api.example", ttl=600, description="d")
    _complete_zone(created)
    assert (created["status"], created["action"], created["ttl"]) == ("PENDING", "CREATE", 600)
    zone_id = created["id"]
    zone = settled(client, zone_id)
    assert zone["status"] == "ACTIVE"
    assert soa_serial(ZONE, bind.host, bind.port) == zone["serial"]

    www = client.recordsets.create(zone_id, "www", "A", ["192.0.2.10", "192.0.2.11"], ttl=300)
    _complete_recordset(www)
    assert (www["name"], www["zone_name"], www["status"]) == (f"www.{ZONE}", ZONE, "PENDING")
    client.recordsets.create(zone_id, "mail", "A", ["192.0.2.25"], description="mail host")
    client.recordsets.create(zone_id, ZONE, "MX", ["10 mail.api.example."])
    client.recordsets.create(zone_id, "www", "AAAA", ["2001:db8::10"])
    zone = settled(client, zone_id)
    assert zone["status"] == "ACTIVE"
    assert soa_serial(ZONE, bind.host, bind.port) == zone["serial"]
    assert answer(f"www.{ZONE}", "A", bind.host, bind.port) == (
        dns.rcode.NOERROR,
        {"192.0.2.10", "192.0.2.11"},
    )
    assert answer(ZONE, "MX", bind.host, bind.port)[1] == {"10 mail.api.example."}
    shown = client.recordsets.get(zone_id, www["id"])
    _complete_recordset(shown)
    assert (shown["status"], shown["action"]) == ("ACTIVE", "NONE")
    assert shown["serial"] <= zone["serial"]

    # Update: the new record and TTL are what BIND9 serves at the serial the API gave.
    updated = client.recordsets.update(zone_id, www["id"], {"records": ["192.0.2.20"], "ttl": 120})
    _complete_recordset(updated)
    assert (updated["records"], updated["ttl"], updated["action"]) == (
        ["192.0.2.20"],
        120,
        "UPDATE",
    )
    assert settled(client, zone_id)["serial"] == updated["serial"]
    query = dns.message.make_query(f"www.{ZONE}", "A")
    served = dns.query.udp(query, bind.host, port=bind.port, timeout=2).answer[0]
    assert ({r.to_text() for r in served}, served.ttl) == ({"192.0.2.20"}, 120)

    # Lists: filters, pages followed through links.next, total counts.
    a_records = client_utils.get_all(
        client.recordsets.list, criterion={"type": "A", "limit": 1}, args=[zone_id]
    )
    assert sorted(rs["name"] for rs in a_records) == [f"mail.{ZONE}", f"www.{ZONE}"]
    for recordset in a_records:
        _complete_recordset(recordset)
    first = client.recordsets.list(zone_id, criterion={"name": f"*.{ZONE}"}, limit=2)
    assert (len(first), first.next_page) == (2, True)
    by_data = client.recordsets.list(zone_id, criterion={"data": "192.0.2.2*"})
    assert sorted(rs["name"] for rs in by_data) == [f"mail.{ZONE}", f"www.{ZONE}"]
    zones = client.zones.list(criterion={"name": "api.*", "status": "ACTIVE"})
    assert [z["id"] for z in zones] == [zone_id]
    _complete_zone(zones[0])
    assert client.zones.get(ZONE)["id"] == zone_id  # by name, as the CLI resolves it

    # The zone's SOA and apex NS are listed as Designate lists them, with what BIND9
    # serves; changing or deleting them is refused with Designate's 400.
    serial = settled(client, zone_id)["serial"]
    apex = [rs for rs in client.recordsets.list(zone_id) if rs["name"] == ZONE]
    listed = {rs["type"]: rs for rs in apex if rs["type"] in ("SOA", "NS")}
    assert set(listed) == {"SOA", "NS"}
    for rtype, recordset in listed.items():
        _complete_recordset(recordset)
        assert set(recordset["records"]) == answer(ZONE, rtype, bind.host, bind.port)[1]
        with pytest.raises(client_errors.BadRequest, match="Managed records may not be updated"):
            client.recordsets.update(zone_id, recordset["id"], {"records": ["ns9.example."]})
    assert listed["NS"]["records"] == ["ns1.api.example."]
    with pytest.raises(client_errors.BadRequest, match="Deleting a SOA recordset is not allowed"):
        client.recordsets.delete(zone_id, listed["SOA"]["id"])
    with pytest.raises(client_errors.BadRequest, match="Managed records may not be deleted"):
        client.recordsets.delete(zone_id, listed["NS"]["id"])
    assert settled(client, zone_id)["serial"] == serial

    # Delete a recordset: BIND9 stops answering it.
    gone = client.recordsets.delete(zone_id, f"mail.{ZONE}")
    assert (gone["action"], gone["status"]) == ("DELETE", "PENDING")
    settled(client, zone_id)
    assert answer(f"mail.{ZONE}", "A", bind.host, bind.port)[0] == dns.rcode.NXDOMAIN

    # Another project sees nothing and changes nothing.
    stranger = noauth_client(deployment, **{"X-Auth-Project-ID": "stranger", "X-Roles": "member"})
    assert list(stranger.zones.list()) == []
    with pytest.raises(client_errors.NotFound):
        stranger.zones.get(zone_id)
    with pytest.raises(client_errors.NotFound):
        stranger.zones.delete(zone_id)
    with pytest.raises(client_errors.Forbidden):
        noauth_client(
            deployment,
            **{"X-Auth-Project-ID": "stranger", "X-Roles": "member", "X-Auth-All-Projects": "true"},
        ).zones.list()

    # Refusals arrive as designateclient's exceptions, with Designate's fields.
    with pytest.raises(client_errors.Conflict) as conflict:
        client.zones.create(ZONE, email="hostmaster@api.example")
    assert (conflict.value.code, conflict.value.type) == (409, "duplicate_zone")
    with pytest.raises(client_errors.BadRequest) as bad:
        client.recordsets.create(zone_id, "x", "A", ["not-an-address"])
    assert "not-an-address" in bad.value.message
    assert bad.value.request_id.startswith("req-")

    deleting = client.zones.delete(zone_id)
    assert (deleting["status"], deleting["action"]) == ("PENDING", "DELETE")
    _complete_zone(deleting)

    def gone() -> bool:
        try:
            client.zones.get(zone_id)
        except client_errors.NotFound:
            return True
        return False

    eventually(gone, 30, what="the zone to be deleted")
    assert answer(ZONE, "SOA", bind.host, bind.port)[0] == dns.rcode.REFUSED
    assert "Traceback" not in deployment.log("api")
