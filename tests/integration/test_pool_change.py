"""Pool changes while zones live: `pool update` adding and removing targets and
nameservers, on the fake backend.

An added target gets every zone, each PENDING until it is there; a removed
one has every zone deleted from it before it is forgotten; and a job posted
with the old pool never makes its zone ACTIVE with the new one uncovered.
A ``record_file`` shows the backend calls each fake target really received.
"""

from __future__ import annotations

import json
import pathlib
import socket
from collections.abc import Callable

import pytest
from oslo_config import cfg

from tests import support
from tests.integration.conftest import CATALOG_POOL, fake_pool_yaml, load_pool, wait_settled
from tests.support import eventually, holds
from zoneflow import cli, jobs, objects
from zoneflow.backends.impl_fake import FakeBackend
from zoneflow.central import options as central_options
from zoneflow.central import pools
from zoneflow.central import zones as central_zones
from zoneflow.conductor import daemon
from zoneflow.engine.relay import OutboxRelay
from zoneflow.flows import retire_target as target_flows
from zoneflow.jobs.outcomes import Served
from zoneflow.mdns import server as mdns_server
from zoneflow.storage import outbox as stored_outbox
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import retired as stored_retired
from zoneflow.storage import status as stored_status
from zoneflow.storage import targets as stored_targets
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import jobboard, persistence

HOST = "127.0.0.1"
ZONES = [f"zone{i}.example.com." for i in range(5)]


@pytest.fixture(autouse=True)
def _fast_retries(override: Callable[..., None]) -> None:
    override("flows", target_retry_delay=0)


