"""Posting the jobs a change wrote to the outbox, from a process that runs no relay.

Central writes each change's job to the outbox with the change; a conductor's
relay posts it from there. A short-lived caller (the CLI) posts its own jobs
at once through :class:`JobPoster`, so that a change does not wait for a
relay to notice it.
"""

from __future__ import annotations

from zoneflow.engine.relay import OutboxRelay
from zoneflow.options import CONF
from zoneflow.taskflow_adapter import jobboard, persistence


class JobPoster:
    """Posts the jobs written to the outbox since it was made.

    With ZooKeeper the board is reached when the poster is made, before
    anything changes, so an unreachable board costs the caller nothing; with
    the in-process zake board there is nothing to post to from another
    process, and the running ``zoneflow all-in-one`` picks the jobs up from
    the outbox.
    """

    def __init__(self, *, name: str) -> None:
        self.board = None
        self.persistence = None
        if CONF.jobboard.backend == "zookeeper":
            self.persistence = persistence.get_backend()
            self.board = jobboard.connect(self.persistence, name=name)

    def post(self) -> None:
        """Post what the outbox holds and close the board; a ZoneflowError says
        posting failed, the change and its job being saved all the same."""
        if self.board is None:
            return
        try:
            OutboxRelay(self.board, self.persistence).flush()
        finally:
            self.close()

    def close(self) -> None:
        """Close the board without posting: the change was refused. Left open, its
        notifier's threads met the interpreter's exit half made, and the CLI printed
        futurist's traceback after its own clear error."""
        if self.board is not None:
            jobboard.close(self.board)
            self.board = None
