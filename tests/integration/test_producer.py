"""The producer's recovery and purge passes in one process (SQLite, zake, fake
targets), and the producer refusing a bad configuration with a clear error."""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
from collections.abc import Callable
from typing import cast

import pytest
import sqlalchemy as sa

from tests.functional import forkserver
from tests.functional.fixtures.ports import free_port
from tests.integration.conftest import load_pool, wait_settled
from tests.support import count_pending_jobs, eventually
from tests.unit.test_producer import Responder
from zoneflow import objects
from zoneflow.central import zones as central_zones
from zoneflow.producer import audit, purge, recovery, settings, shards
from zoneflow.storage import db, models
from zoneflow.storage import outbox as stored_outbox
from zoneflow.storage import status as stored_status
from zoneflow.storage import zones as stored_zones

ALL = frozenset(range(64))
ZONES = cast(sa.Table, models.Zone.__table__)


@pytest.fixture(autouse=True)
def _fast_retries(override: Callable[..., None]) -> None:
    override("flows", target_retry_delay=0)


def _settings(**changes: object) -> settings.Settings:
    return dataclasses.replace(settings.read(), **changes)  # type: ignore[arg-type]


def _age(zone_id: str, seconds: float) -> None:
    """Make the zone's last change ``seconds`` older than it is."""
    with db.transaction() as conn:
        updated = sa.func.coalesce(ZONES.c.updated_at, ZONES.c.created_at)
        row = conn.execute(sa.select(updated).where(ZONES.c.id == zone_id)).scalar_one()
        conn.execute(
            sa.update(ZONES)
            .where(ZONES.c.id == zone_id)
            .values(updated_at=row - datetime.timedelta(seconds=seconds))
        )


def _recover_jobs() -> int:
    with db.connection() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(models.JobOutbox)
                .where(models.JobOutbox.kind == objects.JobKind.RECOVER_ZONE)
            ).scalar_one()
        )


def test_a_zone_in_error_is_recovered_once_and_left_alone_once_active(
    conductor: object,
) -> None:
    # Fails every try of the create job, then works.
    load_pool({"fail": "create", "fail_times": 3})
    zone = central_zones.create_zone("example.com.", "hostmaster@example.com")
    assert wait_settled(zone.id).status == objects.Status.ERROR

    # The zone reads ERROR a moment before its create job has ended: until then the
    # job has it in hand, and a pass posts nothing. The first pass after posts once.
    passes: list[recovery.RecoveryReport] = []

    def a_pass_posted() -> bool:
        passes.append(recovery.recover(_settings(), ALL))
        return passes[-1].posted > 0

    eventually(a_pass_posted, 30, what="a recovery pass to post once the create job has ended")
    assert [(p.candidates, p.posted) for p in passes if p.in_hand == 0] == [(1, 1)]
    assert wait_settled(zone.id).status == objects.Status.ACTIVE
    assert recovery.recover(_settings(), ALL).candidates == 0


def test_a_zone_left_pending_is_recovered_only_once_its_job_is_gone_and_it_is_old(
    fake_pool: None,
) -> None:
    # No conductor: the create job stays in the outbox, the zone PENDING.
    zone = central_zones.create_zone("example.com.", "hostmaster@example.com")
    config = _settings(pending_age=60.0)
    assert recovery.recover(config, ALL).candidates == 0, "PENDING for less than pending_age"

    _age(zone.id, 120)
    report = recovery.recover(config, ALL)
    assert (report.candidates, report.posted, report.in_hand) == (1, 0, 1), (
        "its job still waits in the outbox"
    )

    # The job is lost (posted to a board that went, say).
    for pending in stored_outbox.claim_pending_jobs():
        stored_outbox.remove_pending_job(pending.id)
    report = recovery.recover(config, ALL)
    assert report.posted == 1
    assert _recover_jobs() == 1
    # Now PENDING again, from this moment: the next pass leaves it to its job.
    assert recovery.recover(config, ALL).candidates == 0
    assert count_pending_jobs() == 1


def _stale_pending_zones(count: int) -> list[str]:
    """Zones PENDING for ten minutes whose jobs were lost (taken from the outbox)."""
    ids = [
        central_zones.create_zone(f"z{i}.example.com.", "hostmaster@example.com").id
        for i in range(count)
    ]
    for pending in stored_outbox.claim_pending_jobs():
        stored_outbox.remove_pending_job(pending.id)
    for zone_id in ids:
        _age(zone_id, 600)
    return ids


def test_recovery_posts_at_most_recovery_batch_jobs_a_pass(fake_pool: None) -> None:
    _stale_pending_zones(5)
    config = _settings(pending_age=60.0, recovery_batch=2)
    assert recovery.recover(config, ALL).posted == 2
    assert recovery.recover(config, ALL).posted == 2
    assert recovery.recover(config, ALL).posted == 1
    assert _recover_jobs() == 5


def test_only_the_zones_of_the_shards_held_are_recovered(fake_pool: None) -> None:
    ids = _stale_pending_zones(8)
    config = _settings(pending_age=60.0, shards=2)
    report = recovery.recover(config, frozenset({0}))
    assert report.posted == sum(1 for z in ids if shards.shard_of(z, 2) == 0)


