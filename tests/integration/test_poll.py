"""A job's poll of one nameserver: quick at first, then less often once it lags."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import dns.flags
import dns.message
import dns.opcode
import dns.rdatatype
import dns.rrset
import pytest
from taskflow import states

from tests import support
from tests.integration.conftest import fake_pool_yaml, wait_settled
from zoneflow import events, exceptions, jobs, objects
from zoneflow.central import pools
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.conductor import daemon
from zoneflow.engine.relay import OutboxRelay
from zoneflow.events import served as served_word
from zoneflow.flows.batch import BatchStatus, PollBatch
from zoneflow.flows.propagation import PollForSerial
from zoneflow.flows.scratch import Scratch
from zoneflow.jobs.outcomes import Served
from zoneflow.storage import outbox as stored_outbox
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import status as stored_status
from zoneflow.taskflow_adapter import fencing, persistence

HOST = "127.0.0.1"


class LaggingNameserver(support.UdpResponder):
    """Answers every SOA query with serial 1 (behind any change) and every NOTIFY
    with its reply; notes when each SOA query came. A zone named in ``catch_up``
    is served at a serial past any change from that many seconds after the
    first query on."""

    def __init__(self, catch_up: dict[str, float] | None = None) -> None:
        self.catch_up = catch_up or {}
        self.asked: list[float] = []
        self.names: list[str] = []  # the zone of each SOA query, in order
        self.heard: list[tuple[str, str]] = []  # (opcode, zone) of every message, in order
        super().__init__()

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        answer = dns.message.make_response(query)
        self.heard.append((dns.opcode.to_text(query.opcode()), query.question[0].name.to_text()))
        if query.opcode() == dns.opcode.QUERY:
            self.asked.append(time.monotonic())
            question = query.question[0]
            name = question.name.to_text()
            self.names.append(name)
            after = self.catch_up.get(name)
            caught_up = after is not None and self.asked[-1] - self.asked[0] >= after
            serial = 4000000000 if caught_up else 1
            answer.flags |= dns.flags.AA
            answer.answer.append(
                dns.rrset.from_text(
                    question.name, 300, "IN", "SOA", f"ns. host. {serial} 3600 600 86400 300"
                )
            )
        return answer


@pytest.fixture
def lagging() -> Iterator[LaggingNameserver]:
    server = LaggingNameserver()
    yield server
    server.close()


def test_a_nameserver_that_lags_past_its_first_notify_is_asked_less_and_less_often(
    lagging: LaggingNameserver, override: Callable[..., None]
) -> None:
    override(
        "flows",
        poll_interval=0.05,
        poll_interval_max=0.4,
        renotify_interval=1.0,
        poll_timeout=4.0,
    )
    listed = f"  nameservers: [{{host: {HOST}, port: {lagging.port}}}]\n"
    support.store_pools(pools.parse(fake_pool_yaml({}) + listed))
    zone = central_zones.create_zone("lagging.example.", "hostmaster@example.com")

    seen = Served(**PollForSerial(HOST, lagging.port).execute(zone.id, zone.name, zone.serial))

    assert not seen.ok and seen.serial == 1, seen
    first = lagging.asked[0]
    early = [t for t in lagging.asked if t - first < 1.0]
    late = [t for t in lagging.asked if t - first >= 1.0]
    gaps = [b - a for a, b in zip(late, late[1:], strict=False)]
    # Every 0.05 s in the first second (20 at most), then waits growing to 0.4 s:
    # about ten in the three seconds after, where a fixed interval asks 60.
    assert len(early) <= 21 and 1 <= len(late) <= 14, (len(early), len(late))
    assert gaps and max(gaps) >= 0.4, gaps


def test_a_nameserver_heard_saying_what_it_serves_is_asked_at_rounds_far_apart(
    lagging: LaggingNameserver, override: Callable[..., None]
) -> None:
    """Its word prompts the question: the rounds only make up for a word lost. The
    same poll of a nameserver never heard asks it about twenty-five times."""
    override(
        "flows",
        poll_interval=0.05,
        poll_interval_max=0.4,
        renotify_interval=1.0,
        poll_timeout=2.0,
    )
    override("events", driver="inprocess")
    listed = f"  nameservers: [{{host: {HOST}, port: {lagging.port}}}]\n"
    support.store_pools(pools.parse(fake_pool_yaml({}) + listed))
    zone = central_zones.create_zone("lagging.example.", "hostmaster@example.com")
    # It NOTIFYed mdns of another zone it loaded a moment ago.
    served_word.announce("another-zone", 4000000000, HOST)

    seen = Served(**PollForSerial(HOST, lagging.port).execute(zone.id, zone.name, zone.serial))

    assert not seen.ok and seen.serial == 1, seen
    rounds = lagging.asked[:-1]  # the last: a look at the deadline, at once
    gaps = [b - a for a, b in zip(rounds, rounds[1:], strict=False)]
    assert 3 <= len(lagging.asked) <= 8 and min(gaps) >= 0.3, gaps


@pytest.mark.parametrize(
    ("notify_first", "heard"), [(True, ["NOTIFY", "QUERY"]), (False, ["QUERY"])]
)
def test_an_updates_poll_notifies_its_nameserver_before_it_asks(
    override: Callable[..., None], notify_first: bool, heard: list[str]
) -> None:
    name = "fresh.example."
    # Served at once: the poll's first question ends it, and no NOTIFY is repeated.
    with contextlib.closing(LaggingNameserver(catch_up={name: 0.0})) as nameserver:
        listed = f"  nameservers: [{{host: {HOST}, port: {nameserver.port}}}]\n"
        support.store_pools(pools.parse(fake_pool_yaml({}) + listed))
        zone = central_zones.create_zone(name, "hostmaster@example.com")
        poll = PollForSerial(HOST, nameserver.port, notify_first=notify_first)

        seen = Served(**poll.execute(zone.id, zone.name, zone.serial))

    assert seen.ok, seen
    assert nameserver.heard == [(opcode, name) for opcode in heard]


@pytest.mark.parametrize("window", [1, 2])
def test_a_batch_poll_asks_its_first_zones_while_the_first_lags_and_waits_once_for_all(
    lagging: LaggingNameserver, override: Callable[..., None], window: int
) -> None:
    override(
        "flows", poll_interval=0.05, renotify_interval=1.0, poll_timeout=1.5, poll_window=window
    )
    listed = f"  nameservers: [{{host: {HOST}, port: {lagging.port}}}]\n"
    support.store_pools(pools.parse(fake_pool_yaml({}) + listed))
    zones = [
        central_zones.create_zone(f"lag{i}.example.", "hostmaster@example.com") for i in range(4)
    ]
    batch = {zone.id: [zone.name, zone.serial] for zone in zones}
    agreed = [zone.id for zone in zones]

    results = PollBatch(objects.Action.UPDATE, HOST, lagging.port).execute(batch, agreed)

    seen = {zone_id: Served(**result) for zone_id, result in results.items()}
    assert set(seen) == set(agreed)
    for served in seen.values():
        assert not served.ok and served.serial == 1, served
        assert served.error is not None and "after 1.5s: serves serial 1" in served.error
    # Every zone asked at once first; then the first ``window`` zones, as long as the
    # first lags; at the end of the one poll_timeout they share, every zone once
    # more (in turn, the second would only then start its own poll_timeout).
    names = [zone.name for zone in zones]
    asked = lagging.names
    assert sorted(asked[:4]) == sorted(names) == sorted(asked[-4:]), asked
    rounds = asked[4:-4]
    assert len(rounds) > 4 * window and set(rounds) == set(names[:window]), asked
    assert all(rounds.count(name) == rounds.count(names[0]) for name in names[:window])


def test_a_zone_a_nameserver_serves_before_the_first_is_found_at_the_next_round(
    override: Callable[..., None],
) -> None:
    override("flows", poll_interval=0.05, renotify_interval=1.0, poll_timeout=10.0)
    names = ["first.example.", "second.example."]
    # The second is served 0.2 s in, the first 1.5 s in.
    server = LaggingNameserver(catch_up={names[0]: 1.5, names[1]: 0.2})
    try:
        listed = f"  nameservers: [{{host: {HOST}, port: {server.port}}}]\n"
        support.store_pools(pools.parse(fake_pool_yaml({}) + listed))
        zones = [central_zones.create_zone(name, "hostmaster@example.com") for name in names]
        found: dict[str, float] = {}

        def seen(served: dict[str, Served]) -> None:
            found.update(dict.fromkeys(served, time.monotonic()))

        task = PollBatch(objects.Action.CREATE, HOST, server.port)
        results = task._watch(
            {zone.id: (zone.name, zone.serial) for zone in zones},
            expect_removed=False,
            fence=fencing.UNFENCED,
            on_served=seen,
        )
    finally:
        server.close()

    assert all(served.ok for served in results.values()), results
    first, second = (zone.id for zone in zones)
    # The second was found at a round soon after it was served, not with the first.
    assert found[first] - found[second] >= 1.0, found


def test_a_poll_asks_at_once_a_zone_its_nameserver_says_it_serves(
    override: Callable[..., None],
) -> None:
    # Rounds thirty seconds apart: only the nameserver's word can end this poll sooner.
    override(
        "flows", poll_interval=30.0, poll_interval_max=30.0, renotify_interval=60.0, poll_timeout=90
    )
    override("events", driver="inprocess")
    # Served from 0.2 s after the poll's first query, which finds it lagging.
    server = LaggingNameserver(catch_up={"said.example.": 0.2})
    try:
        listed = f"  nameservers: [{{host: {HOST}, port: {server.port}}}]\n"
        support.store_pools(pools.parse(fake_pool_yaml({}) + listed))
        zone = central_zones.create_zone("said.example.", "hostmaster@example.com")
        # What mdns does with the nameserver's NOTIFY (see test_mdns_tsig.py), half a
        # second in.
        word = threading.Timer(0.5, served_word.announce, (zone.id, 4000000000, HOST))
        word.start()
        began = time.monotonic()
        results = PollBatch(objects.Action.UPDATE, HOST, server.port)._watch(
            {zone.id: (zone.name, zone.serial + 1)},
            expect_removed=False,
            fence=fencing.UNFENCED,
        )
        took = time.monotonic() - began
    finally:
        server.close()

    assert results[zone.id] == Served(ok=True, serial=4000000000)
    assert took < 20, took
    assert len(server.asked) == 2  # the first round, and once at the word


def test_a_batch_poll_moves_on_as_its_zones_are_served_in_turn(
    override: Callable[..., None],
) -> None:
    override("flows", poll_interval=0.05, renotify_interval=1.0, poll_timeout=10.0, poll_window=1)
    names = [f"turn{i}.example." for i in range(4)]
    server = LaggingNameserver(catch_up={name: 0.3 * i for i, name in enumerate(names)})
    try:
        listed = f"  nameservers: [{{host: {HOST}, port: {server.port}}}]\n"
        support.store_pools(pools.parse(fake_pool_yaml({}) + listed))
        zones = [central_zones.create_zone(name, "hostmaster@example.com") for name in names]
        batch = {zone.id: [zone.name, zone.serial] for zone in zones}

        results = PollBatch(objects.Action.CREATE, HOST, server.port).execute(batch, list(batch))
    finally:
        server.close()

    assert {zone_id: Served(**result) for zone_id, result in results.items()} == {
        zone.id: Served(ok=True, serial=4000000000) for zone in zones
    }
    # While the zones before it were waited for, the last was asked only in the
    # rounds that asked every zone (the first, and one each time a head was
    # served), not at each of the heads' dozen asks.
    last_of_third = max(i for i, name in enumerate(server.names) if name == names[2])
    early = server.names[:last_of_third].count(names[3])
    assert early <= 3 < server.names.count(names[2]), server.names


class _Early:
    """Stands for EarlyStatus: notes the zones each poll passes on as served."""

    def __init__(self) -> None:
        self.passed: list[str] = []

    def seen(self, _scratch: Scratch, _nameserver: Any, found: dict[str, Served], **_: Any) -> None:
        self.passed.extend(found)


@pytest.mark.parametrize("priority", list(objects.JobPriority))
def test_only_a_poll_of_users_changes_passes_on_its_zones_to_be_written_as_served(
    override: Callable[..., None], priority: objects.JobPriority
) -> None:
    """A change's zones are written as soon as every nameserver serves them; an
    upkeep job's (a backfill's) all at its end, in one transaction."""
    override("flows", poll_interval=0.05, renotify_interval=1.0, poll_timeout=10.0)
    names = ["passed1.example.", "passed2.example."]
    server = LaggingNameserver(catch_up={names[0]: 0, names[1]: 0.2})
    early = _Early()
    try:
        listed = f"  nameservers: [{{host: {HOST}, port: {server.port}}}]\n"
        support.store_pools(pools.parse(fake_pool_yaml({}) + listed))
        zones = [central_zones.create_zone(name, "hostmaster@example.com") for name in names]
        batch = {zone.id: [zone.name, zone.serial] for zone in zones}
        task = PollBatch(objects.Action.CREATE, HOST, server.port, early)  # type: ignore[arg-type]
        results = task.execute(batch, list(batch), scratch=Scratch(), priority=int(priority))
    finally:
        server.close()

    assert all(Served(**result).ok for result in results.values()), results
    if priority == objects.JobPriority.CHANGE:
        assert sorted(early.passed) == sorted(batch)
    else:
        assert early.passed == []


@dataclasses.dataclass
class _Batch:
    """An update-zones job of three zones running on two nameservers that serve the
    first two at once, and the third once ``serve_the_last`` is called."""

    zones: list[objects.Zone]
    serials: list[int]
    job_id: str
    servers: list[LaggingNameserver]
    statuses: events.Subscription

    def serve_the_last(self) -> None:
        for server in self.servers:
            server.catch_up[self.zones[2].name] = 0

    def job(self) -> Any:
        return jobs.get_job(persistence.get_backend(), self.job_id)

    def active_events(self) -> list[str]:
        """The zones of the ACTIVE events published, once there is one for each zone."""
        seen: list[objects.Event] = []
        support.eventually(
            lambda: seen.extend(self.statuses.next(timeout=0.2)) or _actives(seen) == 3,
            what=lambda: f"an ACTIVE event for each zone in {seen}",
        )
        return sorted(str(e.zone_id) for e in seen if e.action == objects.Status.ACTIVE)


@contextlib.contextmanager
def _batch_of_three(board: Any, override: Callable[..., None]) -> Iterator[_Batch]:
    override("flows", poll_interval=0.05, renotify_interval=1.0, poll_timeout=30.0)
    override("conductor", batch_zones=3)
    names = ["early1.example.", "early2.example.", "late.example."]
    servers = [LaggingNameserver(catch_up={names[0]: 0, names[1]: 0}) for _ in range(2)]
    conductor = daemon.Conductor("early")
    try:
        listed = "".join(f"{{host: {HOST}, port: {s.port}}}, " for s in servers)
        support.store_pools(pools.parse(fake_pool_yaml({}, {}) + f"  nameservers: [{listed}]\n"))
        zones = [central_zones.create_zone(name, "hostmaster@example.com") for name in names]
        for pending in stored_outbox.claim_pending_jobs():
            stored_outbox.remove_pending_job(pending.id)
        for zone in zones:
            stored_status.set_zone_status(zone.id, serial=zone.serial, status=objects.Status.ACTIVE)
        serials = [
            central_recordsets.create_recordset(zone.id, "www", "A", ["192.0.2.1"]).serial
            for zone in zones
        ]
        statuses = events.subscribe(objects.EventFilter(topics=frozenset({"zone"})))
        (job_id,) = OutboxRelay(board, persistence.get_backend()).flush()
        assert jobs.get_job(persistence.get_backend(), job_id).kind == "update-zones"
        conductor.start()
        yield _Batch(zones, serials, job_id, servers, statuses)
    finally:
        conductor.stop()
        for server in servers:
            server.close()


def test_a_zone_of_a_batch_is_active_once_every_nameserver_serves_it_not_once_the_last_is(
    board: Any, override: Callable[..., None]
) -> None:
    """A batch's zone is ACTIVE as soon as both nameservers serve it, while another zone
    of the batch is still waited for; its status is written once, and the job ends with
    every zone ACTIVE once the last is served too."""
    with _batch_of_three(board, override) as batch:
        for zone, serial in list(zip(batch.zones, batch.serials, strict=True))[:2]:
            settled = wait_settled(zone.id)
            assert (settled.status, settled.serial) == (objects.Status.ACTIVE, serial)
        late = stored_reads.get_zone(batch.zones[2].id)
        assert late.status == objects.Status.PENDING, "the third is not served yet"
        assert batch.job().state not in jobs.OVER

        batch.serve_the_last()
        settled = wait_settled(batch.zones[2].id)
        assert (settled.status, settled.serial) == (objects.Status.ACTIVE, batch.serials[2])
        job = support.eventually(
            lambda: (j := batch.job()).state in jobs.OVER and j, what="the batch to end"
        )
        assert job.state == states.SUCCESS
        assert batch.active_events() == sorted(z.id for z in batch.zones), "each written once"


def test_the_zones_a_poll_completes_are_written_without_reading_the_targets_in_maintenance(
    board: Any, override: Callable[..., None]
) -> None:
    """Every nameserver serves them, so the threshold holds whichever targets it counts:
    only the job's consensus check reads which are in maintenance, not each early write."""
    with support.statements_sent() as sent, _batch_of_three(board, override) as batch:
        for zone in batch.zones[:2]:
            wait_settled(zone.id)
        batch.serve_the_last()
        support.eventually(lambda: batch.job().state in jobs.OVER, what="the batch to end")
        for zone, serial in zip(batch.zones, batch.serials, strict=True):
            settled = stored_reads.get_zone(zone.id)
            assert (settled.status, settled.serial) == (objects.Status.ACTIVE, serial)
        assert batch.active_events() == sorted(z.id for z in batch.zones)
    read = [s for s in sent if "target_states.maintenance IS NOT NULL" in s]
    assert len(read) == 1, read


