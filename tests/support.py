"""Helpers several test modules share: eventually(), a process pointed at a fresh database,
value objects."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Self, TypeVar, cast

import dns.exception
import dns.message
import dns.query
import sqlalchemy as sa
from oslo_config import cfg

from zoneflow import config, objects
from zoneflow.central import pools
from zoneflow.central import zones as central_zones
from zoneflow.storage import db, migration, models
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import recordsets as stored_recordsets
from zoneflow.storage import zones as stored_zones

T = TypeVar("T")

# Long enough for a loaded machine (two cores, several test workers and a
# busy neighbour): a wait that passes is as fast as the condition, so a
# generous bound costs only a failing test's time.
DEFAULT_TIMEOUT = 30.0


@contextlib.contextmanager
def statements_sent() -> Iterator[list[str]]:
    """The statements SQLAlchemy sends on this process's engine while the block runs
    (the list grows as they are sent)."""
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)

    engine = db.get_engine()
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def eventually(
    check: Callable[[], T],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    interval: float = 0.05,
    what: str | Callable[[], str] = "condition",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """``check()``'s first truthy result, polled every ``interval`` seconds.

    The one way tests wait for something to happen (no fixed sleeps). After
    ``timeout`` seconds it raises ``TimeoutError`` naming ``what`` (a callable
    is called then, to show the state it gave up on); errors listed in
    ``ignore`` count as "not yet" (the last is named), any other propagates at
    once, so a check can abort the wait (a server that died).
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
        except ignore as exc:
            last_error = exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            said = what() if callable(what) else what
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {said}{detail}")
        time.sleep(interval)


def ask_udp(
    message: dns.message.Message, host: str, port: int, *, timeout: float = 2.0, tries: int = 3
) -> dns.message.Message:
    """The reply to ``message`` over UDP, asked up to ``tries`` times as a stub
    resolver or a secondary does: a datagram may be dropped, by the network or
    by a server behind on a loaded machine (mdns drops a query that waited
    past ``MAX_UDP_WAIT`` for a thread, counting on the client to ask again).
    Raises ``dns.exception.Timeout`` if no try is answered."""
    for _ in range(tries - 1):
        with contextlib.suppress(dns.exception.Timeout):
            return dns.query.udp(message, host, port=port, timeout=timeout)
    return dns.query.udp(message, host, port=port, timeout=timeout)


def holds(
    check: Callable[[], object], seconds: float, *, what: str, interval: float = 0.02
) -> None:
    """Fail as soon as ``check()`` is falsy during the next ``seconds``.

    For what must NOT happen (a claim, a call): the window is the time it was
    given to happen wrongly, watched throughout, not a sleep before one look.
    """
    deadline = time.monotonic() + seconds
    while True:
        assert check(), f"{what} no longer held"
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)


@contextlib.contextmanager
def database(url: str, *, pools_yaml: str | None = None, migrated: bool = False) -> Iterator[str]:
    """Point this process at ``url``, migrated (and holding ``pools_yaml``), for a block.

    ``migrated``: the database is a copy of one migrated already, and zoneflow's
    migrations are not run again (checking that there is nothing to do costs
    alembic 50 ms of CPU).
    """
    config.setup([])
    cfg.CONF.set_override("connection", url, group="database")
    db.configure(url)
    if not migrated:
        migration.upgrade()
    if pools_yaml is not None:
        store_pools(pools.parse(pools_yaml))
    try:
        yield url
    finally:
        cfg.CONF.clear_override("connection", group="database")


def store_pools(parsed: list[dict[str, Any]]) -> list[objects.Pool]:
    """Create or update parsed pools, as ``zoneflow pool update`` does; the pools stored."""
    return [update.pool for update in pools.store(parsed)]


def write_recordset_unchecked(
    zone_id: str, name: str, rtype: str, records: list[str]
) -> objects.RecordSet:
    """A recordset written straight into storage, as data stored before central's
    checks (the zone rules, the quotas) existed: in a unit of work of its own."""
    with db.unit_of_work() as unit:
        return stored_recordsets.create_recordset(
            unit,
            stored_zones.begin_change(unit, zone_id),
            name=name,
            rtype=rtype,
            ttl=None,
            records=records,
            job=objects.JobOrder(objects.JobKind.UPDATE_ZONE),
        )


def count_pending_jobs() -> int:
    """Jobs written to the outbox and not yet posted to the jobboard."""
    with db.reader() as session:
        unposted = sa.select(sa.func.count()).where(models.JobOutbox.posted.is_(sa.false()))
        return int(session.scalar(unposted) or 0)


