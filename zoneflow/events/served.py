"""A nameserver's word that it serves a serial of a zone: a hint for the polls, not an event.

A target that loads a new serial of a zone can NOTIFY mdns of it (BIND9's
``also-notify``: doc/backends.md). mdns passes the word on
(:func:`announce`), and each poll in any conductor waiting for that zone on
a nameserver at that address (an :class:`Ear`) asks it at once instead of at
its next round, so a zone is ACTIVE as soon as its last nameserver serves it,
not up to ``[flows] poll_interval_max`` later. Nothing is stored and
nothing depends on it: a word lost, or a nameserver that NOTIFYs no one,
costs a poll no more than its next round.

How the word travels follows ``[events] driver``: ``postgres`` sends it with
PostgreSQL's NOTIFY on a channel of its own (:data:`CHANNEL`), which the
driver's LISTEN connection in each process hears and hands to
:func:`heard_payload`; ``inprocess`` (all-in-one: mdns and the conductor in
one process) hands it over directly.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import NamedTuple, Self

import sqlalchemy as sa

from zoneflow.dns import addresses
from zoneflow.events import base, options
from zoneflow.storage import db

LOG = logging.getLogger(__name__)
CONF = options.CONF

CHANNEL = "zoneflow_served"
# Seconds a process's first poll waits for the driver's LISTEN to be in place.
LISTEN_WAIT = 5.0
# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more.
PAYLOAD_LIMIT = 7000
# Seconds a nameserver's last word vouches that it speaks (see :func:`tells`).
TOLD_WITHIN = 60.0


class Heard(NamedTuple):
    """A nameserver at ``host`` said it serves ``serial`` of a zone (None: not said)."""

    zone_id: str
    serial: int | None
    host: str


class Ear:
    """One poll's ear: the zones it waits for on the nameserver at ``host``, each at a
    serial (None: its removal, which no NOTIFY announces).

    Use it as a context manager around the poll; :meth:`wait` returns the zones
    the nameserver said it serves, at their serial or later, since the last call.
    """

    def __init__(self, host: str, wanted: Mapping[str, int | None]) -> None:
        self.host = addresses.spelled(host)
        self._wanted = dict(wanted)
        self._heard: set[str] = set()
        self._news = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        _EARS.add(self, list(self._wanted))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        _EARS.remove(self, list(self._wanted))

    def hear(self, word: Heard) -> None:
        with self._lock:
            if word.host != self.host or word.zone_id not in self._wanted:
                return
            serial = self._wanted[word.zone_id]
            if serial is None or (word.serial is not None and word.serial < serial):
                return
            self._heard.add(word.zone_id)
        self._news.set()

    def wait(self, timeout: float) -> set[str]:
        """Wait up to ``timeout`` seconds for word of a zone; the zones heard of (empty at
        the timeout)."""
        if timeout > 0:
            self._news.wait(timeout)
        with self._lock:
            self._news.clear()
            heard, self._heard = self._heard, set()
        return heard


class _Ears:
    """This process's ears, by zone id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_zone: dict[str, set[Ear]] = {}
        # When each nameserver (by address) was last heard, whatever the zone.
        self._told: dict[str, float] = {}

    def add(self, ear: Ear, zone_ids: list[str]) -> None:
        if not zone_ids:
            return  # an ear for nothing (a delete's poll) needs no LISTEN
        if base.driver_name() == "postgres":
            _listening()
        with self._lock:
            for zone_id in zone_ids:
                self._by_zone.setdefault(zone_id, set()).add(ear)

    def remove(self, ear: Ear, zone_ids: list[str]) -> None:
        with self._lock:
            for zone_id in zone_ids:
                ears = self._by_zone.get(zone_id)
                if ears is not None:
                    ears.discard(ear)
                    if not ears:
                        del self._by_zone[zone_id]

    def forget_told(self) -> None:
        with self._lock:
            self._told.clear()

    def told_at(self, host: str) -> float | None:
        with self._lock:
            return self._told.get(host)

    def tell(self, words: list[Heard]) -> None:
        now = time.monotonic()
        for word in words:
            with self._lock:
                self._told[word.host] = now
                ears = list(self._by_zone.get(word.zone_id, ()))
            for ear in ears:
                ear.hear(word)


