"""Value objects that cross layers (storage -> central -> CLI/API, flows, mdns).

Storage hands these out instead of ORM rows so nothing outside
``zoneflow.storage`` depends on a live database session.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Status(enum.StrEnum):
    """Where a zone, recordset or zone task stands (Designate's words, which
    operators know). Stored as its text, so a row compares equal to a member."""

    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    ERROR = "ERROR"
    DELETED = "DELETED"
    # A zone task (export, import) that ended well.
    COMPLETE = "COMPLETE"


class Action(enum.StrEnum):
    """What a zone or recordset is becoming on the nameservers (Designate's words)."""

    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    NONE = "NONE"


class JobKind(enum.StrEnum):
    """What a job does: the name of the flow that carries it out.

    Central decides which kind a change posts; storage writes it to the
    outbox as given, and the conductor runs the flow of that name.
    """

    CREATE_ZONE = "create-zone"
    UPDATE_ZONE = "update-zone"
    DELETE_ZONE = "delete-zone"
    # Bring the targets to what the zone already is (its serial unchanged).
    RECOVER_ZONE = "recover-zone"
    # create-zone, update-zone and delete-zone for several zones of one pool
    # in one job (zoneflow.flows.batch), each zone as its own job would leave it.
    CREATE_ZONES = "create-zones"
    UPDATE_ZONES = "update-zones"
    DELETE_ZONES = "delete-zones"
    # recover-zone for several zones of one pool wanted ACTIVE (a zone wanted
    # DELETED is recovered alone).
    RECOVER_ZONES = "recover-zones"
    # Delete a pool's zones from a target the pool no longer lists, then its row.
    RETIRE_TARGET = "retire-target"


#: The kind of job that carries several zones' jobs of a kind, under load.
BATCH_OF = {
    JobKind.CREATE_ZONE: JobKind.CREATE_ZONES,
    JobKind.UPDATE_ZONE: JobKind.UPDATE_ZONES,
    JobKind.DELETE_ZONE: JobKind.DELETE_ZONES,
    JobKind.RECOVER_ZONE: JobKind.RECOVER_ZONES,
}
#: The kind of job of one zone a batch of that kind carries for each of its zones.
ONE_OF = {batch: one for one, batch in BATCH_OF.items()}


class JobPriority(enum.IntEnum):
    """Which jobs go first: the relays post, and the conductors claim, a lower
    value first (oldest first within one), so that a change someone waits for
    is not queued behind the upkeep of thousands of zones. Central decides it
    with the job (JobOrder); the outbox row stores the number."""

    # A user's change (or an operator's recover): someone waits for it.
    CHANGE = 1
    # Work nobody waits for: a pool's backfill, a returning target's catch-up,
    # the producer's recovery, a retired target's drain.
    UPKEEP = 2


@dataclasses.dataclass(frozen=True)
class JobOrder:
    """The job a change posts, and what follows it if the zone's pool grows meanwhile.

    A job is built from the pool as it is when the job is posted. If the
    pool gains a target or nameserver before the job ends, the job cannot
    make the zone ACTIVE: it leaves the zone PENDING and posts
    ``if_pool_grows`` for the same zone and serial, in the same transaction.
    None posts nothing (a delete, which never makes a zone ACTIVE).
    ``priority`` says which jobs go first (JobPriority). Central decides
    them all; the order travels with the job (outbox row, logbook) to the
    flow that writes the zone's status.
    """

    kind: JobKind
    if_pool_grows: JobKind | None = None
    # The follow-up keeps it: it carries the same change on.
    priority: JobPriority = JobPriority.CHANGE


@dataclasses.dataclass(frozen=True)
class JobPacing:
    """Jobs ``job``, one per zone, released to the relays ``together`` at a time
    (the zones a relay may put in one batch job), ``interval`` seconds apart, so
    that changes made meanwhile are not queued behind all of them."""

    job: JobOrder
    interval: float
    together: int = 1

    def release_at(self, start: datetime.datetime, index: int) -> datetime.datetime:
        """When the ``index``-th zone's job (from 0) is released, the first at ``start``."""
        return start + datetime.timedelta(seconds=(index // self.together) * self.interval)


# Type names read letter by letter take "an" when the first letter's name starts
# with a vowel sound ("an A", "an MX", "an SOA"); these are read as words instead.
_VOWEL_SOUND_LETTERS = frozenset("AEFHILMNORSX")
_READ_AS_WORDS = frozenset({"LOC", "NAPTR"})


def with_article(rtype: str) -> str:
    """A record type with the article English reads it with: "an A", "a CNAME"."""
    spoken_as_letters = rtype.upper() not in _READ_AS_WORDS
    an = spoken_as_letters and rtype[:1].upper() in _VOWEL_SOUND_LETTERS
    return f"{'an' if an else 'a'} {rtype}"


def field_names(cls: type) -> tuple[str, ...]:
    """The names of a dataclass's fields, in order, read once per class: outcomes and
    events are turned into dicts thousands of times a minute, and
    ``dataclasses.fields`` walks the class each call (``dataclasses.asdict`` deep-copies
    every value besides)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(field.name for field in dataclasses.fields(cls))
    return names


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


@dataclasses.dataclass(frozen=True)
class HostPort:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclasses.dataclass(frozen=True)
class PoolTarget:
    """A server zoneflow configures (rndc, knotc, an HTTP API...)."""

    id: str
    pool_id: str
    type: str
    description: str
    masters: tuple[HostPort, ...]
    options: dict[str, Any]
    # When a pools file stopped listing it: its zones are being deleted from
    # it (a retire-target job), after which it is gone. None: in service.
    retired_at: datetime.datetime | None = None
    # Why the last retire-target job stopped before it was done.
    drain_error: str | None = None

    @property
    def label(self) -> str:
        """How messages name this target: its description, else type@host:port."""
        if self.description:
            return self.description
        host = self.options.get("host", "?")
        port = self.options.get("port", 53)
        return f"{self.type}@{host}:{port}"


@dataclasses.dataclass(frozen=True)
class NsRecord:
    hostname: str
    priority: int


@dataclasses.dataclass(frozen=True)
class Pool:
    id: str
    name: str
    description: str
    threshold_percentage: int
    ns_records: tuple[NsRecord, ...]
    nameservers: tuple[HostPort, ...]
    targets: tuple[PoolTarget, ...]
    also_notifies: tuple[HostPort, ...]
    # How targets learn of new and deleted zones: PER_ZONE commands (rndc
    # addzone, knotc, ...) or the pool's CATALOG zone (RFC 9432) alone.
    provisioning: str = "per-zone"
    catalog_zone: str | None = None
    catalog_zone_refresh: int = 60
    # Targets a pools file no longer lists, still having the pool's zones
    # deleted from them. ``targets`` holds only those in service: jobs,
    # thresholds and zone statuses count those alone.
    retired_targets: tuple[PoolTarget, ...] = ()


@dataclasses.dataclass(frozen=True)
class PoolUpdate:
    """What loading a pools file changed in one pool, and the work it scheduled.

    ``backfill`` zones are brought onto the added targets and nameservers
    (each stays PENDING until they serve it). Retired targets, and targets
    retired before that are still ``draining``, each have ``to_delete[id]``
    zones to delete from them before they go. ``removed_targets`` went at
    once: under catalog provisioning there is no per-zone call to make.
    """

    pool: Pool
    added_targets: tuple[PoolTarget, ...] = ()
    added_nameservers: tuple[HostPort, ...] = ()
    backfill: int = 0
    retired_targets: tuple[PoolTarget, ...] = ()
    draining_targets: tuple[PoolTarget, ...] = ()
    to_delete: dict[str, int] = dataclasses.field(default_factory=dict)
    removed_targets: tuple[PoolTarget, ...] = ()


@dataclasses.dataclass(frozen=True)
class Zone:
    id: str
    name: str
    email: str
    ttl: int
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int
    status: str
    action: str
    pool_id: str
    project_id: str | None
    description: str | None
    error: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime | None
    # Goes up by one with every change to the zone (each new serial).
    version: int = 1

    @property
    def wanted_gone(self) -> bool:
        """Its delete was asked for (action DELETE), or is done (DELETED: the delete's
        end also marks the row deleted and sets its action back to NONE). A recovery
        brings a target to such a zone by deleting it."""
        return self.action == Action.DELETE or self.status == Status.DELETED


@dataclasses.dataclass(frozen=True)
class TargetAction:
    """What a job's task for one target reads before acting: the zone (None if it
    is gone), whether it is deleted, the target (None if it is gone), its
    pool's provisioning, and whether a job ever recorded the zone on the
    target (False for a target added since, whose backfill has not run)."""

    zone: Zone | None
    zone_deleted: bool
    target: PoolTarget | None
    provisioning: str
    recorded: bool = True


@dataclasses.dataclass(frozen=True)
class PollState:
    """What a task polling one nameserver for a zone checks while it lags."""

    zone_deleted: bool
    # False once a pool update removed the nameserver from the zone's pool.
    nameserver_in_pool: bool
    # The pool's catalog zone (name, serial) when its targets learn of zones from it.
    catalog: tuple[str, int] | None = None


@dataclasses.dataclass(frozen=True)
class RecordSet:
    id: str
    zone_id: str
    name: str
    type: str
    ttl: int | None
    records: tuple[str, ...]
    serial: int
    status: str
    action: str
    created_at: datetime.datetime
    updated_at: datetime.datetime | None
    description: str | None = None
    # Goes up by one with every change to the recordset.
    version: int = 1


@dataclasses.dataclass(frozen=True)
class TargetStatus:
    """What one target serves of one zone, as last verified."""

    zone_id: str
    target_id: str
    serial: int
    status: str
    error: str | None
    updated_at: datetime.datetime | None


@dataclasses.dataclass(frozen=True)
class PendingJob:
    """A job written beside the change it carries out (the outbox).

    A zone job names its zone and serial; a retire-target job its target
    (``zone_id`` None, ``serial`` 0).
    """

    id: int
    kind: JobKind
    zone_id: str | None
    serial: int
    target_id: str | None = None
    # When the change wrote it: with ``id``, what names the row for good.
    created_at: datetime.datetime | None = None
    # The job to post if the zone's pool grows while this one runs (JobOrder).
    if_pool_grows: JobKind | None = None
    priority: JobPriority = JobPriority.CHANGE
    # The batch job (objects.BATCH_OF) it goes in, once a relay grouped it with others.
    batch: str | None = None


# One record as a zone serves it: owner, TTL, type, data (canonical text).
Record = tuple[str, int, str, str]


@dataclasses.dataclass(frozen=True)
class ZoneChange:
    """The records one serial removed from and added to a zone (for IXFR)."""

    previous_serial: int
    serial: int
    incremental: bool
    removed: tuple[Record, ...]
    added: tuple[Record, ...]


PER_ZONE = "per-zone"
CATALOG = "catalog"


@dataclasses.dataclass(frozen=True)
class Catalog:
    """A pool's catalog zone (RFC 9432): its name, serial and refresh. Its members
    (the pool's zones) are read apart, only by what needs them (a transfer)."""

    pool_id: str
    name: str
    serial: int
    refresh: int


@dataclasses.dataclass(frozen=True)
class ZoneTransfer:
    """What mdns last served one client address of a zone: ``count`` transfers
    (``kind`` AXFR, IXFR or IXFR-AXFR) of ``serial``, the first at ``first_at``,
    the last at ``last_at``; ``completed`` False when the client went away
    before the last one was all sent."""

    source: str
    serial: int
    kind: str
    first_at: datetime.datetime
    last_at: datetime.datetime
    count: int
    completed: bool


ASC = "asc"
DESC = "desc"


@dataclasses.dataclass(frozen=True)
class Paging:
    """Which page of a list: up to ``limit`` items after the one whose id is
    ``marker``, ordered by ``sort_key`` (then id) in ``sort_dir``."""

    limit: int
    marker: str | None = None
    sort_key: str = "created_at"
    sort_dir: str = ASC


@dataclasses.dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, how many items match in all, and whether more follow."""

    items: tuple[T, ...]
    total_count: int
    more: bool


class ZoneTaskType(enum.StrEnum):
    """A zone task's kind (Designate's words)."""

    EXPORT = "EXPORT"
    IMPORT = "IMPORT"


@dataclasses.dataclass(frozen=True)
class ZoneTask:
    """A zone export or import: its status, and once it ended, its zone or why it failed."""

    id: str
    task_type: str
    project_id: str | None
    zone_id: str | None
    status: str
    message: str | None
    location: str | None
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime | None


@dataclasses.dataclass(frozen=True)
class TsigKey:
    id: str
    name: str
    algorithm: str
    secret: str
    scope: str
    resource_id: str
    created_at: datetime.datetime
    updated_at: datetime.datetime | None


class ServiceState(enum.StrEnum):
    """A service as its heartbeats say (Designate's words)."""

    UP = "UP"
    DOWN = "DOWN"


@dataclasses.dataclass(frozen=True)
class ServiceStatus:
    """One running service as its last heartbeat described it."""

    id: str
    service_name: str
    hostname: str
    status: str
    heartbeated_at: datetime.datetime
    capabilities: dict[str, Any]
    stats: dict[str, Any]
    created_at: datetime.datetime
    updated_at: datetime.datetime | None


class EventTopic(enum.StrEnum):
    """What an event is about: the kind of thing that changed (``/v2/events?type=``)."""

    ZONE = "zone"
    RECORDSET = "recordset"
    JOB = "job"
    TASK = "task"
    TARGET = "target"
    ALARM = "alarm"
    # What a target serves of a zone: a per-target row written, mdns seeing a
    # target transfer a serial or ask for its SOA (the propagation model's feed).
    PROPAGATION = "propagation"


@dataclasses.dataclass(frozen=True)
class Event:
    """One change as published: what changed (``table`` and ``key``), how (``action``),
    its new state (``value``) and whom it concerns (``project_id``, ``zone_id``).

    ``id`` grows with every event in the order they were committed, so a subscriber
    that saw event n resumes with the events after n (SSE's Last-Event-ID).
    """

    id: int
    topic: str
    table: str
    key: str
    action: str
    value: dict[str, Any]
    project_id: str | None
    zone_id: str | None
    publisher: str
    created_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class EventFilter:
    """Which events a subscriber wants; None matches any."""

    zone_id: str | None = None
    project_id: str | None = None
    topics: frozenset[str] | None = None
    # The caller's project: None only for an operator reading all projects.
    scope: str | None = None


@dataclasses.dataclass(frozen=True)
class EventPublisher:
    """A process that publishes events, and when it last said it was alive."""

    name: str
    hostname: str
    pid: int
    last_activity: datetime.datetime
    published: int


# --- the inspector (issue 15): target health and maintenance -------------------------


class TargetHealth(enum.StrEnum):
    """Whether a target answers DNS, as the inspector last judged it."""

    UP = "UP"
    DOWN = "DOWN"


# The action of a target event by which the audit says it asked a target a batch of
# questions and got no answer to any (the inspector counts it as one miss).
AUDIT_UNANSWERED = "UNANSWERED"


class Maintenance(enum.StrEnum):
    """A target an operator took out of the thresholds, and its way back.

    ON: left out of every threshold; CATCHING_UP: the operator ended it, and
    the target stays left out until it serves every zone it missed."""

    ON = "ON"
    CATCHING_UP = "CATCHING_UP"


# A (zone, target) row whose target stopped answering or went into maintenance
# while serving the zone: the serial it served is kept, but it is not counted as
# serving it until the target is back (or caught up).
BEHIND = "BEHIND"


@dataclasses.dataclass(frozen=True)
class TargetState:
    """A target's health and maintenance as stored (``zoneflow pool target ...``)."""

    target_id: str
    health: str
    # When the target went to its health (DOWN since when).
    since: datetime.datetime
    maintenance: str | None = None
    maintenance_since: datetime.datetime | None = None

    @property
    def counted(self) -> bool:
        """Whether thresholds count this target (not in maintenance, nor catching up)."""
        return self.maintenance is None
