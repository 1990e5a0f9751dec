"""Service statuses (``/v2/service_statuses``): what the heartbeats say.

A service's row holds the status it last wrote (see :mod:`zoneflow.heartbeat`);
one silent for longer than ``[heartbeat] timeout`` is DOWN whatever it
last wrote, since it died without saying so.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping

from oslo_config import cfg

from zoneflow import objects
from zoneflow.central import filters
from zoneflow.storage import models, services

CONF = cfg.CONF

STATUS_FILTERS = ("service_name", "hostname", "status")
STATUS_SORT_KEYS = {
    key: key
    for key in ("created_at", "id", "updated_at", "service_name", "hostname", "heartbeated_at")
}


def _alive_since() -> datetime.datetime:
    return models.utcnow() - datetime.timedelta(seconds=CONF.heartbeat.timeout)


def _as_seen(
    status: objects.ServiceStatus, alive_since: datetime.datetime
) -> objects.ServiceStatus:
    if status.status == objects.ServiceState.UP and status.heartbeated_at < alive_since:
        return dataclasses.replace(status, status=objects.ServiceState.DOWN)
    return status


def find_service_statuses(
    criteria: Mapping[str, str], paging: objects.Paging
) -> objects.Page[objects.ServiceStatus]:
    columns = {
        key: value.upper() if key == "status" else value.lower() if key == "service_name" else value
        for key, value in filters.criteria(criteria, STATUS_FILTERS, "service statuses").items()
    }
    alive_since = _alive_since()
    page = services.find_service_statuses(
        columns,
        filters.paging(paging, STATUS_SORT_KEYS, "service statuses"),
        alive_since=alive_since,
    )
    return dataclasses.replace(page, items=tuple(_as_seen(s, alive_since) for s in page.items))


def get_service_status(status_id: str) -> objects.ServiceStatus:
    return _as_seen(services.get_service_status(status_id), _alive_since())
