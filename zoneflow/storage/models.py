"""SQLAlchemy models of zoneflow's own tables.

Zones, recordsets and records are declared as Core tables in
:mod:`zoneflow.storage.tables` (read without the ORM by the CLI) and mapped
here; the annotations of their models only give the columns' Python types.
TaskFlow's logbook tables live in the same database but are created by
TaskFlow's persistence backend (see ``zoneflow.taskflow_adapter.persistence``).
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from zoneflow.storage import tables
from zoneflow.storage.tables import DATA_PREFIX_CHARS, LIVE, new_id, utcnow

__all__ = ["DATA_PREFIX_CHARS", "LIVE", "new_id", "utcnow"]


class Base(DeclarativeBase):
    metadata = tables.metadata
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Timestamps:
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, onupdate=utcnow)


class Pool(Timestamps, Base):
    __tablename__ = "pools"
    __table_args__ = (UniqueConstraint("catalog_zone", name="uniq_pool_catalog_zone"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    threshold_percentage: Mapped[int] = mapped_column(Integer, default=100)
    provisioning: Mapped[str] = mapped_column(String(16), default="per-zone")
    catalog_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    catalog_zone_refresh: Mapped[int] = mapped_column(Integer, default=60)
    # Bumped whenever a zone joins or leaves the pool: the catalog's serial.
    catalog_serial: Mapped[int] = mapped_column(BigInteger, default=lambda: int(time.time()))

    ns_records: Mapped[list[PoolNsRecord]] = relationship(
        cascade="all, delete-orphan", order_by="PoolNsRecord.priority"
    )
    nameservers: Mapped[list[PoolNameserver]] = relationship(
        cascade="all, delete-orphan", order_by="PoolNameserver.position"
    )
    targets: Mapped[list[PoolTarget]] = relationship(
        cascade="all, delete-orphan", order_by="PoolTarget.position"
    )
    also_notifies: Mapped[list[PoolAlsoNotify]] = relationship(
        cascade="all, delete-orphan", order_by="PoolAlsoNotify.position"
    )


class PoolNsRecord(Base):
    __tablename__ = "pool_ns_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pool_id: Mapped[str] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"))
    hostname: Mapped[str] = mapped_column(String(255))
    priority: Mapped[int] = mapped_column(Integer)


class PoolNameserver(Base):
    __tablename__ = "pool_nameservers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pool_id: Mapped[str] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)


class PoolTarget(Base):
    __tablename__ = "pool_targets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pool_id: Mapped[str] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(50))
    description: Mapped[str] = mapped_column(Text, default="")
    masters: Mapped[list[Any]] = mapped_column(default=list)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Set when a pools file no longer lists the target: the row (and so its
    # type and options) stays until a retire-target job has deleted the
    # pool's zones from the server, then goes.
    retired_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    # Why the last retire-target job stopped before it was done.
    drain_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class PoolAlsoNotify(Base):
    __tablename__ = "pool_also_notifies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pool_id: Mapped[str] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)


class Zone(Base):
    __table__ = tables.zones

    id: Mapped[str]
    name: Mapped[str]
    reversed_name: Mapped[str]
    email: Mapped[str]
    ttl: Mapped[int]
    serial: Mapped[int]
    refresh: Mapped[int]
    retry: Mapped[int]
    expire: Mapped[int]
    minimum: Mapped[int]
    status: Mapped[str]
    action: Mapped[str]
    pool_id: Mapped[str]
    project_id: Mapped[str | None]
    description: Mapped[str | None]
    error: Mapped[str | None]
    version: Mapped[int]
    deleted: Mapped[str]
    deleted_at: Mapped[datetime.datetime | None]
    created_at: Mapped[datetime.datetime]
    updated_at: Mapped[datetime.datetime | None]

    recordsets: Mapped[list[RecordSet]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )


class RecordSet(Base):
    __table__ = tables.recordsets

    id: Mapped[str]
    zone_id: Mapped[str]
    name: Mapped[str]
    type: Mapped[str]
    ttl: Mapped[int | None]
    serial: Mapped[int]
    status: Mapped[str]
    action: Mapped[str]
    description: Mapped[str | None]
    version: Mapped[int]
    created_at: Mapped[datetime.datetime]
    updated_at: Mapped[datetime.datetime | None]

    records: Mapped[list[Record]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="Record.position"
    )


# GET /v2/recordsets?data=192.0.2.1 finds every recordset pointing at an
# address. A hash index on PostgreSQL: it holds a record of any length (a btree
# entry is limited to a third of a page, which a long TXT record exceeds) and
# equality is all it is asked. Declared here, not in tables, see there why.
RECORDS_DATA_INDEX = Index("ix_records_data", tables.records.c.data, postgresql_using="hash")


class Record(Base):
    __table__ = tables.records

    id: Mapped[int]
    recordset_id: Mapped[str]
    position: Mapped[int]
    data: Mapped[str]


class ZoneChange(Base):
    """What one serial changed in a zone: the records it removed and added.

    Written in the transaction that bumps the serial, so mdns can answer an
    IXFR (RFC 1995) with the differences instead of the whole zone. Each
    record is ``[owner, ttl, type, data]`` as the zone served it. A change
    that cannot be told as record differences (the zone's TTL or SOA fields
    changed, or the zone is being deleted) is written with ``incremental``
    false: a client older than it gets a full transfer.
    """

    __tablename__ = "zone_changes"
    __table_args__ = (UniqueConstraint("zone_id", "serial", name="uniq_zone_change"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"))
    previous_serial: Mapped[int] = mapped_column(BigInteger)
    serial: Mapped[int] = mapped_column(BigInteger)
    incremental: Mapped[bool] = mapped_column(Boolean)
    removed: Mapped[list[Any]] = mapped_column(default=list)
    added: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class CatalogChange(Base):
    """A zone that joined or left a pool's catalog, and the catalog serial that says so.

    Written in the transaction that bumps the pool's ``catalog_serial`` by one,
    so each serial has exactly one row and mdns can answer a consumer's IXFR of
    the catalog with the members it lacks, not every member (RFC 1995). The
    zone's name is kept: its row may be purged before the history is.
    """

    __tablename__ = "catalog_changes"
    __table_args__ = (UniqueConstraint("pool_id", "serial", name="uniq_catalog_change"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pool_id: Mapped[str] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"))
    serial: Mapped[int] = mapped_column(BigInteger)
    zone_id: Mapped[str] = mapped_column(String(36))
    zone_name: Mapped[str] = mapped_column(String(255))
    # True: the zone joined the catalog; false: it left.
    joined: Mapped[bool] = mapped_column(Boolean)


class ZoneTransfer(Base):
    """The last zone transfers mdns served a zone to one client address.

    A nameserver that refuses the data it transferred (a zone stored before
    the rules) keeps its old serial and transfers the same serial again and
    again: ``count`` transfers of ``serial`` since ``first_at``, the last at
    ``last_at``. One row per (zone, source), written by mdns's transfer log
    at most once a second (:mod:`zoneflow.mdns.transfers`).
    """

    __tablename__ = "zone_transfers"
    __table_args__ = (UniqueConstraint("zone_id", "source", name="uniq_zone_transfer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(64))
    serial: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    first_at: Mapped[datetime.datetime] = mapped_column(DateTime)
    last_at: Mapped[datetime.datetime] = mapped_column(DateTime)
    count: Mapped[int] = mapped_column(Integer)
    # False: the client went away before mdns had sent the whole transfer.
    completed: Mapped[bool] = mapped_column(Boolean)


class ZoneTargetStatus(Base):
    __tablename__ = "zone_target_status"

    zone_id: Mapped[str] = mapped_column(
        ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True
    )
    target_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    serial: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, default=utcnow)


class JobOutbox(Base):
    """Jobs written in the same transaction as their change.

    A change and the job that carries it out commit together; a relay posts
    the job to the jobboard afterwards, so neither can exist without the other
    even if the jobboard is briefly unreachable.
    """

    __tablename__ = "job_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    # A zone job names its zone; a retire-target job its target instead.
    zone_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    target_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    serial: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    claimed_until: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    # The job to post if the zone's pool grows while this one runs (objects.JobOrder).
    if_pool_grows: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # objects.JobPriority: relays claim the lowest first, then the oldest
    # (ix_job_outbox_priority answers both). No default: central decides it.
    priority: Mapped[int] = mapped_column(SmallInteger)
    # Its job is on the board, not begun yet: the zone's updates ride on it
    # (zoneflow.storage.outbox); relays claim only rows not posted.
    posted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The batch job (objects.BATCH_OF) this row goes in, once a relay grouped it with others
    # (zoneflow.jobs.group_changes): posted again, the rows make the same job.
    batch: Mapped[str | None] = mapped_column(String(36), nullable=True)

    __table_args__ = (
        Index("ix_job_outbox_priority", "priority", "id"),
        Index("ix_job_outbox_zone", "zone_id"),
        Index("ix_job_outbox_unposted", "posted", "priority", "id"),
        Index("ix_job_outbox_batch", "batch"),
    )


class ZoneTask(Timestamps, Base):
    """A zone export or import (Designate's zone tasks) and how it ended.

    An export keeps the zone file it produced, so the file a client fetches
    is the zone as it was at the export's serial.
    """

    __tablename__ = "zone_tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    task_type: Mapped[str] = mapped_column(String(16))
    project_id: Mapped[str | None] = mapped_column(String(255), index=True)
    zone_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(255))
    content: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)


class TsigKey(Timestamps, Base):
    """A TSIG key managed through /v2/tsigkeys; mdns verifies requests with it."""

    __tablename__ = "tsigkeys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    algorithm: Mapped[str] = mapped_column(String(32))
    secret: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(16))
    resource_id: Mapped[str] = mapped_column(String(36))


class Quota(Timestamps, Base):
    """A project's own limit for one resource; without a row, [quota]'s default holds."""

    __tablename__ = "quotas"
    __table_args__ = (UniqueConstraint("project_id", "resource", name="uniq_quota"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(255))
    resource: Mapped[str] = mapped_column(String(32))
    hard_limit: Mapped[int] = mapped_column(Integer)


class ServiceStatus(Timestamps, Base):
    """One running zoneflow process's service (conductor, mdns, api) and its last heartbeat."""

    __tablename__ = "service_statuses"
    __table_args__ = (UniqueConstraint("service_name", "hostname", name="uniq_service_status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    service_name: Mapped[str] = mapped_column(String(32))
    hostname: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    heartbeated_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    capabilities: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Event(Base):
    """One published change, kept for ``[events] retention`` so a subscriber that
    reconnects resumes after the last event it saw (zoneflow.storage.events)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_created_at", "created_at"),)

    # BigInteger on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY
    # is the rowid and counts up by itself).
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    topic: Mapped[str] = mapped_column(String(16))
    table: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32))
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    project_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    zone_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    publisher: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class EventPublisher(Base):
    """A process publishing events and its last activity, refreshed by its heartbeat;
    a row silent for ``[events] publisher_timeout`` is reaped."""

    __tablename__ = "event_publishers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    last_activity: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    published: Mapped[int] = mapped_column(BigInteger, default=0)


class TargetState(Base):
    """A target's health as the inspector judged it, and its maintenance
    (zoneflow.storage.health). A target without a row is UP and counted."""

    __tablename__ = "target_states"

    target_id: Mapped[str] = mapped_column(
        ForeignKey("pool_targets.id", ondelete="CASCADE"), primary_key=True
    )
    health: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    # None, ON or CATCHING_UP (objects.Maintenance).
    maintenance: Mapped[str | None] = mapped_column(String(16), nullable=True)
    maintenance_since: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
