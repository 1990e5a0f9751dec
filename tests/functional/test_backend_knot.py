"""The knot backend against a real knotd: served, idempotent, and every failure explained.

The end-to-end test runs the whole of zoneflow (CLI, PostgreSQL, ZooKeeper,
conductor, mdns) with Knot as the pool's only target. The others drive the
backend directly, with a BIND9 primary as the zone's master, and assert what
knotd answers to DNS queries and what its configuration holds.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import time

import dns.message
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import pytest

from tests import support
from tests.functional.deployment import Deployment, answer, soa_serial
from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.fixtures.knot import KnotServer
from tests.functional.fixtures.ports import HOST, free_port
from tests.support import eventually, make_zone
from zoneflow import exceptions, objects
from zoneflow.backends.impl_knot import KnotBackend
from zoneflow.dns import query

ZONE = make_zone(name="knot.example.", serial=1, status="PENDING", action="CREATE")
PRIMARY_SERIAL = 2024010101
PRIMARY_ZONE = f"""\
$TTL 300
@   IN SOA ns1.knot.example. hostmaster.knot.example. {PRIMARY_SERIAL} 3600 600 86400 300
@   IN NS  ns1.knot.example.
ns1 IN A   192.0.2.1
www IN A   192.0.2.80
"""
NOT_HELD = (dns.rcode.REFUSED, dns.rcode.NOTAUTH)


def _backend(knot: KnotServer, masters: list[tuple[str, int]], **overrides: object) -> KnotBackend:
    return KnotBackend(
        support.pool_target(knot.pool_target(masters), description="knot-under-test", **overrides)
    )


def _primary(bind9: Bind9Server) -> list[tuple[str, int]]:
    """``bind9`` as the primary of ZONE: the master a knot secondary transfers from."""
    (bind9.workdir / "knot.example.zone").write_text(PRIMARY_ZONE)
    bind9.rndc("addzone", ZONE.name, '{ type primary; file "knot.example.zone"; };')
    return [(bind9.host, bind9.port)]


def _rcode(knot: KnotServer, name: str = ZONE.name) -> int:
    return answer(name, "SOA", knot.host, knot.port)[0]


def _configured(knot: KnotServer, item: str) -> str:
    """What knotd's active configuration holds for ``item``, or "" if nothing."""
    done = knot.knotc("conf-read", item, check=False)
    return done.stdout if done.returncode == 0 else ""


def _no_open_transaction(knot: KnotServer) -> bool:
    # conf-begin only succeeds when nobody holds a transaction; give it back.
    if knot.knotc("conf-begin", check=False).returncode != 0:
        return False
    knot.knotc("conf-abort")
    return True


# --- through zoneflow ---------------------------------------------------------


def test_zone_lifecycle_through_zoneflow_is_served_by_knot(
    deployment: Deployment, knot: KnotServer
) -> None:
    deployment.load_pool(
        {
            "name": "default",
            "threshold_percentage": 100,
            "ns_records": [{"hostname": "ns1.knot.example.", "priority": 1}],
            "nameservers": [knot.nameserver()],
            "targets": [knot.pool_target(deployment.masters())],
        }
    )
    deployment.start_mdns()
    deployment.start_conductor()
    name = ZONE.name

    deployment.cli("zone", "create", name, "--email", "hostmaster@knot.example", "--wait")
    deployment.cli(
        "recordset", "create", name, f"www.{name}", "A", "--record", "192.0.2.10", "--wait"
    )
    serial = deployment.stored_serial(name)
    assert soa_serial(name, knot.host, knot.port) == serial
    assert answer(f"www.{name}", "A", knot.host, knot.port) == (dns.rcode.NOERROR, {"192.0.2.10"})

    deployment.cli(
        "recordset", "create", name, f"api.{name}", "A", "--record", "192.0.2.80", "--wait"
    )
    newer = deployment.stored_serial(name)
    assert newer > serial
    assert soa_serial(name, knot.host, knot.port) == newer
    assert answer(f"api.{name}", "A", knot.host, knot.port)[1] == {"192.0.2.80"}

    deployment.cli("zone", "delete", name, "--wait")
    assert _rcode(knot) in NOT_HELD
    assert _configured(knot, f"zone[{name}]") == ""


