"""A job's state says whether its zone got what the job was for, the same everywhere.

A flow can run to its end and still leave the zone in ERROR (too few
nameservers serve the serial): that job reads FAILURE, with the reason, in
`zoneflow job list` / `job show` (table and --json), `GET /v2/jobs`, the
job's graph legend and the metrics; so does a reverted one (REVERTED). A
job's updated_at is its own last change, not the time it was read.
"""

from __future__ import annotations

import datetime
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests import support
from tests.functional.fixtures.ports import HOST
from tests.integration.conftest import fake_pool_yaml, load_pool, wait_settled
from tests.support import eventually
from zoneflow import cli, jobs, objects
from zoneflow.api import app
from zoneflow.central import pools
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.engine import metrics
from zoneflow.storage import db, models
from zoneflow.storage import reads as stored_reads
from zoneflow.taskflow_adapter import persistence

ADMIN = {"X-Auth-Project-ID": "ops", "X-Roles": "admin", "X-Auth-All-Projects": "true"}


@pytest.fixture
def silent_nameserver() -> Iterator[int]:
    """The port of a UDP socket that takes SOA queries and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def _metric(name: str, **labels: str) -> float:
    wanted = tuple(sorted(labels.items()))
    for family in text_string_to_metric_families(metrics.text()):
        for sample in family.samples:
            if sample.name == name and tuple(sorted(sample.labels.items())) == wanted:
                return float(sample.value)
    return 0.0


def _ended(zone_id: str, timeout: float = 30) -> jobs.JobInfo:
    """The zone's one job once it has ended (the zone settles a moment before)."""

    def zone_job() -> jobs.JobInfo:
        (job,) = [j for j in jobs.list_jobs(persistence.get_backend()) if j.zone_id == zone_id]
        return job

    return eventually(
        lambda: (job := zone_job()).state in jobs.OVER and job,
        timeout,
        what=lambda: f"the zone's job to end: {zone_job()}",
    )