def _calls(path: pathlib.Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [(c["op"], c["zone"]) for c in map(json.loads, path.read_text().splitlines())]


def _update(*targets: dict[str, object], nameservers: str = "") -> objects.PoolUpdate:
    text = fake_pool_yaml(*targets) + nameservers
    (update,) = pools.store(pools.parse(text))
    return update


def _create_zones(names: list[str] = ZONES) -> list[objects.Zone]:
    zones = [central_zones.create_zone(name, "hostmaster@example.com") for name in names]
    assert {wait_settled(z.id).status for z in zones} == {objects.Status.ACTIVE}
    return zones


def _settle_watching(
    zones: list[objects.Zone], target_id: str, timeout: float = 20
) -> list[objects.Zone]:
    """Wait for the zones to settle, checking all along that none reads ACTIVE
    before ``target_id`` serves it (the status is read before what is served,
    and a job sets the status only after the target has the zone)."""

    def sample() -> list[objects.Zone] | None:
        now = [stored_zones.get_zone_any(z.id) for z in zones]
        served = FakeBackend.served(target_id)
        for zone in now:
            assert zone is not None
            if zone.status == objects.Status.ACTIVE:
                assert served.get(zone.name) == zone.serial, f"{zone.name} ACTIVE, not on target"
        if all(z is not None and z.status != objects.Status.PENDING for z in now):
            return [z for z in now if z is not None]
        return None

    return eventually(sample, timeout, interval=0.01, what="the zones to leave PENDING")


def _job_kinds(zone_id: str) -> list[str]:
    """The kinds of the jobs that carried the zone, a batch's as the kind it has for each."""
    return sorted(
        objects.ONE_OF.get(objects.JobKind(j.kind), j.kind)
        for j in jobs.list_jobs(persistence.get_backend())
        if zone_id in {zone.id for zone in j.zones}
    )


# --- added targets and nameservers ----------------------------------------------------


@pytest.mark.usefixtures("conductor")
def test_an_added_target_gets_every_zone_and_each_reads_active_only_once_it_has_it(
    tmp_path: pathlib.Path,
) -> None:
    first_calls = tmp_path / "first.jsonl"
    (first,) = load_pool({"record_file": str(first_calls)}).targets
    zones = _create_zones()

    update = _update({"record_file": str(first_calls)}, {"delay": 0.2})
    (added,) = update.added_targets
    assert update.backfill == len(ZONES)
    # Marked PENDING in the pool update's own transaction.
    assert {stored_reads.get_zone(z.id).status for z in zones} == {objects.Status.PENDING}

    settled = _settle_watching(zones, added.id)
    assert {(z.status, z.action) for z in settled} == {(objects.Status.ACTIVE, objects.Action.NONE)}
    assert FakeBackend.served(added.id) == {z.name: z.serial for z in zones}
    assert sorted(_calls(first_calls)) == [("create", z.name) for z in zones], (
        "the target that had the zones got no second call"
    )
    for zone in zones:
        rows = {r.target_id: r for r in stored_status.list_target_status(zone.id)}
        assert (rows[added.id].status, rows[added.id].serial) == (
            objects.Status.ACTIVE,
            zone.serial,
        )
        assert _job_kinds(zone.id) == ["create-zone", "recover-zone"]
    assert first.id != added.id


@pytest.mark.usefixtures("conductor")
def test_reloading_the_same_pool_schedules_nothing() -> None:
    load_pool({}, {})
    (zone,) = _create_zones(ZONES[:1])
    update = _update({}, {})
    assert (update.added_targets, update.added_nameservers, update.backfill) == ((), (), 0)
    assert (update.retired_targets, update.draining_targets) == ((), ())
    assert stored_reads.get_zone(zone.id).status == objects.Status.ACTIVE
    assert support.count_pending_jobs() == 0


@pytest.mark.usefixtures("conductor")
def test_an_added_nameserver_is_polled_before_the_zones_read_active_again(
    mdns: mdns_server.MdnsServer,
) -> None:
    load_pool({})
    zones = _create_zones(ZONES[:2])

    update = _update({}, nameservers=f"  nameservers: [{{host: {HOST}, port: {mdns.port}}}]\n")
    assert update.added_nameservers == (objects.HostPort(HOST, mdns.port),)
    assert update.backfill == 2
    assert {wait_settled(z.id).status for z in zones} == {objects.Status.ACTIVE}
    # Released together, the two zones' backfill goes in one recover-zones job.
    (job_id,) = [
        j.id for j in jobs.list_jobs(persistence.get_backend()) if j.kind == "recover-zones"
    ]
    # The job's record is written behind its run: whole once the job reads SUCCESS.
    eventually(
        lambda: jobs.get_job(persistence.get_backend(), job_id).state == "SUCCESS",
        20,
        what=f"job {job_id} to be recorded as done",
    )
    job = jobs.get_job(persistence.get_backend(), job_id)
    polled = {a.name: a.result for a in job.atoms}[f"poll-for-serial-{HOST}:{mdns.port}"]
    for zone in zones:
        assert _job_kinds(zone.id) == ["create-zone", "recover-zone"]
        seen = Served(**polled[zone.id])
        assert (seen.ok, seen.serial) == (True, zone.serial)


# --- jobs posted with the old pool ------------------------------------------------------


def test_a_status_write_by_a_job_that_did_not_cover_the_pool_leaves_the_zone_pending() -> None:
    (first,) = load_pool({}).targets
    zone = central_zones.create_zone(ZONES[0], "hostmaster@example.com")  # no conductor: PENDING
    (create_job,) = stored_outbox.claim_pending_jobs()
    stored_outbox.remove_pending_job(create_job.id)  # posted with the pool of one target
    second = next(t for t in load_pool({}, {}).targets if t.id != first.id)

    assert not stored_status.set_zone_status(
        zone.id,
        serial=zone.serial,
        status=objects.Status.ACTIVE,
        action=objects.Action.NONE,
        covered_targets=[first.id],
        if_pool_grows=objects.JobOrder(objects.JobKind.RECOVER_ZONE),
    )
    assert stored_reads.get_zone(zone.id).status == objects.Status.PENDING
    (handed_to,) = stored_outbox.claim_pending_jobs()
    assert (handed_to.kind, handed_to.zone_id, handed_to.serial) == (
        "recover-zone",
        zone.id,
        zone.serial,
    )

    assert stored_status.set_zone_status(
        zone.id,
        serial=zone.serial,
        status=objects.Status.ACTIVE,
        action=objects.Action.NONE,
        covered_targets=[first.id, second.id],
        if_pool_grows=objects.JobOrder(objects.JobKind.RECOVER_ZONE),
    )
    assert stored_reads.get_zone(zone.id).status == objects.Status.ACTIVE


def test_central_decides_each_jobs_follow_up_and_the_outbox_row_carries_it() -> None:
    load_pool({})
    zone = central_zones.create_zone(ZONES[0], "hostmaster@example.com")
    central_zones.delete_zone(zone.id)

    posted = [(p.kind, p.if_pool_grows) for p in stored_outbox.claim_pending_jobs()]

    assert posted == [
        (objects.JobKind.CREATE_ZONE, objects.JobKind.RECOVER_ZONE),
        (objects.JobKind.DELETE_ZONE, None),
    ]


def test_a_job_with_no_follow_up_leaves_a_zone_it_did_not_cover_pending_and_posts_none() -> None:
    (first,) = load_pool({}).targets
    zone = central_zones.create_zone(ZONES[0], "hostmaster@example.com")
    (create_job,) = stored_outbox.claim_pending_jobs()
    stored_outbox.remove_pending_job(create_job.id)
    load_pool({}, {})  # the pool grew past the job's one target

    assert not stored_status.set_zone_status(
        zone.id,
        serial=zone.serial,
        status=objects.Status.ACTIVE,
        action=objects.Action.NONE,
        covered_targets=[first.id],
    )
    assert stored_reads.get_zone(zone.id).status == objects.Status.PENDING
    assert stored_outbox.claim_pending_jobs() == []


@pytest.mark.usefixtures("conductor")
def test_a_job_posted_before_a_target_was_added_cannot_make_its_zone_active() -> None:
    (slow,) = load_pool({"delay": 1.0}).targets
    zone = central_zones.create_zone(ZONES[0], "hostmaster@example.com")
    eventually(lambda: support.count_pending_jobs() == 0, 20, what="the create job to be posted")

    # The create job runs with the old pool (slow target only) while the pool grows.
    update = _update({"delay": 1.0}, {})
    (added,) = update.added_targets
    assert update.backfill == 1
    assert support.count_pending_jobs() == 0, "a zone with a job in flight gets no second job"

    (settled,) = _settle_watching([zone], added.id)
    assert (settled.status, settled.action) == (objects.Status.ACTIVE, objects.Action.NONE)
    assert FakeBackend.served(added.id) == {zone.name: zone.serial}
    assert FakeBackend.served(slow.id) == {zone.name: zone.serial}
    # The create job handed the zone over instead of making it ACTIVE.
    assert _job_kinds(zone.id) == ["create-zone", "recover-zone"]


def _post_now() -> None:
    """Post every outbox job to the board, as a relay would, without running any."""
    backend = persistence.get_backend()
    board = jobboard.connect(backend, name="poster")
    try:
        OutboxRelay(board, backend).flush()
    finally:
        board.close()


def test_a_job_posted_before_its_target_was_retired_does_nothing_there(
    tmp_path: pathlib.Path,
) -> None:
    calls = tmp_path / "retired.jsonl"
    kept, retiring = load_pool({}, {"record_file": str(calls)}).targets
    zone = central_zones.create_zone(ZONES[0], "hostmaster@example.com")
    _post_now()  # the create job names both targets

    update = _update({})
    assert update.retired_targets == (stored_targets.find_target(retiring.id),)
    conductor = daemon.Conductor("late-conductor")
    conductor.start()
    try:
        settled = wait_settled(zone.id)
        eventually(
            lambda: stored_targets.find_target(retiring.id) is None,
            20,
            what="the retired target to go",
        )
    finally:
        conductor.stop()

    # Not a failure (threshold 100), and no zone created on the retired server.
    assert (settled.status, settled.error) == (objects.Status.ACTIVE, None)
    assert FakeBackend.served(kept.id) == {zone.name: zone.serial}
    assert FakeBackend.served(retiring.id) == {}
    assert ("create", zone.name) not in _calls(calls)
    assert [r.target_id for r in stored_status.list_target_status(zone.id)] == [kept.id]


def test_a_task_on_a_target_that_is_gone_does_nothing() -> None:
    from zoneflow.flows.on_target import ZoneActionOnTarget
    from zoneflow.flows.recovery import RecoverOnTarget
    from zoneflow.jobs.outcomes import TargetOutcome

    load_pool({})
    zone = central_zones.create_zone(ZONES[0], "hostmaster@example.com")
    for task in (
        ZoneActionOnTarget(objects.Action.CREATE, "gone"),
        RecoverOnTarget("gone"),
    ):
        kwargs = {"wanted": objects.Status.ACTIVE} if isinstance(task, RecoverOnTarget) else {}
        outcome = task.execute(zone_id=zone.id, serial=zone.serial, **kwargs)
        assert TargetOutcome.of(outcome) == TargetOutcome(ok=True, skipped=True, retired=True)


class _SilentNameserver:
    """A UDP socket that never answers: a nameserver that lags for ever."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind((HOST, 0))
        self.port = self.socket.getsockname()[1]

    def close(self) -> None:
        self.socket.close()


@pytest.mark.usefixtures("conductor")
def test_a_nameserver_removed_while_a_job_polls_it_is_not_counted_against_the_zone(
    override: Callable[..., None],
) -> None:
    override("flows", query_timeout=0.2, renotify_interval=0.3)
    silent = _SilentNameserver()
    try:
        listed = f"  nameservers: [{{host: {HOST}, port: {silent.port}}}]\n"
        load_pool({})
        pools.store(pools.parse(fake_pool_yaml({}) + listed))
        zone = central_zones.create_zone(ZONES[0], "hostmaster@example.com")
        eventually(
            lambda: support.count_pending_jobs() == 0, 20, what="the create job to be posted"
        )
        holds(  # the job polls the silent nameserver meanwhile
            lambda: stored_reads.get_zone(zone.id).status == objects.Status.PENDING,
            0.5,
            what="the zone PENDING while a nameserver is silent",
        )

        pools.store(pools.parse(fake_pool_yaml({})))
        settled = wait_settled(zone.id, timeout=10)
    finally:
        silent.close()
    assert (settled.status, settled.error) == (objects.Status.ACTIVE, None)


# --- removed targets ----------------------------------------------------------------------


@pytest.mark.usefixtures("conductor")
def test_a_removed_target_has_every_zone_deleted_then_is_forgotten(
    tmp_path: pathlib.Path,
) -> None:
    calls = tmp_path / "retired.jsonl"
    kept, retiring = load_pool({}, {"record_file": str(calls)}).targets
    zones = _create_zones()
    assert FakeBackend.served(retiring.id) == {z.name: z.serial for z in zones}

    update = _update({})
    (retired,) = update.retired_targets
    assert retired.id == retiring.id and retired.retired_at is not None
    assert update.to_delete == {retiring.id: len(ZONES)}
    pool = stored_pools.get_pool("default")
    assert [t.id for t in pool.targets] == [kept.id], "jobs no longer see it"
    assert [t.id for t in pool.retired_targets] == [retiring.id], "its options are kept"

    eventually(
        lambda: stored_targets.find_target(retiring.id) is None, 20, what="the retired target to go"
    )
    assert FakeBackend.served(retiring.id) == {}
    assert sorted(c for c in _calls(calls) if c[0] == "delete") == [
        ("delete", z.name) for z in zones
    ]
    for zone in zones:
        assert stored_reads.get_zone(zone.id).status == objects.Status.ACTIVE
        assert [r.target_id for r in stored_status.list_target_status(zone.id)] == [kept.id]
    assert stored_pools.get_pool("default").retired_targets == ()

    (later,) = _create_zones(["later.example.com."])
    assert FakeBackend.served(kept.id)[later.name] == later.serial
    assert ("create", later.name) not in _calls(calls)


@pytest.mark.usefixtures("conductor")
def test_a_drain_that_fails_keeps_the_target_retired_until_pool_update_runs_it_again() -> None:
    _, retiring = load_pool({}, {"fail": "delete", "fail_times": 1}).targets
    zones = _create_zones(ZONES[:3])

    _update({})
    eventually(
        lambda: stored_pools.get_pool("default").retired_targets[0].drain_error is not None,
        20,
        what="the drain to fail",
    )
    (still,) = stored_pools.get_pool("default").retired_targets
    assert "1 zone(s) of the pool could not be deleted" in (still.drain_error or "")
    assert stored_retired.count_zones_to_drain(retiring.id) == 1
    assert len(FakeBackend.served(retiring.id)) == 1

    update = _update({})
    assert update.draining_targets == (stored_targets.find_target(retiring.id),)
    assert update.to_delete == {retiring.id: 1}
    eventually(
        lambda: stored_targets.find_target(retiring.id) is None, 20, what="the retired target to go"
    )
    assert FakeBackend.served(retiring.id) == {}
    assert {stored_reads.get_zone(z.id).status for z in zones} == {objects.Status.ACTIVE}


def test_a_drain_goes_on_where_the_last_one_stopped(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(target_flows, "DRAIN_BATCH", 2)
    calls = tmp_path / "retired.jsonl"
    _, retiring = load_pool({}, {"record_file": str(calls)}).targets
    zones = sorted(
        (central_zones.create_zone(n, "h@example.com") for n in ZONES), key=lambda z: z.name
    )
    _update({})
    # A first run got through two zones before its conductor died.
    stored_retired.record_drained(retiring.id, [(zones[0], None), (zones[1], None)])

    drained = target_flows.DrainTarget().execute(target_id=retiring.id)
    assert drained == len(ZONES) - 2
    assert _calls(calls) == [("delete", z.name) for z in zones[2:]]
    target_flows.DropTarget().execute(target_id=retiring.id)
    assert stored_targets.find_target(retiring.id) is None


def test_a_target_listed_again_while_draining_is_kept() -> None:
    _, retiring = load_pool({}, {}).targets
    central_zones.create_zone(ZONES[0], "hostmaster@example.com")
    _update({})
    update = _update({}, {})
    assert update.added_targets == (stored_targets.find_target(retiring.id),)
    assert target_flows.DrainTarget().execute(target_id=retiring.id) == 0
    target_flows.DropTarget().execute(target_id=retiring.id)
    target = stored_targets.find_target(retiring.id)
    assert target is not None and target.retired_at is None


def test_under_catalog_provisioning_a_removed_target_goes_at_once() -> None:
    both = "{type: fake, description: fake1}, {type: fake, description: fake2}"
    (pool,) = support.store_pools(pools.parse(CATALOG_POOL.replace("TARGETS", both)))
    zone = central_zones.create_zone(ZONES[0], "hostmaster@example.com")
    stored_status.set_target_status(
        zone.id, pool.targets[1].id, serial=zone.serial, status="ACTIVE"
    )
    stored_outbox.claim_pending_jobs()

    one = "{type: fake, description: fake1}"
    (update,) = pools.store(pools.parse(CATALOG_POOL.replace("TARGETS", one)))
    assert [t.id for t in update.removed_targets] == [pool.targets[1].id]
    assert update.retired_targets == ()
    assert stored_targets.find_target(pool.targets[1].id) is None
    assert stored_status.list_target_status(zone.id) == []
    assert stored_outbox.claim_pending_jobs() == [], "no job: there is no per-zone call to make"


# --- the CLI ------------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli.main(list(args)) == 0
    return capsys.readouterr().out


def test_pool_update_says_what_it_scheduled_and_pool_show_lists_retired_targets(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "pools.yaml"
    path.write_text(fake_pool_yaml({}))
    assert _cli(capsys, "pool", "update", "--file", str(path)) == (
        "pool default: 1 target(s), 0 nameserver(s)\n"
    )
    for name in ZONES[:2]:
        central_zones.create_zone(name, "hostmaster@example.com")

    path.write_text(fake_pool_yaml({}, {}))
    assert _cli(capsys, "pool", "update", "--file", str(path)) == (
        "pool default: 2 target(s), 0 nameserver(s); target fake2 added, 2 zones to backfill\n"
    )
    path.write_text(fake_pool_yaml({}))
    assert _cli(capsys, "pool", "update", "--file", str(path)) == (
        "pool default: 1 target(s), 0 nameserver(s); target fake2 retired, 2 zones to delete "
        "from it\n"
    )
    shown = _cli(capsys, "pool", "show", "default")
    retired_part = shown.split("retired targets")[1]
    assert "fake2" in retired_part and "zones left" in retired_part
    assert (
        json.loads(_cli(capsys, "--json", "pool", "show", "default"))["retired_targets"][0][
            "zones_to_delete"
        ]
        == 2
    )
    assert "still retired, 2 zones to delete from it (drain posted again)" in _cli(
        capsys, "pool", "update", "--file", str(path)
    )


def test_a_backfill_is_released_to_the_relays_a_batch_at_a_time(
    override: Callable[..., None],
) -> None:
    # One batch of two zones a second: the first claim below may come a second late (a
    # loaded CI machine was 0.75 s late at 4 a second) and still find at most two
    # batches released.
    override("central", backfill_jobs_per_second=1)
    override("conductor", upkeep_batch_zones=2)
    load_pool({})
    zones = [central_zones.create_zone(name, "hostmaster@example.com") for name in ZONES]
    for job in stored_outbox.claim_pending_jobs():  # as if their create jobs had run
        stored_outbox.remove_pending_job(job.id)
    for zone in zones:
        stored_status.set_zone_status(zone.id, serial=zone.serial, status=objects.Status.ACTIVE)

    _update({}, {})
    released = stored_outbox.claim_pending_jobs()
    assert len(released) in (2, 4), "the rest wait their turn in the outbox, a batch at a time"
    assert support.count_pending_jobs() == len(ZONES)

    def all_released() -> bool:
        released.extend(stored_outbox.claim_pending_jobs())
        return len(released) >= len(ZONES)

    eventually(all_released, 10, what=lambda: f"every job released, {len(released)} so far")
    assert sorted(j.zone_id for j in released) == sorted(z.id for z in zones)


def test_a_backfill_pace_set_in_the_storage_section_as_before_still_applies(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    # [central] backfill_jobs_per_second was [storage]'s before central decided the pace.
    conf = tmp_path / "zoneflow.conf"
    conf.write_text("[storage]\nbackfill_jobs_per_second = 2.5\n")
    given = cfg.ConfigOpts()
    given.register_opts(central_options.central_opts, group="central")
    given([], default_config_files=[str(conf)])
    assert given.central.backfill_jobs_per_second == 2.5
    assert 'Use option "backfill_jobs_per_second" from group "central"' in caplog.text
