"""The tables a short-lived reader needs, as SQLAlchemy Core tables.

``zoneflow zone list`` and its kin read zones and recordsets through these
and never build the ORM: declaring :mod:`zoneflow.storage.models` costs a
fifth of a second, more than the command's whole budget once SQLAlchemy is
loaded. The models map these same tables (``__table__``), so each column is
declared once; the other tables are declared by their models alone.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from zoneflow.storage import LIVE

# How many of a record's first characters ix_records_data_prefix holds.
DATA_PREFIX_CHARS = 200

metadata = MetaData()


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def reversed_name(name: str) -> str:
    """A zone's name with its labels in reverse order: ``www.example.com.`` ->
    ``com.example.www.``, so that the zones below a zone are the names that start
    with its own (see ``zones.reversed_name``)."""
    return ".".join(reversed(name.rstrip(".").split("."))) + "."


def _reversed_of_name(context: Any) -> str:
    return reversed_name(context.get_current_parameters()["name"])


def _timestamps() -> tuple[Column[datetime.datetime], Column[datetime.datetime]]:
    return (
        Column("created_at", DateTime, nullable=False, default=utcnow),
        Column("updated_at", DateTime, nullable=True, onupdate=utcnow),
    )


zones = Table(
    "zones",
    metadata,
    Column("id", String(36), primary_key=True, default=new_id),
    Column("name", String(255), nullable=False, index=True),
    # Written from name on insert (a zone's name never changes). The subzones
    # of a zone are a prefix lookup on it, which ix_zones_reversed_name answers
    # (text_pattern_ops on PostgreSQL, NOCASE on SQLite, where LIKE ignores
    # case): an operator-class index made by migration 0015_outbox_priority only.
    Column("reversed_name", String(255), nullable=False, default=_reversed_of_name),
    Column("email", String(255), nullable=False),
    Column("ttl", Integer, nullable=False),
    Column("serial", BigInteger, nullable=False),
    Column("refresh", Integer, nullable=False),
    Column("retry", Integer, nullable=False),
    Column("expire", Integer, nullable=False),
    Column("minimum", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("action", String(16), nullable=False),
    Column("pool_id", ForeignKey("pools.id"), nullable=False),
    Column("project_id", String(255), nullable=True, index=True),
    Column("description", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("version", Integer, nullable=False, default=1, server_default="1"),
    Column("deleted", String(36), nullable=False, default=LIVE),
    Column("deleted_at", DateTime, nullable=True),
    *_timestamps(),
    UniqueConstraint("name", "deleted", name="uniq_zone_name"),
)

recordsets = Table(
    "recordsets",
    metadata,
    Column("id", String(36), primary_key=True, default=new_id),
    Column("zone_id", ForeignKey("zones.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("type", String(16), nullable=False),
    Column("ttl", Integer, nullable=True),
    Column("serial", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("action", String(16), nullable=False),
    Column("description", Text, nullable=True),
    Column("version", Integer, nullable=False, default=1, server_default="1"),
    *_timestamps(),
    UniqueConstraint("zone_id", "name", "type", name="uniq_recordset"),
)

records = Table(
    "records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "recordset_id",
        ForeignKey("recordsets.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("position", Integer, nullable=False),
    Column("data", Text, nullable=False),
    UniqueConstraint("recordset_id", "data", name="uniq_record"),
    # ix_records_data is declared by models.Record: a PostgreSQL hash index, and
    # naming PostgreSQL's options loads its dialect (80 ms), which a reader
    # of a SQLite database need not pay for.
    # data=192.0.2.* (a wildcard after a literal prefix) is answered on
    # PostgreSQL by ix_records_data_prefix, a btree with text_pattern_ops on
    # lower(substr(data, 1, DATA_PREFIX_CHARS)): the first characters only, so
    # that a long TXT record fits a btree entry; lower() because a wildcard
    # match ignores case. An expression index, made by migration
    # 0008_records_data_prefix only (see storage.queries.data_match).
)


# Every zone a batch job carries (zoneflow.flows.batch), at the serial its
# change was posted at: a zone's jobs are those whose logbook names it (its
# metadata's zone_id) and those it rides in here (zoneflow.taskflow_adapter.pages).
# Keyed by the job's id, the uuid of its logbook in TaskFlow's tables.
job_zones = Table(
    "job_zones",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("zone_id", String(36), primary_key=True),
    Column("zone_name", String(255), nullable=False),
    Column("serial", BigInteger, nullable=False),
    Index("ix_job_zones_zone_id", "zone_id"),
    Index("ix_job_zones_zone_name", "zone_name", "serial"),
)
