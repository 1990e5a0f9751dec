"""The in-process driver: subscribers woken by this process's own commits.

For all-in-one, where the API serving ``/v2/events`` shares its process with
central and the conductor: a transaction that wrote events wakes the
subscribers as it commits (SQLAlchemy's ``after_commit``), and never when it
rolls back. Another process writing the same SQLite file (the CLI) cannot
wake them, so subscribers also look at the table every ``[events]
poll_interval`` seconds.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from zoneflow.events import base
from zoneflow.storage import events as stored


class InProcessDriver(base.Driver):
    def start(self) -> None:
        sa.event.listen(orm.Session, "after_commit", self._after_commit)
        sa.event.listen(orm.Session, "after_rollback", self._after_rollback)

    def stop(self) -> None:
        for name, listener in (
            ("after_commit", self._after_commit),
            ("after_rollback", self._after_rollback),
        ):
            if sa.event.contains(orm.Session, name, listener):
                sa.event.remove(orm.Session, name, listener)
        self.wake()

    def _after_commit(self, session: Any) -> None:
        if session.info.pop(stored.SESSION_MARK, False):
            self.wake()

    def _after_rollback(self, session: Any) -> None:
        session.info.pop(stored.SESSION_MARK, None)
