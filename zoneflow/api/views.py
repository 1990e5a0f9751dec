"""Value objects as the v2 API shows them: Designate's fields, links and lists.

What each function returns is described by the models in
:mod:`zoneflow.api.schemas` (the tests hold them to it).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request

from zoneflow import objects
from zoneflow.api import options
from zoneflow.dns import rdata

CONF = options.CONF


T = TypeVar("T")


def base_url(request: Request) -> str:
    return (CONF.api.base_url or str(request.base_url)).rstrip("/")


def timestamp(value: datetime.datetime | None) -> str | None:
    """Designate's time format: ISO 8601 with microseconds, UTC without a suffix."""
    return None if value is None else value.isoformat(timespec="microseconds")


def zone(request: Request, value: objects.Zone) -> dict[str, Any]:
    return {
        "id": value.id,
        "pool_id": value.pool_id,
        "project_id": value.project_id,
        "name": value.name,
        "email": value.email,
        "ttl": value.ttl,
        "serial": value.serial,
        "status": value.status,
        "action": value.action,
        "description": value.description or None,
        "masters": [],
        "type": "PRIMARY",
        "transferred_at": None,
        "version": value.version,
        "created_at": timestamp(value.created_at),
        "updated_at": timestamp(value.updated_at),
        "attributes": {},
        "shared": False,
        "links": {"self": f"{base_url(request)}/v2/zones/{value.id}"},
    }


def recordset(
    request: Request,
    zone: objects.Zone,
    value: objects.RecordSet,
    *,
    records_data: bool = False,
) -> dict[str, Any]:
    """A recordset; with ``records_data`` also each record as its type's fields."""
    shown: dict[str, Any] = {
        "id": value.id,
        "zone_id": value.zone_id,
        "zone_name": zone.name,
        "project_id": zone.project_id,
        "name": value.name,
        "type": value.type,
        "records": list(value.records),
        "ttl": value.ttl,
        "status": value.status,
        "action": value.action,
        "description": value.description,
        "version": value.version,
        "serial": value.serial,
        "created_at": timestamp(value.created_at),
        "updated_at": timestamp(value.updated_at),
        "links": {"self": f"{base_url(request)}/v2/zones/{value.zone_id}/recordsets/{value.id}"},
    }
    if records_data:
        shown["records_data"] = [rdata.to_fields(value.type, text) for text in value.records]
    return shown


def page(
    request: Request,
    key: str,
    found: objects.Page[T],
    render: Callable[[T], dict[str, Any]],
) -> dict[str, Any]:
    """A list as Designate shows it: the items under ``key``, links and total count.

    ``links.next`` is the same request with the last item as marker, given
    only when more items follow (Designate also gives it when a page is
    exactly full; a client following it then gets an empty page).
    """
    items = [render(item) for item in found.items]
    links = {"self": _href(request, request.query_params.multi_items())}
    if found.more and items:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
        links["next"] = _href(request, [*params, ("marker", items[-1]["id"])])
    return {key: items, "links": links, "metadata": {"total_count": found.total_count}}


def _href(request: Request, params: Sequence[tuple[str, str]]) -> str:
    url = f"{base_url(request)}{request.url.path}"
    return f"{url}?{urlencode(params)}" if params else url


def zone_export(request: Request, value: objects.ZoneTask) -> dict[str, Any]:
    url = f"{base_url(request)}/v2/zones/tasks/exports/{value.id}"
    links = {"self": url}
    if value.location is not None:
        links["export"] = f"{url}/export"
    return _zone_task(value, links, location=value.location)


def zone_import(request: Request, value: objects.ZoneTask) -> dict[str, Any]:
    links = {"self": f"{base_url(request)}/v2/zones/tasks/imports/{value.id}"}
    if value.zone_id is not None:
        links["zone"] = f"{base_url(request)}/v2/zones/{value.zone_id}"
    return _zone_task(value, links)


def _zone_task(value: objects.ZoneTask, links: dict[str, str], **own: Any) -> dict[str, Any]:
    """The fields an export and an import share, with ``own`` after their message."""
    return {
        "id": value.id,
        "status": value.status,
        "message": value.message,
        **own,
        "zone_id": value.zone_id,
        "project_id": value.project_id,
        "created_at": timestamp(value.created_at),
        "updated_at": timestamp(value.updated_at),
        "version": value.version,
        "links": links,
    }


def pool(
    request: Request,
    value: objects.Pool,
    times: tuple[datetime.datetime | None, datetime.datetime | None],
) -> dict[str, Any]:
    """A pool as Designate shows it: its NS records; zoneflow pools have no attributes
    and belong to no project."""
    return {
        "id": value.id,
        "project_id": None,
        "name": value.name,
        "description": value.description or None,
        "attributes": {},
        "ns_records": [
            {"hostname": r.hostname, "priority": r.priority}
            for r in sorted(value.ns_records, key=lambda r: r.priority)
        ],
        "created_at": timestamp(times[0]),
        "updated_at": timestamp(times[1]),
        "links": {"self": f"{base_url(request)}/v2/pools/{value.id}"},
    }


def service_status(request: Request, value: objects.ServiceStatus) -> dict[str, Any]:
    return {
        "id": value.id,
        "service_name": value.service_name,
        "hostname": value.hostname,
        "status": value.status,
        "heartbeated_at": timestamp(value.heartbeated_at),
        "capabilities": value.capabilities,
        "stats": value.stats,
        "created_at": timestamp(value.created_at),
        "updated_at": timestamp(value.updated_at),
        "links": {"self": f"{base_url(request)}/v2/service_statuses/{value.id}"},
    }


def tsigkey(request: Request, value: objects.TsigKey) -> dict[str, Any]:
    return {
        "id": value.id,
        "name": value.name,
        "algorithm": value.algorithm,
        "secret": value.secret,
        "scope": value.scope,
        "resource_id": value.resource_id,
        "created_at": timestamp(value.created_at),
        "updated_at": timestamp(value.updated_at),
        "links": {"self": f"{base_url(request)}/v2/tsigkeys/{value.id}"},
    }
