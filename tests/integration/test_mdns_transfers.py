"""mdns's record of the transfers it served, and what a poll that times out reads of it."""

from __future__ import annotations

import datetime
import re
import socket
from collections.abc import Callable, Iterator

import dns.message
import dns.query
import dns.rdatatype
import dns.zone
import pytest

from tests import support
from tests.integration.conftest import fake_pool_yaml
from tests.support import eventually
from zoneflow import objects
from zoneflow.central import pools
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.flows.propagation import PollForSerial
from zoneflow.jobs.outcomes import Served
from zoneflow.mdns import responder as mdns_responder
from zoneflow.mdns import server as mdns_server
from zoneflow.mdns import transfers
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import transfers as stored_transfers

HOST = "127.0.0.1"
ZONE = "example.com."
CLIENT = "127.0.0.7"


@pytest.fixture
def zone(fake_pool: None) -> objects.Zone:
    central_zones.create_zone(ZONE, "hostmaster@example.com")
    central_recordsets.create_recordset(ZONE, "www", "A", ["192.0.2.1"])
    return stored_reads.get_zone(ZONE)


@pytest.fixture
def mdns(fake_pool: None) -> Iterator[mdns_server.MdnsServer]:
    server = mdns_server.MdnsServer(HOST, 0)
    server.start_in_thread()
    yield server
    server.stop_thread()


def _axfr_wire(name: str = ZONE) -> bytes:
    return dns.message.make_query(name, dns.rdatatype.AXFR).to_wire()


def _transfer(responder: mdns_responder.Responder, address: str = CLIENT) -> list[bytes]:
    return list(responder.answer(_axfr_wire(), tcp=True, peer="test", address=address))


# --- recording ---------------------------------------------------------------------


def test_transfers_served_over_the_network_are_recorded_per_client(
    zone: objects.Zone, mdns: mdns_server.MdnsServer
) -> None:
    for _ in range(2):
        dns.zone.from_xfr(dns.query.xfr(HOST, ZONE, port=mdns.port, timeout=5))
    assert eventually(
        lambda: (
            [(t.count, t.serial) for t in stored_transfers.list_transfers(zone.id)]
            == [(2, zone.serial)]
        ),
        timeout=10,
        what="two AXFRs recorded",
    )
    (seen,) = stored_transfers.list_transfers(zone.id)
    assert (seen.source, seen.kind, seen.completed) == (HOST, "AXFR", True)
    assert seen.first_at <= seen.last_at

    # A new serial, fetched by IXFR: the count starts again at its serial.
    central_recordsets.create_recordset(ZONE, "mail", "A", ["192.0.2.25"])
    newer = stored_reads.get_zone(ZONE).serial
    _ixfr(mdns.port, zone.serial)
    assert eventually(
        lambda: (
            [(t.serial, t.kind, t.count) for t in stored_transfers.list_transfers(zone.id)]
            == [(newer, "IXFR", 1)]
        ),
        timeout=10,
        what="the IXFR recorded",
    )


def _ixfr(port: int, serial: int) -> None:
    """An IXFR from ``serial``, read to its end."""
    messages = dns.query.xfr(
        HOST, ZONE, port=port, rdtype=dns.rdatatype.IXFR, serial=serial, timeout=5
    )
    assert sum(1 for _ in messages) >= 1


def test_noting_a_transfer_writes_nothing_until_the_log_is_flushed(zone: objects.Zone) -> None:
    responder = mdns_responder.Responder()
    for _ in range(3):
        assert _transfer(responder)
    assert stored_transfers.list_transfers(zone.id) == []  # no database write per transfer
    responder.transfer_log.flush()
    (seen,) = stored_transfers.list_transfers(zone.id)
    assert (seen.source, seen.serial, seen.count, seen.completed) == (CLIENT, zone.serial, 3, True)
    # Later transfers add to the row; another client gets its own.
    _transfer(responder)
    _transfer(responder, "127.0.0.8")
    responder.transfer_log.flush()
    counts = {t.source: t.count for t in stored_transfers.list_transfers(zone.id)}
    assert counts == {CLIENT: 4, "127.0.0.8": 1}


