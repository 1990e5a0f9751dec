"""A nameserver's word that it serves a zone (zoneflow.events.served): who hears it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from zoneflow.events import served


@pytest.fixture(autouse=True)
def in_process(override: Callable[..., None]) -> None:
    override("events", driver="inprocess")


def test_a_poll_hears_its_nameserver_serve_a_zone_at_its_serial_or_later() -> None:
    with served.Ear("127.0.0.1", {"z1": 5, "z2": 7, "gone": None}) as ear:
        served.announce("z1", 6, "127.0.0.1")  # later than waited for: served
        served.announce("z2", 6, "127.0.0.1")  # older than waited for
        served.announce("z1", 9, "192.0.2.1")  # another nameserver
        served.announce("gone", 3, "127.0.0.1")  # a removal waited for: no NOTIFY says so
        served.announce("other", 9, "127.0.0.1")  # a zone it does not wait for
        assert ear.wait(0) == {"z1"}
        assert ear.wait(0) == set()  # each word once


def test_a_poll_is_woken_by_the_word_and_hears_nothing_once_it_ends() -> None:
    ear = served.Ear("::ffff:127.0.0.1", {"z1": 5})
    with ear:
        threading.Timer(0.05, served.announce, ("z1", 5, "127.0.0.1")).start()
        began = time.monotonic()
        assert ear.wait(30) == {"z1"}
        assert time.monotonic() - began < 25
    served.announce("z1", 5, "127.0.0.1")
    assert ear.wait(0) == set()


def test_words_travel_in_payloads_postgresql_takes_and_come_out_the_same() -> None:
    words = [served.Heard(f"{i:036d}", i, "2001:db8::53") for i in range(400)]
    words.append(served.Heard("removed", None, "127.0.0.1"))
    payloads = served.payloads(words)
    assert len(payloads) > 1 and all(len(p) <= served.PAYLOAD_LIMIT for p in payloads)

    heard = []
    with served.Ear("2001:db8::53", {w.zone_id: 0 for w in words[:400]}) as ear:
        for payload in payloads:
            served.heard_payload(payload)
        heard = ear.wait(0)
    assert heard == {w.zone_id for w in words[:400]}
    served.heard_payload("not a word\n")  # let go, not raised


def test_only_a_poll_that_can_hear_a_word_waits_for_the_listen(
    override: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    override("events", driver="postgres")
    waited: list[bool] = []
    monkeypatch.setattr(served, "_listening", lambda: waited.append(True))

    with served.Ear("127.0.0.1", {}):  # a delete's poll: no NOTIFY announces a removal
        assert waited == []
    with served.Ear("127.0.0.1", {"z1": 5}):
        assert waited == [True]
