"""Which client ports mdns sends its answers to again (zoneflow.mdns.shared_ports)."""

from __future__ import annotations

from zoneflow.mdns.shared_ports import MOST_SHARING, SharedPorts

PORT = ("127.0.0.1", 40000)


def test_a_port_asking_one_question_at_a_time_gets_no_copies() -> None:
    ports = SharedPorts(window=6.0)
    assert ports.answered(PORT, 1, [b"one"], now=0.0) == []
    assert ports.answered(("127.0.0.1", 40001), 2, [b"two"], now=0.1) == []
    # The same port again once the window has passed: BIND9 drew it anew.
    assert ports.answered(PORT, 3, [b"three"], now=6.5) == []
    assert (ports.shared, ports.retries) == (0, 0)


def test_a_second_question_from_a_port_sends_both_answers_again_once() -> None:
    ports = SharedPorts(window=6.0)
    ports.answered(PORT, 1, [b"first"], now=0.0)
    assert ports.answered(PORT, 2, [b"second"], now=0.2) == [b"first", b"second"]
    # A third while both are remembered: its own; the others' copies are on their way.
    assert ports.answered(PORT, 3, [b"third"], now=0.3) == [b"third"]
    assert ports.shared == 2


def test_a_port_asking_many_questions_at_once_is_one_socket_and_gets_no_copies() -> None:
    ports = SharedPorts(window=6.0)
    copies = [ports.answered(PORT, query_id, [b"%d" % query_id], now=0.0) for query_id in range(50)]
    assert sum(len(again) for again in copies) == MOST_SHARING
    assert all(again == [] for again in copies[MOST_SHARING:])


def test_the_same_question_asked_again_is_a_retry_not_a_shared_port() -> None:
    ports = SharedPorts(window=6.0)
    ports.answered(PORT, 7, [b"answer"], now=0.0)
    assert ports.answered(PORT, 7, [b"answer"], now=5.0) == []
    assert (ports.shared, ports.retries) == (0, 1)


def test_questions_older_than_the_window_are_forgotten() -> None:
    ports = SharedPorts(window=6.0)
    for query_id in range(100):
        ports.answered(("127.0.0.1", 30000 + query_id), query_id, [b"x"], now=0.0)
    ports.answered(PORT, 1, [b"late"], now=7.0)
    assert list(ports._ports) == [PORT] and len(ports._order) == 1
