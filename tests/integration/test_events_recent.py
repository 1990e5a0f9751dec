"""The events committed lately are read once for all of a process's subscribers, and a
subscriber resuming from further back than those still gets every event, in order."""

from __future__ import annotations

import pytest

from zoneflow import events, objects
from zoneflow.events import recent
from zoneflow.storage import events as stored

EVERYTHING = objects.EventFilter()


def _publish(count: int, *, project_id: str | None = None, start: int = 0) -> None:
    stored.append(
        [
            stored.NewEvent("zone", "test", str(i), "UPDATE", {"i": i}, project_id=project_id)
            for i in range(start, start + count)
        ],
        publisher="test",
    )


def test_many_subscribers_woken_together_make_one_read_of_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
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
