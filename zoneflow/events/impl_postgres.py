"""The PostgreSQL driver: LISTEN on the channel the event transactions NOTIFY.

PostgreSQL delivers a NOTIFY when the transaction that sent it commits, to
every session LISTENing on its channel, in commit order, and drops it on a
rollback: the database the deployment already runs is the message bus, with
no server added. One listening connection per process, in a thread of its
own; each notification wakes that process's subscribers, who read the rows
(the payload is the event's header only: see zoneflow.storage.events). The
same connection hears the nameservers' word for the polls
(zoneflow.events.served), which is no event and wakes no subscriber.

A connection lost misses the notifications sent meanwhile; the thread wakes
the subscribers on reconnecting so they read what they missed from the table.
"""

from __future__ import annotations

import logging
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
        self._listening = threading.Event()
        url = db.connection_url()
        if sa.engine.make_url(url).get_backend_name() != "postgresql":
            raise ValueError(
                f"[events] driver = postgres needs a PostgreSQL database, not "
                f"{sa.engine.make_url(url).get_backend_name()}: set [events] driver = inprocess"
            )
        # A connection of its own, never pooled: it stays in LISTEN for the process's life.
        self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="events-listen", daemon=True)
        self._thread.start()

    def listening(self, timeout: float) -> bool:
        """Whether the LISTEN is in place (waiting up to ``timeout`` seconds)."""
        return self._listening.wait(timeout)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._engine.dispose()
        self.wake()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except Exception as exc:  # the database restarting, the network
                LOG.warning("events: LISTEN connection lost, reconnecting: %s", exc)
                self._listening.clear()
                self._stopping.wait(CONF.events.poll_interval)

    def _listen(self) -> None:
        raw = self._engine.raw_connection()
        try:
            conn: Any = raw.driver_connection
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(f"LISTEN {stored.CHANNEL}")
                cursor.execute(f"LISTEN {served.CHANNEL}")
            self._listening.set()
            # What was committed while this connection was away is read now.
            self.wake()
            while not self._stopping.is_set():
                ready, _, _ = select.select([conn], [], [], CONF.events.poll_interval)
                if not ready:
                    continue
                conn.poll()
                if conn.notifies:
                    notifies, conn.notifies[:] = list(conn.notifies), []
                    for notice in notifies:
                        if notice.channel == served.CHANNEL:
                            served.heard_payload(notice.payload)
                    if any(notice.channel != served.CHANNEL for notice in notifies):
                        self.wake()
        finally:
            raw.close()
