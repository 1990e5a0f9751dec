"""Each serial's change as record differences, kept for IXFR (the newest
``[storage] zone_change_history``).
"""

from __future__ import annotations

from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from zoneflow import objects
from zoneflow.storage import db, models, options

CONF = options.CONF


def served(
    zone: models.Zone | objects.Zone, row: models.RecordSet | objects.RecordSet
) -> set[objects.Record]:
    """The records a recordset (its row, or as written) puts in the zone, with the TTL
    they are served with."""
    ttl = row.ttl if row.ttl is not None else zone.ttl
    data = row.records if isinstance(row, objects.RecordSet) else [r.data for r in row.records]
    return {(row.name, ttl, row.type, value) for value in data}


_ZONE_CHANGES = cast(sa.Table, models.ZoneChange.__table__)


def record_change(
    session: Session,
    zone_id: str,
    serials: tuple[int, int],
    *,
    before: set[objects.Record] | None = None,
    after: set[objects.Record] | None = None,
) -> None:
    """Write what a serial changed, for IXFR; keep the newest ``zone_change_history``.

    Without ``before`` and ``after`` the change is not incremental: clients
    older than it get a full transfer.
    """
    previous, serial = serials
    incremental = before is not None or after is not None
    before, after = before or set(), after or set()
    # Core statements built once: the ORM's flush of one new object, or a statement
    # built at each call, cost more CPU than the round trip (issue 17).
    session.execute(
        _INSERT_CHANGE,
        {
            "zone_id": zone_id,
            "previous_serial": previous,
            "serial": serial,
            "incremental": incremental,
            "removed": [list(r) for r in sorted(before - after)],
            "added": [list(r) for r in sorted(after - before)],
        },
    )
    session.execute(
        _TRIM_CHANGES, {"zone_id": zone_id, "skipped": CONF.storage.zone_change_history - 1}
    )


_INSERT_CHANGE = sa.insert(_ZONE_CHANGES)
# The older changes go in one statement: the id of the oldest one kept is asked
# inside the DELETE (NULL while the zone has fewer: none goes).
_TRIM_CHANGES = sa.delete(_ZONE_CHANGES).where(
    _ZONE_CHANGES.c.zone_id == sa.bindparam("zone_id"),
    _ZONE_CHANGES.c.id
    < (
        sa.select(_ZONE_CHANGES.c.id)
        .where(_ZONE_CHANGES.c.zone_id == sa.bindparam("zone_id"))
        .order_by(_ZONE_CHANGES.c.id.desc())
        .offset(sa.bindparam("skipped"))
        .limit(1)
        .scalar_subquery()
    ),
)


# The changes from the newest one that starts at :serial on, oldest first; none
# when no change starts there. One Core statement: mdns asks it for every IXFR.
_CHANGES_SINCE = (
    sa.select(
        _ZONE_CHANGES.c.previous_serial,
        _ZONE_CHANGES.c.serial,
        _ZONE_CHANGES.c.incremental,
        _ZONE_CHANGES.c.removed,
        _ZONE_CHANGES.c.added,
    )
    .where(
        _ZONE_CHANGES.c.zone_id == sa.bindparam("zone_id"),
        _ZONE_CHANGES.c.id
        >= sa.select(sa.func.max(_ZONE_CHANGES.c.id))
        .where(
            _ZONE_CHANGES.c.zone_id == sa.bindparam("zone_id"),
            _ZONE_CHANGES.c.previous_serial == sa.bindparam("serial"),
        )
        .scalar_subquery(),
    )
    .order_by(_ZONE_CHANGES.c.id)
)


def zone_changes_since(zone_id: str, serial: int) -> list[objects.ZoneChange] | None:
    """The changes that lead from ``serial`` to the zone's newest, oldest first.

    None when the history does not reach back to ``serial``, or when one of
    the changes cannot be told as record differences: the client needs the
    whole zone then.
    """
    with db.connection() as conn:
        rows = conn.execute(_CHANGES_SINCE, {"zone_id": zone_id, "serial": serial}).all()
    if not rows:
        return None
    changes, expected = [], serial
    for row in rows:
        if not row.incremental or row.previous_serial != expected:
            return None
        changes.append(
            objects.ZoneChange(
                previous_serial=row.previous_serial,
                serial=row.serial,
                incremental=True,
                removed=tuple(cast(objects.Record, tuple(r)) for r in row.removed),
                added=tuple(cast(objects.Record, tuple(r)) for r in row.added),
            )
        )
        expected = row.serial
    return changes