def notifies_processed(records: list[logging.LogRecord]) -> list[tuple[str, int | None]]:
    """(source address, serial) of each NOTIFY mdns processed, in order, from captured logs.

    mdns keeps no NOTIFY in storage: its log line is the whole of its outcome
    past the reply. The caller captures ``zoneflow.mdns.notify`` at INFO.
    """
    return [
        (str(record.args[2]).rsplit(":", 1)[0], cast(int | None, record.args[1]))
        for record in records
        if record.name == "zoneflow.mdns.notify"
        and record.msg == "NOTIFY for %s (serial %s) from %s"
        and isinstance(record.args, tuple)
    ]


def pool_target(
    described: dict[str, Any],
    *,
    target_id: str = "t1",
    description: str | None = None,
    **options: Any,
) -> objects.PoolTarget:
    """A local server's ``pool_target(...)`` (a ``pools.yaml`` target) as the target a
    backend is built from, ``options`` over its own (``description``: the label its
    errors name it by)."""
    return objects.PoolTarget(
        id=target_id,
        pool_id="p",
        type=described["type"],
        description=description or described["description"],
        masters=tuple(objects.HostPort(m["host"], m["port"]) for m in described["masters"]),
        options={**described["options"], **options},
    )


def make_zone(**overrides: Any) -> objects.Zone:
    """A Zone value with sensible fields, for tests that need no database."""
    zone = objects.Zone(
        id="z1",
        name="example.com.",
        email="hostmaster@example.com",
        ttl=300,
        serial=2024010101,
        refresh=3600,
        retry=600,
        expire=86400,
        minimum=60,
        status=objects.Status.ACTIVE,
        action=objects.Action.NONE,
        pool_id="p1",
        project_id=None,
        description=None,
        error=None,
        created_at=datetime.datetime(2024, 1, 1),
        updated_at=None,
    )
    return dataclasses.replace(zone, **overrides)


def address(n: int) -> str:
    """The ``n``-th IPv4 address of 10.0.0.0/8."""
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def bulk_zone(name: str, count: int, *, per_name: int = 1, batch: int = 5000) -> objects.Zone:
    """A zone of ``count`` A records (``per_name`` per owner), bulk-inserted.

    Central would take minutes for a large zone; these rows are what it
    would write, minus the jobs and the change history (the zone's serial
    stays the one it was created with).
    """
    zone = central_zones.create_zone(name, f"hostmaster@{name.rstrip('.')}")
    owners = count // per_name
    with db.writer() as session:
        for start in range(0, owners, batch):
            ids = {i: models.new_id() for i in range(start, min(owners, start + batch))}
            session.execute(
                sa.insert(models.RecordSet),
                [
                    {
                        "id": rid,
                        "zone_id": zone.id,
                        "name": f"host{i:05d}.{zone.name}",
                        "type": "A",
                        "ttl": None,
                        "serial": zone.serial,
                        "status": objects.Status.ACTIVE,
                        "action": objects.Action.NONE,
                    }
                    for i, rid in ids.items()
                ],
            )
            session.execute(
                sa.insert(models.Record),
                [
                    {"recordset_id": rid, "position": j, "data": address(i * per_name + j)}
                    for i, rid in ids.items()
                    for j in range(per_name)
                ],
            )
    return stored_reads.get_zone(zone.id)


def bulk_zones(
    count: int, *, pool_id: str, suffix: str = "bulk.example.", batch: int = 5000
) -> list[str]:
    """``count`` ACTIVE zones ``z00000.<suffix>``... in a pool, bulk-inserted; their names.

    What central would write for them minus the jobs and events (10,000
    creates through central take minutes); the pool's catalog, if it has one,
    gets one new serial for them all.
    """
    names = [f"z{i:05d}.{suffix}" for i in range(count)]
    serial = int(time.time())
    now = models.utcnow()
    with db.writer() as session:
        for start in range(0, count, batch):
            session.execute(
                sa.insert(models.Zone),
                [
                    {
                        "id": models.new_id(),
                        "name": name,
                        "email": f"hostmaster@{suffix.rstrip('.')}",
                        "ttl": 3600,
                        "serial": serial,
                        "refresh": 3600,
                        "retry": 600,
                        "expire": 86400,
                        "minimum": 300,
                        "status": objects.Status.ACTIVE,
                        "action": objects.Action.NONE,
                        "pool_id": pool_id,
                        "created_at": now,
                    }
                    for name in names[start : start + batch]
                ],
            )
        # One new serial for them all, with no member change kept: a consumer
        # behind it gets the whole catalog, as after any gap in its history.
        session.execute(
            sa.update(models.Pool)
            .where(models.Pool.id == pool_id, models.Pool.catalog_zone.is_not(None))
            .values(catalog_serial=models.Pool.catalog_serial + 1)
        )
    return names


