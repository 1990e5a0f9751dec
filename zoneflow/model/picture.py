"""The propagation model's picture: per (zone, target), what is served, and when it
was last seen; per zone, the serial wanted.

It is built from storage (:func:`Picture.load`) and then kept fresh by the
event stream (:meth:`Picture.apply`): zones and recordsets change the serial
wanted, per-target rows (written by jobs, the audit, the inspector) replace a
target's row, mdns's transfers and the queries it saw raise what a target is
known to serve and when it was last seen, and the inspector's target events
give a target's state.

What a target serves is judged when it is read (:meth:`Picture.serving`), from
the newest of what was recorded and what mdns saw after it:

- a row ACTIVE at a serial: served at that serial (behind if older than wanted);
- a row ERROR: error; PENDING or BEHIND: behind; DELETED, MISSING or no row: missing;
- a transfer mdns completed, or an IXFR query (which carries the serial the
  target serves), later than the row: served at that serial.

mdns knows a target by the address it comes from, so its news is attributed
to the zone's pool target whose ``host`` option is that address, and only
when exactly one target of the pool has it (several targets behind one
address cannot be told apart: their rows alone speak for them).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import threading
from collections.abc import Iterable, Mapping

from zoneflow import objects
from zoneflow.storage import events as stored_events
from zoneflow.storage import propagation as stored


class Propagation(enum.StrEnum):
    """Where one target stands with one zone."""

    SERVED = "served"  # at the serial wanted, or later
    BEHIND = "behind"  # an older serial, or not yet verified
    MISSING = "missing"  # not served there at all
    ERROR = "error"  # the last action on the target failed


# Row statuses that say the target does not have the zone (DELETED: removed by a
# job; MISSING: an audit found it gone) and that it is behind (PENDING: not yet
# verified; BEHIND: marked so by the inspector while the target was down).
_MISSING_STATUSES = frozenset({objects.Status.DELETED, "MISSING"})
_ERROR_STATUSES = frozenset({objects.Status.ERROR})
# mdns's news that says which serial a target has: a transfer it completed, or
# the serial an IXFR query carries. (An SOA query says only that it was there.)
_SERIAL_NEWS = frozenset({"AXFR", "IXFR", "IXFR-AXFR", "IXFR-QUERY"})
_MDNS_TABLES = (stored_events.TRANSFERS_TABLE, stored_events.TRANSFER_QUERIES_TABLE)


@dataclasses.dataclass(frozen=True)
class Serving:
    """What the model says of one target of one zone."""

    zone_id: str
    target_id: str
    # The serial the target is known to serve (None: none yet).
    serial: int | None
    # The state as last recorded (a job, the audit, the inspector), or ACTIVE
    # when mdns saw it fetch a serial since.
    status: str
    error: str | None
    updated_at: datetime.datetime | None
    propagation: Propagation
    # When zoneflow last had news of the target with this zone, and from what:
    # "recorded" (a row), or what mdns saw (AXFR, IXFR, IXFR-QUERY, SOA).
    last_seen: datetime.datetime | None
    seen_by: str | None


@dataclasses.dataclass(frozen=True)
class TargetState:
    """A target's health as the inspector last published it (UP, DOWN, ...)."""

    state: str
    at: datetime.datetime | None


def target_state(health: str, maintenance: str | None) -> str:
    """A target's state as pool status shows it: UP or DOWN, and its maintenance."""
    if maintenance == objects.Maintenance.ON:
        return f"{health}, in maintenance"
    if maintenance == objects.Maintenance.CATCHING_UP:
        return f"{health}, catching up"
    return health


@dataclasses.dataclass(frozen=True)
class TargetSummary:
    """One target of a pool over all the pool's zones."""

    target_id: str
    served: int
    behind: int
    missing: int
    error: int
    # The inspector's word (None until it has published one).
    state: str | None
    last_seen: datetime.datetime | None


def judge(
    target_id: str,
    zone_id: str,
    wanted: int | None,
    row: objects.TargetStatus | None,
    news: Iterable[objects.ZoneTransfer | None] = (),
) -> Serving:
    """What one target serves of a zone whose serial wanted is ``wanted`` (None: not
    known), from its row and what mdns saw (``news``)."""
    serial = row.serial or None if row is not None else None
    status = row.status if row is not None else objects.Status.PENDING
    error = row.error if row is not None else None
    recorded_at = row.updated_at if row is not None else None
    last_seen, seen_by = recorded_at, "recorded" if row is not None else None
    fetched: objects.ZoneTransfer | None = None
    for seen in news:
        if seen is None:
            continue
        if last_seen is None or seen.last_at > last_seen:
            last_seen, seen_by = seen.last_at, seen.kind
        newer = recorded_at is None or seen.last_at > recorded_at
        fetches = newer and seen.kind in _SERIAL_NEWS and seen.completed and seen.serial
        if fetches and (fetched is None or seen.last_at > fetched.last_at):
            fetched = seen
    if fetched is not None:
        # The target fetched (or announced) this serial after its row was written.
        kept = serial if status == objects.Status.ACTIVE and serial else 0
        serial, status, error = max(fetched.serial, kept), objects.Status.ACTIVE, None
    return Serving(
        zone_id,
        target_id,
        serial,
        status,
        error,
        recorded_at,
        _propagation(status, serial, wanted, row is not None or fetched is not None),
        last_seen,
        seen_by,
    )


