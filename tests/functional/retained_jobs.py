"""Many retained jobs, written straight into PostgreSQL in a few statements.

One job's logbook (its logbooks row, its flow, its atoms) and its zone are
the template: each copy is the template's rows with new uuids, its own
``created_at`` (a millisecond apart, oldest first) and a zone of its own
among ``zones`` copies of the template's zone, spread over ``projects``
projects. PostgreSQL makes the copies itself (INSERT ... SELECT over
generate_series): 100,000 jobs take seconds, where running them would take
hours. Used by tests/functional/test_logbook_indexes.py and bench/jobs_scale.py.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import uuid
from typing import Any

import sqlalchemy as sa

# Each copy's uuids, from its number: md5 of a text, as a uuid.
_UUID = "md5({prefix} || {number})::uuid::text"


@dataclasses.dataclass(frozen=True)
class Copies:
    """What copies were made: job n's id is ``job_id(n)``, for n in 0..jobs-1."""

    jobs: int
    zones: int
    projects: int

    def job_id(self, number: int) -> str:
        return _uuid_of("job-", number)

    def zone_id(self, number: int) -> str:
        return _uuid_of("zone-", number)

    def zone_of(self, job: int) -> int:
        return job % self.zones

    def project_of(self, zone: int) -> str:
        return f"project-{zone % self.projects}"


def _uuid_of(prefix: str, number: int) -> str:
    """The uuid _UUID makes in SQL, made in Python."""
    return str(uuid.UUID(hashlib.md5(f"{prefix}{number}".encode()).hexdigest()))


def copy_jobs(
    engine: sa.Engine,
    template: str,
    *,
    jobs: int,
    zones: int,
    projects: int,
    start: datetime.datetime,
    first: int = 0,
    chunk: int = 20_000,
) -> Copies:
    """Write copies ``first`` to ``jobs - 1`` of the job ``template`` (a logbook uuid),
    and, with the first ones, ``zones`` copies of its zone; what there is then.

    Copies below ``first`` were made before, by a call with the same ``zones``."""
    with engine.begin() as conn:
        zone_id = conn.scalar(
            sa.text("SELECT meta ->> 'zone_id' FROM logbooks WHERE uuid = :t"), {"t": template}
        )
        if zone_id is None:
            raise ValueError(f"job {template} is no zone's job: nothing to copy")
        if first == 0:
            conn.execute(
                sa.text(_copy_zones(conn)), {"zone": zone_id, "zones": zones, "p": projects}
            )
    for low in range(first, jobs, chunk):
        high = min(jobs, low + chunk) - 1
        values = {"t": template, "first": low, "last": high, "zones": zones, "start": start}
        with engine.begin() as conn:
            for statement in (_COPY_BOOKS, _copy_flows(conn), _copy_atoms(conn)):
                conn.execute(sa.text(statement), values)
    return Copies(jobs, zones, projects)


def _columns(conn: sa.Connection, table: str) -> list[str]:
    return [column["name"] for column in sa.inspect(conn).get_columns(table)]


def _select(conn: sa.Connection, table: str, alias: str, own: dict[str, str]) -> tuple[str, str]:
    """The column list of ``table`` and a SELECT list taking ``own``'s expressions for
    those columns and the template row's (``alias``) for the rest."""
    names = _columns(conn, table)
    return ", ".join(names), ", ".join(own.get(name, f"{alias}.{name}") for name in names)


def _copy_zones(conn: sa.Connection) -> str:
    names, values = _select(
        conn,
        "zones",
        "t",
        {
            "id": _UUID.format(prefix="'zone-'", number="z"),
            "name": "'z' || z || '.' || t.name",
            "project_id": "'project-' || (z % :p)",
        },
    )
    return (
        f"INSERT INTO zones ({names}) SELECT {values} "
        "FROM zones t, generate_series(0, :zones - 1) z WHERE t.id = :zone"
    )


_BOOK = _UUID.format(prefix="'job-'", number="g")
_FLOW = _UUID.format(prefix="'flow-'", number="g")
_ZONE_ID = _UUID.format(prefix="'zone-'", number="(g % :zones)")
_CREATED = ":start + g * interval '1 millisecond'"
_COPY_BOOKS = f"""
INSERT INTO logbooks (created_at, updated_at, meta, name, uuid)
SELECT {_CREATED}, {_CREATED} + interval '2 seconds',
       jsonb_set(jsonb_set(t.meta::jsonb, '{{zone_id}}', to_jsonb({_ZONE_ID})),
                 '{{zone_name}}', to_jsonb('z' || (g % :zones) || '.' || (t.meta ->> 'zone_name'))
       )::json,
       -- Named as zoneflow names a job (jobs.steps.zone_logbook), at serial g.
       (t.meta ->> 'kind') || ' z' || (g % :zones) || '.' || (t.meta ->> 'zone_name')
           || ' serial ' || g,
       {_BOOK}
FROM logbooks t, generate_series(:first, :last) g WHERE t.uuid = :t
"""


def _copy_flows(conn: sa.Connection) -> str:
    names, values = _select(
        conn,
        "flowdetails",
        "f",
        {
            "uuid": _FLOW,
            "parent_uuid": _BOOK,
            "created_at": _CREATED,
            "updated_at": f"{_CREATED} + interval '1 second'",
        },
    )
    return (
        f"INSERT INTO flowdetails ({names}) SELECT {values} "
        "FROM flowdetails f, generate_series(:first, :last) g WHERE f.parent_uuid = :t"
    )


def _copy_atoms(conn: sa.Connection) -> str:
    names, values = _select(
        conn,
        "atomdetails",
        "a",
        {"uuid": "md5('atom-' || g || '-' || a.uuid)::uuid::text", "parent_uuid": _FLOW},
    )
    return (
        f"INSERT INTO atomdetails ({names}) SELECT {values} "
        "FROM atomdetails a JOIN flowdetails f ON a.parent_uuid = f.uuid, "
        "generate_series(:first, :last) g WHERE f.parent_uuid = :t"
    )


def analyze(engine: sa.Engine) -> None:
    """VACUUM ANALYZE the logbook tables and zones, as autovacuum would in time."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("zones", "logbooks", "flowdetails", "atomdetails"):
            conn.execute(sa.text(f"VACUUM ANALYZE {table}"))


def explain(engine: sa.Engine, statement: str, params: Any) -> str:
    """PostgreSQL's plan of one statement (as run, with its parameters)."""
    with engine.connect() as conn:
        cursor = conn.connection.cursor()
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {statement}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


class Statements:
    """The SELECTs sent through ``engine`` while a block runs."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.seen: list[tuple[str, Any]] = []

    def __enter__(self) -> Statements:
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, _c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.seen.append((statement, params))

    def plans(self) -> list[str]:
        return [explain(self.engine, statement, params) for statement, params in self.seen]
