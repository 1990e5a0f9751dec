"""The inspector's judgement of one target (misses -> DOWN, answers -> UP) and its
health check against sockets made by the test."""

from __future__ import annotations

import datetime
import socket
import threading
import time
from collections.abc import Iterator

import dns.message
import dns.rcode
import pytest

from zoneflow import objects
from zoneflow.inspector import probe
from zoneflow.inspector.watch import Watch

T0 = datetime.datetime(2026, 12, 4, 22, 0, 0)
MISS = "no answer"


def _at(tick: int) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=tick * 0.25)


def test_three_consecutive_misses_make_the_target_down_since_the_first() -> None:
    watch = Watch(misses=3, answers=2)
    assert watch.observe(None, _at(0)) is None
    assert watch.observe(MISS, _at(1)) is None
    assert watch.observe(MISS, _at(2)) is None
    went = watch.observe(MISS, _at(3))
    assert went is not None
    assert (went.health, went.since, went.reason) == (objects.TargetHealth.DOWN, _at(1), MISS)
    assert watch.health == objects.TargetHealth.DOWN


def test_an_answer_between_misses_starts_the_count_again() -> None:
    watch = Watch(misses=3, answers=2)
    for tick, result in enumerate([MISS, MISS, None, MISS, MISS]):
        assert watch.observe(result, _at(tick)) is None
    went = watch.observe(MISS, _at(5))
    assert went is not None and went.since == _at(3)


def test_a_down_target_is_up_after_consecutive_answers_only() -> None:
    watch = Watch(misses=1, answers=2, health=objects.TargetHealth.DOWN)
    assert watch.observe(None, _at(0)) is None
    assert watch.observe(MISS, _at(1)) is None, "a miss between answers starts again"
    assert watch.observe(None, _at(2)) is None
    went = watch.observe(None, _at(3))
    assert went is not None and (went.health, went.since) == (objects.TargetHealth.UP, _at(2))
    assert watch.observe(None, _at(4)) is None, "UP once, not at every answer"


def test_misses_of_a_down_target_change_nothing() -> None:
    watch = Watch(misses=2, answers=1, health=objects.TargetHealth.DOWN)
    assert all(watch.observe(MISS, _at(t)) is None for t in range(10))
    assert watch.health == objects.TargetHealth.DOWN


@pytest.fixture
def refusing_server() -> Iterator[tuple[str, int]]:
    """A UDP socket answering every query REFUSED: alive, as far as health goes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(65535)
            except TimeoutError:
                continue
            reply = dns.message.make_response(dns.message.from_wire(data))
            reply.set_rcode(dns.rcode.REFUSED)
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()
    stop.set()
    thread.join()
    sock.close()


def test_a_refused_query_is_an_answer(refusing_server: tuple[str, int]) -> None:
    host, port = refusing_server
    assert probe.check(host, port, timeout=2.0) is None


def test_a_closed_port_is_a_miss_at_once_not_after_the_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()
    started = time.monotonic()
    failure = probe.check(host, port, timeout=5.0)
    assert failure is not None and "refused" in failure
    assert time.monotonic() - started < 2.0


def test_a_silent_server_is_a_miss_after_the_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        host, port = silent.getsockname()
        failure = probe.check(host, port, timeout=0.2)
    assert failure is not None and "did not answer within 0.2 s" in failure