def test_a_zone_whose_early_status_write_fails_is_written_at_the_end_of_its_batch(
    board: Any, override: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = BatchStatus.settle
    tried: list[list[str]] = []

    def failing_from_a_poll(
        self: BatchStatus, batch: Any, agreed: list[str], *rest: Any, **options: Any
    ) -> Any:
        if inspect.stack()[1].function == "seen":  # EarlyStatus.seen, in a poll
            tried.append(agreed)
            raise exceptions.DatabaseUnavailable("the database went away for a moment")
        return real(self, batch, agreed, *rest, **options)

    monkeypatch.setattr(BatchStatus, "settle", failing_from_a_poll)
    with _batch_of_three(board, override) as batch:
        support.eventually(lambda: len(tried) >= 1, what="a poll to write the first zones")
        assert {z.id for z in batch.zones[:2]} >= set(tried[0])
        assert stored_reads.get_zone(batch.zones[0].id).status == objects.Status.PENDING

        batch.serve_the_last()
        for zone, serial in zip(batch.zones, batch.serials, strict=True):
            settled = wait_settled(zone.id)
            assert (settled.status, settled.serial) == (objects.Status.ACTIVE, serial)
        assert batch.active_events() == sorted(z.id for z in batch.zones)


def _actives(seen: list[objects.Event]) -> int:
    return sum(1 for e in seen if e.action == objects.Status.ACTIVE)


class CatalogConsumer(support.UdpResponder):
    """A catalog consumer that never reads its catalog: it answers SOA queries for the
    zone as it had it before (REFUSED: not yet added; serial 1: not yet dropped) and
    records the name of every NOTIFY."""

    def __init__(self, *, has_zone: bool) -> None:
        self.has_zone = has_zone
        self.notified: list[str] = []
        super().__init__()

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        answer = dns.message.make_response(query)
        question = query.question[0]
        if query.opcode() == dns.opcode.NOTIFY:
            self.notified.append(question.name.to_text())
        elif self.has_zone:
            answer.flags |= dns.flags.AA
            answer.answer.append(
                dns.rrset.from_text(
                    question.name, 300, "IN", "SOA", "ns. host. 1 3600 600 86400 300"
                )
            )
        else:
            answer.set_rcode(dns.rcode.REFUSED)
        return answer


@pytest.mark.parametrize("expect_removed", [False, True])
def test_a_catalog_consumer_that_lags_is_notified_of_the_catalog_again(
    override: Callable[..., None], expect_removed: bool
) -> None:
    override("flows", poll_interval=0.05, renotify_interval=0.3, poll_timeout=1.5)
    consumer = CatalogConsumer(has_zone=expect_removed)
    try:
        catalog = "catalog.poll.example."
        support.store_pools(
            pools.parse(
                fake_pool_yaml({})
                + f"  nameservers: [{{host: {HOST}, port: {consumer.port}}}]\n"
                + f"  catalog_zone: {{catalog_zone_fqdn: {catalog}}}\n"
                + "  provisioning: catalog\n"
            )
        )
        zone = central_zones.create_zone("member.example.", "hostmaster@example.com")

        poll = PollForSerial(HOST, consumer.port, expect_removed=expect_removed)
        seen = Served(**poll.execute(zone.id, zone.name, zone.serial))
    finally:
        consumer.close()

    # A consumer adds or drops a zone when it reads the catalog: the NOTIFYs sent
    # while it lags name the catalog (the first may have been lost), not the zone.
    assert not seen.ok
    assert consumer.notified and set(consumer.notified) == {catalog}, consumer.notified