@pytest.mark.usefixtures("conductor")
def test_a_job_that_left_its_zone_in_error_reads_failed_everywhere(
    override: Callable[..., None],
    silent_nameserver: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    override("flows", poll_timeout=1.0, query_timeout=0.2, renotify_interval=0.3)
    listed = f"  nameservers: [{{host: {HOST}, port: {silent_nameserver}}}]\n"
    support.store_pools(pools.parse(fake_pool_yaml({}) + listed))
    succeeded = _metric("zoneflow_jobs_total", kind="create-zone", state="SUCCESS")
    failed = _metric("zoneflow_jobs_failed_total", kind="create-zone", reason="not-served")

    zone = central_zones.create_zone("unserved.example", "hostmaster@example.com")
    assert wait_settled(zone.id).status == objects.Status.ERROR
    job = _ended(zone.id)

    # The flow itself ran to its end; the zone did not get its serial.
    assert (job.state, job.failed) == (jobs.Outcome.FAILURE, True)
    assert "0 of 1 nameservers serve serial" in str(job.error)
    assert f"{HOST}:{silent_nameserver}" in str(job.error)

    assert cli.main(["--json", "job", "list"]) == 0
    (listed_job,) = json.loads(capsys.readouterr().out)
    assert (listed_job["state"], listed_job["failed"]) == ("FAILURE", True)
    assert listed_job["error"] == job.error
    assert cli.main(["job", "list"]) == 0
    table = capsys.readouterr().out
    assert "FAILURE" in table and "0 of 1 nameservers serve serial" in table
    assert "SUCCESS" not in table
    assert cli.main(["--json", "job", "show", job.id]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["state"], shown["failed"], shown["error"]) == ("FAILURE", True, job.error)

    with TestClient(app.create_app(), raise_server_exceptions=False) as client:
        (api_job,) = client.get("/v2/jobs", headers=ADMIN).json()["jobs"]
        detail = client.get(f"/v2/jobs/{job.id}", headers=ADMIN).json()
    assert (api_job["state"], api_job["failed"], api_job["error"]) == ("FAILURE", True, job.error)
    assert (detail["state"], detail["failed"]) == ("FAILURE", True)

    assert cli.main(["job", "show", job.id, "--graph", "dot"]) == 0
    dot = capsys.readouterr().out
    assert "job: FAILURE" in dot
    assert "failed: the zone went ERROR: 0 of 1 nameservers serve serial" in dot
    assert f"serial {job.serial}: FAILURE (failed)" in dot

    assert _metric("zoneflow_jobs_total", kind="create-zone", state="SUCCESS") == succeeded
    assert (
        _metric("zoneflow_jobs_failed_total", kind="create-zone", reason="not-served") == failed + 1
    )


@pytest.mark.usefixtures("conductor")
def test_a_reverted_job_reads_failed_with_the_consensus_reason(
    override: Callable[..., None],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="zoneflow")
    override("flows", target_attempts=1)
    load_pool({}, {"fail": "create"})
    failed = _metric("zoneflow_jobs_failed_total", kind="create-zone", reason="below-threshold")

    zone = central_zones.create_zone("refused.example", "hostmaster@example.com")
    assert wait_settled(zone.id).status == objects.Status.ERROR
    job = _ended(zone.id)

    assert (job.state, job.failed) == ("REVERTED", True)
    # The conductor's log says which target failed, and that the zone is ERROR.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("target fake2 failed CREATE of refused.example.") for m in warnings)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(f"zone {zone.id} serial {job.serial} is ERROR" in m for m in errors), errors
    assert "1 of 2 targets succeeded, below the pool's threshold of 100%" in str(job.error)
    assert cli.main(["job", "list"]) == 0
    assert "1 of 2 targets succeeded" in capsys.readouterr().out
    assert cli.main(["job", "show", job.id, "--graph", "dot"]) == 0
    assert "job: REVERTED" in capsys.readouterr().out
    assert (
        _metric("zoneflow_jobs_failed_total", kind="create-zone", reason="below-threshold")
        == failed + 1
    )


@pytest.mark.usefixtures("conductor", "fake_pool")
def test_a_successful_job_is_not_failed_and_keeps_its_own_updated_at(
    capsys: pytest.CaptureFixture[str],
) -> None:
    zone = central_zones.create_zone("served.example", "hostmaster@example.com")
    assert wait_settled(zone.id).status == objects.Status.ACTIVE
    job = _ended(zone.id)
    assert (job.state, job.failed, job.error) == ("SUCCESS", False, None)
    ended_by = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    wait_past = ended_by + datetime.timedelta(milliseconds=50)
    while datetime.datetime.now(datetime.UTC).replace(tzinfo=None) < wait_past:
        time.sleep(0.01)  # the clock moves on: a query-time stamp would show it

    (listed,) = jobs.list_jobs(persistence.get_backend())
    assert listed.created_at is not None and listed.updated_at is not None
    assert listed.created_at <= listed.updated_at <= ended_by
    assert jobs.get_job(persistence.get_backend(), job.id).updated_at == listed.updated_at
    assert cli.main(["--json", "job", "list"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)
    assert shown["updated_at"] == listed.updated_at.isoformat(timespec="seconds")
    with TestClient(app.create_app(), raise_server_exceptions=False) as client:
        (api_job,) = client.get("/v2/jobs", headers=ADMIN).json()["jobs"]
    assert api_job["updated_at"].startswith(listed.updated_at.isoformat(timespec="seconds"))


@pytest.mark.usefixtures("conductor")
def test_a_job_overtaken_by_a_newer_change_of_its_zone_reads_superseded() -> None:
    load_pool({"delay": 1})
    zone = central_zones.create_zone("overtaken.example", "hostmaster@example.com")

    def begun() -> bool:
        # Begun, not only claimed: an update made before the job's begin rides on the
        # job (storage/outbox.py) instead of posting the newer job this test needs.
        # The begin deletes the job's outbox row as it commits; the logbook says so
        # only when the conductor's writer gets to it, which on a busy machine came
        # after the job's one-second action, and the job ended before the update.
        with db.reader() as session:
            rows = session.scalar(
                sa.select(sa.func.count())
                .select_from(models.JobOutbox)
                .where(models.JobOutbox.zone_id == zone.id)
            )
        return rows == 0

    eventually(begun, 30, what="the create job to begin")
    central_recordsets.create_recordset(zone.id, "www", "A", ["192.0.2.1"])
    newer = stored_reads.get_zone(zone.id).serial

    def both_ended() -> dict[int, jobs.JobInfo] | None:
        found = {j.serial: j for j in jobs.list_jobs(persistence.get_backend())}
        return (
            found if len(found) == 2 and all(j.state in jobs.OVER for j in found.values()) else None
        )

    found = eventually(
        both_ended,
        30,
        what=lambda: f"both jobs to end: {jobs.list_jobs(persistence.get_backend())}",
    )
    first = found[zone.serial]
    assert (first.kind, first.state, first.failed) == ("create-zone", "SUPERSEDED", False)
    assert "a newer job carries the zone on" in str(first.error)
    assert (found[newer].state, found[newer].failed) == ("SUCCESS", False)
    assert wait_settled(zone.id).status == objects.Status.ACTIVE
