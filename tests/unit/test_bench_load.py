"""The load benchmark's sweeper reads answers and judges changes as dnspython and DNS would.

bench/load_sweeper.py reads the SOA serial of an answer by hand, to stay cheap
beside what it measures: these hold that reading to dnspython's, and its
judgement of creates, updates and deletes to what a nameserver's answer means.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import select
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rrset
import pytest

from bench import load, load_floor, load_sweeper, load_traffic

ZONE = "z000001.load.example."
SOA = "ns1.load.example. hostmaster.load.example. {serial} 3600 600 86400 300"


def _answer(*, rcode: int = dns.rcode.NOERROR, serial: int | None = None, aa: bool = True) -> bytes:
    query = dns.message.make_query(ZONE, "SOA", flags=0)
    query.id = 4242
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.Rcode(rcode))
    if aa:
        response.flags |= dns.flags.AA
    if serial is not None:
        response.answer.append(
            dns.rrset.from_text(
                ZONE,
                300,
                "IN",
                "SOA",
                SOA.format(serial=serial),
            )
        )
        response.authority.append(dns.rrset.from_text(ZONE, 300, "IN", "NS", "ns1.load.example."))
    return response.to_wire()


def _question() -> bytes:
    return bytes(load_sweeper.soa_query(ZONE)[12:])


@pytest.mark.parametrize(
    "wire",
    [
        _answer(serial=2026120501),
        _answer(serial=4294967295),
        _answer(rcode=dns.rcode.REFUSED, aa=False),
        _answer(rcode=dns.rcode.SERVFAIL, aa=False),
        _answer(aa=False),
    ],
)
def test_the_sweeper_reads_an_answer_as_dnspython_does(wire: bytes) -> None:
    parsed = dns.message.from_wire(wire)
    serials = [rrset[0].serial for rrset in parsed.answer]
    expected = (parsed.rcode(), bool(parsed.flags & dns.flags.AA), serials[0] if serials else None)
    assert load_sweeper.read_soa(wire, _question()) == expected


def test_the_sweeper_ignores_an_answer_to_another_question() -> None:
    other = bytes(load_sweeper.soa_query("z000002.load.example.")[12:])
    assert load_sweeper.read_soa(_answer(serial=7), other) is None


class _Heard:
    def __init__(self) -> None:
        self.served: list[dict[str, Any]] = []
        self.sweeper = load_sweeper.Sweeper(
            [("127.0.0.1", 9), ("127.0.0.1", 10)],
            minimum=0.01,
            fraction=0.05,
            maximum=1.0,
            budget=1000,
            out=self.served.append,
        )

    def expect(self, index: int, action: str, serial: int = 0) -> None:
        self.sweeper.expect(index, ZONE, action, serial, due=0.0)

    def answer(self, target: int, wire: bytes, at: float) -> None:
        reading = load_sweeper.read_soa(wire, _question())
        assert reading is not None
        self.sweeper._heard(target, ZONE, at - 0.25, at, *reading)


def test_a_change_is_served_once_every_target_answers_its_serial_or_later() -> None:
    heard = _Heard()
    heard.expect(0, "update", serial=5)
    heard.answer(0, _answer(serial=5), at=1.0)
    heard.answer(1, _answer(serial=4), at=1.5)
    assert heard.served == []
    heard.answer(1, _answer(rcode=dns.rcode.SERVFAIL, aa=False), at=1.75)
    heard.answer(1, _answer(serial=6), at=2.0)
    # Served by all at 2.0; not yet by target 1 when its query left at 1.5.
    assert heard.served == [
        {"served": 0, "at": 2.0, "before": 1.5, "superseded": False, "by_notify": False}
    ]
    assert not heard.sweeper.watches


def test_a_delete_is_served_once_no_target_answers_for_the_zone() -> None:
    heard = _Heard()
    heard.expect(0, "update", serial=5)
    heard.expect(1, "delete")
    heard.answer(0, _answer(serial=5), at=1.0)
    heard.answer(0, _answer(rcode=dns.rcode.REFUSED, aa=False), at=2.0)
    heard.answer(1, _answer(aa=False), at=3.0)
    # The update never reached target 1 before the zone went: superseded, not lost.
    assert heard.served == [
        {"served": 0, "at": 3.0, "before": 2.75, "superseded": True, "by_notify": False},
        {"served": 1, "at": 3.0, "before": 0.75, "superseded": False, "by_notify": False},
    ]


def test_the_sweeper_answers_a_notify_as_dnspython_would() -> None:
    notify = dns.message.make_query(ZONE, "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.flags |= dns.flags.AA
    notify.answer.append(dns.rrset.from_text(ZONE, 300, "IN", "SOA", SOA.format(serial=9)))
    wire = notify.to_wire()
    question_end = 12 + len(_question())

    answer = dns.message.from_wire(load_sweeper.notify_answer(wire[:question_end]))

    assert notify.is_response(answer)
    assert answer.opcode() == dns.opcode.NOTIFY and answer.rcode() == dns.rcode.NOERROR
    assert not answer.answer


def _notify(serial: int | None) -> bytes:
    """A target's NOTIFY of ZONE (its name in upper case), with the SOA of ``serial``."""
    notify = dns.message.make_query(ZONE.upper(), "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    if serial is not None:
        notify.answer.append(dns.rrset.from_text(ZONE, 300, "IN", "SOA", SOA.format(serial=serial)))
    return notify.to_wire()


@contextlib.contextmanager
def _notified_sweeper() -> Iterator[
    tuple[load_sweeper.Sweeper, socket.socket, socket.socket, list[Any]]
]:
    """A sweeper of one target that NOTIFYs it: (the sweeper, the target's socket, the
    socket the sweeper hears NOTIFYs on, what the sweeper said)."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as target,
    ):
        listener.bind(("127.0.0.1", 0))
        target.bind(("127.0.0.1", 0))
        target.settimeout(5)
        said: list[dict[str, Any]] = []
        sweeper = load_sweeper.Sweeper(
            [target.getsockname()],
            minimum=0.01,
            fraction=0.05,
            maximum=1.0,
            budget=1000,
            out=said.append,
            notified=[listener],
        )
        yield sweeper, target, listener, said


def _hear(
    sweeper: load_sweeper.Sweeper, target: socket.socket, listener: socket.socket, wire: bytes
) -> None:
    """``target`` NOTIFYs the sweeper, which hears and answers it."""
    target.sendto(wire, listener.getsockname())
    select.select([listener], [], [], 5)
    sweeper.hear_notifies(0)
    reply, _ = target.recvfrom(512)
    assert dns.message.from_wire(wire).is_response(dns.message.from_wire(reply))


def test_a_targets_notify_has_the_zone_asked_of_it_at_once_and_counts_what_it_found() -> None:
    with _notified_sweeper() as (sweeper, target, listener, said):
        sweeper.expect(0, ZONE, "update", 9, due=0.0)
        started = time.monotonic()
        # Not asked at its arrival, nor for a second: the target's NOTIFY will say.
        assert sweeper.ask_due(started, 10) == 0
        assert sweeper.ask_due(started + 0.5, 10) == 0

        _hear(sweeper, target, listener, _notify(serial=9))
        assert sweeper.notifies == 1
        assert sweeper.ask_due(time.monotonic(), 10) == 1
        query, _ = target.recvfrom(512)
        zone, _, prompted = sweeper.asked[0][struct.unpack_from(">H", query)[0]]
        assert zone == ZONE and prompted
        answer = load_sweeper.read_soa(_answer(serial=9), _question())
        assert answer is not None
        sweeper._heard(0, ZONE, 0.0, 1.0, *answer, prompted=True)
        assert (sweeper.served_on_notify, sweeper.served_on_poll) == (1, 0)
        assert said == [
            {"served": 0, "at": 1.0, "before": 0.0, "superseded": False, "by_notify": True}
        ]


@pytest.mark.parametrize(("notified", "asked_at_once"), [(9, True), (12, True), (8, False)])
def test_a_change_its_target_notified_before_it_arrived_is_asked_at_once(
    notified: int, asked_at_once: bool
) -> None:
    """The target loaded the change before the API's answer reached the driver: its
    NOTIFY came first, and no other is coming."""
    with _notified_sweeper() as (sweeper, target, listener, _said):
        _hear(sweeper, target, listener, _notify(serial=notified))
        sweeper.expect(0, ZONE, "update", 9, due=0.0)
        assert sweeper.ask_due(time.monotonic(), 10) == int(asked_at_once)


def test_a_change_whose_notify_was_lost_is_asked_less_often_as_it_ages() -> None:
    with _notified_sweeper() as (sweeper, _target, _listener, _said):
        sweeper.expect(0, ZONE, "update", 9, due=0.0)
        sweeper.expect(1, "z000002.load.example.", "delete", 4, due=0.0)
        update = sweeper.watches[(0, ZONE)]
        delete = sweeper.watches[(0, "z000002.load.example.")]
        young, old = update.changes[0].due + 2.0, update.changes[0].due + 20.0
        assert sweeper._pace(update, young) == 1.0
        assert sweeper._pace(update, old) == pytest.approx(20.0 * load_sweeper.LOST_NOTIFY_FRACTION)
        # A delete, which no NOTIFY announces, is asked at its own pace, at most every second.
        assert sweeper._pace(delete, young) == pytest.approx(0.1)
        assert sweeper._pace(delete, old) == 1.0


class _Puts:
    """An API whose first PUT commits first (the lower serial) but is answered last."""

    def __init__(self) -> None:
        self.serial = 4
        self.second_answered = asyncio.Event()

    async def request(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        assert method == "PUT"
        self.serial += 1
        serial = self.serial
        if serial == 5:
            await self.second_answered.wait()
        else:
            self.second_answered.set()
        return 202, {"id": "rs1", "name": f"www.{ZONE}", "serial": serial}


def test_a_recordset_changed_twice_at_once_is_expected_as_its_last_commit_left_it() -> None:
    load_ = load_traffic.Load(_Puts(), random.Random(1))  # type: ignore[arg-type]
    zone = load_traffic.ZoneMade(ZONE, "zone1", {"rs1": (f"www.{ZONE}", ["192.0.2.1"])})
    load_.zones[ZONE] = zone
    load_.rng.random = lambda: 0.0  # type: ignore[method-assign]  # a PUT, not a POST
    first, second = (load_traffic.Change(i, 0, "update", 0.0) for i in range(2))

    async def both() -> None:
        await asyncio.gather(load_._update(first), load_._update(second))

    asyncio.run(both())

    assert (first.serial, second.serial) == (5, 6)
    # The second's records, committed last though answered first.
    assert zone.recordsets["rs1"] == (f"www.{ZONE}", ["198.18.0.3"])


def test_arrivals_come_at_each_steps_rate_and_in_order() -> None:
    steps = [load_traffic.Step(rate=20, seconds=30), load_traffic.Step(rate=100, seconds=30)]
    due = list(load.arrivals(steps, random.Random(17), start=1000.0))
    assert [at for _, at in due] == sorted(at for _, at in due)
    counts = [sum(1 for step, _ in due if step == i) for i in range(2)]
    assert 500 <= counts[0] <= 700 and 2700 <= counts[1] <= 3300, counts
    assert all(1000 + 30 * step <= at < 1000 + 30 * (step + 1) for step, at in due)


def test_a_jobs_phases_end_with_the_last_of_their_steps() -> None:
    done = [
        ("begin", "RUNNING", 0.2),
        ("begin", "SUCCESS", 0.25),
        ("update-zone-on-target-a", "SUCCESS", 0.4),
        ("update-zone-on-target-b", "SUCCESS", 0.6),
        ("consensus-check", "SUCCESS", 0.65),
        ("poll-for-serial-127.0.0.1:5301", "SUCCESS", 1.5),
        ("poll-for-serial-127.0.0.1:5302", "RUNNING", 0.7),
        ("poll-for-serial-127.0.0.1:5302", "SUCCESS", 2.5),
        ("update-status", "SUCCESS", 2.75),
    ]

    assert load._phases(done) == {
        "claimed": 0.2,
        "begin": 0.25,
        "on-target": 0.6,
        "consensus": 0.65,
        "first poll": 1.5,
        "last poll": 2.5,
        "status": 2.75,
    }


def test_a_job_still_running_has_only_the_phases_it_ended() -> None:
    assert load._phases([("begin", "RUNNING", 0.3)]) == {"claimed": 0.3}


def test_bind9s_cost_per_change_weighs_each_action_by_its_share_on_every_target() -> None:
    cost = {
        "addzone": 7.0,
        "catalog-add": 1.0,
        "notify": 1.2,
        "delzone": 1.1,
        "catalog-remove": 0.2,
        "soa": 0.03,
    }
    mix = {"create": 20, "update": 74, "delete": 6}

    # 8 targets: (0.20 * 7.0 + 0.74 * 1.2 + 0.06 * 1.1) * 8, and with the catalog's
    # own adds and removes.
    assert load_floor.per_change(cost, mix, 8, "rndc") == pytest.approx(18.832)
    assert load_floor.per_change(cost, mix, 8, "catalog") == pytest.approx(8.80)