class UdpResponder:
    """A DNS server on a UDP port of 127.0.0.1, in a thread of its own: each message it
    gets goes to :meth:`answer`, whose reply (if any) goes back. Stop it with
    :meth:`close`."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.port = self.socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def answer(self, message: dns.message.Message) -> dns.message.Message | None:
        raise NotImplementedError

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, client = self.socket.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            reply = self.answer(dns.message.from_wire(wire))
            if reply is not None:
                self.socket.sendto(reply.to_wire(), client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.socket.close()


class Beside:
    """A block with ``_run`` going on beside it in a thread: started as the block
    begins, told to stop (``_stop``) as it ends, and waited for."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        raise NotImplementedError


class SoaAskers(Beside):
    """Nameservers asking a server ``zone``'s SOA ``rate`` times a second (over UDP,
    from one socket) while the block runs, as a pool's consumers ask a catalog's at
    every refresh and NOTIFY; how many were ``answered`` within ``wait`` seconds."""

    def __init__(self, host: str, port: int, zone: str, *, rate: float, wait: float = 2.0) -> None:
        self.host, self.port, self.zone = host, port, zone
        self.rate, self.wait = rate, wait
        self.sent = self.answered = 0
        super().__init__()

    def _run(self) -> None:
        asked: dict[int, float] = {}
        started = last_sent = time.monotonic()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            while True:
                now = time.monotonic()
                stopping = self._stop.is_set()
                if stopping and (not asked or now > last_sent + self.wait):
                    return  # the last answers had their time
                if not stopping and now >= started + self.sent / self.rate:
                    query = dns.message.make_query(self.zone, "SOA")
                    query.id = self.sent % 65536
                    sock.sendto(query.to_wire(), (self.host, self.port))
                    asked[query.id] = last_sent = now
                    self.sent += 1
                if select.select([sock], [], [], 0.005)[0]:
                    response = dns.message.from_wire(sock.recv(65535))
                    sent_at = asked.pop(response.id, None)
                    if sent_at is not None and time.monotonic() - sent_at <= self.wait:
                        self.answered += 1


# What the REST API shows of a zone and of a recordset: Designate's fields
# (plus "serial" on recordsets, zoneflow's).
ZONE_FIELDS = {
    "id",
    "pool_id",
    "project_id",
    "name",
    "email",
    "ttl",
    "serial",
    "status",
    "action",
    "description",
    "masters",
    "type",
    "transferred_at",
    "version",
    "created_at",
    "updated_at",
    "attributes",
    "shared",
    "links",
}
RECORDSET_FIELDS = {
    "id",
    "zone_id",
    "zone_name",
    "project_id",
    "name",
    "type",
    "records",
    "ttl",
    "status",
    "action",
    "description",
    "version",
    "serial",
    "created_at",
    "updated_at",
    "links",
}

# Designate's fields of a pool (designate/objects/adapters/api_v2/pool.py).
POOL_FIELDS = {
    "id",
    "project_id",
    "name",
    "description",
    "attributes",
    "ns_records",
    "created_at",
    "updated_at",
    "links",
}

# Request headers of the noauth strategy: two projects' members and an admin.
ALICE = {"X-Auth-Project-ID": "alice", "X-Roles": "member"}
BOB = {"X-Auth-Project-ID": "bob", "X-Roles": "member"}
ADMIN = {"X-Auth-Project-ID": "ops", "X-Roles": "admin,member"}
ALL_PROJECTS = {**ADMIN, "X-Auth-All-Projects": "true"}


def at_once(count: int, call: Callable[[int, threading.Barrier], T]) -> list[T]:
    """``call(i, start)`` for i in range(count), each in its own thread; their results.

    Each call waits on ``start`` just before the moment that must coincide
    (its request, once connected), so all of them race. A call that raises
    fails the caller with that error.
    """
    start = threading.Barrier(count)
    outcomes: list[tuple[T] | BaseException | None] = [None] * count

    def run(i: int) -> None:
        try:
            outcomes[i] = (call(i, start),)
        except BaseException as exc:  # raised below, in the caller's thread
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    results = []
    for outcome in outcomes:
        if not isinstance(outcome, tuple):
            raise AssertionError(f"a racing call failed: {outcome!r}")
        results.append(outcome[0])
    return results
