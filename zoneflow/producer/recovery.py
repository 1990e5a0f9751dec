"""The recovery pass: zones left in ERROR, or PENDING with nothing working on them.

A zone ends in ERROR when its job failed (a target down under a 100%
threshold, say), and nothing retries it; a zone stays PENDING for good when
its job was lost. Each pass takes the zones of this producer's shards in
ERROR, or PENDING for longer than ``[producer] pending_age``, oldest first,
and posts a recover-zone job (through central) for each that has no job in
the outbox nor one on the board or running for its serial: at most
``recovery_batch`` per pass, so a mass failure is worked through at a
bounded rate rather than flooding the conductors.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Callable

from zoneflow.central import upkeep
from zoneflow.producer import shards
from zoneflow.producer.settings import Settings, utcnow

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class RecoveryReport:
    candidates: int = 0
    posted: int = 0
    # Left alone: a job waits in the outbox, or one is on the board or running.
    in_hand: int = 0


def recover(
    settings: Settings, owned: frozenset[int], *, still_owned: Callable[[], bool] = lambda: True
) -> RecoveryReport:
    report = RecoveryReport()
    pending_before = utcnow() - datetime.timedelta(seconds=settings.pending_age)
    zones = [
        zone
        for zone in upkeep.zones_to_recover(pending_before=pending_before)
        if shards.shard_of(zone.id, settings.shards) in owned
    ]
    report.candidates = len(zones)
    if not zones:
        return report
    waiting = upkeep.zones_with_waiting_jobs()
    for zone in zones:
        if report.posted >= settings.recovery_batch or not still_owned():
            break
        if zone.id in waiting or upkeep.job_in_flight(zone):
            report.in_hand += 1
        elif upkeep.recover(zone, pending_before=pending_before):
            LOG.info("recovering %s (%s, serial %s)", zone.name, zone.status, zone.serial)
            report.posted += 1
    LOG.info(
        "recovery: %d zones in ERROR or left PENDING, %d recover-zone jobs posted, %d in hand",
        report.candidates,
        report.posted,
        report.in_hand,
    )
    return report
