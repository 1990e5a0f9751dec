"""The producer's pieces that need no server: shards, batches, the audit's verdicts,
the SOA probe (against a responder in this process) and the shard keeper on zake."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from tests.support import eventually
from zoneflow import exceptions, objects
from zoneflow.dns import soa_probe
from zoneflow.producer import audit, shards
from zoneflow.storage.upkeep import KeptZone
from zoneflow.taskflow_adapter import jobboard

# --- shards and batches ---------------------------------------------------------------


def test_a_zone_has_the_same_shard_in_every_process() -> None:
    # Producers each compute shards: Python's hash() of a str differs between
    # processes (PYTHONHASHSEED), CRC-32 does not.
    zone_id = "5b0c3d4e-2f61-4c8e-9a57-7e1f0c9d2a43"
    code = f"from zoneflow.producer import shards; print(shards.shard_of({zone_id!r}, 64))"
    seen = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert seen == {str(shards.shard_of(zone_id, 64))}


def test_shards_are_stable_and_spread_zones_evenly() -> None:
    ids = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(16000)]
    counts = Counter(shards.shard_of(zone_id, 16) for zone_id in ids)
    assert set(counts) == set(range(16))
    # 1000 expected per shard: none far off.
    assert min(counts.values()) > 800 and max(counts.values()) < 1200
    assert [shards.shard_of(zone_id, 16) for zone_id in ids[:50]] == [
        shards.shard_of(zone_id, 16) for zone_id in ids[:50]
    ]


def test_in_shards_keeps_only_the_zones_of_the_shards_held() -> None:
    ids = [str(uuid.uuid4()) for _ in range(500)]
    owned = frozenset({0, 3})
    kept = shards.in_shards(ids, owned, 8)
    assert kept == [z for z in ids if shards.shard_of(z, 8) in owned]
    assert 0 < len(kept) < len(ids)
    assert shards.in_shards(ids, frozenset(range(8)), 8) == ids


def test_batches_cut_in_order_and_keep_every_item() -> None:
    assert shards.batches(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert shards.batches([], 3) == []
    assert shards.batches([1, 2], 5) == [[1, 2]]
    with pytest.raises(ValueError, match="at least 1"):
        shards.batches([1], 0)


# --- the shard keeper, on zake ---------------------------------------------------------


@pytest.fixture
def zake_path() -> Iterator[str]:
    jobboard.reset_zake()
    yield f"/test/shards-{uuid.uuid4().hex}"
    jobboard.reset_zake()


def _keeper(path: str, name: str) -> shards.ShardKeeper:
    keeper = shards.ShardKeeper(
        jobboard.client(), path=path, shards=12, identifier=name, rebalance_wait=0.1
    )
    keeper.start(timeout=5)
    return keeper


def test_two_keepers_share_the_shards_without_overlap_and_one_takes_all_when_alone(
    zake_path: str,
) -> None:
    first = _keeper(zake_path, "first")
    assert eventually(lambda: first.owned(wait=0.05) == frozenset(range(12)), timeout=10)
    second = _keeper(zake_path, "second")
    held: dict[str, frozenset[int]] = {}

    def shared() -> bool:
        held["first"], held["second"] = first.owned(wait=0.05), second.owned(wait=0.05)
        return bool(held["first"]) and bool(held["second"])

    eventually(shared, timeout=10, what=lambda: f"both keepers to hold shards: {held}")
    assert held["first"].isdisjoint(held["second"])
    assert held["first"] | held["second"] == frozenset(range(12))

    second.stop()
    assert eventually(lambda: first.owned(wait=0.05) == frozenset(range(12)), timeout=10)
    first.stop()


def test_a_producer_with_another_shard_count_is_refused_while_others_run(
    zake_path: str,
) -> None:
    running = _keeper(zake_path, "running")
    other = shards.ShardKeeper(
        jobboard.client(), path=zake_path, shards=16, identifier="other", rebalance_wait=0.1
    )
    with pytest.raises(exceptions.InvalidConfig, match="shards is 16 here but 12 for the"):
        other.start(timeout=5)
    running.stop()
    # Alone, it may change the count.
    changed = shards.ShardKeeper(
        jobboard.client(), path=zake_path, shards=16, identifier="changed", rebalance_wait=0.1
    )
    changed.start(timeout=5)
    assert eventually(lambda: changed.owned(wait=0.05) == frozenset(range(16)), timeout=10)
    changed.stop()


# --- the audit's verdicts -----------------------------------------------------------


def _zone(*, serial: int = 10, deleted: bool = False) -> KeptZone:
    return KeptZone(
        str(uuid.uuid4()), "a.example.", "pool", serial, "ACTIVE", "NONE", deleted=deleted
    )


def _judge(
    zone: KeptZone, found: soa_probe.Finding, recorded: tuple[int, str] | None = None
) -> tuple[audit.Verdicts, audit.AuditReport]:
    verdicts, report = audit.Verdicts(), audit.AuditReport()
    audit.judge(zone, "t1", found, recorded, verdicts, report)
    return verdicts, report


def test_a_zone_served_at_its_serial_is_left_alone_and_recorded_only_if_the_row_differs() -> None:
    zone = _zone()
    verdicts, report = _judge(zone, 10, recorded=(10, objects.Status.ACTIVE))
    assert (verdicts.findings, verdicts.to_recover, report.served) == ([], {}, 1)
    verdicts, _ = _judge(zone, 12, recorded=(9, objects.Status.ERROR))
    assert verdicts.findings == [(zone.id, ("t1", 12, objects.Status.ACTIVE, None))]
    assert not verdicts.to_recover


def test_a_zone_missing_or_behind_on_a_target_is_recovered_and_recorded_in_error() -> None:
    zone = _zone()
    verdicts, report = _judge(zone, soa_probe.NOT_SERVED)
    assert verdicts.to_recover == {zone.id: (zone, 10)}
    assert verdicts.findings == [(zone.id, ("t1", 0, objects.Status.ERROR, audit.NOT_SERVED))]
    assert report.missing == 1
    verdicts, report = _judge(zone, 9)
    assert verdicts.to_recover == {zone.id: (zone, 10)}
    assert verdicts.findings[0][1][1:3] == (9, objects.Status.ERROR)
    assert report.behind == 1


def test_a_deleted_zone_still_served_is_removed_and_a_silent_target_judges_nothing() -> None:
    gone = _zone(deleted=True)
    verdicts, report = _judge(gone, 10)
    assert verdicts.to_remove == {gone.id: gone}
    assert report.still_served == 1
    verdicts, _ = _judge(gone, soa_probe.NOT_SERVED, recorded=(10, objects.Status.DELETED))
    assert (verdicts.to_remove, verdicts.findings) == ({}, [])
    for zone in (_zone(), gone):
        verdicts, report = _judge(zone, soa_probe.NO_ANSWER)
        assert (verdicts.findings, verdicts.to_recover, verdicts.to_remove) == ([], {}, {})
        assert report.unanswered == 1


def test_a_deleted_zone_whose_name_lives_again_in_its_pool_is_not_asked_about() -> None:
    gone, live = _zone(deleted=True), _zone()
    view = audit.AuditView(
        zones=[gone, live], pools={}, recorded={}, live_names={("pool", "a.example.")}
    )
    assert audit.zones_in_shards(view, frozenset({0}), 1) == [live]


def test_of_a_name_deleted_twice_only_the_last_deleted_zone_is_asked_about() -> None:
    first, last = _zone(serial=5, deleted=True), _zone(serial=9, deleted=True)
    view = audit.AuditView(zones=[first, last], pools={}, recorded={}, live_names=set())
    assert audit.zones_in_shards(view, frozenset({0}), 1) == [last]


# --- the SOA probe ---------------------------------------------------------------------


def _answer(query: dns.message.Message, serial: int | None, rcode: int) -> bytes:
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    if serial is not None:
        response.flags |= dns.flags.AA
        name = query.question[0].name
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN, dns.rdatatype.SOA, f"ns1.{name} h.{name} {serial} 1 2 3 4"
        )
        response.answer.append(dns.rrset.from_rdata(name, 300, rdata))
    return response.to_wire()


class Responder:
    """A UDP nameserver in a thread: serves ``zones`` (name -> serial), refuses
    others, and drops the first ``drop`` questions for ``flaky``."""

    def __init__(self, zones: dict[str, int], *, flaky: str = "", drop: int = 0) -> None:
        self.zones, self.flaky, self.drop = zones, flaky, drop
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = self.sock.getsockname()
        self.asked: Counter[str] = Counter()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                wire, peer = self.sock.recvfrom(512)
            except OSError:
                return
            query = dns.message.from_wire(wire)
            name = query.question[0].name.to_text()
            self.asked[name] += 1
            if name == self.flaky and self.asked[name] <= self.drop:
                continue
            serial = self.zones.get(name)
            rcode = dns.rcode.NOERROR if serial is not None else dns.rcode.REFUSED
            self.sock.sendto(_answer(query, serial, rcode), peer)

    def close(self) -> None:
        self.sock.close()


def test_the_probe_reads_serials_refusals_and_retries_silence_on_every_server_at_once() -> None:
    one = Responder({f"z{i}.example.": 100 + i for i in range(300)}, flaky="z7.example.", drop=1)
    two = Responder({"z1.example.": 5})
    try:
        names = [f"z{i}.example." for i in range(300)]
        found = soa_probe.serials(
            {one.address: names, two.address: ["z1.example.", "Other.Example."]},
            in_flight=16,
            timeout=0.3,
            retries=2,
        )
    finally:
        one.close()
        two.close()
    assert found[one.address] == [100 + i for i in range(300)]
    assert one.asked["z7.example."] == 2, "the dropped question was asked again"
    assert found[two.address] == [5, soa_probe.NOT_SERVED]


def test_the_probe_gives_no_answer_for_a_server_that_never_answers() -> None:
    silent = Responder({}, flaky="a.example.", drop=99)
    try:
        found = soa_probe.serials({silent.address: ["a.example."]}, timeout=0.1, retries=1)
    finally:
        silent.close()
    assert found == {silent.address: [soa_probe.NO_ANSWER]}
    assert silent.asked["a.example."] == 2


def test_an_answer_to_another_question_is_not_taken() -> None:
    query = dns.message.make_query("b.example.", dns.rdatatype.SOA)
    wire = _answer(query, 7, dns.rcode.NOERROR)
    assert soa_probe.read_answer(wire, soa_probe.wire_name("b.example.")) == (query.id, 7)
    assert soa_probe.read_answer(wire, soa_probe.wire_name("c.example.")) is None
    assert soa_probe.read_answer(b"\x00\x01", soa_probe.wire_name("b.example.")) is None


@pytest.mark.parametrize(
    ("rcode", "authoritative", "finding"),
    [
        (dns.rcode.REFUSED, False, soa_probe.NOT_SERVED),
        (dns.rcode.NXDOMAIN, True, soa_probe.NOT_SERVED),
        (dns.rcode.NOTAUTH, False, soa_probe.NOT_SERVED),
        (dns.rcode.NOERROR, False, soa_probe.NOT_SERVED),  # a referral, or a cache's answer
        (dns.rcode.NOERROR, True, soa_probe.NOT_SERVED),  # authoritative, without the SOA
        (dns.rcode.SERVFAIL, False, soa_probe.NOT_LOADED),  # BIND9's zone not yet loaded
        (dns.rcode.FORMERR, False, soa_probe.NOT_LOADED),
    ],
)
def test_an_answer_without_the_serial_says_whether_the_server_holds_the_zone(
    rcode: int, authoritative: bool, finding: soa_probe.Finding
) -> None:
    query = dns.message.make_query("b.example.", dns.rdatatype.SOA)
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    if authoritative:
        response.flags |= dns.flags.AA
    answer = soa_probe.read_answer(response.to_wire(), soa_probe.wire_name("b.example."))
    assert answer == (query.id, finding)


def test_wire_names_match_dnspython_and_ignore_case() -> None:
    for text in ("Example.COM.", "a.b.c.example.", "xn--bcher-kva.example."):
        assert soa_probe.wire_name(text) == dns.name.from_text(text.lower()).to_wire()
    assert soa_probe.wire_name("a\\.b.example.") == dns.name.from_text("a\\.b.example.").to_wire()


def test_an_address_that_answered_none_of_a_batch_is_reported_to_the_inspector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reported: list[tuple[str, int]] = []
    monkeypatch.setattr(audit.health, "audit_unanswered", lambda t, n: reported.append((t, n)))
    zones = [_zone(), _zone()]
    silent, answering = ("192.0.2.1", 53), ("192.0.2.2", 53)
    asked = (
        {silent: [(z, "t-silent") for z in zones], answering: [(z, "t-ok") for z in zones]},
        {silent: [soa_probe.NO_ANSWER] * 2, answering: [10, soa_probe.NO_ANSWER]},
    )
    view = audit.AuditView(zones=zones, pools={}, recorded={}, live_names=set())
    audit._judge_all(asked, view, audit.AuditReport())
    # One answer of two is an answering target: only the silent one is reported.
    assert reported == [("t-silent", 2)]
