"""pools.yaml: Designate's pool file format, read, validated and stored.

A file is a list of pools::

    - id: 794ccc2c-d751-44fe-b57f-8894c9f5c842   # optional: kept as the pool's id
      name: default
      description: Default pool
      threshold_percentage: 100          # zoneflow's addition, default 100
      ns_records: [{hostname: ns1.example.org., priority: 1}]
      nameservers: [{host: 127.0.0.1, port: 53}]
      targets:
        - type: bind9
          description: BIND9 server 1
          masters: [{host: 127.0.0.1, port: 5354}]
          options: {host: 127.0.0.1, port: 53, rndc_host: 127.0.0.1, rndc_port: 953,
                    rndc_key_file: /etc/bind/rndc.key}
      also_notifies: [{host: 192.0.2.4, port: 53}]
      # Optional: mdns serves a catalog zone (RFC 9432) listing the pool's zones.
      catalog_zone: {catalog_zone_fqdn: catalog.example.org., catalog_zone_refresh: 60}
      # zoneflow's addition: "catalog" provisions targets through that catalog
      # alone (no per-zone rndc/knotc call); default "per-zone".
      provisioning: per-zone

Everything is checked before anything is written, so a bad file changes
nothing. The pools as stored are read here too (the CLI's ``pool list`` and
``pool show``, the API's ``/v2/pools``).
"""

from __future__ import annotations

import datetime
import ipaddress
import uuid
from collections.abc import Mapping
from typing import Any

import yaml

from zoneflow import exceptions, objects
from zoneflow.central import filters, options, orders
from zoneflow.dns import validation
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import retired as stored_retired
from zoneflow.storage import timestamps

CONF = options.CONF

# Target ids are derived from what identifies the server, so loading the same
# file twice (or changing a target's rndc settings) keeps the target's id and
# its per-zone status.
_TARGET_NAMESPACE = uuid.UUID("6b2f1d0e-2c8a-4d8e-9a57-3f1f3c0b9d11")
_POOL_KEYS = {
    "id",
    "name",
    "description",
    "attributes",
    "threshold_percentage",
    "ns_records",
    "nameservers",
    "targets",
    "also_notifies",
    "catalog_zone",
    "provisioning",
}
_TARGET_KEYS = {"id", "type", "description", "masters", "options"}


