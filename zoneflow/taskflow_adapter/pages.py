"""Pages of logbooks, chosen, ordered and counted in SQL.

A list of jobs read every logbook with its flows and atoms into Python and
sorted them there: ``GET /v2/jobs`` never answered at 10,000 jobs. Here the
database picks one page: the filters on a logbook's metadata (the job's
zone, its kind), the job's state, its zone's project, then keyset paging
on (``created_at`` or the job's last change, uuid), as storage's other lists
page (zoneflow.storage.queries.paged). Only the page's logbooks are then
read whole (persistence.py), through the indexes of indexes.py.

A zoneflow job's logbook holds one flow: the flow is joined to its logbook
(a logbook of several flows would be listed once per flow).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from taskflow import states
from taskflow.persistence import models

from zoneflow.storage import tables as zoneflow_tables
from zoneflow.taskflow_adapter.indexes import json_text, meta_field

CREATED_AT = "created_at"
UPDATED_AT = "updated_at"


@dataclasses.dataclass(frozen=True)
class StateRule:
    """How a job's one-word state follows from its logbook, for SQL to ask it.

    zoneflow.jobs.records gives the rule (and reads the same state in
    Python): the word zoneflow wrote in the logbook's metadata when it ended
    the job itself; else the flow's state (PENDING with none), where a flow's
    SUCCESS becomes what the result of one atom (the status the flow gave its
    zone) says.
    """

    outcome_key: str
    status_atom: str
    success_by_status: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class BookQuery:
    """Which logbooks a list holds."""

    # Metadata key -> the value it must have (exactly).
    meta: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # zone_id or zone_name -> the value one zone of the job must have: the zone its
    # metadata names, or any zone of a batch (zoneflow.storage.job_zones).
    zone: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Only logbooks whose job is in one of these states, or in none of those
    # (the rule says how to tell).
    states: frozenset[str] = frozenset()
    not_states: frozenset[str] = frozenset()
    rule: StateRule | None = None
    # Only the logbooks of jobs about a zone of this project (metadata's zone_id);
    # None: every logbook. The marker of a page is looked for within this scope.
    project_id: str | None = None
    created_before: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True)
class Order:
    key: str = CREATED_AT  # or UPDATED_AT: the job's last change (see persistence._assemble_book)
    descending: bool = True


@dataclasses.dataclass(frozen=True)
class BookPage:
    """One page of logbooks, how many the list holds in all (None: not counted), and
    whether more follow."""

    books: list[models.LogBook]
    total: int | None
    more: bool


class _Select:
    """The FROM clause, the scope, the filters and the sort value of one list."""

    def __init__(self, tables: Any, dialect: str, query: BookQuery, order: Order) -> None:
        if order.key not in (CREATED_AT, UPDATED_AT):
            raise ValueError(f"logbooks sort by {CREATED_AT} or {UPDATED_AT}, not {order.key!r}")
        books, flows = tables.logbooks, tables.flowdetails
        self.books = books
        with_flow = books.outerjoin(flows, flows.c.parent_uuid == books.c.uuid)
        self.zone_id = meta_field(books.c.meta, "zone_id", dialect)
        self.project_id = query.project_id
        self.filters = [
            meta_field(books.c.meta, key, dialect) == value for key, value in query.meta.items()
        ]
        self.filters += [_carries(books, dialect, key, value) for key, value in query.zone.items()]
        if query.created_before is not None:
            self.filters.append(books.c.created_at < query.created_before)
        # What the filters read: the logbook, and for a state its flow and status atom.
        self.filtered: Any = books
        if query.states or query.not_states:
            if query.rule is None:
                raise ValueError("a list by job state needs the rule that tells the state")
            status = tables.atomdetails.alias("status_atom")
            self.filtered = with_flow.outerjoin(
                status,
                sa.and_(
                    status.c.parent_uuid == flows.c.uuid,
                    status.c.name == query.rule.status_atom,
                ),
            )
            state = _state(query.rule, books, flows, status, dialect)
            if query.states:
                self.filters.append(state.in_(sorted(str(s) for s in query.states)))
            if query.not_states:
                self.filters.append(state.not_in(sorted(str(s) for s in query.not_states)))
        # What the page reads: that, and the flow if the order is its last change.
        source = self.filtered
        if order.key == UPDATED_AT and self.filtered is books:
            source = with_flow
        self.scope: list[sa.ColumnElement[bool]] = []
        if query.project_id is not None:
            zones = zoneflow_tables.zones
            source = source.join(zones, zones.c.id == self.zone_id)
            self.scope.append(zones.c.project_id == query.project_id)
        self.source = source
        self.sort = books.c.created_at if order.key == CREATED_AT else _last_change(books, flows)
        self.descending = order.descending

    def count(self) -> sa.Select[Any]:
        """How many logbooks the list holds.

        A project's are counted zone by zone (each zone's jobs found through
        ix_logbooks_zone_id): joined to the zones whole, PostgreSQL read
        every logbook and every one's metadata, 38 ms at 10,000 jobs, where
        this took 1.3 ms.
        """
        if self.project_id is None:
            return sa.select(sa.func.count()).select_from(self.filtered).where(*self.filters)
        zones = zoneflow_tables.zones
        per_zone = (
            sa.select(sa.func.count())
            .select_from(self.filtered)
            .where(self.zone_id == zones.c.id, *self.filters)
            .scalar_subquery()
        )
        return sa.select(sa.func.coalesce(sa.func.sum(per_zone), 0)).where(
            zones.c.project_id == self.project_id
        )


def _carries(books: Any, dialect: str, key: str, value: str) -> sa.ColumnElement[bool]:
    """The logbook's job is about a zone whose ``key`` (zone_id, zone_name) is ``value``:
    its metadata names it, or the zone rides in its batch (table job_zones).

    A union of two index lookups (ix_logbooks_zone_id or the name's, and
    ix_job_zones_*), not an OR, which would read every logbook.
    """
    if key not in ("zone_id", "zone_name"):
        raise ValueError(f"a job is picked by its zone's zone_id or zone_name, not {key!r}")
    named = books.alias("named")
    carried = zoneflow_tables.job_zones
    return books.c.uuid.in_(
        sa.union_all(
            sa.select(named.c.uuid).where(meta_field(named.c.meta, key, dialect) == value),
            sa.select(carried.c.job_id).where(carried.c[key] == value),
        )
    )


def position(
    conn: sa.Connection, tables: Any, query: BookQuery, order: Order, uuid: str
) -> tuple[Any, str] | None:
    """Where logbook ``uuid`` stands in the list (its sort value and uuid), or None
    when it is not in the list's scope (filters aside: a job whose state changed
    between two pages still marks where the next one starts)."""
    chosen = _Select(tables, conn.dialect.name, query, order)
    row = conn.execute(
        sa.select(chosen.sort)
        .select_from(chosen.source)
        .where(chosen.books.c.uuid == uuid, *chosen.scope)
    ).first()
    return None if row is None else (row[0], uuid)


def page(
    conn: sa.Connection,
    tables: Any,
    query: BookQuery,
    order: Order,
    *,
    limit: int,
    after: tuple[Any, str] | None = None,
    count: bool = True,
) -> tuple[list[str], int | None, bool]:
    """The uuids of up to ``limit`` logbooks after ``after`` (a :func:`position`), how
    many logbooks the list holds in all (None unless ``count``), and whether more follow."""
    chosen = _Select(tables, conn.dialect.name, query, order)
    books = chosen.books
    conditions = [*chosen.scope, *chosen.filters]
    total = int(conn.scalar(chosen.count()) or 0) if count else None
    if after is not None:
        conditions.append(_after(chosen.sort, books.c.uuid, after, descending=chosen.descending))
    keys = [chosen.sort, books.c.uuid]
    rows = conn.execute(
        sa.select(books.c.uuid)
        .select_from(chosen.source)
        .where(*conditions)
        .order_by(*(k.desc() if chosen.descending else k.asc() for k in keys))
        .limit(limit + 1)
    ).scalars()
    uuids = list(rows)
    return uuids[:limit], total, len(uuids) > limit


def _after(
    sort: sa.ColumnElement[Any],
    uuid: sa.ColumnElement[Any],
    at: tuple[Any, str],
    *,
    descending: bool,
) -> sa.ColumnElement[bool]:
    """The rows after the one at ``at`` in (sort, uuid) order. Both sort values are
    never NULL: TaskFlow stamps a logbook's created_at when it makes it."""
    value, marker = at
    if descending:
        return sa.or_(sort < value, sa.and_(sort == value, uuid < marker))
    return sa.or_(sort > value, sa.and_(sort == value, uuid > marker))