# --- the backend directly -----------------------------------------------------


def test_create_and_delete_are_idempotent_and_delete_purges_the_zone_file(
    knot: KnotServer, bind9: Bind9Server
) -> None:
    backend = _backend(knot, _primary(bind9))
    backend.create_zone(ZONE)
    backend.create_zone(ZONE)
    eventually(
        lambda: soa_serial(ZONE.name, knot.host, knot.port) == PRIMARY_SERIAL,
        timeout=10,
        what="knotd to transfer the zone from its primary",
    )
    assert answer(f"www.{ZONE.name}", "A", knot.host, knot.port)[1] == {"192.0.2.80"}
    masters = _configured(knot, f"zone[{ZONE.name}].master")
    assert masters.count("=") == 1, masters
    assert _no_open_transaction(knot)

    backend.delete_zone(ZONE)
    backend.delete_zone(ZONE)
    assert _rcode(knot) in NOT_HELD
    assert _configured(knot, f"zone[{ZONE.name}]") == ""
    assert list((knot.workdir / "zones").iterdir()) == []


def test_create_revives_a_zone_a_stopped_delete_left_frozen_and_purged(
    knot: KnotServer, bind9: Bind9Server
) -> None:
    backend = _backend(knot, _primary(bind9))
    backend.create_zone(ZONE)

    def served() -> bool:
        return soa_serial(ZONE.name, knot.host, knot.port) == PRIMARY_SERIAL

    eventually(served, timeout=10, what="knotd to serve the zone")
    # What delete_zone does before the zone leaves the configuration.
    knot.knotc("-b", "zone-freeze", ZONE.name)
    knot.knotc("-b", "-f", "zone-purge", ZONE.name)
    assert not served()

    backend.create_zone(ZONE)
    assert eventually(served, timeout=10, what="knotd to serve the zone again")


@pytest.mark.parametrize("tsig_key_name", [None, "zoneflow-test"])
def test_knotd_accepts_the_flows_unsigned_notify_from_the_masters(
    knot: KnotServer, tsig_key_name: str | None
) -> None:
    # Without the backend's acl knotd answers NOTAUTH, and a zone would only
    # catch up at its SOA refresh.
    _backend(knot, [(HOST, free_port())], tsig_key_name=tsig_key_name).create_zone(ZONE)
    assert query.send_notify(ZONE.name, knot.host, knot.port, serial=2) == dns.rcode.NOERROR
    assert query.send_notify("other.example.", knot.host, knot.port) == dns.rcode.NOTAUTH


def test_zones_of_one_master_share_its_remote_and_acl(knot: KnotServer) -> None:
    master = [(HOST, free_port())]
    backend = _backend(knot, master)
    for name in ("one.example.", "two.example."):
        backend.create_zone(make_zone(name=name))
    remotes = _configured(knot, "remote").splitlines()
    acls = _configured(knot, "acl").splitlines()
    assert [line for line in remotes if line.startswith("remote.id")] == [
        f"remote.id = zoneflow-{HOST}@{master[0][1]}"
    ]
    assert [line for line in acls if line.startswith("acl.id = zoneflow")] == [
        f"acl.id = zoneflow-notify-{HOST}"
    ]
    assert f"acl[zoneflow-notify-{HOST}].action = notify" in acls
    for name in ("one.example.", "two.example."):
        assert _configured(knot, f"zone[{name}].acl").strip().endswith(f"zoneflow-notify-{HOST}")


def test_a_stopped_knotd_names_the_target_and_the_socket(knot: KnotServer) -> None:
    backend = _backend(knot, [(HOST, free_port())])
    knot.stop()
    for call in (lambda: backend.create_zone(ZONE), lambda: backend.delete_zone(ZONE)):
        with pytest.raises(exceptions.BackendUnreachable) as caught:
            call()
        assert "knot-under-test" in str(caught.value)
        assert str(knot.socket) in str(caught.value)
        assert "is knotd running" in str(caught.value)


