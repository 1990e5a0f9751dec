"""A real Knot DNS secondary, set up by the knot backend, transfers zones from mdns.

mdns runs in this process against a temporary SQLite database; knotd is the
fixture's, configured only through ``KnotBackend`` (knotc on its control
socket). What is checked is what knotd really serves, asked with dnspython,
and how knotd says it got the zone (its log).
"""

from __future__ import annotations

import base64
import functools
import re
import secrets
from collections.abc import Callable

import dns.message
import dns.query
import dns.rcode
import pytest

from tests import support
from tests.functional.conftest import MDNS_POOL as POOL
from tests.functional.conftest import MDNS_RECORDS as RECORDS
from tests.functional.conftest import MDNS_ZONE as ZONE
from tests.functional.conftest import start_server
from tests.functional.fixtures.knot import TSIG_KEY_NAME, KnotServer
from tests.support import eventually
from zoneflow import objects
from zoneflow.backends.impl_knot import KnotBackend
from zoneflow.central import pools
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.dns import query
from zoneflow.events import served
from zoneflow.mdns import server as mdns_server
from zoneflow.storage import reads as stored_reads

TSIG_POOL_TARGET = f"description: fake1, options: {{tsig_key_name: {TSIG_KEY_NAME}}}"


def add_secondary(
    knot: KnotServer,
    mdns: mdns_server.MdnsServer,
    zone: objects.Zone,
    tsig_key_name: str | None = None,
) -> None:
    """Make ``knot`` a secondary of mdns for ``zone``, as the flows would."""
    target = knot.pool_target([(mdns.host, mdns.port)], tsig_key_name=tsig_key_name)
    backend = KnotBackend(support.pool_target(target, target_id=f"knot-{knot.port}"))
    backend.create_zone(zone)


def served_serial(knot: KnotServer, zone: str = ZONE) -> int | None:
    return query.soa_serial(zone, knot.host, knot.port, timeout=1.0)


def answer(knot: KnotServer, name: str, rtype: str) -> tuple[int, set[str]]:
    response = dns.query.udp(
        dns.message.make_query(name, rtype), knot.host, port=knot.port, timeout=2
    )
    texts = {rdata.to_text() for rrset in response.answer for rdata in rrset}
    return response.rcode(), texts


def incoming_transfers(knot: KnotServer, zone: str, since: int = 0) -> list[str]:
    """The kind (AXFR, IXFR) of each transfer of ``zone`` knotd finished after byte ``since``.

    knotd 3.2 logs ``[zone] IXFR, incoming, remote 127.0.0.1@port, finished,
    0.00 seconds, 1 messages, 384 bytes``. A whole zone sent in answer to an
    IXFR (``receiving AXFR-style IXFR``) and an AXFR after a failed IXFR
    (``fallback to AXFR``) both finish as AXFR lines, so a list of just
    "IXFR" means the difference really came as one.
    """
    pattern = rf"\[{re.escape(zone)}\] (AXFR|IXFR), incoming, remote [^,]+, finished"
    return re.findall(pattern, knot_log(knot, since))


def knot_log(knot: KnotServer, since: int = 0) -> str:
    return knot.log_path.read_text(errors="replace")[since:]


def test_knot_transfers_the_zone_from_mdns(
    knot: KnotServer, mdns: mdns_server.MdnsServer, zone: objects.Zone
) -> None:
    add_secondary(knot, mdns, zone)
    eventually(lambda: served_serial(knot) == zone.serial, timeout=10, what="Knot to load the zone")
    for name, rtype, records in RECORDS:
        owner = ZONE if name == "@" else f"{name}.{ZONE}"
        rcode, served = answer(knot, owner, rtype)
        assert rcode == dns.rcode.NOERROR
        assert served == set(records), f"{owner} {rtype}"
    _, ns = answer(knot, ZONE, "NS")
    assert ns == {"ns1.example.org."}
    assert incoming_transfers(knot, ZONE) == ["AXFR"]
    assert mdns.responder.transfers["AXFR"] == 1


def test_knot_tells_mdns_each_serial_it_loads_and_mdns_tells_the_polls(
    knot: KnotServer,
    mdns: mdns_server.MdnsServer,
    zone: objects.Zone,
    override: Callable[..., None],
) -> None:
    override("events", driver="inprocess")  # mdns and the "poll" share this process
    with served.Ear(knot.host, {zone.id: zone.serial}) as ear:
        add_secondary(knot, mdns, zone)
        eventually(
            lambda: zone.id in ear.wait(0.1),
            timeout=10,
            what="Knot's NOTIFY of the zone it loaded, passed on by mdns",
        )
    assert served_serial(knot) == zone.serial
    central_recordsets.create_recordset(ZONE, "told", "A", ["192.0.2.53"])
    serial = stored_reads.get_zone(zone.id).serial
    with served.Ear(knot.host, {zone.id: serial}) as ear:
        assert query.send_notify(ZONE, knot.host, knot.port, serial=serial) == dns.rcode.NOERROR
        eventually(lambda: zone.id in ear.wait(0.1), timeout=10, what="the new serial's word")
    assert served_serial(knot) == serial


