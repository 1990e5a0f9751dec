"""What each target of a zone's pool serves, and each target of a pool over all its
zones: read from the propagation model (zoneflow.model).

The model holds what the zones' jobs, the audit and the inspector last
recorded per target (the serial its nameserver was seen serving, its state,
the last error), and what mdns saw since (a target fetching a serial, asking
for a zone's SOA). A long-running process (the API server, all-in-one) keeps
one fed by the event stream; a one-shot one (the CLI) builds the part it
reads from storage. A target no job has reached yet has no row and is shown
PENDING; one that never served the zone has serial None.

Built once here for both readers: the API shows every target of the pool
(:attr:`ZoneServing.targets`), the CLI lists the rows as stored with each
target's name (:attr:`ZoneServing.rows`, :attr:`ZoneServing.labels`).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Mapping
from typing import Any

from zoneflow import model, objects
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import zones as stored_zones


def _picture(*, pool_id: str | None = None, zone_id: str | None = None) -> model.Picture:
    """The running model, once up to date; else what storage holds of the pool or zone."""
    live = model.running()
    if live is not None:
        return live.settled()
    return model.Picture.load(pool_id=pool_id, zone_ids=None if zone_id is None else [zone_id])


@dataclasses.dataclass(frozen=True)
class TargetServing:
    target_id: str
    label: str
    type: str
    serial: int | None
    status: str
    error: str | None
    updated_at: datetime.datetime | None
    # The target serves the zone's current serial (or a later one).
    current: bool
    # The target is no longer in the zone's pool (its row outlived it).
    in_pool: bool = True
    # When zoneflow last had news of the target with this zone, and from what
    # ("recorded": a row; AXFR, IXFR, IXFR-QUERY, SOA: what mdns saw).
    last_seen: datetime.datetime | None = None
    seen_by: str | None = None


@dataclasses.dataclass(frozen=True)
class ZoneServing:
    zone: objects.Zone
    targets: tuple[TargetServing, ...]
    # The rows as stored: one per target a job has reached, its serial as recorded.
    rows: tuple[objects.TargetStatus, ...]
    # What to call each target of the pool, a retired one saying so.
    labels: Mapping[str, str]


def zone_serving(ref: str, *, project_id: str | None = None) -> ZoneServing:
    """Each target of the zone's pool, and what it was last seen serving."""
    zone = stored_reads.get_zone(ref, project_id=project_id)
    pool = stored_pools.get_pool(zone.pool_id)
    picture = _picture(zone_id=zone.id)
    labels = {t.id: t.label for t in pool.targets}
    labels.update({t.id: f"{t.label} (retired)" for t in pool.retired_targets})
    # A target gone from the pool's rows took its rows with it (storage removes them
    # with the target, publishing nothing): a running model may still hold them.
    stored = tuple(row for row in picture.rows(zone.id) if row.target_id in labels)
    kinds = {t.id: t.type for t in pool.targets}
    targets = tuple(
        _serving(served, labels[served.target_id], kinds)
        for served in picture.serving(zone.id, pool, wanted=zone.serial)
        if served.target_id in labels
    )
    return ZoneServing(zone, targets, stored, labels)


def _serving(served: model.Serving, label: str, kinds: Mapping[str, str]) -> TargetServing:
    return TargetServing(
        served.target_id,
        label,
        kinds.get(served.target_id, ""),
        served.serial,
        served.status,
        served.error,
        served.updated_at,
        served.propagation == model.Propagation.SERVED,
        served.target_id in kinds,
        served.last_seen,
        served.seen_by,
    )


@dataclasses.dataclass(frozen=True)
class PoolServing:
    """Each target of a pool over the pool's live zones."""

    pool: objects.Pool
    zones: int
    targets: tuple[tuple[objects.PoolTarget, model.TargetSummary], ...]

    def rows(self, when: Callable[[datetime.datetime | None], Any]) -> list[dict[str, Any]]:
        """One row per target, as the CLI and the API show it (``when`` renders a time)."""
        return [
            {
                "target_id": target.id,
                "target": target.label,
                "type": target.type,
                "served": summary.served,
                "behind": summary.behind,
                "missing": summary.missing,
                "error": summary.error,
                "state": summary.state,
                "last_seen": when(summary.last_seen),
            }
            for target, summary in self.targets
        ]


def pool_serving(ref: str) -> PoolServing:
    """How many of the pool's zones each target serves at the serial wanted, how many
    it has behind, missing or in error, its state and when it was last seen."""
    pool = stored_pools.get_pool(ref)
    picture = _picture(pool_id=pool.id)
    summaries = picture.summary(pool)
    return PoolServing(
        pool, picture.zone_count(pool.id), tuple(zip(pool.targets, summaries, strict=True))
    )


# --- a target over its pool's zones (the dashboard's target page, issue 16) --------------


@dataclasses.dataclass(frozen=True)
class ZoneLag:
    """One zone a target does not serve at the zone's serial."""

    zone_id: str
    zone_name: str
    project_id: str | None
    wanted: int
    serving: TargetServing


def target_lagging(target: objects.PoolTarget, *, limit: int = 200) -> list[ZoneLag]:
    """The zones of the target's pool it serves behind, misses or failed on (``limit``
    of them at most, by name), as the propagation model says."""
    pool = stored_pools.get_pool(target.pool_id)
    picture = _picture(pool_id=pool.id)
    kinds = {t.id: t.type for t in pool.targets}
    lagging: list[tuple[str, int, model.Serving]] = []
    for zone_id, wanted in picture.zones().items():
        if wanted.pool_id != pool.id:
            continue
        for served in picture.serving(zone_id, pool, wanted=wanted.serial):
            if served.target_id == target.id and served.propagation != model.Propagation.SERVED:
                lagging.append((zone_id, wanted.serial, served))
    zones = {
        zone_id: zone
        for zone_id, _, _ in lagging[:limit]
        if (zone := stored_zones.get_zone_any(zone_id)) is not None
    }
    found = [
        ZoneLag(
            zone_id,
            zones[zone_id].name,
            zones[zone_id].project_id,
            serial,
            _serving(served, target.label, kinds),
        )
        for zone_id, serial, served in lagging[:limit]
        if zone_id in zones
    ]
    return sorted(found, key=lambda lag: lag.zone_name)
