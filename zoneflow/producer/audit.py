"""The audit: every target asked for the SOA of every zone it should serve.

For the zones of the shards this producer holds, in batches of
``[producer] audit_batch`` zones, each target of a zone's pool that has a
DNS address (``host`` and ``port`` in its options) is asked for the zone's
SOA, every target at once and many questions in flight on each
(:mod:`zoneflow.dns.soa_probe`). What a target answers is judged against
what it should serve:

- a live ACTIVE zone served at its serial (or a later one): nothing to do;
- one served at an older serial, or not served at all (``rndc delzone`` by
  hand, a server rebuilt from scratch): the zone is recovered;
- a zone zoneflow deleted, still served (the target missed the delete): it
  is removed from the pool's targets;
- a target that does not answer: nothing is judged; its health is the
  inspector's business.

Zones a target serves that zoneflow never managed are never asked about,
so never touched. What was found is recorded in the zones' per-target rows
(only where it differs from what they hold), which status reads show.
Recoveries and removals go through central, at most ``recovery_batch`` of
them per audit; the rest are found again at the next one.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import logging
import time
from collections.abc import Callable
from concurrent import futures

from zoneflow import objects
from zoneflow.central import health, upkeep
from zoneflow.central.upkeep import AuditView, KeptZone, TargetUpdate
from zoneflow.dns import soa_probe
from zoneflow.producer import shards
from zoneflow.producer.settings import Settings, utcnow

LOG = logging.getLogger(__name__)

Address = tuple[str, int]
# One question of a batch: the zone, and the target it is asked of.
Question = tuple[KeptZone, str]

NOT_SERVED = "audit: the target does not serve the zone"
STILL_SERVED = "audit: the target still serves the zone, which was deleted"


def behind(found: int, wanted: int) -> str:
    return f"audit: the target serves serial {found}, the zone is at {wanted}"


@dataclasses.dataclass
class AuditReport:
    """What one audit did, for the log and the heartbeat's counters."""

    zones: int = 0
    checks: int = 0
    served: int = 0
    missing: int = 0
    behind: int = 0
    still_served: int = 0
    unanswered: int = 0
    recoveries: int = 0
    removals: int = 0
    # Repairs found but left for the next audit (recovery_batch reached).
    deferred: int = 0
    # False: the shards were given up part-way, the rest left to their new holder.
    complete: bool = True
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.checks / self.seconds if self.seconds else 0.0


@dataclasses.dataclass
class Verdicts:
    """What one batch's answers call for."""

    findings: list[tuple[str, TargetUpdate]] = dataclasses.field(default_factory=list)
    to_recover: dict[str, tuple[KeptZone, int]] = dataclasses.field(default_factory=dict)
    to_remove: dict[str, KeptZone] = dataclasses.field(default_factory=dict)


def target_addresses(pool: objects.Pool) -> dict[str, Address]:
    """Target id -> where it answers DNS, for the pool's targets that say."""
    addresses = {}
    for target in pool.targets:
        host = target.options.get("host")
        if host is not None:
            addresses[target.id] = (str(host), int(target.options.get("port", 53)))
    return addresses


def zones_in_shards(view: AuditView, owned: frozenset[int], count: int) -> list[KeptZone]:
    """The view's zones of these shards, less deleted zones whose name lives again in
    their pool (the live zone of that name is the one the targets should serve) and
    deleted zones of a name deleted again later (one removal is enough)."""
    last_deleted: dict[tuple[str, str], KeptZone] = {}
    for zone in view.zones:
        if zone.deleted:
            key = (zone.pool_id, zone.name)
            if key not in last_deleted or last_deleted[key].serial < zone.serial:
                last_deleted[key] = zone
    return [
        zone
        for zone in view.zones
        if shards.shard_of(zone.id, count) in owned
        and not (
            zone.deleted
            and (
                (zone.pool_id, zone.name) in view.live_names
                or last_deleted[(zone.pool_id, zone.name)] is not zone
            )
        )
    ]


def questions(
    zones: list[KeptZone], addresses: dict[str, dict[str, Address]]
) -> dict[Address, list[Question]]:
    """Per target address, the (zone, target id) asked there, from each zone's pool
    (``addresses``: pool id -> target id -> address)."""
    asked: dict[Address, list[Question]] = {}
    for zone in zones:
        for target_id, address in addresses.get(zone.pool_id, {}).items():
            asked.setdefault(address, []).append((zone, target_id))
    return asked


def judge(
    zone: KeptZone,
    target_id: str,
    found: soa_probe.Finding,
    recorded: tuple[int, str] | None,
    verdicts: Verdicts,
    report: AuditReport,
) -> None:
    """Add what one answer calls for to ``verdicts``."""
    if found is soa_probe.NO_ANSWER:
        report.unanswered += 1
        return
    row: TargetUpdate | None = None
    if zone.deleted:
        if isinstance(found, int):
            report.still_served += 1
            row = (target_id, found, objects.Status.ERROR, STILL_SERVED)
            verdicts.to_remove[zone.id] = zone
        elif recorded is None or recorded[1] != objects.Status.DELETED:
            row = (target_id, 0, objects.Status.DELETED, None)
    elif found is soa_probe.NOT_SERVED or found is soa_probe.NOT_LOADED:
        report.missing += 1
        row = (target_id, 0, objects.Status.ERROR, NOT_SERVED)
        verdicts.to_recover[zone.id] = (zone, zone.serial)
    elif isinstance(found, int) and found < zone.serial:
        report.behind += 1
        row = (target_id, found, objects.Status.ERROR, behind(found, zone.serial))
        verdicts.to_recover[zone.id] = (zone, zone.serial)
    elif isinstance(found, int):
        report.served += 1
        if recorded is None or recorded[1] != objects.Status.ACTIVE or recorded[0] < found:
            row = (target_id, found, objects.Status.ACTIVE, None)
    if row is not None:
        verdicts.findings.append((zone.id, row))