def _propagation(status: str, serial: int | None, wanted: int | None, known: bool) -> Propagation:
    if not known or status in _MISSING_STATUSES:
        return Propagation.MISSING
    if status in _ERROR_STATUSES:
        return Propagation.ERROR
    if status == objects.Status.ACTIVE and serial:
        return Propagation.SERVED if wanted is None or serial >= wanted else Propagation.BEHIND
    # PENDING, BEHIND, or a word this model does not know yet: never shown as served.
    return Propagation.BEHIND


def _time(text: object) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(text) if isinstance(text, str) else None


def _transfer(value: Mapping[str, object]) -> objects.ZoneTransfer:
    return objects.ZoneTransfer(
        source=str(value["source"]),
        serial=int(value["serial"]),  # type: ignore[call-overload]
        kind=str(value["kind"]),
        first_at=_time(value["first_at"]),  # type: ignore[arg-type]
        last_at=_time(value["last_at"]),  # type: ignore[arg-type]
        count=int(value["count"]),  # type: ignore[call-overload]
        completed=bool(value["completed"]),
    )


def _row(value: Mapping[str, object]) -> objects.TargetStatus:
    return objects.TargetStatus(
        zone_id=str(value["zone_id"]),
        target_id=str(value["target_id"]),
        serial=int(value["serial"] or 0),  # type: ignore[call-overload]
        status=str(value["status"]),
        error=None if value["error"] is None else str(value["error"]),
        updated_at=_time(value["updated_at"]),
    )


