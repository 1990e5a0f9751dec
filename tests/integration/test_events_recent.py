"""The events committed lately are read once for all of a process's subscribers, and a
subscriber resuming from further back than those still gets every event, in order."""

from __future__ import annotations

from typing import Any

import pytest

from zoneflow import events, objects
from zoneflow.events import recent
from zoneflow.storage import events as stored

EVERYTHING = objects.EventFilter()


def _publish(
    count: int, *, project_id: str | None = None, start: int = 0, topic: str = "zone"
) -> None:
    stored.append(
        [
            stored.NewEvent(topic, "test", str(i), "UPDATE", {"i": i}, project_id=project_id)
            for i in range(start, start + count)
        ],
        publisher="test",
    )


def test_many_subscribers_woken_together_make_one_read_of_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only the commit's wake-up may start a read here: the look at the table every
    # STALE seconds (for commits no wake-up tells of) came round once while a busy
    # machine took longer than its 50 ms to serve the 50 subscribers.
    monkeypatch.setattr(recent, "STALE", 60.0)
    subscriptions = [events.subscribe(EVERYTHING) for _ in range(50)]
    reads = []
    real_after = stored.after
    monkeypatch.setattr(stored, "after", lambda *a, **k: reads.append(a) or real_after(*a, **k))
    _publish(3)
    for subscription in subscriptions:
        assert [e.key for e in subscription.next(timeout=5)] == ["0", "1", "2"]
    assert len(reads) == 1


def test_each_subscriber_gets_what_its_filter_takes_from_the_shared_read() -> None:
    alice = events.subscribe(objects.EventFilter(scope="alice"))
    everyone = events.subscribe(EVERYTHING)
    _publish(2, project_id="bob")
    _publish(1, project_id="alice", start=2)
    assert [e.key for e in alice.next(timeout=5)] == ["2"]
    assert [e.key for e in everyone.next(timeout=5)] == ["0", "1", "2"]


def test_a_subscriber_from_before_what_is_kept_reads_the_table_and_loses_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start = stored.last_id()
    # Only the last 3 events are kept in memory.
    driver = events.get_driver()
    monkeypatch.setattr(driver, "recent", recent.Recent(lambda: driver.generation, size=3))
    follower = events.subscribe(EVERYTHING)
    _publish(5)
    assert [e.key for e in follower.next(timeout=5)] == ["0", "1", "2", "3", "4"]
    late = events.subscribe(EVERYTHING, after=start)
    seen: list[str] = []
    while len(seen) < 5:
        found = late.next(timeout=5)
        assert found, f"only {seen} received"
        seen += [e.key for e in found]
    assert seen == ["0", "1", "2", "3", "4"]
    _publish(1, start=5)
    assert [e.key for e in late.next(timeout=5)] == ["5"]


def test_a_process_reading_some_topics_reads_no_others_and_a_wider_subscriber_loses_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The inspector's process reads only the topics its subscribers want; one that
    wants more is still given every event, from the table."""
    driver = events.get_driver()
    shared = recent.Recent(lambda: driver.generation)
    monkeypatch.setattr(driver, "recent", shared)
    shared.narrow(frozenset({"zone", "target"}))
    read: list[str] = []
    real_after = stored.after

    def after(*args: Any, **kwargs: Any) -> list[objects.Event]:
        found = real_after(*args, **kwargs)
        read.extend(e.topic for e in found)
        return found

    monkeypatch.setattr(stored, "after", after)
    zones = events.subscribe(objects.EventFilter(topics=frozenset({"zone"})))
    everything = events.subscribe(EVERYTHING)
    _publish(2, topic="job")
    _publish(1, topic="zone", start=2)
    _publish(2, topic="task", start=3)
    _publish(1, topic="target", start=5)
    assert [e.key for e in zones.next(timeout=5)] == ["2"]
    assert set(read) == {"zone", "target"}, "the shared read took other topics"
    seen: list[str] = []
    while len(seen) < 6:
        found = everything.next(timeout=5)
        assert found, f"only {seen} received"
        seen += [e.key for e in found]
    assert seen == ["0", "1", "2", "3", "4", "5"]
    # Past events of no wanted topic the shared read goes on from the newest id.
    _publish(3, topic="job", start=6)
    _publish(1, topic="zone", start=9)
    assert [e.key for e in zones.next(timeout=5)] == ["9"]
