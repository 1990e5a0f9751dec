"""A real BIND9 secondary transfers zones from mdns and follows its NOTIFYs.

mdns runs in this process against a temporary SQLite database; BIND9 is the
fixture's ``named`` with its own config, ports and rndc key. What is checked
is what BIND9 really serves, asked with dnspython.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests import support
from tests.functional.conftest import MDNS_POOL as POOL
from tests.functional.conftest import MDNS_RECORDS as RECORDS
from tests.functional.conftest import MDNS_ZONE as ZONE
from tests.functional.conftest import Bind9Factory, start_server
from tests.functional.fixtures.bind9 import RECOMMENDED_OPTIONS, Bind9Server
from tests.support import eventually
from zoneflow import heartbeat, objects
from zoneflow.backends.impl_bind9 import Bind9Backend
from zoneflow.central import pools, services
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.dns import query, soa_probe
from zoneflow.mdns import server as mdns_server
from zoneflow.storage import reads as stored_reads

TSIG_POOL_TARGET = "description: fake1, options: {tsig_key_name: xfr-key}"


def add_secondary(bind9: Bind9Server, mdns: mdns_server.MdnsServer, zone: str = ZONE) -> None:
    bind9.rndc(
        "addzone",
        zone,
        f"{{ type secondary; primaries {{ {mdns.host} port {mdns.port}; }}; "
        f'file "{zone.rstrip(".")}.db"; }};',
    )


def served_serial(bind9: Bind9Server, zone: str = ZONE) -> int | None:
    # Generous: a loaded machine can take over a second to answer; a timeout here
    # is a wait's bound, not a measure of speed.
    return query.soa_serial(zone, bind9.host, bind9.port, timeout=5.0)


def answer(bind9: Bind9Server, name: str, rtype: str) -> tuple[int, set[str]]:
    response = dns.query.udp(
        dns.message.make_query(name, rtype), bind9.host, port=bind9.port, timeout=5
    )
    texts = {rdata.to_text() for rrset in response.answer for rdata in rrset}
    return response.rcode(), texts


def test_bind9_transfers_the_zone_from_mdns(
    bind9: Bind9Server, mdns: mdns_server.MdnsServer, zone: objects.Zone
) -> None:
    add_secondary(bind9, mdns)
    eventually(
        lambda: served_serial(bind9) == zone.serial, timeout=60, what="BIND9 to load the zone"
    )
    for name, rtype, records in RECORDS:
        owner = ZONE if name == "@" else f"{name}.{ZONE}"
        rcode, served = answer(bind9, owner, rtype)
        assert rcode == dns.rcode.NOERROR
        assert served == set(records), f"{owner} {rtype}"
    _, ns = answer(bind9, ZONE, "NS")
    assert ns == {"ns1.example.org."}


def test_bind9_serves_a_change_soon_after_a_notify(
    bind9: Bind9Server, mdns: mdns_server.MdnsServer, zone: objects.Zone
) -> None:
    add_secondary(bind9, mdns)
    eventually(
        lambda: served_serial(bind9) == zone.serial, timeout=60, what="BIND9 to load the zone"
    )

    www = stored_reads.get_recordset(zone.id, f"www.{ZONE}", "A")
    changed = central_recordsets.update_recordset(ZONE, www.id, records=["198.51.100.7"])
    added = central_recordsets.create_recordset(ZONE, "new", "TXT", ['"fresh"'])
    serial = stored_reads.get_zone(zone.id).serial
    assert serial == added.serial > changed.serial > zone.serial

    # BIND9 refreshes only hourly by itself: the NOTIFY is what makes it come.
    notified = query.send_notify(ZONE, bind9.host, bind9.port, serial=serial, timeout=5.0)
    assert notified == dns.rcode.NOERROR
    # Well under BIND9's hourly refresh: only the NOTIFY can have brought it.
    eventually(lambda: served_serial(bind9) == serial, timeout=60, what="the new serial")
    assert answer(bind9, f"www.{ZONE}", "A") == (dns.rcode.NOERROR, {"198.51.100.7"})
    assert answer(bind9, f"new.{ZONE}", "TXT") == (dns.rcode.NOERROR, {'"fresh"'})


def test_query_helpers_tell_served_from_removed_on_bind9(
    bind9: Bind9Server, mdns: mdns_server.MdnsServer, zone: objects.Zone
) -> None:
    address = (bind9.host, bind9.port)
    assert served_serial(bind9) is None
    assert soa_probe.serials({address: [ZONE]}, timeout=5.0)[address] == [soa_probe.NOT_SERVED]
    # NOTIFY for a zone BIND9 does not have is answered, but not with NOERROR.
    assert query.send_notify(ZONE, bind9.host, bind9.port, timeout=5.0) != dns.rcode.NOERROR

    add_secondary(bind9, mdns)
    eventually(
        lambda: served_serial(bind9) == zone.serial, timeout=60, what="BIND9 to load the zone"
    )
    # The batch forms a job's polls and NOTIFYs take, on the same answers.
    probed = soa_probe.serials({address: [ZONE, "absent.example."]}, timeout=5.0)
    assert probed[address] == [zone.serial, soa_probe.NOT_SERVED]
    notified = query.send_notifies(
        [(ZONE, zone.serial), ("absent.example.", 1)], bind9.host, bind9.port, timeout=5.0
    )
    assert notified[0] == dns.rcode.NOERROR
    assert notified[1] is not None and notified[1] != dns.rcode.NOERROR

    bind9.rndc("delzone", ZONE)
    eventually(
        lambda: (
            soa_probe.serials({address: [ZONE]}, timeout=5.0)[address] == [soa_probe.NOT_SERVED]
        ),
        timeout=60,
        what="BIND9 to drop the zone",
    )
    assert served_serial(bind9) is None


def _transfers_logged(bind9: Bind9Server, since: int) -> list[int]:
    """Records moved by each transfer BIND9 logged after byte ``since`` of its log."""
    log = bind9.log_path.read_text(errors="replace")[since:]
    return [int(n) for n in re.findall(r"Transfer completed: \d+ messages, (\d+) records", log)]


def test_a_one_record_change_reaches_bind9_by_ixfr(
    bind9: Bind9Server, mdns: mdns_server.MdnsServer, sqlite_database: str
) -> None:
    big = support.bulk_zone("big.example.", 3000)
    add_secondary(bind9, mdns, big.name)
    eventually(lambda: served_serial(bind9, big.name) == big.serial, timeout=60, what="the AXFR")
    # BIND9 serves the zone before it logs the transfer (a busy run read the log first).
    eventually(lambda: bool(_transfers_logged(bind9, 0)), timeout=5, what="BIND9's log line")
    assert _transfers_logged(bind9, 0) == [3000 + 3]  # SOA, NS, 3000 A, SOA
    mark = bind9.log_path.stat().st_size

    www = stored_reads.get_recordset(big.id, f"host00007.{big.name}", "A")
    central_recordsets.update_recordset(big.name, www.id, records=["198.51.100.7"])
    serial = stored_reads.get_zone(big.id).serial
    query.send_notify(big.name, bind9.host, bind9.port, serial=serial, timeout=5.0)
    eventually(lambda: served_serial(bind9, big.name) == serial, timeout=5, what="the change")

    assert answer(bind9, f"host00007.{big.name}", "A") == (dns.rcode.NOERROR, {"198.51.100.7"})
    assert answer(bind9, f"host00008.{big.name}", "A") == (dns.rcode.NOERROR, {"10.0.0.8"})
    # BIND9 asked for the difference and got it: the old and new SOA twice,
    # one record out, one in (RFC 1995), not the 3003 records of the zone.
    assert mdns.responder.transfers["IXFR"] == 1
    eventually(lambda: bool(_transfers_logged(bind9, mark)), timeout=5, what="BIND9's log line")
    assert _transfers_logged(bind9, mark) == [6]


def _mismatched_answers(bind9: Bind9Server) -> int:
    """Answers BIND9 read on a socket that did not ask their question (its statistics)."""
    bind9.rndc("stats")
    counts = re.findall(
        r"(\d+) mismatch responses received", (bind9.workdir / "named.stats").read_text()
    )
    return int(counts[-1]) if counts else 0


@pytest.mark.parametrize("copies", [True, False], ids=["copies", "no-copies"])
def test_answers_reach_bind9_refreshes_that_share_a_port(
    override: Callable[..., None],
    sqlite_database: str,
    bind9_factory: Bind9Factory,
    copies: bool,
) -> None:
    """BIND9 asks each refresh's SOA query from a socket of its own on a port drawn at
    random, which another of its sockets may hold: then the kernel gives both answers
    to one socket, and the other refresh asks again 5 s later
    (zoneflow.mdns.shared_ports). Told to draw from 400 ports, 60 zones refreshing at
    once share some now and then (a burst of changes again until BIND9 has counted an
    answer on the wrong socket); four sockets on one port, which get no copies, are
    rare. Without copies the waiting ones ask again; with them mdns sends copies to
    every shared port and every change is still served. Whether the copies arrive
    before BIND9's retry is a matter of time (in two of four clean-clone
    runs of the whole suite, one retry came): bench/batch_cost.py --without-copies measures it."""
    override("mdns", repeat_to_shared_ports=copies)
    mdns = mdns_server.MdnsServer("127.0.0.1", 0)
    mdns.start_in_thread()
    try:
        [bind9] = bind9_factory(
            1, options=(*RECOMMENDED_OPTIONS, "use-v4-udp-ports { range 20000 20399; }")
        )
        names = [f"z{i}.shared-ports.example." for i in range(60)]
        recordsets = {}
        for name in names:
            central_zones.create_zone(name, "hostmaster@example.com")
            recordsets[name] = central_recordsets.create_recordset(name, "www", "A", ["192.0.2.1"])
            add_secondary(bind9, mdns, name)

        def all_served() -> bool:
            serials = {name: stored_reads.get_zone(name).serial for name in names}
            return all(served_serial(bind9, name) == serial for name, serial in serials.items())

        eventually(all_served, timeout=60, what="BIND9 to load every zone")
        for burst in range(1, 7):
            address = f"192.0.2.{burst}"
            changed = [
                (name, central_recordsets.update_recordset(name, rs.id, records=[address]).serial)
                for name, rs in recordsets.items()
            ]
            # Every NOTIFY sent before the first answer is read: the refreshes overlap.
            query.send_notifies(changed, bind9.host, bind9.port, timeout=5.0)
            # Served means every refresh has its answer: any question asked again, is.
            eventually(all_served, timeout=60, what="BIND9 to serve every change")
            if _mismatched_answers(bind9) > 0:
                break
    finally:
        mdns.stop_thread()

    assert _mismatched_answers(bind9) > 0, "no two refreshes shared a port: nothing was tried"
    assert mdns.shared_ports.shared > 0
    if not copies:
        assert mdns.shared_ports.retries > 0
    # What an operator sees of it: mdns's heartbeat (GET /v2/service_statuses).
    heartbeat.for_mdns(mdns).beat()
    [status] = services.find_service_statuses({"service_name": "mdns"}, objects.Paging(10)).items
    assert status.stats["queries_from_shared_ports"] == mdns.shared_ports.shared
    assert status.stats["queries_asked_again"] == mdns.shared_ports.retries


TSIG_KEY = "xfr-key"
TSIG_SECRET = base64.b64encode(b"zoneflow functional-test secret!").decode()
WRONG_SECRET = base64.b64encode(b"a secret mdns has never been told").decode()


def _bind9_backend(bind: Bind9Server, mdns: mdns_server.MdnsServer, **tsig: str) -> Bind9Backend:
    target = bind.pool_target([(mdns.host, mdns.port)], **tsig)
    return Bind9Backend(support.pool_target(target, target_id=f"bind-{bind.port}"))


def test_tsig_transfers_work_and_a_wrong_or_missing_key_is_refused(
    override: Callable[..., None],
    sqlite_database: str,
    bind9_factory: Bind9Factory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The pool's target names the key: mdns now requires it for the pool's zones.
    override("tsig", key=[f"{TSIG_KEY}:hmac-sha256:{TSIG_SECRET}"])
    support.store_pools(pools.parse(POOL.replace("description: fake1", TSIG_POOL_TARGET)))
    zone = stored_reads.get_zone(central_zones.create_zone(ZONE, "hostmaster@example.com").id)
    server = mdns_server.MdnsServer("127.0.0.1", 0)
    server.start_in_thread()
    good, wrong = (
        start_server(lambda secret=secret: Bind9Server(tsig_keys={TSIG_KEY: secret}))
        for secret in (TSIG_SECRET, WRONG_SECRET)
    )
    [unsigned] = bind9_factory(1)
    try:
        for bind in (good, wrong):
            _bind9_backend(bind, server, tsig_key_name=TSIG_KEY).create_zone(zone)
        _bind9_backend(unsigned, server).create_zone(zone)

        eventually(lambda: served_serial(good) == zone.serial, timeout=60, what="the signed AXFR")
        eventually(lambda: "TSIG BADSIG" in caplog.text, timeout=60, what="mdns to refuse the key")
        eventually(lambda: "unsigned" in caplog.text, timeout=60, what="the unsigned AXFR")
        # The wrong and the missing key got no data: neither server has the zone.
        assert served_serial(wrong) is None
        assert served_serial(unsigned) is None
        assert server.responder.transfers["AXFR"] == 1

        # A change travels by signed IXFR too.
        central_recordsets.create_recordset(ZONE, "new", "A", ["198.51.100.9"])
        serial = stored_reads.get_zone(zone.id).serial
        query.send_notify(ZONE, good.host, good.port, serial=serial, timeout=5.0)
        eventually(lambda: served_serial(good) == serial, timeout=5, what="the signed IXFR")
        assert answer(good, f"new.{ZONE}", "A") == (dns.rcode.NOERROR, {"198.51.100.9"})
        assert server.responder.transfers["IXFR"] == 1
        assert TSIG_SECRET not in caplog.text and WRONG_SECRET not in caplog.text
    finally:
        server.stop_thread()
        for bind in (good, wrong):
            bind.close()
