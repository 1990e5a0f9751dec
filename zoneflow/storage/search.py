"""Recordsets searched across zones: what ``GET /v2/recordsets`` reads.

The filters and pages are those of one zone's list (:mod:`zoneflow.storage.managed`);
the scope is every live zone of a project (or of all projects). ``data``
is answered from the ``ix_records_data`` index: the records holding that
value first, then their recordsets, so finding every recordset that points
at an address costs the same in a database of a million records as in a
small one (bench/api_search.py). A wildcard with a literal prefix
(``data=192.0.2.*``) is answered the same way from ``ix_records_data_prefix``
on PostgreSQL; one that starts with ``*`` reads every record in scope.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from zoneflow import exceptions, objects
from zoneflow.storage import conversions, db, managed, models, zones


def find_all_recordsets(
    criteria: Mapping[str, str | int],
    paging: objects.Paging,
    *,
    project_id: str | None = None,
) -> tuple[objects.Page[objects.RecordSet], dict[str, objects.Zone]]:
    """One page of the recordsets of live zones, their managed SOA and NS among them
    (records empty, see :mod:`zoneflow.storage.managed`), matching ``criteria``
    (column name -> value, or ``data``: one of its records), and the zones they
    belong to, by id."""
    zones = sa.select(models.Zone.id).where(models.Zone.deleted == models.LIVE)
    if project_id is not None:
        zones = zones.where(models.Zone.project_id == project_id)
    with db.reader() as session:
        page = managed.find_in(session, lambda column: column.in_(zones), criteria, paging)
        zone_ids = {rs.zone_id for rs in page.items}
        found = session.scalars(sa.select(models.Zone).where(models.Zone.id.in_(zone_ids)))
        by_id = {row.id: conversions.zone(row) for row in found} if zone_ids else {}
    return page, by_id


def get_recordset(
    recordset_id: str, *, project_id: str | None = None
) -> tuple[objects.Zone, objects.RecordSet]:
    """A recordset of a live zone (of ``project_id``, None: of any) by its id alone,
    and its zone."""
    with db.reader() as session:
        query = (
            sa.select(models.RecordSet, models.Zone)
            .join(models.Zone, models.Zone.id == models.RecordSet.zone_id)
            .where(models.RecordSet.id == recordset_id, models.Zone.deleted == models.LIVE)
            .options(selectinload(models.RecordSet.records))
        )
        if project_id is not None:
            query = query.where(models.Zone.project_id == project_id)
        found = session.execute(query).first()
        if found is not None:
            return conversions.zone(found.Zone), conversions.recordset(found.RecordSet)
    recordset = managed.get(recordset_id)
    if recordset is not None:
        zone = zones.get_zone_any(recordset.zone_id)
        if zone is not None and project_id in (None, zone.project_id):
            return zone, recordset
    raise exceptions.RecordSetNotFound(
        f"recordset {recordset_id} does not exist: GET /v2/recordsets lists the "
        "recordsets there are"
    )
