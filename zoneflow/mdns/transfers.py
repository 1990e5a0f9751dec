"""What mdns remembers of the zone transfers it served, per (zone, client address).

A nameserver that refuses the data it transfers (a zone stored before the
rules of :mod:`zoneflow.dns.rules`, a backend quirk) keeps serving its old
serial and transfers the new one again and again. Only mdns sees that
pattern; a poll that times out reads it back (``stored_transfers.list_transfers``)
to tell "the nameserver refuses the data" from "the nameserver never asked".

The queries a pool's target makes for a zone are noted the same way (its
SOA, or an IXFR, which carries the serial the target serves): only
published with the transfers, for the propagation model (zoneflow.model),
never stored.

Noting a transfer costs a dict update under a lock, never a database
write: the log is written (``flush``) at most once a second by the server,
one transaction for everything noted since (per 500 pairs), off the path that answers
queries. It holds at most ``max_keys`` pairs between writes; past that new
pairs are dropped until the next write (a flood of clients).
"""

from __future__ import annotations

import dataclasses
import logging
import threading

from zoneflow import objects
from zoneflow.dns import addresses
from zoneflow.storage import models
from zoneflow.storage import transfers as stored_transfers

LOG = logging.getLogger(__name__)

Key = tuple[str, str]  # (zone id, client address)

# Pairs written per transaction: the rows already there are read with one
# IN (...) of the zones, which SQLite bounds by its number of parameters.
WRITE_BATCH = 500


def from_target(pool: objects.Pool, address: str | None) -> bool:
    """Whether ``address`` is the host of one of the pool's targets: only their
    queries are noted (anyone may ask for an SOA)."""
    if address is None:
        return False
    plain = addresses.spelled(address)
    return any(str(target.options.get("host")) == plain for target in pool.targets)


class TransferLog:
    """Transfers served since the last write, aggregated per (zone, client address)."""

    def __init__(self, max_keys: int = 10_000) -> None:
        self.max_keys = max_keys
        self._pending: dict[Key, objects.ZoneTransfer] = {}
        # The queries seen since the last write, the newest per pair.
        self._asked: dict[Key, objects.ZoneTransfer] = {}
        self._lock = threading.Lock()
        self._dropped = 0

    def note(self, zone_id: str, source: str, serial: int, kind: str, *, completed: bool) -> None:
        """Remember one transfer of ``serial`` to ``source``, whole or ended early."""
        now = models.utcnow()
        source = addresses.spelled(source)
        key = (zone_id, source)
        with self._lock:
            before = self._pending.get(key)
            if before is None and len(self._pending) >= self.max_keys:
                self._dropped += 1
                return
            same = before is not None and before.serial == serial
            self._pending[key] = objects.ZoneTransfer(
                source=source,
                serial=serial,
                kind=kind,
                first_at=before.first_at if same and before else now,
                last_at=now,
                count=before.count + 1 if same and before else 1,
                completed=completed,
            )

    def note_query(self, zone_id: str, source: str, kind: str, serial: int) -> None:
        """Remember that ``source`` asked for a zone: ``kind`` SOA (``serial`` 0: not
        known), or IXFR-QUERY from the ``serial`` it serves. The newest per pair wins."""
        now = models.utcnow()
        source = addresses.spelled(source)
        key = (zone_id, source)
        with self._lock:
            if key not in self._asked and len(self._asked) >= self.max_keys:
                self._dropped += 1
                return
            self._asked[key] = objects.ZoneTransfer(
                source=source,
                serial=serial,
                kind=kind,
                first_at=now,
                last_at=now,
                count=1,
                completed=True,
            )

    def pending(self) -> int:
        """How many (zone, client) pairs wait to be written."""
        with self._lock:
            return len(self._pending) + len(self._asked)

    def flush(self) -> None:
        """Write what was noted since the last write, ``WRITE_BATCH`` pairs a transaction.

        When the database is away, what was not written is put back (unless
        newer transfers of the pair came meanwhile) for the next write.
        """
        with self._lock:
            taken, self._pending = self._pending, {}
            asked, self._asked = self._asked, {}
            dropped, self._dropped = self._dropped, 0
        if dropped:
            LOG.warning(
                "mdns forgot %d zone transfers: more than %d zone and client pairs in a second",
                dropped,
                self.max_keys,
            )
        items = list(taken.items())
        for start in range(0, len(items), WRITE_BATCH):
            batch = items[start : start + WRITE_BATCH]
            try:
                stored_transfers.record_transfers([(zone_id, seen) for (zone_id, _), seen in batch])
            except Exception as exc:  # the database away, whatever the driver raises
                LOG.warning(
                    "mdns could not record %d zone transfers yet: %s", len(items) - start, exc
                )
                self._put_back(items[start:])
                return
        # Queries are news, not history: what the database did not take is let go.
        queries = [(zone_id, seen) for (zone_id, _), seen in asked.items()]
        for start in range(0, len(queries), WRITE_BATCH):
            try:
                stored_transfers.record_transfers([], queries[start : start + WRITE_BATCH])
            except Exception as exc:  # the database away, whatever the driver raises
                LOG.warning("mdns could not publish %d queries: %s", len(queries) - start, exc)
                return

    def _put_back(self, items: list[tuple[Key, objects.ZoneTransfer]]) -> None:
        with self._lock:
            for key, seen in items:
                newer = self._pending.get(key)
                if newer is None:
                    self._pending[key] = seen
                elif newer.serial == seen.serial:
                    self._pending[key] = dataclasses.replace(
                        newer, first_at=seen.first_at, count=newer.count + seen.count
                    )
