"""The SOA and apex NS recordsets of every zone, listed beside the stored ones.

Designate's central writes a zone's SOA and apex NS as recordsets it marks
managed, and its API lists them with the others. zoneflow keeps no rows for
them: mdns renders them from the zone and its pool (:mod:`zoneflow.dns.zone`),
so no copy can drift. Here they are selected from the zones table as rows
shaped like the recordsets table's, and a union of both is what a list of
recordsets filters, sorts and pages in one query.

A managed recordset's id is its zone's id with the UUID version digit
replaced ("a" for the SOA, "b" for the NS): no uuid4 (every stored
recordset's id) has those, so the ids never collide, stay the same for the
zone's life, and SQL can compute them, which keeps keyset paging in the
database. Records stay empty here; central fills them from the zone and pool
as mdns renders them.

Their fields: ``ttl`` None (the zone's TTL applies, as for Designate's),
``serial`` and timestamps the zone's, no description. The SOA changes with
every change to the zone, so its status and action are the zone's. The NS
set changes only with the pool's ns_records: it is PENDING with the zone
while the zone is being created or deleted, ACTIVE otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from zoneflow import objects
from zoneflow.storage import conversions, db, models, queries
from zoneflow.storage.recordsets import recordset_query

SOA = "SOA"
NS = "NS"
# The digit that replaces the zone id's UUID version digit, per managed type.
_DIGITS = {SOA: "a", NS: "b"}
_VERSION_AT = 14  # index of the version digit in a UUID's text


def managed_id(zone_id: str, rtype: str) -> str:
    """The id of a zone's managed SOA or NS recordset."""
    return zone_id[:_VERSION_AT] + _DIGITS[rtype] + zone_id[_VERSION_AT + 1 :]


def zone_id_of(recordset_id: str) -> str | None:
    """The zone id a managed recordset id was made from (zones have uuid4 ids), or
    None: the id is not a managed recordset's."""
    if recordset_id[_VERSION_AT : _VERSION_AT + 1] not in _DIGITS.values():
        return None
    return recordset_id[:_VERSION_AT] + "4" + recordset_id[_VERSION_AT + 1 :]


def _managed_id_sql(rtype: str) -> sa.ColumnElement[str]:
    zone_id = models.Zone.id
    return (
        sa.func.substr(zone_id, 1, _VERSION_AT)
        + sa.literal(_DIGITS[rtype])
        + sa.func.substr(zone_id, _VERSION_AT + 2)
    )


def _managed_select(rtype: str, data_pools: Sequence[str] | None) -> sa.Select[Any]:
    zone = models.Zone
    if rtype == SOA:
        status: Any = zone.status
        action: Any = zone.action
    else:
        settling = zone.action.in_(("CREATE", "DELETE"))
        status = sa.case((settling, zone.status), else_=sa.literal("ACTIVE"))
        action = sa.case((settling, zone.action), else_=sa.literal("NONE"))
    query: sa.Select[Any] = sa.select(
        _managed_id_sql(rtype).label("id"),
        zone.id.label("zone_id"),
        zone.name.label("name"),
        sa.literal(rtype).label("type"),
        sa.null().label("ttl"),
        zone.serial.label("serial"),
        status.label("status"),
        action.label("action"),
        zone.created_at.label("created_at"),
        zone.updated_at.label("updated_at"),
        sa.null().label("description"),
        zone.version.label("version"),
        sa.literal(True).label("managed"),
    ).where(zone.deleted == models.LIVE)
    if data_pools is not None:
        if rtype == SOA or not data_pools:
            # The SOA's text is built from the zone in Python, not in SQL: the
            # data filter does not look into it. A false condition is one the
            # planner drops the branch for, without reading the zones.
            query = query.where(sa.false())
        else:
            query = query.where(zone.pool_id.in_(data_pools))
    return query


def _pools_serving(session: Session, data: str | int) -> list[str]:
    """The pools with an ns_records hostname matching a ``data`` filter: whose
    zones' NS sets match it (a small table, read before the list's query)."""
    query = sa.select(models.PoolNsRecord.pool_id).where(
        queries.match(models.PoolNsRecord.hostname, data)
    )
    return sorted(set(session.scalars(query)))


