"""A conductor owns its ZooKeeper session, and a stopped one ends it.

The conductor makes its KazooClient itself and hands it to TaskFlow's board,
which then leaves it running when closed: stopping it is the conductor's
job. A conductor stopped inside a process that goes on (all-in-one, a test)
must not leave its session open, holding whatever it held.
"""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Iterator

import pytest
from oslo_config import cfg

from tests import support
from tests.functional.fixtures.ports import wait_for
from tests.functional.fixtures.zookeeper import ZooKeeperServer
from zoneflow.conductor import daemon
from zoneflow.taskflow_adapter import fencing, persistence

CONF = cfg.CONF


@pytest.fixture
def on_zookeeper(tmp_path: pathlib.Path, zookeeper: ZooKeeperServer) -> Iterator[None]:
    """This process's conductors on the test's ZooKeeper, a board path of their own."""
    overrides = {
        "backend": "zookeeper",
        "hosts": zookeeper.hosts,
        "path": f"/zoneflow-session-{uuid.uuid4().hex}",
    }
    with support.database(f"sqlite:///{tmp_path}/zoneflow.sqlite"):
        persistence.reset()
        persistence.upgrade()
        for name, value in overrides.items():
            CONF.set_override(name, value, group="jobboard")
        try:
            yield
        finally:
            for name in overrides:
                CONF.clear_override(name, group="jobboard")
            persistence.reset()


def _sessions(zookeeper: ZooKeeperServer) -> str:
    """ZooKeeper's list of its client connections, each with its session id (sid)."""
    return zookeeper.four_letter_word("cons")


@pytest.mark.usefixtures("on_zookeeper")
def test_a_stopped_conductor_ends_its_zookeeper_session(zookeeper: ZooKeeperServer) -> None:
    conductor = daemon.Conductor("session-owner")
    token = fencing.token()
    assert token is not None, "a conductor on ZooKeeper fences its jobs with its session id"
    sid = f"sid=0x{token:x}"
    try:
        wait_for(lambda: sid in _sessions(zookeeper), timeout=30, what=f"session {sid}")
    finally:
        conductor.stop()
    wait_for(
        lambda: sid not in _sessions(zookeeper),
        timeout=30,
        what=f"the stopped conductor's session {sid} to end",
    )