def _last_change(books: Any, flows: Any) -> sa.ColumnElement[Any]:
    """A job's last change: its logbook's or its flow's, whichever came last
    (persistence._assemble_book stamps the books it reads so)."""
    flow_later = sa.and_(
        flows.c.updated_at.is_not(None),
        sa.or_(books.c.updated_at.is_(None), flows.c.updated_at > books.c.updated_at),
    )
    return sa.case(
        (flow_later, flows.c.updated_at),
        (books.c.updated_at.is_not(None), books.c.updated_at),
        else_=books.c.created_at,
    )


def _state(
    rule: StateRule, books: Any, flows: Any, status: Any, dialect: str
) -> sa.ColumnElement[Any]:
    """The job's state as :class:`StateRule` tells it, in SQL."""
    outcome = meta_field(books.c.meta, rule.outcome_key, dialect)
    result = json_text(status.c.results, dialect)
    success = sa.case(
        *((result == str(given), str(state)) for given, state in rule.success_by_status.items()),
        else_=sa.literal(states.SUCCESS),
    )
    return sa.case(
        (sa.and_(outcome.is_not(None), outcome != ""), outcome),
        (sa.or_(flows.c.state.is_(None), flows.c.state == ""), sa.literal(states.PENDING)),
        (flows.c.state == states.SUCCESS, success),
        else_=flows.c.state,
    )
