"""The operations users call: create, update and delete zones and recordsets.

Each one validates its input, then hands storage one transaction that writes
the change, bumps the zone's serial and records the job that will push it to
the nameservers (the outbox). The CLI and the REST API both call these
functions; neither talks to storage or the jobboard for a change directly.

After a change commits, the functions registered with :func:`on_change`
are called (the job relay registers itself there to post the job at once).
"""

from __future__ import annotations

from collections.abc import Callable

from oslo_config import cfg

from zoneflow import exceptions, objects
from zoneflow.central import validation
from zoneflow.storage import api as storage

CONF = cfg.CONF

central_opts = [
    cfg.StrOpt("default_pool", default="default", help="Pool new zones go to unless told."),
    cfg.IntOpt("default_ttl", default=3600, min=0, help="TTL of a zone's records by default."),
    cfg.IntOpt("default_refresh", default=3600, min=0, help="SOA refresh of new zones."),
    cfg.IntOpt("default_retry", default=600, min=0, help="SOA retry of new zones."),
    cfg.IntOpt("default_expire", default=86400, min=0, help="SOA expire of new zones."),
    cfg.IntOpt("default_minimum", default=3600, min=0, help="SOA minimum (negative TTL)."),
]
CONF.register_opts(central_opts, group="central")

_listeners: list[Callable[[], None]] = []


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener`` after every committed change (e.g. to post its job now)."""
    _listeners.append(listener)


def _changed() -> None:
    for listener in _listeners:
        listener()


# --- zones ---------------------------------------------------------------


def create_zone(
    name: str,
    email: str,
    *,
    ttl: int | None = None,
    pool: str | None = None,
    project_id: str | None = None,
    description: str | None = None,
) -> objects.Zone:
    zone_name = validation.zone_name(name)
    if zone_name in storage.list_catalogs():
        raise exceptions.DuplicateZone(
            f"{zone_name} is the catalog zone of a pool (pools.yaml catalog_zone): pick "
            "another name"
        )
    values = {
        "name": zone_name,
        "email": validation.email(email),
        "ttl": validation.ttl(ttl) if ttl is not None else CONF.central.default_ttl,
        "refresh": CONF.central.default_refresh,
        "retry": CONF.central.default_retry,
        "expire": CONF.central.default_expire,
        "minimum": CONF.central.default_minimum,
        "pool_id": storage.get_pool(pool or CONF.central.default_pool).id,
        "project_id": project_id,
        "description": description,
    }
    zone = storage.create_zone(values)
    _changed()
    return zone


def update_zone(
    ref: str,
    *,
    email: str | None = None,
    ttl: int | None = None,
    description: str | None = None,
    project_id: str | None = None,
) -> objects.Zone:
    zone = storage.get_zone(ref, project_id=project_id)
    values: dict[str, object] = {}
    if email is not None:
        values["email"] = validation.email(email)
    if ttl is not None:
        values["ttl"] = validation.ttl(ttl)
    if description is not None:
        values["description"] = description
    updated = storage.update_zone(zone.id, values)
    _changed()
    return updated


def delete_zone(ref: str, *, project_id: str | None = None) -> objects.Zone:
    zone = storage.get_zone(ref, project_id=project_id)
    deleting = storage.delete_zone(zone.id)
    _changed()
    return deleting


def recover_zone(ref: str, *, project_id: str | None = None) -> objects.Zone:
    """Bring every target to the zone's stored state: a zone left in ERROR, or with a
    target behind, is created or updated where its serial is missing, or deleted
    everywhere if its action is DELETE (a recover-zone job)."""
    zone = storage.get_zone(ref, project_id=project_id)
    recovering = storage.recover_zone(zone.id)
    _changed()
    return recovering


def get_zone(ref: str, *, project_id: str | None = None) -> objects.Zone:
    return storage.get_zone(ref, project_id=project_id)


def list_zones(*, project_id: str | None = None) -> list[objects.Zone]:
    return storage.list_zones(project_id=project_id)


def zone_status(ref: str, *, project_id: str | None = None) -> list[objects.TargetStatus]:
    zone = storage.get_zone(ref, project_id=project_id)
    return storage.list_target_status(zone.id)


# --- recordsets ----------------------------------------------------------


def create_recordset(
    zone_ref: str,
    name: str,
    rtype: str,
    records: list[str],
    *,
    ttl: int | None = None,
    project_id: str | None = None,
) -> objects.RecordSet:
    zone = storage.get_zone(zone_ref, project_id=project_id)
    rs_type = validation.record_type(rtype)
    rs_name = validation.recordset_name(name, zone.name)
    if rs_type == "NS" and rs_name == zone.name:
        raise _apex_ns_error(zone.name)
    canonical = validation.records(rs_type, records, zone=zone.name)
    recordset = storage.create_recordset(
        zone.id, name=rs_name, rtype=rs_type, ttl=validation.ttl(ttl), records=canonical
    )
    _changed()
    return recordset


def update_recordset(
    zone_ref: str,
    recordset_ref: str,
    *,
    rtype: str | None = None,
    records: list[str] | None = None,
    ttl: int | None = None,
    clear_ttl: bool = False,
    project_id: str | None = None,
) -> objects.RecordSet:
    """Replace a recordset's records and/or TTL (``clear_ttl``: use the zone's)."""
    zone = storage.get_zone(zone_ref, project_id=project_id)
    current = _find_recordset(zone, recordset_ref, rtype)
    canonical = (
        validation.records(current.type, records, zone=zone.name) if records is not None else None
    )
    recordset = storage.update_recordset(
        zone.id,
        current.id,
        ttl=validation.ttl(ttl),
        records=canonical,
        set_ttl=ttl is not None or clear_ttl,
    )
    _changed()
    return recordset


def delete_recordset(
    zone_ref: str, recordset_ref: str, *, rtype: str | None = None, project_id: str | None = None
) -> objects.RecordSet:
    zone = storage.get_zone(zone_ref, project_id=project_id)
    current = _find_recordset(zone, recordset_ref, rtype)
    gone = storage.delete_recordset(zone.id, current.id)
    _changed()
    return gone


def list_recordsets(zone_ref: str, *, project_id: str | None = None) -> list[objects.RecordSet]:
    zone = storage.get_zone(zone_ref, project_id=project_id)
    return storage.list_recordsets(zone.id)


def get_recordset(
    zone_ref: str, recordset_ref: str, *, rtype: str | None = None, project_id: str | None = None
) -> objects.RecordSet:
    zone = storage.get_zone(zone_ref, project_id=project_id)
    return _find_recordset(zone, recordset_ref, rtype)


def _find_recordset(zone: objects.Zone, ref: str, rtype: str | None) -> objects.RecordSet:
    """By id, or by name and type (a name alone when it holds one recordset)."""
    if rtype is not None:
        name = validation.recordset_name(ref, zone.name)
        return storage.get_recordset(zone.id, name, validation.record_type(rtype))
    try:
        return storage.get_recordset(zone.id, ref)
    except exceptions.RecordSetNotFound:
        name = validation.recordset_name(ref, zone.name)
        matches = [rs for rs in storage.list_recordsets(zone.id) if rs.name == name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            types = ", ".join(rs.type for rs in matches)
            raise exceptions.InvalidInput(
                f"{name} holds several recordsets ({types}): say which with --type"
            ) from None
        raise


def _apex_ns_error(zone_name: str) -> Exception:
    return exceptions.InvalidRecordSetLocation(
        f"the NS records at the apex of {zone_name} come from the pool's ns_records: "
        "change them in pools.yaml, or add NS records below the apex to delegate"
    )
