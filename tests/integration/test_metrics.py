"""Prometheus metrics fed by the engines a conductor runs."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.functional.fixtures.ports import free_port
from tests.integration.conftest import load_pool, wait_settled
from tests.support import eventually
from zoneflow import objects
from zoneflow.central import zones as central_zones
from zoneflow.engine import metrics
from zoneflow.jobs import steps


def _samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.text())
        for sample in family.samples
    }


def _value(name: str, **labels: str) -> float:
    return _samples().get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.usefixtures("conductor")
def test_jobs_and_tasks_are_counted_and_timed_by_kind_and_outcome() -> None:
    before_ok = _value("zoneflow_jobs_total", kind="create-zone", state="SUCCESS")
    before_reverted = _value("zoneflow_jobs_total", kind="create-zone", state="REVERTED")
    before_tasks = _value("zoneflow_tasks_total", task="create-zone", state="SUCCESS")

    load_pool({}, {})
    ok = central_zones.create_zone("good.example", "hostmaster@example.com")
    assert wait_settled(ok.id).status == objects.Status.ACTIVE
    load_pool({}, {"fail": "create"})
    bad = central_zones.create_zone("bad.example", "hostmaster@example.com")
    assert wait_settled(bad.id).status == objects.Status.ERROR

    # The zone's status is written by a task; the job ends a moment later.
    eventually(
        lambda: (
            _value("zoneflow_jobs_total", kind="create-zone", state="REVERTED") > before_reverted
        ),
        10,
        what="the job to be counted",
    )
    assert _value("zoneflow_jobs_total", kind="create-zone", state="SUCCESS") == before_ok + 1
    assert (
        _value("zoneflow_jobs_total", kind="create-zone", state="REVERTED") == before_reverted + 1
    )
    # Two targets each time, one label per task kind (not per target).
    assert _value("zoneflow_tasks_total", task="create-zone", state="SUCCESS") >= before_tasks + 3
    assert _value("zoneflow_job_seconds_count", kind="create-zone", state="SUCCESS") >= 1


def test_metrics_are_served_over_http(override: Callable[..., None]) -> None:
    port = free_port()
    override("conductor", metrics_port=port)
    metrics.serve()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert "zoneflow_jobs_running" in body


def test_task_kinds_leave_out_targets_and_addresses() -> None:
    target = "6b2f1d0e-2c8a-4d8e-9a57-3f1f3c0b9d11"
    assert steps.on_target(objects.Action.CREATE, target).family == "create-zone"
    assert steps.poll("serial", "127.0.0.1", 5353).family == "poll-for-serial"
    assert steps.notify("127.0.0.1", 5353).family == "send-notify"
    assert steps.STATUS.family == "update-status"