def recordsets(
    *, data: str | int | None = None, data_pools: Sequence[str] | None = None
) -> sa.Subquery:
    """Every recordset, stored and managed, as one table; ``data``: only those
    with a record matching it (stored records through their index), the NS sets
    of the zones of ``data_pools`` (see :func:`_pools_serving`)."""
    rs = models.RecordSet
    stored = sa.select(
        rs.id,
        rs.zone_id,
        rs.name,
        rs.type,
        rs.ttl,
        rs.serial,
        rs.status,
        rs.action,
        rs.created_at,
        rs.updated_at,
        rs.description,
        rs.version,
        sa.literal(False).label("managed"),
    )
    if data is not None:
        stored = stored.where(
            sa.exists().where(models.Record.recordset_id == rs.id, queries.data_match(data))
        )
    if data is not None and data_pools is None:
        data_pools = []
    return sa.union_all(
        stored, _managed_select(SOA, data_pools), _managed_select(NS, data_pools)
    ).subquery("all_recordsets")


def find(
    zone_id: str,
    criteria: Mapping[str, str | int],
    paging: objects.Paging,
) -> objects.Page[objects.RecordSet]:
    """One page of a zone's recordsets, stored and managed, matching ``criteria``
    (column name -> value, or ``data``: one of its records). Managed ones have no
    records yet."""
    with db.reader() as session:
        return find_in(session, lambda column: column == zone_id, criteria, paging)


def find_in(
    session: Session,
    in_scope: Callable[[sa.ColumnElement[str]], sa.ColumnElement[bool]],
    criteria: Mapping[str, str | int],
    paging: objects.Paging,
) -> objects.Page[objects.RecordSet]:
    """One page of the recordsets, stored and managed, of the zones ``in_scope``
    accepts (given the ``zone_id`` column; storage's own condition, as
    :func:`find` and :mod:`zoneflow.storage.search` build it) matching
    ``criteria``, read in ``session``."""
    data = criteria.get("data")
    pools = None if data is None else _pools_serving(session, data)
    table = recordsets(data=data, data_pools=pools)
    filters = [
        queries.match(queries.column_named(table, key), value)
        for key, value in criteria.items()
        if key != "data"
    ]
    ids, total, more = queries.paged(
        session, sa.select(table.c.id), table, [in_scope(table.c.zone_id)], filters, paging
    )
    found = _load(session, ids)
    return objects.Page(tuple(found[i] for i in ids), total, more)


def of_zone(zone_id: str) -> list[objects.RecordSet]:
    """A live zone's managed recordsets: its SOA, then its NS (records empty)."""
    table = recordsets()
    query = sa.select(table).where(table.c.zone_id == zone_id, table.c.managed)
    with db.reader() as session:
        rows = [_row(row) for row in session.execute(query)]
    return sorted(rows, key=lambda rs: rs.type != SOA)


def get(recordset_id: str) -> objects.RecordSet | None:
    """The managed recordset of a live zone with this id (records empty), or None."""
    zone_id = zone_id_of(recordset_id)
    if zone_id is None:
        return None
    for recordset in of_zone(zone_id):
        if recordset.id == recordset_id:
            return recordset
    return None


def _load(session: Session, ids: Sequence[str]) -> dict[str, objects.RecordSet]:
    found: dict[str, objects.RecordSet] = {}
    zone_ids = {zone_id for zone_id in map(zone_id_of, ids) if zone_id is not None}
    if zone_ids:
        # By their zones' ids, which the zones' primary key finds: the managed
        # ids are computed, so a condition on them alone would read every zone.
        table = recordsets()
        managed = session.execute(
            sa.select(table).where(
                table.c.zone_id.in_(zone_ids), table.c.managed, table.c.id.in_(ids)
            )
        )
        found = {row.id: _row(row) for row in managed}
    stored = [i for i in ids if i not in found]
    if stored:
        rows = session.scalars(recordset_query().where(models.RecordSet.id.in_(stored)))
        found.update((row.id, conversions.recordset(row)) for row in rows)
    return found


def _row(row: sa.Row[Any]) -> objects.RecordSet:
    return objects.RecordSet(
        id=row.id,
        zone_id=row.zone_id,
        name=row.name,
        type=row.type,
        ttl=row.ttl,
        records=(),
        serial=row.serial,
        status=row.status,
        action=row.action,
        created_at=row.created_at,
        updated_at=row.updated_at,
        description=row.description,
        version=row.version,
    )