def test_a_hung_knotd_times_out_and_the_transaction_it_leaves_does_not_block(
    knot: KnotServer, bind9: Bind9Server
) -> None:
    masters = _primary(bind9)
    backend = _backend(knot, masters, knotc_timeout=1)
    assert knot.process is not None
    os.kill(knot.process.pid, signal.SIGSTOP)
    try:
        begin = time.monotonic()
        with pytest.raises(exceptions.BackendUnreachable, match="within 1s") as caught:
            backend.create_zone(ZONE)
        assert time.monotonic() - begin < 8
        assert str(knot.socket) in str(caught.value)
        assert "knot-under-test" in str(caught.value)
    finally:
        os.kill(knot.process.pid, signal.SIGCONT)
    # Resumed, knotd runs the conf-begin knotc gave up on; the abort never
    # reached it. The next create finds that empty transaction and ends it.
    assert eventually(
        lambda: knot.knotc("conf-diff", check=False).returncode == 0,
        timeout=5,
        what="knotd to run the queued conf-begin",
    )
    backend.create_zone(ZONE)
    assert _no_open_transaction(knot)
    assert eventually(
        lambda: soa_serial(ZONE.name, knot.host, knot.port) == PRIMARY_SERIAL,
        timeout=10,
        what="knotd to serve the zone",
    )


def test_a_failed_create_leaves_no_transaction_open(knot: KnotServer, bind9: Bind9Server) -> None:
    masters = _primary(bind9)
    broken = _backend(knot, masters, tsig_key_name="no-such-key")
    with pytest.raises(exceptions.BackendError, match="'no-such-key' is not defined") as caught:
        broken.create_zone(ZONE)
    assert "knot-under-test" in str(caught.value)
    assert _configured(knot, f"zone[{ZONE.name}]") == ""
    assert _no_open_transaction(knot)

    _backend(knot, masters).create_zone(ZONE)
    assert eventually(
        lambda: soa_serial(ZONE.name, knot.host, knot.port) == PRIMARY_SERIAL,
        timeout=10,
        what="knotd to serve the zone",
    )


def test_a_master_given_by_name_is_refused_with_knots_words(knot: KnotServer) -> None:
    with pytest.raises(exceptions.BackendError, match="as IP addresses") as caught:
        _backend(knot, [("mdns.example.net", 5354)]).create_zone(ZONE)
    assert "(invalid parameter)" in str(caught.value)
    assert "mdns.example.net" in str(caught.value)
    assert _no_open_transaction(knot)
    assert "zoneflow" not in _configured(knot, "remote")


def test_someone_elses_open_transaction_is_waited_for_then_reported(knot: KnotServer) -> None:
    knot.knotc("conf-begin")  # an operator's change, never finished
    knot.knotc("conf-set", "zone[operator.example.]")
    backend = _backend(knot, [(HOST, free_port())], knotc_timeout=1)
    with pytest.raises(exceptions.BackendError, match="conf-abort") as caught:
        backend.create_zone(ZONE)
    assert "another configuration transaction" in str(caught.value)
    # Not ours to abort: the operator's change is still there.
    assert "operator.example." in knot.knotc("conf-diff").stdout


def test_no_masters_is_a_clear_error(knot: KnotServer) -> None:
    with pytest.raises(exceptions.BackendError, match="no masters configured"):
        _backend(knot, []).create_zone(ZONE)
    assert _configured(knot, "zone") == ""


# --- TSIG -----------------------------------------------------------------------


def _first_request(listener: socket.socket, timeout: float) -> bytes:
    """The first DNS message a client sends to ``listener`` over TCP."""
    listener.settimeout(timeout)
    connection, _ = listener.accept()
    with connection:
        connection.settimeout(timeout)
        length = struct.unpack("!H", _read(connection, 2))[0]
        return _read(connection, length)


