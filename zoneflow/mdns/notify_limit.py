"""NOTIFYs per source and zone, held to a rate; the newest one past it kept for later.

A NOTIFY costs mdns a zone lookup in the database; a peer sending thousands
a second (a loop between servers, a misconfigured script, a spoofed flood)
would keep its threads busy and starve the SOA queries and transfers
that decide propagation. Each (source address, zone) pair gets a token
bucket: ``burst`` NOTIFYs at once, then ``rate`` a second. Past that a
NOTIFY is not processed now; the newest one waits, replacing any older
waiting one, until the bucket has a token again, and is processed then. So
however many arrive, the last serial a source announced is always processed,
at most ``rate`` times a second, and no database work is done for the rest.

Pure bookkeeping: no sockets, no event loop, no storage. Not thread-safe:
mdns calls it from its event loop only.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Generic, TypeVar

import dns.name

Key = tuple[str, dns.name.Name]
T = TypeVar("T")


@dataclasses.dataclass
class _Bucket(Generic[T]):
    tokens: float
    at: float
    waiting: T | None = None


class NotifyLimiter(Generic[T]):
    """Token buckets by (source, zone); ``T`` is what a waiting NOTIFY is kept as."""

    def __init__(self, *, rate: float, burst: int, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        # Least recently used first, so idle pairs are forgotten first.
        self._buckets: collections.OrderedDict[Key, _Bucket[T]] = collections.OrderedDict()

    def admit(self, key: Key, now: float) -> bool:
        """Take a token for a NOTIFY from ``key``; False when it must wait."""
        bucket = self._bucket(key, now)
        if bucket is None:
            return False
        self._refill(bucket, now)
        if bucket.tokens >= 1 and bucket.waiting is None:
            bucket.tokens -= 1
            return True
        return False

    def hold(self, key: Key, item: T, now: float) -> float | None:
        """Keep ``item`` as the NOTIFY ``key`` sends once a token is back.

        It replaces the one kept before. Returns the seconds until then when
        none was kept before (the caller schedules :meth:`release` for then),
        else None (a release is already scheduled).
        """
        bucket = self._bucket(key, now)
        if bucket is None:
            return None  # too many pairs tracked: this NOTIFY is dropped
        first = bucket.waiting is None
        bucket.waiting = item
        if not first:
            return None
        self._refill(bucket, now)
        return max(0.0, (1 - bucket.tokens) / self.rate)

    def reserve(self, key: Key, now: float, *, longest: float) -> float | None:
        """Take a token for a NOTIFY that will wait for it: the seconds to wait.

        For a sender that waits for each answer (TCP): it is slowed to the
        rate instead of losing NOTIFYs. None, and no token taken, when the
        wait would be longer than ``longest`` or no more pairs fit.
        """
        bucket = self._bucket(key, now)
        if bucket is None:
            return None
        self._refill(bucket, now)
        wait = max(0.0, (1 - bucket.tokens) / self.rate)
        if wait > longest:
            return None
        bucket.tokens -= 1
        return wait

    def release(self, key: Key, now: float) -> T | None:
        """The NOTIFY kept for ``key``, its token taken; None when none is kept."""
        bucket = self._buckets.get(key)
        if bucket is None or bucket.waiting is None:
            return None
        self._refill(bucket, now)
        item, bucket.waiting = bucket.waiting, None
        bucket.tokens = max(0.0, bucket.tokens - 1)
        return item

    def __len__(self) -> int:
        return len(self._buckets)

    def _refill(self, bucket: _Bucket[T], now: float) -> None:
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now

    def _bucket(self, key: Key, now: float) -> _Bucket[T] | None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            self._buckets.move_to_end(key)
            return bucket
        self._forget_idle(now)
        if len(self._buckets) >= self.max_keys:
            return None
        bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), at=now)
        return bucket

    def _forget_idle(self, now: float) -> None:
        """Drop pairs whose bucket has refilled and has nothing waiting: a new
        bucket for them would be the same."""
        full_after = self.burst / self.rate
        while self._buckets:
            key, oldest = next(iter(self._buckets.items()))
            if oldest.waiting is not None or now - oldest.at < full_after:
                return
            del self._buckets[key]
