"""Shards: which zones a producer works, shared out among producers in ZooKeeper.

A zone's shard is a hash of its id modulo ``[producer] shards``: stable
across processes and restarts (Python's own ``hash`` of a string is not),
and even. The shards are shared out by kazoo's SetPartitioner: each running
producer joins a party under ``[producer] shard_path``; when the party
changes (a producer started, stopped, or its ZooKeeper session ended with
its death) every member releases its shards and, once the party has been
still for ``rebalance_wait`` seconds, takes its share again, holding a
ZooKeeper lock on each shard it takes. A lock is held by one session at a
time, so no shard is worked by two producers at once.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from typing import Any

from kazoo import exceptions as kazoo_exc
from kazoo.handlers import threading as kazoo_threading

from zoneflow import exceptions

LOG = logging.getLogger(__name__)


def shard_of(zone_id: str, shards: int) -> int:
    """The shard of a zone: CRC-32 of its id modulo the number of shards."""
    return zlib.crc32(zone_id.encode()) % shards


def in_shards(zone_ids: Iterable[str], owned: frozenset[int], shards: int) -> list[str]:
    """The ids among ``zone_ids`` whose shard is one of ``owned``."""
    return [zone_id for zone_id in zone_ids if shard_of(zone_id, shards) in owned]


def batches(items: list[Any], size: int) -> list[list[Any]]:
    """``items`` cut into lists of at most ``size``, in order."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, not {size}")
    return [items[start : start + size] for start in range(0, len(items), size)]


class ShardKeeper:
    """This producer's share of the shards, kept by a SetPartitioner.

    :meth:`owned` is called from the producer's loop between pieces of
    work: it gives back the shards now held (empty while the party is being
    shared out again) and does the partitioner's part of a change: release
    when asked (the work stops first, since it runs in the same thread) and
    start again after a failure (the ZooKeeper session ended).
    """

    def __init__(
        self, client: Any, *, path: str, shards: int, identifier: str, rebalance_wait: float
    ) -> None:
        self._client = client
        self._path = path
        self._shards = shards
        self._identifier = identifier
        self._rebalance_wait = rebalance_wait
        self._partitioner: Any = None
        self._held: frozenset[int] = frozenset()

    def start(self, timeout: float) -> None:
        """Connect to ZooKeeper and join the producers' party."""
        try:
            self._client.start(timeout=timeout)
        except (kazoo_exc.KazooException, kazoo_threading.KazooTimeoutError, OSError) as exc:
            raise exceptions.JobboardUnavailable(
                f"the producer cannot reach ZooKeeper at {self._where()} to share out its "
                f"shards ({exc or type(exc).__name__}): start ZooKeeper or fix [jobboard] hosts "
                "in zoneflow.conf"
            ) from exc
        self._agree_on_count()
        self._join()

    def _where(self) -> str:
        hosts = getattr(self._client, "hosts", None) or ()
        return ",".join(f"{host}:{port}" for host, port in hosts) or "(in process)"

    def _agree_on_count(self) -> None:
        """Refuse to join producers that split the zones into another number of shards.

        Shard 3 of 8 and shard 3 of 16 are different zones: two producers
        counting differently would each work zones the other works too. The
        count is kept beside the party; a producer joining a party with
        members must have the same, one joining an empty party sets it.
        """
        node = f"{self._path}/shards"
        party = f"{self._path}/party"
        self._client.ensure_path(party)
        try:
            self._client.create(node, str(self._shards).encode())
            return
        except kazoo_exc.NodeExistsError:
            pass
        data, _ = self._client.get(node)
        theirs = int(data or 0)
        if theirs == self._shards:
            return
        if self._client.get_children(party):
            raise exceptions.InvalidConfig(
                f"[producer] shards is {self._shards} here but {theirs} for the producers "
                f"running under {self._path}: every producer must split the zones alike; "
                "set the same number, or stop them all before changing it"
            )
        self._client.set(node, str(self._shards).encode())

    def _join(self) -> None:
        self._partitioner = self._client.SetPartitioner(
            self._path,
            set=range(self._shards),
            identifier=self._identifier,
            time_boundary=self._rebalance_wait,
        )

    def owned(self, wait: float = 0.0) -> frozenset[int]:
        """The shards held now, after doing what the partitioner asks; ``wait``
        seconds at most for a share being given out. Empty while ZooKeeper is out
        of reach (the connection lost puts the partitioner in RELEASE: this
        producer stops working its shards at once)."""
        try:
            return self._owned(wait)
        except (kazoo_exc.KazooException, OSError) as exc:
            LOG.warning("producer %s cannot reach ZooKeeper, holds no shard: %s", self, exc)
            self._note(frozenset())
            return frozenset()

    def _owned(self, wait: float) -> frozenset[int]:
        partitioner = self._partitioner
        if partitioner is None:
            self._join()
            return frozenset()
        if partitioner.failed:
            LOG.warning("producer %s lost its shards (ZooKeeper session): joining again", self)
            self._note(frozenset())
            self._partitioner = None
            self._join()
            return frozenset()
        if partitioner.release:
            partitioner.release_set()
            self._note(frozenset())
            return frozenset()
        if partitioner.allocating:
            partitioner.wait_for_acquire(timeout=wait)
        if partitioner.acquired:
            self._note(frozenset(partitioner))
            return self._held
        return frozenset()

    def holds(self) -> bool:
        """Whether this producer still holds its shards and need not give them up:
        long work asks between pieces and stops when not."""
        partitioner = self._partitioner
        return partitioner is not None and partitioner.acquired

    def _note(self, held: frozenset[int]) -> None:
        if held != self._held:
            LOG.info(
                "producer %s now holds %d of %d shards: %s",
                self._identifier,
                len(held),
                self._shards,
                sorted(held),
            )
        self._held = held

    def stop(self) -> None:
        """Leave the party, shards released at once, and close the session."""
        if self._partitioner is not None:
            try:
                self._partitioner.finish()
            except kazoo_exc.KazooException:
                LOG.debug("leaving the producers' party failed", exc_info=True)
            self._partitioner = None
        try:
            self._client.stop()
            self._client.close()
        except kazoo_exc.KazooException:
            LOG.debug("closing the producer's ZooKeeper session failed", exc_info=True)

    def __str__(self) -> str:
        return self._identifier
