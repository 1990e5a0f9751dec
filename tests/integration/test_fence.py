"""The fence while the connection to ZooKeeper is lost: checks wait, then fence.

A stand-in for kazoo's client gives the fence its session id and lets the
test report connection states as kazoo would (SUSPENDED when the connection
drops, CONNECTED when it is back with the same session). The network-cut
case end to end is tests/functional/test_fencing.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kazoo.protocol.states import KazooState

from tests.support import eventually, holds, make_zone
from zoneflow import exceptions, objects
from zoneflow.flows import on_target
from zoneflow.taskflow_adapter import fencing

SESSION = 0x1234
SESSION_TIMEOUT = 0.6


class Client:
    """What the fence asks of a KazooClient."""

    def __init__(self) -> None:
        self.client_id = (SESSION, b"")
        self.connected = True
        self.listeners: list[Callable[[str], None]] = []

    def add_listener(self, listener: Callable[[str], None]) -> None:
        self.listeners.append(listener)

    def remove_listener(self, listener: Callable[[str], None]) -> None:
        self.listeners.remove(listener)

    def report(self, state: str) -> None:
        self.connected = state == KazooState.CONNECTED
        for listener in list(self.listeners):
            listener(state)

    def exists_async(self, _path: str) -> Any:
        raise AssertionError("no round trip expected: the process was never paused")


@pytest.fixture
def client() -> Iterator[Client]:
    fake = Client()
    fencing.install(fake, SESSION_TIMEOUT)
    yield fake
    fencing.uninstall()


def test_a_check_while_zookeeper_cannot_be_reached_waits_then_fences_the_claims_held(
    client: Client,
) -> None:
    held = fencing.claim()
    fencing.bind(held, ["flow-1"])
    client.report(KazooState.SUSPENDED)

    started = time.monotonic()
    with pytest.raises(fencing.JobFenced, match="another conductor owns this job now"):
        held.check()
    waited = time.monotonic() - started

    # Held back for the session timeout, no longer (a loaded machine may add to it).
    assert SESSION_TIMEOUT - 0.05 <= waited < SESSION_TIMEOUT + 5
    assert held.lost() and fencing.fenced("flow-1")

    # The session survived (a ZooKeeper restart restored it): jobs claimed now hold,
    # the ones cut stay fenced.
    client.report(KazooState.CONNECTED)
    later = fencing.claim()
    assert later.token == held.token
    later.check()
    assert not later.lost()
    assert held.lost()


def test_a_check_goes_on_when_the_connection_comes_back_with_the_same_session(
    client: Client,
) -> None:
    held = fencing.claim()
    client.report(KazooState.SUSPENDED)
    back = threading.Timer(0.1, client.report, args=(KazooState.CONNECTED,))
    back.start()
    try:
        held.check()
    finally:
        back.join()
    assert not held.lost()


def test_claims_are_fenced_when_the_session_timeout_passes_with_no_task_checking(
    client: Client,
) -> None:
    held = fencing.claim()
    fencing.bind(held, ["flow-1", "atom-1"])
    client.report(KazooState.SUSPENDED)

    # The fence's own thread cuts them: the persistence then drops their writes.
    eventually(lambda: fencing.fenced("atom-1"), SESSION_TIMEOUT + 5, what="the claim cut")
    assert fencing.fenced("flow-1")
    # Cut once for the lost connection, not again at each tick of the fence's thread.
    holds(lambda: fencing.claim().generation == 1, 0.5, what="a single cut")


def test_an_expired_session_fences_its_claims_at_once(client: Client) -> None:
    held = fencing.claim()
    client.report(KazooState.LOST)
    started = time.monotonic()
    with pytest.raises(fencing.JobFenced):
        held.check()
    assert time.monotonic() - started < SESSION_TIMEOUT


def test_a_target_call_lost_between_its_tries_is_not_tried_again(
    client: Client, override: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    override("flows", target_attempts=3, target_retry_delay=0.01)
    calls: list[str] = []

    def failing(zone: objects.Zone) -> None:
        calls.append(zone.name)
        client.report(KazooState.LOST)  # the session expires while the call fails
        raise exceptions.BackendError("fake", "refused")

    monkeypatch.setattr(on_target, "_backend_call", lambda *_: failing)
    target = objects.PoolTarget(
        id="t", pool_id="p", type="fake", description="fake", masters=(), options={}
    )
    with pytest.raises(fencing.JobFenced):
        on_target.try_on_target(objects.Action.CREATE, target, make_zone(), fencing.claim())
    assert calls == ["example.com."]  # one try, not three: the job is another's now
