"""Quotas: how much each project may hold, checked before a change is written.

Designate's five resources and its defaults. A project's own limits
(``PATCH /v2/quotas/{project}``) replace the ``[quota]`` defaults; -1 is no
limit. A change that would take a project past one raises
:class:`~zoneflow.exceptions.OverQuota` (413 ``over_quota``) and writes
nothing. Zones that belong to no project (made with the ``zoneflow``
command) have no quota.

What a change adds to a project or a zone is counted in the unit of work
that writes it (:func:`zoneflow.storage.db.unit_of_work`), after locking
what it counts (the project's quota lock for zones, the zone's row for
recordsets and records; see :mod:`zoneflow.storage.quotas`): of two
requests racing for a project's last unit, the second counts the first's
and is refused. A quota is a hard bound, unlike Designate's, whose check
and write are apart.
"""

from __future__ import annotations

from collections.abc import Mapping

from zoneflow import exceptions, objects
from zoneflow.central import options
from zoneflow.storage import quotas as storage
from zoneflow.storage.db import Unit

CONF = options.CONF


RESOURCES = ("zones", "zone_recordsets", "zone_records", "recordset_records", "api_export_size")
UNLIMITED = -1


def defaults() -> dict[str, int]:
    return {resource: int(getattr(CONF.quota, resource)) for resource in RESOURCES}


def get_quotas(project_id: str | None, *, unit: Unit | None = None) -> dict[str, int]:
    """Every resource's limit for a project: its own, else the default (read in
    ``unit``, a change's unit of work, or on their own)."""
    quotas = defaults()
    if project_id is not None:
        quotas.update(storage.project_quotas(project_id, session=unit))
    return quotas


def set_quotas(project_id: str, limits: Mapping[str, int]) -> dict[str, int]:
    unknown = sorted(set(limits) - set(RESOURCES))
    if unknown:
        raise exceptions.InvalidInput(
            f"unknown quota(s) {', '.join(unknown)}: quotas are {', '.join(RESOURCES)}"
        )
    for resource, value in limits.items():
        if value < UNLIMITED:
            raise exceptions.InvalidInput(
                f"{resource}: {value} is not a limit: give 0 or more, or -1 for no limit"
            )
    storage.set_quotas(project_id, limits)
    return get_quotas(project_id)


def reset_quotas(project_id: str) -> None:
    storage.reset_quotas(project_id)


def _over(limit: int, wanted: int) -> bool:
    return limit != UNLIMITED and wanted > limit


def _refuse(project_id: str, resource: str, limit: int, what: str) -> exceptions.OverQuota:
    return exceptions.OverQuota(
        f"quota exceeded for {resource}: {what}, and project {project_id}'s {resource} quota "
        f"is {limit}; remove some, or ask an admin to raise it (PATCH /v2/quotas/{project_id})"
    )


def check_zone_count(unit: Unit, project_id: str | None) -> None:
    """In a zone create's unit of work, once the zone is written: lock the project's
    quota, count its zones (the new one with them) and refuse one beyond its
    ``zones`` (a zone of no project has no quota). Of two creates racing for the
    project's last zone, the second counts the first's."""
    if project_id is None:
        return
    limit = get_quotas(project_id, unit=unit)["zones"]
    storage.lock_project(unit, project_id)
    zones = storage.count_zones(unit, project_id)
    if _over(limit, zones):
        raise _refuse(project_id, "zones", limit, f"the project has {zones - 1} zones")


def check_zone_content(
    zone: objects.Zone,
    *,
    recordsets: int,
    records: int,
    largest_recordset: int,
    quotas: Mapping[str, int] | None = None,
) -> None:
    """Refuse a zone that would hold more than its project allows: ``recordsets`` and
    ``records`` in all, ``largest_recordset`` records in its biggest recordset."""
    if zone.project_id is None:
        return
    limits = quotas if quotas is not None else get_quotas(zone.project_id)
    for quota, amount, why in (
        (
            "recordset_records",
            largest_recordset,
            f"a recordset of {zone.name} would hold {largest_recordset} records",
        ),
        ("zone_recordsets", recordsets, f"{zone.name} would hold {recordsets} recordsets"),
        ("zone_records", records, f"{zone.name} would hold {records} records"),
    ):
        if _over(limits[quota], amount):
            raise _refuse(zone.project_id, quota, limits[quota], why)


def check_recordset_size(
    zone: objects.Zone, records: int, *, unit: Unit | None = None
) -> dict[str, int]:
    """Refuse a recordset of ``records`` records beyond ``recordset_records``: that
    depends on the request alone, so it is checked before the zone is locked (in
    ``unit``, the change's unit of work, or on its own). Returns the zone's
    project's quotas ({} for a zone of no project: no quota)."""
    if zone.project_id is None:
        return {}
    limits = get_quotas(zone.project_id, unit=unit)
    check_zone_content(zone, recordsets=0, records=0, largest_recordset=records, quotas=limits)
    return limits


def check_recordset_change(
    unit: Unit,
    zone: objects.Zone,
    limits: Mapping[str, int],
    *,
    new_records: int,
    new_recordset: bool = False,
    replaced: int = 0,
) -> None:
    """In a recordset change's unit of work, after the zone's row is locked: refuse
    creating (``new_recordset``) or changing a recordset of ``replaced`` records to
    ``new_records`` beyond the zone's project's ``limits`` (from
    :func:`check_recordset_size`), with the zone's usage read under the lock.

    Only what the change adds is checked: a zone already past a lowered quota
    may still shrink, or change a recordset's records one for one.
    """
    if zone.project_id is None:
        return
    # Counting a zone's recordsets and records reads all of them: not for limits that
    # cannot be passed, nor for a change that adds neither (most updates).
    grows = new_recordset or new_records > replaced
    counted = grows and (
        limits["zone_recordsets"] != UNLIMITED or limits["zone_records"] != UNLIMITED
    )
    recordsets, records = storage.zone_usage(zone.id, session=unit) if counted else (0, 0)
    check_zone_content(
        zone,
        recordsets=recordsets + 1 if new_recordset else 0,
        records=records - replaced + new_records if new_records > replaced else 0,
        largest_recordset=new_records,
        quotas=limits,
    )


def check_export(zone: objects.Zone) -> None:
    """Refuse to export a zone larger than its project's ``api_export_size``."""
    if zone.project_id is None:
        return
    limit = get_quotas(zone.project_id)["api_export_size"]
    _, records = storage.zone_usage(zone.id)
    if _over(limit, records):
        raise _refuse(
            zone.project_id,
            "api_export_size",
            limit,
            f"{zone.name} holds {records} records",
        )
