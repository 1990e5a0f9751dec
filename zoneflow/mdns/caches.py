"""What mdns keeps between requests: rendered zones, SOA RRsets, the records of
small transfers, pools and catalog names, so that answering does not read or
render what has not changed."""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

import dns.name
import dns.rrset

from zoneflow import objects
from zoneflow.dns import zone as dns_zone
from zoneflow.mdns import xfr
from zoneflow.mdns.snapshot import ZoneSnapshot, catalog_snapshot
from zoneflow.storage import catalogs as stored_catalogs
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import zones as stored_zones

# Pools are read for every answer (the SOA's MNAME, the apex NS) and change
# only when an operator loads pools.yaml; reading one costs more than the rest
# of an SOA answer, so it is kept this many seconds.
POOL_CACHE_SECONDS = 5.0
# A zone's row, as read by name, is taken for a target's NOTIFY this long (ZoneRows),
ZONE_ID_SECONDS = 30.0
# and for a transfer this long: a pool's targets transfer a change within a second.
TRANSFER_ROW_SECONDS = 2.0

V = TypeVar("V")


class Recent(Generic[V]):
    """The last ``size`` values put, by key; getting one makes it the newest.

    Thread-safe. The caller makes a value outside the lock and puts it when
    done, so two threads may make the same one: the second put replaces the
    first, which is equal to it.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: collections.OrderedDict[object, V] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: object) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: object, value: V, *, over: Callable[[V], bool] | None = None) -> None:
        """Keep ``value`` for ``key``; with ``over``, only in place of a kept value for
        which it is true (checked and replaced as one step)."""
        if not self.size:
            return
        with self._lock:
            kept = self._entries.get(key)
            if over is None or kept is None or over(kept):
                self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget(self, key: object) -> None:
        with self._lock:
            self._entries.pop(key, None)


class SnapshotCache:
    """The last few exact snapshots, by zone, serial and apex NS.

    The serial changes with every change to a zone's data; the apex NS come
    from the pool, whose changes bump no serial, so they are part of the key.
    """

    def __init__(self, size: int) -> None:
        self._recent: Recent[ZoneSnapshot] = Recent(size)

    def get(self, zone: objects.Zone, pool: objects.Pool) -> ZoneSnapshot:
        snapshot = self._recent.get((zone.id, zone.serial, pool.ns_records))
        if snapshot is not None:
            return snapshot
        snapshot, exact = ZoneSnapshot.read(zone, pool)
        if exact:
            self._recent.put((snapshot.zone.id, snapshot.zone.serial, pool.ns_records), snapshot)
        return snapshot


class CatalogSnapshots:
    """Each pool's catalog rendered for queries of the names in it (a consumer
    never asks those; a person with dig might), kept for its newest serial.

    Rendering 10,000 members through dnspython costs about a second: never
    for an SOA query nor a transfer, which do without it, and once per serial
    here.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[object, ZoneSnapshot]] = {}
        self._lock = threading.Lock()

    def get(self, catalog: objects.Catalog, pool: objects.Pool) -> ZoneSnapshot:
        key = (catalog.serial, pool.ns_records)
        with self._lock:
            entry = self._entries.get(pool.id)
        if entry is not None and entry[0] == key:
            return entry[1]
        with stored_catalogs.catalog_for_transfer(pool.id) as (current, members):
            rendered = catalog_snapshot(current or catalog, pool, members)
        with self._lock:
            self._entries[pool.id] = ((rendered.zone.serial, pool.ns_records), rendered)
        return rendered


class SoaCache:
    """SOA RRsets by zone row and apex NS: building one costs more than the rest
    of an SOA answer, and a zone's row changes only with its serial."""

    def __init__(self, size: int = 1024) -> None:
        self._recent: Recent[dns.rrset.RRset] = Recent(size)

    def get(self, zone: objects.Zone, pool: objects.Pool) -> dns.rrset.RRset:
        rrset = self._recent.get((zone, pool.ns_records))
        if rrset is None:
            rrset = dns_zone.soa_rrset(zone, pool)
            self._recent.put((zone, pool.ns_records), rrset)
        return rrset


def soa_key(zone: objects.Zone, pool: objects.Pool) -> tuple[object, ...]:
    """What a zone's SOA and apex NS are made of: its fields in the SOA, and the pool's
    NS records (their changes bump no serial). Equal keys, equal records at the apex;
    the rest of a zone at a serial never changes, since every change bumps it."""
    return (
        zone.id,
        zone.name,
        zone.serial,
        zone.email,
        zone.ttl,
        zone.refresh,
        zone.retry,
        zone.expire,
        zone.minimum,
        pool.ns_records,
    )


@dataclasses.dataclass(frozen=True)
class KeptTransfer:
    """A transfer's records, SOA first and last, and what its log line says of it: the
    serial it brings the client to, and how many changes an IXFR carries."""

    records: tuple[xfr.WireRecord, ...]
    serial: int
    changes: int = 0