def test_a_transfer_the_client_leaves_is_recorded_as_ended_early(
    zone: objects.Zone, override: Callable[..., None]
) -> None:
    override("mdns", xfr_message_size=512)
    for i in range(40):
        central_recordsets.create_recordset(ZONE, f"t{i}", "TXT", [f'"{"x" * 100}"'])
    responder = mdns_responder.Responder()
    stream = iter(responder.answer(_axfr_wire(), tcp=True, peer="test", address=CLIENT))
    next(stream)
    stream.close()  # what the server does when the client goes away
    responder.transfer_log.flush()
    (seen,) = stored_transfers.list_transfers(zone.id)
    assert (seen.serial, seen.completed) == (stored_reads.get_zone(ZONE).serial, False)


def test_the_log_holds_at_most_max_keys_pairs_between_writes(zone: objects.Zone) -> None:
    log = transfers.TransferLog(max_keys=2)
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        log.note(zone.id, address, zone.serial, "AXFR", completed=True)
    log.note(zone.id, "192.0.2.1", zone.serial, "AXFR", completed=True)  # a pair it holds
    assert log.pending() == 2
    log.flush()
    assert {(t.source, t.count) for t in stored_transfers.list_transfers(zone.id)} == {
        ("192.0.2.1", 2),
        ("192.0.2.2", 1),
    }
    assert log.pending() == 0


def test_a_write_past_one_batch_writes_them_all_and_keeps_what_failed(
    zone: objects.Zone, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfers, "WRITE_BATCH", 2)
    log = transfers.TransferLog()
    for i in range(5):
        log.note(zone.id, f"127.0.0.{i + 1}", zone.serial, "AXFR", completed=True)
    real, calls = stored_transfers.record_transfers, []

    def second_fails(batch: list[tuple[str, objects.ZoneTransfer]]) -> None:
        calls.append(len(batch))
        if len(calls) == 2:
            raise RuntimeError("database away")
        real(batch)

    monkeypatch.setattr(stored_transfers, "record_transfers", second_fails)
    log.flush()
    assert calls == [2, 2] and log.pending() == 3  # the first batch written, the rest kept
    monkeypatch.setattr(stored_transfers, "record_transfers", real)
    log.flush()
    assert len(stored_transfers.list_transfers(zone.id)) == 5


def test_an_ipv4_client_seen_through_an_ipv6_socket_is_recorded_by_its_ipv4_address(
    zone: objects.Zone,
) -> None:
    log = transfers.TransferLog()
    log.note(zone.id, "::ffff:127.0.0.7", zone.serial, "AXFR", completed=True)
    log.flush()
    assert [t.source for t in stored_transfers.list_transfers(zone.id)] == [CLIENT]


