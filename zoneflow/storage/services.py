"""Service statuses as stored: each running service's row, rewritten by its heartbeat."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from oslo_db import exception as db_exc

from zoneflow import exceptions, objects
from zoneflow.storage import conversions, db, models, queries


def _status(row: models.ServiceStatus) -> objects.ServiceStatus:
    return conversions.value(
        objects.ServiceStatus, row, capabilities=dict(row.capabilities), stats=dict(row.stats)
    )


@db.retried
def heartbeat(
    service_name: str,
    hostname: str,
    *,
    status: str,
    capabilities: Mapping[str, Any],
    stats: Mapping[str, Any],
) -> None:
    """Write one service's status, heartbeated now (its row is made on the first beat)."""
    now = models.utcnow()
    values = {
        "status": status,
        "heartbeated_at": now,
        "capabilities": dict(capabilities),
        "stats": dict(stats),
        "updated_at": now,
    }
    where = (
        models.ServiceStatus.service_name == service_name,
        models.ServiceStatus.hostname == hostname,
    )
    with db.writer() as session:
        updated = session.execute(sa.update(models.ServiceStatus).where(*where).values(**values))
        if updated.rowcount:  # type: ignore[attr-defined]
            return
        try:
            with session.begin_nested():
                session.add(
                    models.ServiceStatus(service_name=service_name, hostname=hostname, **values)
                )
        except db_exc.DBDuplicateEntry:
            session.execute(sa.update(models.ServiceStatus).where(*where).values(**values))


@db.retried
def forget_before(when: datetime.datetime) -> int:
    """Remove the rows of services silent since before ``when``; how many went."""
    with db.writer() as session:
        return queries.rows_changed(
            session,
            sa.delete(models.ServiceStatus).where(models.ServiceStatus.heartbeated_at < when),
        )


def get_service_status(status_id: str) -> objects.ServiceStatus:
    with db.reader() as session:
        row = session.get(models.ServiceStatus, status_id)
        if row is None:
            raise exceptions.ServiceStatusNotFound(
                f"service status {status_id} does not exist: GET /v2/service_statuses lists them"
            )
        return _status(row)


def find_service_statuses(
    criteria: Mapping[str, str], paging: objects.Paging, *, alive_since: datetime.datetime
) -> objects.Page[objects.ServiceStatus]:
    """A page of service statuses; a ``status`` filter reads a service silent since before
    ``alive_since`` as DOWN, whatever its row says."""
    filters: list[sa.ColumnElement[bool]] = []
    for key, value in criteria.items():
        if key == "status":
            filters.append(_status_is(value, alive_since))
        else:
            filters.append(queries.match(queries.column_named(models.ServiceStatus, key), value))
    with db.reader() as session:
        rows, total, more = queries.paged(
            session, sa.select(models.ServiceStatus), models.ServiceStatus, [], filters, paging
        )
        return objects.Page(tuple(_status(r) for r in rows), total, more)


def _status_is(value: str, alive_since: datetime.datetime) -> sa.ColumnElement[bool]:
    silent = models.ServiceStatus.heartbeated_at < alive_since
    if value == objects.ServiceState.DOWN:
        return sa.or_(models.ServiceStatus.status == objects.ServiceState.DOWN, silent)
    return sa.and_(models.ServiceStatus.status == value, sa.not_(silent))
