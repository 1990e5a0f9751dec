"""TSIG keys as stored (``/v2/tsigkeys``): rows in, value objects out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from oslo_db import exception as db_exc
from sqlalchemy.orm import Session

from zoneflow import exceptions, objects
from zoneflow.storage import conversions, db, models, queries


def _key(row: models.TsigKey) -> objects.TsigKey:
    return conversions.value(objects.TsigKey, row)


def _row(session: Session, key_id: str) -> models.TsigKey:
    row = session.get(models.TsigKey, key_id)
    if row is None:
        raise exceptions.TsigKeyNotFound(
            f"TSIG key {key_id} does not exist: GET /v2/tsigkeys lists them"
        )
    return row


def _duplicate(name: object) -> exceptions.DuplicateTsigKey:
    return exceptions.DuplicateTsigKey(
        f"a TSIG key named {name} already exists: pick another name or update that key"
    )


@db.retried
def create_tsigkey(values: Mapping[str, Any]) -> objects.TsigKey:
    try:
        with db.writer() as session:
            row = models.TsigKey(**values)
            session.add(row)
            session.flush()
            return _key(row)
    except db_exc.DBDuplicateEntry:
        raise _duplicate(values["name"]) from None


def get_tsigkey(key_id: str) -> objects.TsigKey:
    with db.reader() as session:
        return _key(_row(session, key_id))


def list_tsigkeys() -> list[objects.TsigKey]:
    with db.reader() as session:
        return [_key(r) for r in session.scalars(sa.select(models.TsigKey))]


def find_tsigkeys(
    criteria: Mapping[str, str], paging: objects.Paging
) -> objects.Page[objects.TsigKey]:
    filters = [
        queries.match(queries.column_named(models.TsigKey, key), value)
        for key, value in criteria.items()
    ]
    with db.reader() as session:
        rows, total, more = queries.paged(
            session, sa.select(models.TsigKey), models.TsigKey, [], filters, paging
        )
        return objects.Page(tuple(_key(r) for r in rows), total, more)


@db.retried
def update_tsigkey(key_id: str, values: Mapping[str, Any]) -> objects.TsigKey:
    try:
        with db.writer() as session:
            row = _row(session, key_id)
            for name, value in values.items():
                setattr(row, name, value)
            session.flush()
            return _key(row)
    except db_exc.DBDuplicateEntry:
        raise _duplicate(values.get("name")) from None


@db.retried
def delete_tsigkey(key_id: str) -> objects.TsigKey:
    with db.writer() as session:
        row = _row(session, key_id)
        gone = _key(row)
        session.delete(row)
        return gone
