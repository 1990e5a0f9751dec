"""Jobs of one zone run in any order: a late create must not undo the zone's delete."""

from __future__ import annotations

from tests.unit.conftest import load_pool
from zoneflow import objects
from zoneflow.backends.impl_fake import FakeBackend
from zoneflow.central import api as central
from zoneflow.flows import tasks


def test_a_create_that_runs_after_the_delete_was_asked_for_leaves_the_target_alone() -> None:
    (target,) = load_pool({}).targets
    zone = central.create_zone("late.example", "hostmaster@example.com")
    # Deleted before the create job ran (its conductor died, or it waited on
    # the board): the delete job may already have removed the zone from the
    # target, finding nothing there, and not yet have finished.
    central.delete_zone("late.example")

    create = tasks.ZoneActionOnTarget(objects.CREATE, target.id)
    outcome = create.execute(zone_id=zone.id, serial=zone.serial)

    assert outcome["skipped"]
    assert FakeBackend.served(target.id) == {}