def test_a_failed_write_keeps_what_was_noted_for_the_next(
    zone: objects.Zone, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = transfers.TransferLog()
    log.note(zone.id, CLIENT, zone.serial, "AXFR", completed=True)

    def away(_: object) -> None:
        raise RuntimeError("database away")

    with monkeypatch.context() as patched:
        patched.setattr(stored_transfers, "record_transfers", away)
        log.flush()
    assert log.pending() == 1
    log.note(zone.id, CLIENT, zone.serial, "AXFR", completed=True)
    log.flush()
    assert [t.count for t in stored_transfers.list_transfers(zone.id)] == [2]


def test_a_transfer_of_another_serial_starts_the_count_again(zone: objects.Zone) -> None:
    log = transfers.TransferLog()
    for _ in range(2):
        log.note(zone.id, CLIENT, zone.serial, "AXFR", completed=True)
    log.flush()
    log.note(zone.id, CLIENT, zone.serial + 1, "IXFR", completed=True)
    log.flush()
    (seen,) = stored_transfers.list_transfers(zone.id)
    assert (seen.serial, seen.kind, seen.count) == (zone.serial + 1, "IXFR", 1)


def test_a_new_nameservers_first_transfers_are_written_in_a_few_statements(
    fake_pool: None,
) -> None:
    # A new nameserver onboarding a pool transfers every zone once: thousands of
    # first transfers a second, one write a second to keep up with.
    pool = stored_pools.get_pool("default")
    zones = support.bulk_zones(1000, pool_id=pool.id)
    log = transfers.TransferLog()
    for name in zones:
        zone = stored_reads.get_zone(name)
        log.note(zone.id, CLIENT, zone.serial, "AXFR", completed=True)
    with support.statements_sent() as statements:
        log.flush()

    assert log.pending() == 0
    recorded = [stored_transfers.list_transfers(stored_reads.get_zone(name).id) for name in zones]
    assert all([(t.source, t.count) for t in seen] == [(CLIENT, 1)] for seen in recorded)
    # Per batch of 500: one insert of the rows, in one savepoint; not an insert
    # and a savepoint per transfer.
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO ZONE_TRANSFERS")]
    savepoints = [s for s in statements if s.lstrip().upper().startswith("SAVEPOINT")]
    assert (len(inserts), len(savepoints)) == (2, 2)


def test_transfers_of_a_deleted_zone_are_dropped(zone: objects.Zone) -> None:
    log = transfers.TransferLog()
    log.note("no-such-zone", CLIENT, 1, "AXFR", completed=True)
    log.note(zone.id, CLIENT, zone.serial, "AXFR", completed=True)
    log.flush()
    assert log.pending() == 0
    assert [t.source for t in stored_transfers.list_transfers(zone.id)] == [CLIENT]


# --- what a poll that times out says ---------------------------------------------------


def _deaf() -> Iterator[tuple[str, int]]:
    """A nameserver address that takes queries and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        yield HOST, sock.getsockname()[1]


silent = pytest.fixture(_deaf)
another = pytest.fixture(_deaf)


@pytest.fixture
def witnessed_zone(silent: tuple[str, int], override: Callable[..., None]) -> objects.Zone:
    """A zone whose pool's one target is the silent nameserver, masters mdns at 5354."""
    host, port = silent
    yaml = fake_pool_yaml({"host": host, "port": port}).replace(
        "description: fake1,", "description: bind9-2, masters: [{host: 127.0.0.1, port: 5354}],"
    )
    support.store_pools(pools.parse(yaml))
    override("flows", poll_timeout=0.3, poll_interval=0.05, query_timeout=0.05)
    central_zones.create_zone(ZONE, "hostmaster@example.com")
    return stored_reads.get_zone(ZONE)


def _poll_error(zone: objects.Zone, nameserver: tuple[str, int]) -> str:
    seen = Served(**PollForSerial(*nameserver).execute(zone.id, zone.name, zone.serial))
    assert not seen.ok
    return str(seen.error)


def _record(zone: objects.Zone, serial: int, count: int, *, completed: bool = True) -> None:
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    stored_transfers.record_transfers(
        [(zone.id, objects.ZoneTransfer(HOST, serial, "AXFR", now, now, count, completed))]
    )


def test_a_target_that_never_transferred_is_named(
    witnessed_zone: objects.Zone, silent: tuple[str, int]
) -> None:
    assert (
        "target bind9-2 never transferred the zone from mdns at 127.0.0.1:5354: "
        "check its primaries, allow-transfer and TSIG key"
    ) in _poll_error(witnessed_zone, silent)


def test_a_target_that_transferred_the_serial_again_and_again_refuses_it(
    witnessed_zone: objects.Zone, silent: tuple[str, int]
) -> None:
    _record(witnessed_zone, witnessed_zone.serial, 4)
    assert re.search(
        rf"target bind9-2 transferred serial {witnessed_zone.serial} from mdns 4 times "
        r"\(last \d+ s ago\) but does not serve the zone: the nameserver refuses the zone "
        "data; its log says why",
        _poll_error(witnessed_zone, silent),
    )


def test_a_transfer_the_target_left_is_not_called_a_refusal(
    witnessed_zone: objects.Zone, silent: tuple[str, int]
) -> None:
    _record(witnessed_zone, witnessed_zone.serial, 1, completed=False)
    error = _poll_error(witnessed_zone, silent)
    assert f"transferred serial {witnessed_zone.serial} from mdns once" in error
    assert "which it closed before the end" in error
    assert "refuses" not in error


def test_a_target_that_only_transferred_an_older_serial_has_not_asked(
    witnessed_zone: objects.Zone, silent: tuple[str, int]
) -> None:
    _record(witnessed_zone, witnessed_zone.serial - 1, 2)
    assert re.search(
        rf"target bind9-2 last transferred serial {witnessed_zone.serial - 1} from mdns "
        rf"\(\d+ s ago\), never serial {witnessed_zone.serial}",
        _poll_error(witnessed_zone, silent),
    )


def test_a_nameserver_that_is_no_target_gets_no_word_about_mdns(
    witnessed_zone: objects.Zone, another: tuple[str, int]
) -> None:
    # A public secondary of a hidden primary transfers from the target, not mdns.
    error = _poll_error(witnessed_zone, another)
    assert "mdns" not in error