def load_file(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise exceptions.InvalidPoolConfig(
            f"cannot read pools file {path}: {exc.strerror}"
        ) from exc
    return parse(text, source=path)


def parse(text: str, *, source: str = "pools.yaml") -> list[dict[str, Any]]:
    """Validate pools.yaml text; return normalised pool dicts ready to store."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise exceptions.InvalidPoolConfig(f"{source} is not valid YAML{where}") from exc
    if not isinstance(data, list) or not data:
        raise exceptions.InvalidPoolConfig(
            f"{source} must be a YAML list of pools (each starting with '- name: ...')"
        )
    pools = [_pool(entry, f"{source}: pool #{i + 1}") for i, entry in enumerate(data)]
    names = [p["name"] for p in pools]
    if len(set(names)) != len(names):
        raise exceptions.InvalidPoolConfig(f"{source} names a pool twice: pool names are unique")
    ids = [p["id"] for p in pools if p["id"] is not None]
    if len(set(ids)) != len(ids):
        raise exceptions.InvalidPoolConfig(f"{source} gives two pools the same id: ids are unique")
    catalogs = [p["catalog_zone"] for p in pools if p["catalog_zone"]]
    if len(set(catalogs)) != len(catalogs):
        raise exceptions.InvalidPoolConfig(
            f"{source}: two pools have the same catalog_zone_fqdn; each pool needs its own"
        )
    return pools


def update(path: str) -> list[objects.PoolUpdate]:
    """Load a pools file into storage (create or replace pools by name).

    Returns, per pool, what changed and what was scheduled for it: the
    backfill of added targets and nameservers, the draining of removed
    targets (see :func:`store`).
    """
    return store(load_file(path))


def store(pools: list[dict[str, Any]]) -> list[objects.PoolUpdate]:
    """Create or update validated pools (see :func:`parse`); what each update scheduled.

    What a pool update posts is decided here (see ``stored_pools.update_pools``):
    every live zone of a pool that gained a target or nameserver gets a
    recover-zone row, which acts only where the zone is missing; each zone's
    status is decided per zone, and the relays put up to ``[conductor]
    upkeep_batch_zones`` of them in one recover-zones job. A few thousand outbox
    rows are a few bulk statements; what a few thousand jobs must not do is
    reach the jobboard at once, so they are released a batch at a time,
    ``[central] backfill_jobs_per_second`` batches a second, and as upkeep
    (orders.RECOVERY): a change made meanwhile goes before every one of
    them that is not running yet. A target the file no longer lists gets a
    retire-target job.
    """
    backfill = objects.JobPacing(
        orders.RECOVERY,
        interval=1.0 / CONF.central.backfill_jobs_per_second,
        together=CONF.conductor.upkeep_batch_zones,
    )
    return stored_pools.update_pools(pools, backfill=backfill, retire=orders.RETIRE_TARGET)


def _pool(entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise exceptions.InvalidPoolConfig(f"{where} must be a mapping with name, targets, ...")
    _no_unknown_keys(entry, _POOL_KEYS, where)
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise exceptions.InvalidPoolConfig(f"{where} has no name: add 'name: <pool name>'")
    where = f"{where.split(':')[0]}: pool {name!r}"
    threshold = entry.get("threshold_percentage", 100)
    if not isinstance(threshold, int) or not 0 < threshold <= 100:
        raise exceptions.InvalidPoolConfig(
            f"{where}: threshold_percentage {threshold!r} must be a whole number from 1 to 100"
        )
    ns_records = [
        _ns_record(r, f"{where}: ns_records #{i + 1}")
        for i, r in enumerate(_list(entry, "ns_records", where, required=True))
    ]
    targets = [
        _target(name, t, f"{where}: targets #{i + 1}")
        for i, t in enumerate(_list(entry, "targets", where, required=True))
    ]
    ids = [t["id"] for t in targets]
    if len(set(ids)) != len(ids):
        raise exceptions.InvalidPoolConfig(
            f"{where}: two targets point at the same server (same type, host and port)"
        )
    catalog = _catalog_zone(entry.get("catalog_zone"), where)
    provisioning = entry.get("provisioning", objects.PER_ZONE)
    if provisioning not in (objects.PER_ZONE, objects.CATALOG):
        raise exceptions.InvalidPoolConfig(
            f"{where}: provisioning {provisioning!r} must be {objects.PER_ZONE!r} or "
            f"{objects.CATALOG!r}"
        )
    if provisioning == objects.CATALOG and catalog is None:
        raise exceptions.InvalidPoolConfig(
            f"{where}: provisioning 'catalog' needs a catalog zone: add "
            "'catalog_zone: {catalog_zone_fqdn: catalog.example.org.}'"
        )
    return {
        "id": _pool_id(entry.get("id"), where),
        "name": name.strip(),
        "description": str(entry.get("description") or ""),
        "threshold_percentage": threshold,
        "provisioning": provisioning,
        "catalog_zone": None if catalog is None else catalog[0],
        "catalog_zone_refresh": 60 if catalog is None else catalog[1],
        "ns_records": ns_records,
        "nameservers": [
            _host_port(n, f"{where}: nameservers #{i + 1}", default_port=53)
            for i, n in enumerate(_list(entry, "nameservers", where))
        ],
        "targets": targets,
        "also_notifies": [
            _host_port(n, f"{where}: also_notifies #{i + 1}", default_port=53)
            for i, n in enumerate(_list(entry, "also_notifies", where))
        ],
    }


def _pool_id(value: Any, where: str) -> str | None:
    """The pool's ``id`` as Designate writes it (a UUID), or None: storage picks one."""
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise exceptions.InvalidPoolConfig(
            f"{where}: id {value!r} is not a UUID: give one like "
            "794ccc2c-d751-44fe-b57f-8894c9f5c842, or leave id out"
        ) from None


def _catalog_zone(entry: Any, where: str) -> tuple[str, int] | None:
    """``catalog_zone: {catalog_zone_fqdn, catalog_zone_refresh}`` (Designate's keys)."""
    if entry is None:
        return None
    where = f"{where}: catalog_zone"
    if not isinstance(entry, dict):
        raise exceptions.InvalidPoolConfig(f"{where} must be a mapping with catalog_zone_fqdn")
    _no_unknown_keys(entry, {"catalog_zone_fqdn", "catalog_zone_refresh"}, where)
    fqdn = entry.get("catalog_zone_fqdn")
    if not isinstance(fqdn, str) or not fqdn:
        raise exceptions.InvalidPoolConfig(
            f"{where} has no catalog_zone_fqdn: add e.g. 'catalog_zone_fqdn: catalog.example.org.'"
        )
    refresh = entry.get("catalog_zone_refresh", 60)
    try:
        refresh = int(refresh)  # Designate's samples write it as a string
    except (TypeError, ValueError):
        refresh = 0
    if not 1 <= refresh <= 86400:
        raise exceptions.InvalidPoolConfig(
            f"{where}: catalog_zone_refresh must be seconds from 1 to 86400"
        )
    try:
        validation.absolute_zone_name(fqdn, what="catalog_zone_fqdn")
        return validation.zone_name(fqdn), refresh
    except exceptions.InvalidInput as exc:
        raise exceptions.InvalidPoolConfig(f"{where}: catalog_zone_fqdn: {exc}") from exc


def _list(entry: dict[str, Any], key: str, where: str, *, required: bool = False) -> list[Any]:
    value = entry.get(key)
    if value is None:
        value = []
    if not isinstance(value, list):
        raise exceptions.InvalidPoolConfig(f"{where}: {key} must be a list")
    if required and not value:
        raise exceptions.InvalidPoolConfig(f"{where}: {key} must list at least one entry")
    return value


def _no_unknown_keys(entry: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(entry) - known)
    if unknown:
        raise exceptions.InvalidPoolConfig(
            f"{where}: unknown key(s) {', '.join(unknown)}; known keys are "
            f"{', '.join(sorted(known))}"
        )


def _ns_record(entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict) or "hostname" not in entry:
        raise exceptions.InvalidPoolConfig(f"{where} needs 'hostname' (and 'priority')")
    try:
        validation.absolute_zone_name(str(entry["hostname"]), what="hostname")
        hostname = validation.zone_name(str(entry["hostname"]))
    except exceptions.InvalidInput as exc:
        raise exceptions.InvalidPoolConfig(f"{where}: {exc}") from None
    priority = entry.get("priority", 1)
    if not isinstance(priority, int):
        raise exceptions.InvalidPoolConfig(f"{where}: priority {priority!r} must be a number")
    return {"hostname": hostname, "priority": priority}


def _host_port(entry: Any, where: str, *, default_port: int) -> dict[str, Any]:
    if not isinstance(entry, dict) or "host" not in entry:
        raise exceptions.InvalidPoolConfig(f"{where} needs 'host' and 'port'")
    host = str(entry["host"])
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise exceptions.InvalidPoolConfig(
            f"{where}: host {host!r} must be an IP address (zoneflow does not resolve names "
            "to reach its own servers)"
        ) from None
    port = entry.get("port", default_port)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise exceptions.InvalidPoolConfig(f"{where}: port {port!r} must be from 1 to 65535")
    return {"host": host, "port": port}


def _target(pool_name: str, entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise exceptions.InvalidPoolConfig(f"{where} must be a mapping with type and options")
    _no_unknown_keys(entry, _TARGET_KEYS, where)
    kind = entry.get("type")
    if not isinstance(kind, str) or not kind:
        raise exceptions.InvalidPoolConfig(f"{where} has no type: add e.g. 'type: bind9'")
    options = entry.get("options") or {}
    if not isinstance(options, dict):
        raise exceptions.InvalidPoolConfig(f"{where}: options must be a mapping")
    masters = [
        _host_port(m, f"{where}: masters #{i + 1}", default_port=53)
        for i, m in enumerate(_list(entry, "masters", where))
    ]
    if kind != "fake" and not masters:
        raise exceptions.InvalidPoolConfig(
            f"{where}: masters must list mdns ({{host: 127.0.0.1, port: 5354}}) so the "
            "server knows where to transfer zones from"
        )
    if "port" in options and not isinstance(options["port"], int):
        raise exceptions.InvalidPoolConfig(f"{where}: options.port must be a number")
    return {
        "id": str(entry.get("id") or target_id(pool_name, kind, options, entry)),
        "type": kind,
        "description": str(entry.get("description") or ""),
        "masters": masters,
        "options": options,
    }


def target_id(pool_name: str, kind: str, options: dict[str, Any], entry: dict[str, Any]) -> str:
    """A stable id for a target: same pool, type and server address → same id."""
    address = (
        f"{options['host']}:{options.get('port', 53)}"
        if "host" in options
        else str(entry.get("description") or options)
    )
    return str(uuid.uuid5(_TARGET_NAMESPACE, f"{pool_name}/{kind}/{address}"))


POOL_FILTERS = ("name",)


POOL_SORT_KEYS = {key: key for key in ("created_at", "id", "updated_at", "name")}


def find_pools(criteria: Mapping[str, str], paging: objects.Paging) -> objects.Page[objects.Pool]:
    """One page of the pools, with Designate's ``name`` filter and sort keys."""
    return stored_pools.find_pools(
        filters.criteria(criteria, POOL_FILTERS, "pools"),
        filters.paging(paging, POOL_SORT_KEYS, "pools"),
    )


# --- reads ---------------------------------------------------------------------


def list_pools() -> list[objects.Pool]:
    """Every pool, by name."""
    return stored_pools.list_pools()


def get_pool(ref: str) -> objects.Pool:
    """A pool by name or id."""
    return stored_pools.get_pool(ref)


def zones_to_drain(pool: objects.Pool) -> dict[str, int]:
    """How many zones each retired target of the pool still has to have deleted from it."""
    return {t.id: stored_retired.count_zones_to_drain(t.id) for t in pool.retired_targets}


def pool_timestamps() -> dict[str, tuple[datetime.datetime | None, datetime.datetime | None]]:
    """Each pool's (created_at, updated_at), by pool id."""
    return timestamps.pool_timestamps()
