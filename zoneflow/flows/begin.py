"""The first task of each zone flow: what the job acts on, and, when the
flow fails, the zone put in ERROR with the reason."""

from __future__ import annotations

import logging
from typing import Any

from taskflow.types import failure as tf_failure

from zoneflow import exceptions, objects
from zoneflow.flows.base import Task, reason, waits_for_database
from zoneflow.flows.scratch import Scratch
from zoneflow.jobs import steps
from zoneflow.storage import outbox as stored_outbox
from zoneflow.storage import status as stored_status
from zoneflow.storage import targets as stored_targets
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import fencing

LOG = logging.getLogger(__name__)


class _Begin(Task):
    """First task of a zone flow; its revert records why the job failed.

    When the flow fails, TaskFlow reverts every task that ran, this one last,
    and it receives the failures: the zone goes to ERROR with their text as
    the reason (if no newer change has been made since). Its action stays, so
    a recovery knows what the zone was meant to become.
    """

    def __init__(self) -> None:
        super().__init__(steps.BEGIN)

    @waits_for_database
    def revert(
        self,
        zone_id: str,
        serial: int,
        flow_failures: dict[str, tf_failure.Failure],
        fence: fencing.Claim = fencing.UNFENCED,
        **_: Any,
    ) -> None:
        if fence.lost():
            return  # the job is another conductor's now: it decides the zone's status
        why = reason(flow_failures)
        if stored_status.set_zone_status(
            zone_id, serial=serial, status=objects.Status.ERROR, error=why
        ):
            LOG.error("zone %s serial %s is ERROR: its job was reverted: %s", zone_id, serial, why)


class BeginZoneAction(_Begin):
    """First task of create-zone, update-zone and delete-zone: the zone's name,
    and the serial the job brings it to (steps.ZONE_SERIAL).

    A create's or update's job is first taken out of the outbox, where the
    zone's updates rode on it while it waited (zoneflow.storage.outbox); then
    the zone is read, so its serial is the latest, with every update that
    rode on the job. An update committed after that writes a job of its own.

    It reads the zone and every target of the job in one statement, and
    leaves them in the run's scratch for the targets' tasks.
    """

    default_provides = ("zone_name", steps.ZONE_SERIAL)

    def __init__(self, target_ids: list[str], *, ridden: bool = False) -> None:
        super().__init__()
        self.target_ids = target_ids
        # A create or update: the zone's updates ride on it until it begins.
        self.ridden = ridden

    @waits_for_database
    def execute(
        self,
        zone_id: str,
        serial: int,
        fence: fencing.Claim = fencing.UNFENCED,
        scratch: Scratch | None = None,
        job_id: str | None = None,
    ) -> tuple[str, int]:
        fence.check()
        if self.ridden:
            stored_outbox.begin_zone_jobs([zone_id], job_id)
        actions = stored_targets.get_target_actions(zone_id, self.target_ids)
        if scratch is not None:
            scratch.targets = actions
        # Any target's row carries the zone; with none left, read it alone.
        zone = next((a.zone for a in actions.values()), None) or stored_zones.get_zone_any(zone_id)
        if zone is None:
            raise exceptions.ZoneNotFound(f"zone {zone_id} no longer exists")
        latest = carried(serial, zone) if self.ridden else serial
        LOG.info("%s of %s at serial %s begins (posted: %s)", self.name, zone.name, latest, serial)
        return zone.name, latest

    @waits_for_database
    def revert(
        self,
        zone_id: str,
        serial: int,
        flow_failures: dict[str, tf_failure.Failure],
        fence: fencing.Claim = fencing.UNFENCED,
        result: Any = None,
        **_: Any,
    ) -> None:
        # The job speaks for the serial it began at, if it got that far.
        began = _began_at(result)
        super().revert(zone_id, serial if began is None else began, flow_failures, fence=fence)


def carried(serial: int, zone: objects.Zone) -> int:
    """The serial a create or update posted at ``serial`` brings ``zone`` to: the
    zone's own, with the updates that rode on the job; but not a delete's, which
    its own job carries out (the zone is taken back: see TakeBackIfDeleted)."""
    if zone.action == objects.Action.DELETE or zone.status == objects.Status.DELETED:
        return serial
    # Serials only grow: never below the one the job was posted with.
    return max(serial, zone.serial)


def _began_at(result: Any) -> int | None:
    """The serial BeginZoneAction's result names, or None if it has none (it failed)."""
    if isinstance(result, (list, tuple)) and len(result) == 2:
        return int(result[1])
    return None


class BeginRecovery(_Begin):
    """First task of recover-zone: the zone's name, and the state every target
    should be brought to: DELETED for a zone whose action is DELETE, else ACTIVE.
    """

    default_provides = ("zone_name", "wanted")

    @waits_for_database
    def execute(
        self, zone_id: str, serial: int, fence: fencing.Claim = fencing.UNFENCED
    ) -> tuple[str, str]:
        fence.check()
        zone = stored_zones.get_zone_any(zone_id)
        if zone is None:
            raise exceptions.ZoneNotFound(f"zone {zone_id} no longer exists")
        wanted = objects.Status.DELETED if zone.wanted_gone else objects.Status.ACTIVE
        LOG.info("recovery of %s at serial %s begins: wanted %s", zone.name, serial, wanted)
        return zone.name, wanted
