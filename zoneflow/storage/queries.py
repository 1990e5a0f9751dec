"""SQL pieces every list and write shares: Designate-style filters, keyset pages,
counts, and an UPDATE/DELETE that says how many rows it changed.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session

from zoneflow import exceptions, objects
from zoneflow.storage import models


def rows_changed(session: Session, statement: Any) -> int:
    """Run an UPDATE/DELETE without syncing the session; return the rows it changed."""
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(cast(sa.CursorResult[Any], result).rowcount)


S = TypeVar("S", bound=sa.Select[*tuple[Any, ...]])


def locking_zones(statement: S) -> S:
    """A read of zone rows that locks them for a change to the zones, until the
    transaction ends: FOR NO KEY UPDATE on PostgreSQL (SQLite's writers take turns).

    Two such locks on a zone wait for each other, as FOR UPDATE's did. But a row
    of another table that names a zone (its target statuses, its transfers, its
    jobs) checks its foreign key with a FOR KEY SHARE lock, which FOR UPDATE
    blocked and this does not: no change to a zone touches its id. Under the load
    benchmark mdns's transfer log, whose only locks on zones are those checks
    (zone after zone, in no order), met deadlocks.
    """
    return statement.with_for_update(key_share=True)


def column_named(model: type[models.Base] | sa.FromClause, name: str) -> sa.Column[Any]:
    table = model if isinstance(model, sa.FromClause) else model.__table__
    column = table.columns.get(name)
    if column is None:
        raise ValueError(f"{table.description} has no column {name!r}")
    return cast(sa.Column[Any], column)


def match(
    column: sa.ColumnElement[Any] | InstrumentedAttribute[Any], value: str | int
) -> sa.ColumnElement[bool]:
    """``column`` equal to ``value``, or like it where it has ``*`` wildcards
    (Designate's filters; a wildcard match ignores case, as it does on MySQL)."""
    if isinstance(value, str) and "*" in value:
        return column.ilike(escape_like(value).replace("*", "%"), escape="\\")
    return column == value


def escape_like(text: str) -> str:
    """``text`` as a LIKE pattern matching itself (``%`` and ``_`` are plain characters)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def data_match(value: str | int) -> sa.ColumnElement[bool]:
    """A record's data matching a filter value: equal to it (``ix_records_data``), or
    like it where it has ``*`` wildcards, ignoring case. A pattern with a literal
    prefix (``192.0.2.*``) also asks for that prefix of the record's lowered first
    characters, which ``ix_records_data_prefix`` answers on PostgreSQL by a range
    scan; the full pattern is then checked on the rows it finds."""
    matched = match(models.Record.data, value)
    if not isinstance(value, str) or "*" not in value:
        return matched
    prefix = value.split("*", 1)[0][: models.DATA_PREFIX_CHARS]
    if not prefix:
        return matched  # nothing to range over: every record is read
    # The index's expression, its numbers written into the SQL so that it is the
    # same expression whatever the driver does with parameters.
    head = sa.func.lower(
        sa.func.substr(
            models.Record.data,
            sa.literal_column("1"),
            sa.literal_column(str(models.DATA_PREFIX_CHARS)),
        )
    )
    # lower() of the prefix in SQL too: the same case folding on both sides; the
    # planner folds it into the constant it ranges over.
    pattern = sa.func.lower(escape_like(prefix)).concat("%")
    return sa.and_(head.like(pattern, escape="\\"), matched)


def paged(
    session: Session,
    query: sa.Select[Any],
    model: Any,
    scope: list[sa.ColumnElement[bool]],
    filters: list[sa.ColumnElement[bool]],
    paging: objects.Paging,
) -> tuple[list[Any], int, bool]:
    """The rows of one page, how many rows match in all, and whether more follow.

    Keyset pagination: the page starts after the marker row's (sort key, id),
    so a page costs the same however deep it is. NULLs sort first ascending
    and last descending on every database. The marker is looked up within
    ``scope`` only, so a row that stopped matching the filters between two
    pages (its status changed) still marks where the next page starts.
    """
    column = column_named(model, paging.sort_key)
    ident = column_named(model, "id")
    descending = paging.sort_dir == objects.DESC
    total = session.scalar(sa.select(sa.func.count()).select_from(model).where(*scope, *filters))
    query = query.where(*scope, *filters)
    if paging.marker is not None:
        marker = session.execute(sa.select(column).where(ident == paging.marker, *scope)).first()
        if marker is None:
            raise exceptions.MarkerNotFound(
                f"marker {paging.marker!r} is not in this list: start again without a marker"
            )
        query = query.where(_after(column, ident, marker[0], paging.marker, descending=descending))
    order: list[sa.ColumnElement[Any]] = [column, ident]
    if column.nullable:
        order.insert(0, column.is_not(None))
    rows = list(
        session.scalars(
            query.order_by(*(o.desc() if descending else o.asc() for o in order)).limit(
                paging.limit + 1
            )
        )
    )
    return rows[: paging.limit], int(total or 0), len(rows) > paging.limit


def _after(
    column: sa.Column[Any], ident: sa.Column[Any], value: Any, marker: str, *, descending: bool
) -> sa.ColumnElement[bool]:
    """The rows ordered after the marker row, whose sort value is ``value``."""
    if value is None:
        if descending:
            return sa.and_(column.is_(None), ident < marker)
        return sa.or_(column.is_not(None), ident > marker)
    if descending:
        later = sa.or_(column < value, sa.and_(column == value, ident < marker))
        return sa.or_(later, column.is_(None)) if column.nullable else later
    return sa.or_(column > value, sa.and_(column == value, ident > marker))


# Ids per IN (...) list: well below SQLite's 32766 bound parameters.
IN_CHUNK = 500


def count(session: Session, query: sa.Select[Any]) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0)