def audit(
    settings: Settings,
    owned: frozenset[int],
    *,
    still_owned: Callable[[], bool] = lambda: True,
) -> AuditReport:
    """Audit the zones of the ``owned`` shards; stop between batches once
    ``still_owned`` says the shards are being given up."""
    started = time.perf_counter()
    report = AuditReport()
    deleted_since = utcnow() - datetime.timedelta(seconds=settings.deleted_zone_retention)
    view = upkeep.audit_view(deleted_since=deleted_since)
    addresses = {pool_id: target_addresses(pool) for pool_id, pool in view.pools.items()}
    zones = zones_in_shards(view, owned, settings.shards)
    report.zones = len(zones)
    budget = settings.recovery_batch
    # Two batches are asked at once, so that the targets are kept busy while
    # the last answers of one (or a lost question's second try) are awaited,
    # and a batch's rows are written while the next batches are asked.
    left = collections.deque(shards.batches(zones, settings.audit_batch))
    asking: collections.deque[futures.Future[Asked]] = collections.deque()
    with (
        futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="audit-ask") as askers,
        futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-rows") as rows,
    ):

        def ask_next() -> None:
            if left and still_owned():
                asking.append(askers.submit(_ask, left.popleft(), addresses, settings))

        ask_next()
        ask_next()
        written: futures.Future[None] | None = None
        while asking:
            asked = asking.popleft().result()
            ask_next()
            verdicts = _judge_all(asked, view, report)
            if written is not None:
                written.result()  # one batch's rows at a time; a failure ends the audit
            written = rows.submit(upkeep.record_findings, verdicts.findings)
            if still_owned():
                budget = _repair(verdicts, budget, report)
        if written is not None:
            written.result()
    report.complete = not left
    report.seconds = time.perf_counter() - started
    LOG.info(
        "audit of %d zones%s: %d checks in %.1f s (%.0f/s); %d missing, %d behind, "
        "%d deleted but served, %d unanswered; %d recoveries and %d removals posted, %d left "
        "for the next audit",
        report.zones,
        "" if report.complete else " (stopped: shards given up)",
        report.checks,
        report.seconds,
        report.rate,
        report.missing,
        report.behind,
        report.still_served,
        report.unanswered,
        report.recoveries,
        report.removals,
        report.deferred,
    )
    return report


# A batch's questions per target address, and what each target said, in order.
Asked = tuple[dict[Address, list[Question]], dict[Address, list[soa_probe.Finding]]]


def _ask(
    batch: list[KeptZone], addresses: dict[str, dict[str, Address]], settings: Settings
) -> Asked:
    asked = questions(batch, addresses)
    wire = {zone.id: soa_probe.wire_name(zone.name) for zone in batch}
    found = soa_probe.serials(
        {address: [wire[zone.id] for zone, _ in pairs] for address, pairs in asked.items()},
        # Two batches are asked at once: together they keep audit_in_flight.
        in_flight=max(1, settings.audit_in_flight // 2),
        timeout=settings.audit_timeout,
        retries=settings.audit_retries,
    )
    return asked, found


def _judge_all(asked: Asked, view: AuditView, report: AuditReport) -> Verdicts:
    questions_by_address, found = asked
    verdicts = Verdicts()
    for address, pairs in questions_by_address.items():
        report.checks += len(pairs)
        for (zone, target_id), finding in zip(pairs, found[address], strict=True):
            recorded = view.recorded.get((zone.id, target_id))
            judge(zone, target_id, finding, recorded, verdicts, report)
        if pairs and all(f is soa_probe.NO_ANSWER for f in found[address]):
            # Not one answer from this address: its health is the inspector's to judge.
            for target_id in sorted({target_id for _zone, target_id in pairs}):
                health.audit_unanswered(target_id, len(pairs))
    return verdicts


def _repair(verdicts: Verdicts, budget: int, report: AuditReport) -> int:
    """Post the batch's recoveries and removals within ``budget``; what is left of it."""
    # Only a zone still ACTIVE at the serial judged is recovered (central checks it
    # under the zone's lock): a change made since has its own job.
    never = utcnow() - datetime.timedelta(days=36500)
    for zone, serial in verdicts.to_recover.values():
        if budget <= 0:
            report.deferred += 1
        elif upkeep.recover(zone, pending_before=never, behind_at=serial):
            report.recoveries += 1
            budget -= 1
    waiting = upkeep.zones_with_waiting_jobs() if verdicts.to_remove else set()
    for zone in verdicts.to_remove.values():
        if budget <= 0:
            report.deferred += 1
        elif (
            zone.id not in waiting
            and not upkeep.job_in_flight(zone)
            and upkeep.remove_from_targets(zone)
        ):
            report.removals += 1
            budget -= 1
    return budget
