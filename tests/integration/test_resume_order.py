"""A job resumed from a logbook whose atoms are out of order runs them again in order.

A logbook written by two engines (or whose writes landed out of order) can
show update-status RUNNING or FAILURE while the PollForSerial whose result
it requires is still RUNNING: the chaos test found an update-zone job so,
and TaskFlow, resuming, ran update-status without that result (NotFound:
the job ended FAILURE without a revert). zoneflow.taskflow_adapter.resumption
resets such atoms before the flow runs.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from taskflow import states
from taskflow.persistence import backends as tf_backends
from taskflow.types import failure

from tests import support
from tests.functional.fixtures.ports import HOST
from tests.integration.conftest import fake_pool_yaml, wait_settled
from tests.support import eventually
from zoneflow import jobs, objects
from zoneflow.central import changes as central_changes
from zoneflow.central import pools
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.conductor import daemon
from zoneflow.flows.status import UpdateStatus
from zoneflow.jobs import steps
from zoneflow.mdns import server as mdns_server
from zoneflow.storage import db
from zoneflow.storage import status as stored_status
from zoneflow.taskflow_adapter import persistence

STATUS = steps.STATUS.name


class DyingConductor:
    """A conductor that dies in its next job's update-status, as a SIGKILL would
    leave it: its ZooKeeper session (zake's lock) gone, and nothing more written."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.conductor = daemon.Conductor("first")
        assert self.conductor.relay is not None
        central_changes.on_change(self.conductor.relay.wake)
        self.dead = threading.Event()
        self._release = threading.Event()
        self._armed = False
        original = UpdateStatus.execute

        # wraps: TaskFlow reads what a task requires from its execute's signature.
        @functools.wraps(original)
        def execute(task: Any, *args: Any, **kwargs: Any) -> Any:
            if self._armed and not self.dead.is_set():
                self._die()
            return original(task, *args, **kwargs)

        monkeypatch.setattr(UpdateStatus, "execute", execute)
        self.conductor.start()

    def arm(self) -> None:
        self._armed = True

    def _die(self) -> None:
        assert self.conductor.relay is not None
        self.conductor.relay.stop()
        central_changes._listeners.remove(self.conductor.relay.wake)
        self.conductor._conductor.stop()
        self.conductor._client.close()
        self.dead.set()
        self._release.wait()  # never returns while the test runs

    def release(self) -> None:
        self._release.set()


@pytest.fixture
def dying(monkeypatch: pytest.MonkeyPatch) -> Iterator[DyingConductor]:
    first = DyingConductor(monkeypatch)
    yield first
    first.release()
    first.conductor.stop()


@pytest.fixture
def nameserver() -> Iterator[int]:
    """mdns, which serves each zone at the serial stored, as the pool's nameserver."""
    server = mdns_server.MdnsServer(HOST, 0)
    server.start_in_thread()
    yield server.port
    server.stop_thread()


def _leave_out_of_order(job_id: str, poll: str, status_state: str) -> None:
    """Write the job's logbook as the chaos test found it, with TaskFlow's own
    persistence: ``poll`` RUNNING again, update-status in ``status_state``."""
    stock = tf_backends.fetch({"connection": db.connection_url()})
    with contextlib.closing(stock.get_connection()) as connection:
        (flow,) = connection.get_logbook(job_id)
        for atom in flow:
            if atom.name == poll:
                atom.reset(states.RUNNING)
            elif atom.name == STATUS and status_state == states.FAILURE:
                try:
                    raise RuntimeError("the old owner's update-status failed")
                except RuntimeError:
                    atom.failure = failure.Failure()
                atom.state = states.FAILURE
            elif atom.name == STATUS:
                atom.state = status_state
            else:
                continue
            connection.update_atom_details(atom)
        found = {atom.name: atom.state for atom in connection.get_logbook(job_id).find(flow.uuid)}
    stock.close()
    assert (found[poll], found[STATUS]) == (states.RUNNING, status_state)


@pytest.mark.parametrize("status_state", [states.RUNNING, states.FAILURE])
def test_a_job_resumed_with_update_status_ahead_of_its_poll_runs_them_again_in_order(
    dying: DyingConductor, nameserver: int, status_state: str, caplog: pytest.LogCaptureFixture
) -> None:
    listed = f"  nameservers: [{{host: {HOST}, port: {nameserver}}}]\n"
    (pool,) = support.store_pools(pools.parse(fake_pool_yaml({}, {}) + listed))
    zone = central_zones.create_zone("example.com", "hostmaster@example.com")
    assert wait_settled(zone.id).status == objects.Status.ACTIVE

    dying.arm()
    central_recordsets.create_recordset("example.com", "www", "A", ["192.0.2.1"])
    eventually(dying.dead.is_set, 20, what="the first conductor to die in update-status")
    (job,) = [j for j in jobs.list_jobs(persistence.get_backend()) if j.kind == "update-zone"]
    persistence.get_backend().flush()  # the dead conductor's last writes, as a kill leaves them
    _leave_out_of_order(job.id, steps.poll("serial", HOST, nameserver).name, status_state)

    second = daemon.Conductor("second")
    assert second.relay is not None
    central_changes.on_change(second.relay.wake)
    second.start()
    try:
        ended = eventually(
            lambda: (
                (found := jobs.get_job(persistence.get_backend(), job.id)).state in jobs.OVER
                and found
            ),
            30,
            what=lambda: f"job {jobs.get_job(persistence.get_backend(), job.id)}",
        )
    finally:
        second.stop()
        central_changes._listeners.remove(second.relay.wake)

    assert (ended.state, ended.error) == (jobs.Outcome.SUCCESS, None)
    settled = wait_settled(zone.id)
    assert (settled.status, settled.serial) == (objects.Status.ACTIVE, job.serial)
    rows = {s.target_id: (s.status, s.serial) for s in stored_status.list_target_status(zone.id)}
    assert rows == {t.id: (objects.Status.ACTIVE, job.serial) for t in pool.targets}
    (reset,) = [
        r.getMessage().partition("run again in order: ")[2]
        for r in caplog.records
        if "run again in order" in r.getMessage()
    ]
    assert STATUS in reset.split(", ")