def _read(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("peer closed the connection")
        data += chunk
    return data


def test_with_tsig_key_name_knot_signs_its_transfers_with_that_key(knot: KnotServer) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((HOST, free_port()))
        listener.listen(1)
        master = listener.getsockname()
        backend = _backend(knot, [master], tsig_key_name=knot.tsig_key_name)
        backend.create_zone(ZONE)

        remote = f"zoneflow-{master[0]}@{master[1]}-{knot.tsig_key_name}"
        assert _configured(knot, f"zone[{ZONE.name}].master").split(" = ")[1].strip() == remote
        assert (
            _configured(knot, f"remote[{remote}].key").strip().endswith(f"= {knot.tsig_key_name}.")
        )

        # A new secondary zone is bootstrapped with an AXFR over TCP; parsing
        # it with the key verifies the signature, not just the key's name.
        keyring = dns.tsigkeyring.from_text({knot.tsig_key_name: knot.tsig_secret})
        request = dns.message.from_wire(_first_request(listener, timeout=10), keyring=keyring)
    assert request.had_tsig
    assert str(request.keyname) == f"{knot.tsig_key_name}."
    assert request.question[0].rdtype == dns.rdatatype.AXFR


# --- several zones at once ---------------------------------------------------------

BATCH = [f"b{i}.knot.example." for i in range(5)]


def _primary_of(bind9: Bind9Server, names: list[str]) -> list[tuple[str, int]]:
    """``bind9`` as the primary of each of ``names``, with PRIMARY_ZONE's data."""
    for name in names:
        (bind9.workdir / f"{name}zone").write_text(PRIMARY_ZONE.replace("knot.example.", name))
        bind9.rndc("addzone", name, f'{{ type primary; file "{name}zone"; }};')
    return [(bind9.host, bind9.port)]


def test_a_batch_of_zones_is_created_and_deleted_in_one_transaction_each_way(
    knot: KnotServer, bind9: Bind9Server
) -> None:
    backend = _backend(knot, _primary_of(bind9, BATCH))
    zones = [make_zone(name=name) for name in BATCH]
    assert backend.batches

    backend.create_zones(zones)
    backend.create_zones(zones)  # idempotent, as create_zone

    for name in BATCH:
        eventually(
            lambda n=name: soa_serial(n, knot.host, knot.port) == PRIMARY_SERIAL,  # type: ignore[misc]
            timeout=10,
            what=f"knotd to transfer {name} from its primary",
        )
        masters = _configured(knot, f"zone[{name}].master")
        assert masters.count("=") == 1, masters
    assert _no_open_transaction(knot)

    backend.delete_zones(zones)
    backend.delete_zones(zones)  # idempotent, as delete_zone
    for name in BATCH:
        assert _rcode(knot, name) in NOT_HELD
        assert _configured(knot, f"zone[{name}]") == ""
    assert list((knot.workdir / "zones").iterdir()) == []
    assert _no_open_transaction(knot)


def test_a_batch_knotd_refuses_in_part_configures_none_of_it(knot: KnotServer) -> None:
    backend = _backend(knot, [(HOST, free_port())])
    # Past zoneflow's name rules (central refuses it): knotd's are what is tried here.
    zones = [make_zone(name="good.knot.example."), make_zone(name="bad..knot.example.")]

    with pytest.raises(exceptions.BackendError) as caught:
        backend.create_zones(zones)

    assert "knot-under-test" in str(caught.value)
    assert "bad..knot.example." in str(caught.value)
    # All or nothing: the transaction was aborted, the good zone is not configured either.
    assert _configured(knot, "zone[good.knot.example.]") == ""
    assert _no_open_transaction(knot)
    backend.create_zones(zones[:1])
    assert _configured(knot, "zone[good.knot.example.]") != ""


def _with_notify_masters(value: object) -> KnotBackend:
    options = {"notify_masters": value}
    return KnotBackend(
        objects.PoolTarget(
            id="t1",
            pool_id="p",
            type="knot",
            description="knot-under-test",
            masters=(),
            options=options,
        )
    )


@pytest.mark.parametrize("value", [True, "yes", "false", 0])
def test_notify_masters_is_read_as_a_flag(value: object) -> None:
    flag = _with_notify_masters(value).notify_masters
    assert flag is (str(value).lower() in ("true", "yes", "1"))


def test_a_notify_masters_that_is_no_flag_is_named() -> None:
    with pytest.raises(exceptions.BackendError, match="notify_masters must be true or false"):
        _with_notify_masters("maybe")