def test_a_one_record_change_reaches_knot_by_ixfr(
    knot: KnotServer, mdns: mdns_server.MdnsServer, sqlite_database: str
) -> None:
    big = support.bulk_zone("big.example.", 3000)
    add_secondary(knot, mdns, big)
    eventually(lambda: served_serial(knot, big.name) == big.serial, timeout=10, what="the AXFR")
    eventually(lambda: bool(incoming_transfers(knot, big.name)), timeout=5, what="Knot's log line")
    assert incoming_transfers(knot, big.name) == ["AXFR"]
    mark = knot.log_path.stat().st_size

    host = stored_reads.get_recordset(big.id, f"host00007.{big.name}", "A")
    central_recordsets.update_recordset(big.name, host.id, records=["198.51.100.7"])
    serial = stored_reads.get_zone(big.id).serial
    assert query.send_notify(big.name, knot.host, knot.port, serial=serial) == dns.rcode.NOERROR
    eventually(lambda: served_serial(knot, big.name) == serial, timeout=5, what="the change")

    assert answer(knot, f"host00007.{big.name}", "A") == (dns.rcode.NOERROR, {"198.51.100.7"})
    assert answer(knot, f"host00008.{big.name}", "A") == (dns.rcode.NOERROR, {"10.0.0.8"})
    # Knot asked for the difference and got it, not the 3003 records again.
    assert mdns.responder.transfers["IXFR"] == 1
    assert mdns.responder.transfers["IXFR-AXFR"] == 0
    eventually(
        lambda: bool(incoming_transfers(knot, big.name, mark)), timeout=5, what="Knot's log line"
    )
    assert incoming_transfers(knot, big.name, mark) == ["IXFR"]
    assert "fallback to AXFR" not in knot_log(knot, mark)


def _secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def test_tsig_transfers_work_and_a_wrong_or_missing_key_is_refused(
    override: Callable[..., None],
    sqlite_database: str,
    knot: KnotServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret, wrong_secret = _secret(), _secret()
    # The pool's target names the key: mdns now requires it for the pool's zones.
    override("tsig", key=[f"{TSIG_KEY_NAME}:hmac-sha256:{secret}"])
    support.store_pools(pools.parse(POOL.replace("description: fake1", TSIG_POOL_TARGET)))
    zone = stored_reads.get_zone(central_zones.create_zone(ZONE, "hostmaster@example.com").id)
    server = mdns_server.MdnsServer("127.0.0.1", 0)
    server.start_in_thread()
    started: list[KnotServer] = []
    unsigned = knot
    try:
        # Both hold a key of the name the pool's target gives; only one
        # holds the secret mdns has for it.
        for key_secret in (secret, wrong_secret):
            started.append(start_server(functools.partial(KnotServer, tsig_secret=key_secret)))
        good, wrong = started
        for signed in (good, wrong):
            add_secondary(signed, server, zone, tsig_key_name=signed.tsig_key_name)
        add_secondary(unsigned, server, zone)

        eventually(lambda: served_serial(good) == zone.serial, timeout=10, what="the signed AXFR")
        eventually(lambda: "TSIG BADSIG" in caplog.text, timeout=10, what="mdns to refuse the key")
        eventually(lambda: "unsigned" in caplog.text, timeout=10, what="the unsigned AXFR")
        # The wrong and the missing key got no data: knotd has the zone
        # configured but nothing to serve (SERVFAIL), so no SOA comes back.
        assert served_serial(wrong) is None
        assert served_serial(unsigned) is None
        assert answer(wrong, ZONE, "SOA")[0] == dns.rcode.SERVFAIL
        assert answer(unsigned, ZONE, "SOA")[0] == dns.rcode.SERVFAIL
        assert server.responder.transfers["AXFR"] == 1
        assert incoming_transfers(good, ZONE) == ["AXFR"]
        # knotd saw why: a reply it cannot verify, and a refusal.
        eventually(lambda: "failed to verify TSIG" in knot_log(wrong), timeout=5, what="BADSIG")
        eventually(
            lambda: "responded with error 'REFUSED'" in knot_log(unsigned),
            timeout=5,
            what="the REFUSED",
        )
        mark = good.log_path.stat().st_size

        # A change travels by signed IXFR too.
        central_recordsets.create_recordset(ZONE, "new", "A", ["198.51.100.9"])
        serial = stored_reads.get_zone(zone.id).serial
        query.send_notify(ZONE, good.host, good.port, serial=serial)
        eventually(lambda: served_serial(good) == serial, timeout=5, what="the signed IXFR")
        assert answer(good, f"new.{ZONE}", "A") == (dns.rcode.NOERROR, {"198.51.100.9"})
        assert server.responder.transfers["IXFR"] == 1
        eventually(
            lambda: bool(incoming_transfers(good, ZONE, mark)), timeout=5, what="Knot's log line"
        )
        assert incoming_transfers(good, ZONE, mark) == ["IXFR"]
        assert secret not in caplog.text and wrong_secret not in caplog.text
    finally:
        server.stop_thread()
        for started_server in started:
            started_server.close()
