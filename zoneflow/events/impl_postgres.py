"""The PostgreSQL driver: LISTEN on the channels the event transactions NOTIFY.

PostgreSQL delivers a NOTIFY when the transaction that sent it commits, to
every session LISTENing on its channel, in commit order, and drops it on a
rollback: the database the deployment already runs is the message bus, with
no server added. One listening connection per process, in a thread of its
own. It LISTENs on a channel once something in the process asks for it
(:meth:`PostgresDriver.hear`): the events channel for a subscriber, whom each
notification wakes to read the rows (the payload is the event's header only:
see zoneflow.storage.events); the served channel for a poll, which hears the
nameservers' word there (zoneflow.events.served), no event and no wake-up.
PostgreSQL sends every notification to every session that LISTENs on its
channel, so a process that listened to both, as each one did, paid for what
it never used: a conductor woken by every event, the API and the inspector by
every nameserver's word.

A connection lost misses the notifications sent meanwhile; the thread wakes
the subscribers on reconnecting so they read what they missed from the table.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import select
import threading
from typing import Any

import sqlalchemy as sa

from zoneflow.events import base, options, served
from zoneflow.storage import db
from zoneflow.storage import events as stored

LOG = logging.getLogger(__name__)
CONF = options.CONF


class PostgresDriver(base.Driver):
    def __init__(self) -> None:
        super().__init__()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        url = db.connection_url()
        if sa.engine.make_url(url).get_backend_name() != "postgresql":
            raise ValueError(
                f"[events] driver = postgres needs a PostgreSQL database, not "
                f"{sa.engine.make_url(url).get_backend_name()}: set [events] driver = inprocess"
            )
        # A connection of its own, never pooled: it stays in LISTEN for the process's life.
        self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        # The channels asked for, those LISTENed on the connection up now, and whether
        # one is up: guarded by _state, which is notified when they change.
        self._state = threading.Condition()
        self._wanted: set[str] = set()
        self._listened: set[str] = set()
        self._connected = False
        # Written to when a channel is asked for, so the thread LISTENs at once.
        self._nudge_read, self._nudge_write = os.pipe()
        os.set_blocking(self._nudge_read, False)
        os.set_blocking(self._nudge_write, False)
        #: Notifications heard, by channel.
        self.heard: collections.Counter[str] = collections.Counter()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="events-listen", daemon=True)
        self._thread.start()

    def hear(self, channel: str) -> None:
        with self._state:
            if channel in self._wanted:
                return
            self._wanted.add(channel)
        if self._stopping.is_set():
            return  # the pipe is closed, its number maybe another file's now
        with contextlib.suppress(BlockingIOError):  # a full pipe holds nudges enough
            os.write(self._nudge_write, b"!")

    def listening(self, timeout: float) -> bool:
        """Whether every channel asked for is LISTENed on a live connection (waiting up
        to ``timeout`` seconds for it)."""
        with self._state:
            return self._state.wait_for(
                lambda: self._connected and self._wanted <= self._listened, timeout
            )

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._engine.dispose()
        for end in (self._nudge_read, self._nudge_write):
            os.close(end)
        self.wake()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except Exception as exc:  # the database restarting, the network
                LOG.warning("events: LISTEN connection lost, reconnecting: %s", exc)
                self._stopping.wait(CONF.events.poll_interval)

    def _listen(self) -> None:
        raw = self._engine.raw_connection()
        try:
            conn: Any = raw.driver_connection
            conn.autocommit = True
            with self._state:
                self._connected = True
            while not self._stopping.is_set():
                self._listen_to_new(conn)
                self._dispatch(conn)
                ready, _, _ = select.select(
                    [conn, self._nudge_read], [], [], CONF.events.poll_interval
                )
                if self._nudge_read in ready:
                    os.read(self._nudge_read, 4096)
                if conn in ready:
                    conn.poll()
        finally:
            with self._state:
                self._connected = False
                self._listened.clear()
            raw.close()

    def _listen_to_new(self, conn: Any) -> None:
        """LISTEN on the channels asked for since the last look (all of them on a new
        connection); subscribers read what was committed before it took hold."""
        with self._state:
            new = sorted(self._wanted - self._listened)
        if not new:
            return
        with conn.cursor() as cursor:
            for channel in new:
                cursor.execute(f"LISTEN {channel}")
        with self._state:
            self._listened.update(new)
            self._state.notify_all()
        if stored.CHANNEL in new:
            self.wake()

    def _dispatch(self, conn: Any) -> None:
        """Hand on the notifications the connection has read (by poll(), or while it
        ran a LISTEN)."""
        if not conn.notifies:
            return
        notices, conn.notifies[:] = list(conn.notifies), []
        events = False
        for notice in notices:
            self.heard[notice.channel] += 1
            if notice.channel == served.CHANNEL:
                served.heard_payload(notice.payload)
            else:
                events = True
        if events:
            self.wake()