class Picture:
    """The model's state, safe to read and change from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._zones: dict[str, stored.Wanted] = {}
        self._by_pool: dict[str, set[str]] = {}
        # zone id -> target id -> its row as stored.
        self._rows: dict[str, dict[str, objects.TargetStatus]] = {}
        # zone id -> client address -> (last transfer, last query) mdns saw.
        self._seen: dict[str, dict[str, list[objects.ZoneTransfer | None]]] = {}
        self._targets: dict[str, TargetState] = {}

    # --- building and feeding ----------------------------------------------------

    @classmethod
    def load(cls, *, pool_id: str | None = None, zone_ids: list[str] | None = None) -> Picture:
        """The picture storage holds (of one pool, or of these zones; else all)."""
        picture = cls()
        picture.replace(stored.read(pool_id=pool_id, zone_ids=zone_ids))
        return picture

    def replace(self, read: stored.Picture) -> None:
        """Start again from what storage holds."""
        with self._lock:
            self._zones, self._by_pool, self._rows, self._seen = {}, {}, {}, {}
            for zone in read.zones:
                self._set_zone(zone)
            for row in read.rows:
                self._rows.setdefault(row.zone_id, {})[row.target_id] = row
            for zone_id, seen in read.transfers:
                self._note(zone_id, seen, query=False)
            self._targets = {
                t.target_id: TargetState(target_state(t.health, t.maintenance), t.since)
                for t in read.targets
            }

    def take_queries(self, older: Picture) -> None:
        """Keep what ``older`` (the picture this one replaces) knows only from the
        stream: the queries mdns saw targets make, which are published, not stored."""
        with older._lock:
            queries = [
                (zone_id, query)
                for zone_id, seen in older._seen.items()
                for _, query in seen.values()
                if query is not None
            ]
        with self._lock:
            for zone_id, query in queries:
                if zone_id in self._zones:
                    self._note(zone_id, query, query=True)

    def frozen(self) -> Picture:
        """A copy of the zones and per-target rows (what :meth:`drift` compares), to
        compare later while this picture goes on changing."""
        copy = Picture()
        with self._lock:
            copy._zones = dict(self._zones)
            copy._rows = {zone_id: dict(rows) for zone_id, rows in self._rows.items()}
        return copy

    def drift(self, other: Picture) -> int:
        """How many zones (their serial wanted) and per-target rows (serial, status,
        error) differ between this picture and ``other``."""
        with self._lock:
            mine = self._compared()
        with other._lock:
            theirs = other._compared()
        return sum(mine.get(key) != theirs.get(key) for key in mine.keys() | theirs.keys())

    def _compared(self) -> dict[tuple[str, str], tuple[object, ...]]:
        """What :meth:`drift` compares: per zone, per (zone, target)."""
        compared: dict[tuple[str, str], tuple[object, ...]] = {
            (zone_id, ""): (zone.pool_id, zone.serial) for zone_id, zone in self._zones.items()
        }
        for zone_id, rows in self._rows.items():
            for target_id, row in rows.items():
                compared[(zone_id, target_id)] = (row.serial, row.status, row.error)
        return compared

    def apply(self, event: objects.Event) -> None:
        """Bring the picture up to date with one event (in commit order)."""
        with self._lock:
            if event.table == "zones":
                self._apply_zone(event)
            elif event.table == "recordsets" and event.zone_id in self._zones:
                zone = self._zones[event.zone_id]
                serial = int(event.value.get("serial") or 0)
                if serial > zone.serial:
                    self._set_zone(dataclasses.replace(zone, serial=serial))
            elif event.table == stored_events.TARGET_STATUS_TABLE:
                # One write of a zone's per-target rows, each as stored.
                for value in event.value.get("targets", {}).values():
                    row = _row(value)
                    self._rows.setdefault(row.zone_id, {})[row.target_id] = row
            elif event.table in _MDNS_TABLES and event.zone_id is not None:
                query = event.table == stored_events.TRANSFER_QUERIES_TABLE
                self._note(event.zone_id, _transfer(event.value), query=query)
            elif event.table == stored_events.TARGETS_TABLE and (
                event.action == stored_events.TARGET_REMOVED
            ):
                # A target deleted with its per-zone rows (a pool update, a drain's end).
                self._drop_target(event.key)
            elif event.topic == objects.EventTopic.TARGET:
                # The inspector's: a target event's key is the target's id, its value
                # the target's health and maintenance (its action what happened).
                health = event.value.get("health", event.action)
                state = target_state(str(health), event.value.get("maintenance"))
                self._targets[event.key] = TargetState(state, event.created_at)
                self._apply_marks(event, str(health))

    def _apply_marks(self, event: objects.Event, health: str) -> None:
        """What the same transaction as a target event did to the target's rows, in
        statements that publish no row events (zoneflow.storage.health): down or in
        maintenance, its ACTIVE rows went BEHIND; counted again, its BEHIND rows of
        zones it still serves as they are went back to ACTIVE."""
        action, maintenance = event.action, event.value.get("maintenance")
        if action == objects.TargetHealth.DOWN:
            self._mark_behind(event.key, str(event.value.get("reason")), event.created_at)
        elif action == stored_events.target_maintenance(objects.Maintenance.ON):
            self._mark_behind(event.key, "in maintenance", event.created_at)
        elif (
            (action == objects.TargetHealth.UP and maintenance != objects.Maintenance.ON)
            or (
                action == stored_events.target_maintenance(objects.Maintenance.CATCHING_UP)
                and health == objects.TargetHealth.UP
            )
            or action == stored_events.TARGET_COUNTED
        ):
            self._restore_current(event.key)

    def _mark_behind(self, target_id: str, reason: str, at: datetime.datetime | None) -> None:
        for rows in self._rows.values():
            row = rows.get(target_id)
            if row is not None and row.status == objects.Status.ACTIVE:
                rows[target_id] = dataclasses.replace(
                    row, status=objects.BEHIND, error=reason, updated_at=at
                )

    def _restore_current(self, target_id: str) -> None:
        for zone_id, rows in self._rows.items():
            row, zone = rows.get(target_id), self._zones.get(zone_id)
            if (
                row is not None
                and row.status == objects.BEHIND
                and zone is not None
                and zone.serial <= row.serial
            ):
                rows[target_id] = dataclasses.replace(row, status=objects.Status.ACTIVE, error=None)

    def _drop_target(self, target_id: str) -> None:
        self._targets.pop(target_id, None)
        for rows in self._rows.values():
            rows.pop(target_id, None)

    def _apply_zone(self, event: objects.Event) -> None:
        value = event.value
        if event.action == objects.Status.DELETED or value.get("status") == objects.Status.DELETED:
            self._drop_zone(event.key)
            return
        self._set_zone(
            stored.Wanted(
                zone_id=event.key,
                pool_id=str(value["pool_id"]),
                project_id=value.get("project_id"),
                serial=int(value["serial"]),
            )
        )

    def _set_zone(self, zone: stored.Wanted) -> None:
        before = self._zones.get(zone.zone_id)
        if before is not None and before.pool_id != zone.pool_id:
            self._by_pool.get(before.pool_id, set()).discard(zone.zone_id)
        self._zones[zone.zone_id] = zone
        self._by_pool.setdefault(zone.pool_id, set()).add(zone.zone_id)

    def _drop_zone(self, zone_id: str) -> None:
        zone = self._zones.pop(zone_id, None)
        if zone is not None:
            self._by_pool.get(zone.pool_id, set()).discard(zone_id)
        self._rows.pop(zone_id, None)
        self._seen.pop(zone_id, None)

    def _note(self, zone_id: str, seen: objects.ZoneTransfer, *, query: bool) -> None:
        pair = self._seen.setdefault(zone_id, {}).setdefault(seen.source, [None, None])
        pair[1 if query else 0] = seen

    # --- reading -----------------------------------------------------------------

    def zones(self) -> dict[str, stored.Wanted]:
        with self._lock:
            return dict(self._zones)

    def zone_count(self, pool_id: str) -> int:
        with self._lock:
            return len(self._by_pool.get(pool_id, ()))

    def rows(self, zone_id: str) -> list[objects.TargetStatus]:
        """The zone's per-target rows as stored (as their events last said)."""
        with self._lock:
            return list(self._rows.get(zone_id, {}).values())

    def serving(
        self, zone_id: str, pool: objects.Pool, *, wanted: int | None = None
    ) -> list[Serving]:
        """What each target of ``pool`` serves of the zone, and each other target that
        has a row of it (one that left the pool). ``wanted``: the zone's serial, when
        the caller read it (else the model's)."""
        hosts = _unique_hosts(pool)
        with self._lock:
            zone = self._zones.get(zone_id)
            if wanted is None and zone is not None:
                wanted = zone.serial
            rows = dict(self._rows.get(zone_id, {}))
            seen = self._seen.get(zone_id, {})
            found = [
                judge(t.id, zone_id, wanted, rows.pop(t.id, None), _news(seen, hosts, t))
                for t in pool.targets
            ]
        found += [judge(target_id, zone_id, wanted, row) for target_id, row in rows.items()]
        return found

    def summary(self, pool: objects.Pool) -> list[TargetSummary]:
        """Each target of ``pool`` over the pool's live zones."""
        hosts = _unique_hosts(pool)
        counts = {t.id: dict.fromkeys(Propagation, 0) for t in pool.targets}
        last: dict[str, datetime.datetime | None] = dict.fromkeys(counts)
        no_rows: dict[str, objects.TargetStatus] = {}
        with self._lock:
            for zone_id in self._by_pool.get(pool.id, ()):
                wanted = self._zones[zone_id].serial
                rows = self._rows.get(zone_id, no_rows)
                seen = self._seen.get(zone_id)
                for target in pool.targets:
                    row = rows.get(target.id)
                    if seen is None:
                        # Most zones: a row alone, judged without building a Serving
                        # (a pool of 100,000 zones is read under the lock).
                        known = row is not None
                        status, serial = (row.status, row.serial) if row else ("", None)
                        counts[target.id][_propagation(status, serial, wanted, known)] += 1
                        at = row.updated_at if row is not None else None
                    else:
                        served = judge(target.id, zone_id, wanted, row, _news(seen, hosts, target))
                        counts[target.id][served.propagation] += 1
                        at = served.last_seen
                    before = last[target.id]
                    if at is not None and (before is None or at > before):
                        last[target.id] = at
            states = dict(self._targets)
        summaries = []
        for target in pool.targets:
            state = states.get(target.id)
            last[target.id] = _latest(last[target.id], None if state is None else state.at)
            count = counts[target.id]
            summaries.append(
                TargetSummary(
                    target.id,
                    served=count[Propagation.SERVED],
                    behind=count[Propagation.BEHIND],
                    missing=count[Propagation.MISSING],
                    error=count[Propagation.ERROR],
                    state=None if state is None else state.state,
                    last_seen=last[target.id],
                )
            )
        return summaries


def _unique_hosts(pool: objects.Pool) -> dict[str, str]:
    """Each target's address as mdns sees it, for the targets that are alone at theirs."""
    by_host: dict[str, list[str]] = {}
    for target in pool.targets:
        host = target.options.get("host")
        if host is not None:
            by_host.setdefault(str(host), []).append(target.id)
    return {ids[0]: host for host, ids in by_host.items() if len(ids) == 1}


def _news(
    seen: Mapping[str, list[objects.ZoneTransfer | None]],
    hosts: Mapping[str, str],
    target: objects.PoolTarget,
) -> list[objects.ZoneTransfer | None]:
    """What mdns saw of the zone from the target's address (if it is alone there)."""
    host = hosts.get(target.id)
    return [] if host is None else seen.get(host, [])


def _latest(a: datetime.datetime | None, b: datetime.datetime | None) -> datetime.datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)