class TransferCache:
    """The records of the last few small transfers, by what they transfer.

    Every target of a pool transfers each change: the same zone at the same
    serial, from the same serial for an IXFR. The first one reads storage and
    packs the records; the others take them from here. Only transfers of at most
    ``max_records`` records are kept: a large zone is streamed, never held.
    """

    def __init__(self, size: int = 256, max_records: int = 1000) -> None:
        self.max_records = max_records
        self._recent: Recent[KeptTransfer] = Recent(size)

    def get(self, key: object) -> KeptTransfer | None:
        return self._recent.get(key)

    def keep(
        self, key: object, records: Iterable[xfr.WireRecord], told: KeptTransfer
    ) -> Iterator[xfr.WireRecord]:
        """``records``, passed on as they come; kept under ``key`` once they have all
        come, if they were few enough, with what ``told`` says of them."""
        taken: list[xfr.WireRecord] | None = []
        for record in records:
            if taken is not None:
                taken.append(record)
                if len(taken) > self.max_records:
                    taken = None
            yield record
        if taken is not None:
            self._recent.put(key, dataclasses.replace(told, records=tuple(taken)))


class PoolCache:
    """Pools by id, each kept ``seconds`` after it was read."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: dict[str, tuple[float, objects.Pool]] = {}
        self._lock = threading.Lock()

    def get(self, pool_id: str) -> objects.Pool:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(pool_id)
        if entry is not None and now - entry[0] < self.seconds:
            return entry[1]
        pool = stored_pools.get_pool(pool_id)
        with self._lock:
            self._entries[pool_id] = (now, pool)
        return pool


class ZoneRows:
    """Zone name -> its live zone's row as mdns read it last, for the answers that do
    not need it read again.

    An SOA query always reads the row (:meth:`read`): its serial decides whether
    a nameserver transfers. Each read is kept here, the newest of a zone (by
    its version) winning, and two kinds of request take the kept row instead
    (:meth:`recent`):

    - a transfer, within :data:`TRANSFER_ROW_SECONDS`: each target of a pool
      asks the SOA and transfers right after, sixteen reads of one row within
      a second on eight targets. The row only names the zone and gives its
      SOA's fields, which no incremental change alters (a change of them makes
      the client take the whole zone, read afresh); the changes an IXFR sends
      come from the history, read at the time. Only a reply that the client is
      current says something of the serial, and the transfer reads the row
      again before it sends one.
    - a target's NOTIFY, within :data:`ZONE_ID_SECONDS`: its id alone, for a
      word passed to the polls that no nameserver acts on
      (:mod:`zoneflow.mdns.notify`). So a name may stand for its zone a little
      after the zone was deleted, until a read finds it gone: the word is
      acknowledged instead of NOTAUTH.

    A name not found is not kept: a zone just created is found by its first read.
    """

    def __init__(self, size: int = 10_000) -> None:
        # Name -> when the row was read, and the row.
        self._kept: Recent[tuple[float, objects.Zone]] = Recent(size)

    def read(self, name: str) -> objects.Zone | None:
        """The live zone called ``name`` (lower-case, absolute), read now, or None."""
        read_at = time.monotonic()
        zone = stored_zones.find_zone_for_mdns(name)
        if zone is None:
            self._kept.forget(name)  # a zone deleted: its kept row no longer stands for it
            return None
        # Of two reads racing, the one that saw the older version does not win.
        self._kept.put(
            name,
            (read_at, zone),
            over=lambda kept: kept[1].id != zone.id or kept[1].version <= zone.version,
        )
        return zone

    def recent(self, name: str, seconds: float) -> objects.Zone | None:
        """The row of the zone called ``name`` as read at most ``seconds`` ago, or now."""
        kept = self._kept.get(name)
        if kept is not None and time.monotonic() - kept[0] < seconds:
            return kept[1]
        return self.read(name)

    def id_of(self, name: str) -> str | None:
        """The id of the live zone called ``name`` (for a target's NOTIFY), or None."""
        zone = self.recent(name, ZONE_ID_SECONDS)
        return None if zone is None else zone.id


class CatalogNames:
    """Catalog zone name -> pool id, re-read every few seconds (like pools)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._read_at = -seconds
        # The catalogs' names and pool ids, and the same names as text; swapped as one.
        self._read: tuple[dict[dns.name.Name, str], list[str]] = ({}, [])
        self._lock = threading.Lock()

    def pool_for(self, qname: dns.name.Name) -> tuple[dns.name.Name, str] | None:
        """The catalog holding ``qname`` and its pool's id, if any."""
        names, _ = self._current()
        if not names:
            return None
        candidate = qname
        while True:
            pool_id = names.get(candidate)
            if pool_id is not None:
                return candidate, pool_id
            if candidate == dns.name.root:
                return None
            candidate = candidate.parent()

    def holds(self, name: str) -> bool:
        """Whether ``name`` (absolute, lower-case text without escapes) is a catalog's
        or below one: :meth:`pool_for` without making a dnspython name."""
        _, texts = self._current()
        return any(name == text or name.endswith("." + text) for text in texts)

    def _current(self) -> tuple[dict[dns.name.Name, str], list[str]]:
        now = time.monotonic()
        with self._lock:
            stale = now - self._read_at >= self.seconds
        if stale:
            names = {dns.name.from_text(n): p for n, p in stored_catalogs.list_catalogs().items()}
            texts = [name.to_text().lower() for name in names]
            with self._lock:
                self._read, self._read_at = (names, texts), now
        return self._read
