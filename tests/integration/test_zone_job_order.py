"""Jobs of one zone run in any order: a late create must not undo the zone's delete."""

from __future__ import annotations

import json
import pathlib

import pytest

from tests.integration.conftest import load_pool
from zoneflow import objects
from zoneflow.backends.impl_fake import FakeBackend
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.flows.on_target import TakeBackIfDeleted, ZoneActionOnTarget
from zoneflow.jobs import steps
from zoneflow.jobs.outcomes import TargetOutcome


def test_a_create_that_runs_after_the_delete_was_asked_for_leaves_the_target_alone() -> None:
    (target,) = load_pool({}).targets
    zone = central_zones.create_zone("late.example", "hostmaster@example.com")
    # Deleted before the create job ran (its conductor died, or it waited on
    # the board): the delete job may already have removed the zone from the
    # target, finding nothing there, and not yet have finished.
    central_zones.delete_zone("late.example")

    create = ZoneActionOnTarget(objects.Action.CREATE, target.id)
    outcome = TargetOutcome.of(create.execute(zone_id=zone.id, serial=zone.serial))

    assert outcome is not None and outcome.skipped
    assert FakeBackend.served(target.id) == {}


def test_an_update_that_runs_before_the_zone_s_create_creates_it(tmp_path: pathlib.Path) -> None:
    record = tmp_path / "calls.jsonl"
    (target,) = load_pool({"record_file": str(record)}).targets
    zone = central_zones.create_zone("early.example", "hostmaster@example.com")
    # A change made at once: its update job runs while the create job has not
    # (its conductor died, or it waits on the board), and it is the job that
    # must make the zone ACTIVE, polling each nameserver for its serial.
    change = central_recordsets.create_recordset("early.example", "www", "A", ["192.0.2.1"])

    update = ZoneActionOnTarget(objects.Action.UPDATE, target.id)
    outcome = TargetOutcome.of(update.execute(zone_id=zone.id, serial=change.serial))

    assert outcome is not None and outcome.ok
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(c["op"], c["zone"]) for c in calls] == [("create", "early.example.")]


def test_a_create_cut_short_after_creating_takes_the_zone_back_when_run_again() -> None:
    (target,) = load_pool({}).targets
    zone = central_zones.create_zone("cut.example", "hostmaster@example.com")
    # Its first run created the zone on the target after the delete job had
    # removed it, and died before recording that; the delete job then finished.
    central_zones.delete_zone("cut.example")
    FakeBackend(target).create_zone(zone)

    create = ZoneActionOnTarget(objects.Action.CREATE, target.id)
    outcome = TargetOutcome.of(create.execute(zone_id=zone.id, serial=zone.serial))

    assert outcome is not None and outcome.skipped
    assert FakeBackend.served(target.id) == {}


def test_a_create_during_which_the_delete_is_asked_for_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (target,) = load_pool({}).targets
    zone = central_zones.create_zone("racing.example", "hostmaster@example.com")
    create_zone = FakeBackend.create_zone

    def slow_create(self: FakeBackend, what: objects.Zone) -> None:
        # While the target works on the create, the user deletes the zone and
        # the delete job removes it from the target (there is nothing yet).
        central_zones.delete_zone("racing.example")
        self.delete_zone(what)
        create_zone(self, what)

    monkeypatch.setattr(FakeBackend, "create_zone", slow_create)
    create = ZoneActionOnTarget(objects.Action.CREATE, target.id)
    outcome = create.execute(zone_id=zone.id, serial=zone.serial)
    assert TargetOutcome(**outcome).created
    assert FakeBackend.served(target.id) == {"racing.example.": zone.serial}

    # The step after the targets' tasks sees the delete and takes the zone back.
    check = TakeBackIfDeleted([target.id])
    taken_back = check.execute(zone_id=zone.id, **{steps.target_result(target.id): outcome})

    assert taken_back == [target.id]
    assert FakeBackend.served(target.id) == {}


def test_a_create_with_no_delete_asked_is_not_taken_back() -> None:
    (target,) = load_pool({}).targets
    zone = central_zones.create_zone("calm.example", "hostmaster@example.com")
    create = ZoneActionOnTarget(objects.Action.CREATE, target.id)
    outcome = create.execute(zone_id=zone.id, serial=zone.serial)

    check = TakeBackIfDeleted([target.id])
    taken_back = check.execute(zone_id=zone.id, **{steps.target_result(target.id): outcome})

    assert taken_back == []
    assert FakeBackend.served(target.id) == {"calm.example.": zone.serial}