def test_the_purge_removes_deleted_zones_past_their_retention_only(
    conductor: object,
) -> None:
    load_pool({})
    old = central_zones.create_zone("old.example.com.", "hostmaster@example.com")
    new = central_zones.create_zone("new.example.com.", "hostmaster@example.com")
    for zone in (old, new):
        wait_settled(zone.id)
        central_zones.delete_zone(zone.id)
        assert wait_settled(zone.id).status == objects.Status.DELETED
    with db.transaction() as conn:
        conn.execute(
            sa.update(ZONES)
            .where(ZONES.c.id == old.id)
            .values(deleted_at=models.utcnow() - datetime.timedelta(days=30))
        )

    report = purge.purge(_settings(deleted_zone_retention=7 * 86400.0), ALL)
    assert report.zones == 1
    with db.connection() as conn:
        left = set(conn.execute(sa.select(models.Zone.id)).scalars())
    assert left == {new.id}


def _active(name: str) -> objects.Zone:
    """A zone made ACTIVE as its create job would (no conductor runs here)."""
    zone = central_zones.create_zone(name, "hostmaster@example.com")
    for pending in stored_outbox.claim_pending_jobs():
        stored_outbox.remove_pending_job(pending.id)
    stored_status.set_zone_status(zone.id, serial=zone.serial, status=objects.Status.ACTIVE)
    return zone


def test_the_audit_records_what_targets_serve_and_recovers_only_what_one_lacks() -> None:
    served, missing, behind = "served.example.", "missing.example.", "behind.example."
    responder = Responder({})
    try:
        pool = load_pool({"host": responder.address[0], "port": responder.address[1]})
        (target,) = pool.targets
        zones = {name: _active(name) for name in (served, missing, behind)}
        responder.zones.update({served: zones[served].serial + 1, behind: zones[behind].serial - 1})
        report = audit.audit(_settings(audit_timeout=0.5), ALL)
    finally:
        responder.close()

    assert (report.checks, report.served, report.missing, report.behind) == (3, 1, 1, 1)
    assert report.recoveries == 2
    rows = {
        name: stored_status.get_target_status(zone.id, target.id) for name, zone in zones.items()
    }
    assert rows[served] is not None and (rows[served].status, rows[served].serial) == (
        objects.Status.ACTIVE,
        zones[served].serial + 1,
    )
    assert rows[missing] is not None and (rows[missing].status, rows[missing].error) == (
        objects.Status.ERROR,
        audit.NOT_SERVED,
    )
    assert rows[behind] is not None and rows[behind].error == audit.behind(
        zones[behind].serial - 1, zones[behind].serial
    )
    statuses = {name: stored_zones.get_zone_any(zone.id) for name, zone in zones.items()}
    assert {name: z.status for name, z in statuses.items() if z is not None} == {
        served: objects.Status.ACTIVE,
        missing: objects.Status.PENDING,
        behind: objects.Status.PENDING,
    }
    assert _recover_jobs() == 2


def test_the_audit_judges_nothing_of_a_target_that_does_not_answer() -> None:
    silent = Responder({}, flaky="quiet.example.", drop=99)
    try:
        load_pool({"host": silent.address[0], "port": silent.address[1]})
        zone = _active("quiet.example.")
        report = audit.audit(_settings(audit_timeout=0.1, audit_retries=1), ALL)
    finally:
        silent.close()
    assert (report.unanswered, report.recoveries) == (1, 0)
    assert stored_status.list_target_status(zone.id) == []
    assert _recover_jobs() == 0


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ("shards = 0", "[producer] shards in zoneflow.conf is invalid: Should be greater"),
        ("audit_timeout = soon", "[producer] audit_timeout in zoneflow.conf is invalid"),
        ("shard_path = shards/", "[producer] shard_path 'shards/' is not a ZooKeeper path"),
        (
            "audit_interval = 2\naudit_timeout = 1",
            "audit_timeout × (audit_retries + 1) = 3 s is not below audit_interval (2 s)",
        ),
    ],
)
def test_a_bad_producer_option_is_refused_with_a_clear_error(
    tmp_path: pathlib.Path, database: str, conf: str, message: str
) -> None:
    path = tmp_path / "zoneflow.conf"
    path.write_text(f"[database]\nconnection = {database}\n[producer]\n{conf}\n")
    done = forkserver.run(["--config-file", str(path), "producer"], workdir=tmp_path)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_producer_that_cannot_reach_zookeeper_says_so_and_exits(
    tmp_path: pathlib.Path, database: str
) -> None:
    path = tmp_path / "zoneflow.conf"
    closed = free_port()
    path.write_text(
        f"[database]\nconnection = {database}\n"
        f"[jobboard]\nbackend = zookeeper\nhosts = 127.0.0.1:{closed}\nconnect_timeout = 1\n"
    )
    done = forkserver.run(["--config-file", str(path), "producer"], workdir=tmp_path)
    assert done.returncode != 0
    assert f"the producer cannot reach ZooKeeper at 127.0.0.1:{closed}" in done.stderr
    assert "[jobboard] hosts" in done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