_EARS = _Ears()


def tells(host: str) -> bool:
    """Whether the nameserver at ``host`` was heard in the last :data:`TOLD_WITHIN`
    seconds saying what it serves: it NOTIFYs mdns of each serial it loads, so a
    poll of it will hear of its zones."""
    told = _EARS.told_at(addresses.spelled(host))
    return told is not None and time.monotonic() - told < TOLD_WITHIN


def forget() -> None:
    """Forget which nameservers were heard (the driver stopped: tests)."""
    _EARS.forget_told()


def _listening() -> None:
    """Have this process's event driver LISTEN on :data:`CHANNEL`.

    The driver makes its LISTEN from a thread of its own, and a word sent before
    that is in place is lost: so the first poll of a process waits for it (up to
    LISTEN_WAIT), and every later one finds it in place. Without the wait, the
    first change a conductor ran after it started waited a whole round.
    """
    from zoneflow.events import bus  # the driver is loaded on first use

    driver = bus.get_driver()
    driver.hear(CHANNEL)
    if not driver.listening(LISTEN_WAIT):
        LOG.info("served: not listening yet after %gs; polls ask at their rounds", LISTEN_WAIT)


def heard_payload(payload: str) -> None:
    """Hand the words of one PostgreSQL NOTIFY on :data:`CHANNEL` to this process's ears."""
    words = []
    for line in payload.splitlines():
        try:
            zone_id, serial, host = line.split(" ")
            words.append(Heard(zone_id, None if serial == "-" else int(serial), host))
        except ValueError:
            LOG.debug("served: a line that is no word: %r", line)
    _EARS.tell(words)


def payloads(words: list[Heard]) -> list[str]:
    """``words`` as NOTIFY payloads: a line each (zone id, serial or -, host), as many
    lines a payload as PostgreSQL takes."""
    found: list[str] = []
    lines: list[str] = []
    size = 0
    for word in words:
        line = f"{word.zone_id} {'-' if word.serial is None else word.serial} {word.host}"
        if lines and size + len(line) + 1 > PAYLOAD_LIMIT:
            found.append("\n".join(lines))
            lines, size = [], 0
        lines.append(line)
        size += len(line) + 1
    if lines:
        found.append("\n".join(lines))
    return found


def announce(zone_id: str, serial: int | None, host: str) -> None:
    """Tell every poll waiting for the zone on a nameserver at ``host`` that it serves
    ``serial``. Never blocks: the word leaves from a thread of its own."""
    word = Heard(zone_id, serial, addresses.spelled(host))
    if base.driver_name() != "postgres":
        _EARS.tell([word])
        return
    _sender().put(word)


class _Sender:
    """Sends the words announced in this process, as few NOTIFYs as they fit in."""

    def __init__(self) -> None:
        self._words: queue.SimpleQueue[Heard] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="served-sender", daemon=True)
        self._thread.start()

    def put(self, word: Heard) -> None:
        self._words.put(word)

    def _run(self) -> None:
        while True:
            words = [self._words.get()]
            while not self._words.empty():
                words.append(self._words.get())
            try:
                self._send(words)
            except Exception as exc:  # the database away: a hint lost costs a poll's round
                LOG.info("served: %d words not sent: %s", len(words), exc)

    @staticmethod
    def _send(words: list[Heard]) -> None:
        with db.connection() as conn:
            for payload in payloads(words):
                conn.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})


# Built once: mdns sends one for each serial a target says it loaded.
_NOTIFY = sa.text("SELECT pg_notify(:channel, :payload)")


_sender_lock = threading.Lock()
_sender_instance: _Sender | None = None


def _sender() -> _Sender:
    global _sender_instance
    with _sender_lock:
        if _sender_instance is None:
            _sender_instance = _Sender()
        return _sender_instance
