"""What runs after a change commits: the functions registered with :func:`on_change`
(the job relay registers itself there to post the job at once), unless the change
rode on a job already written.
"""

from __future__ import annotations

from collections.abc import Callable

from zoneflow.storage import outbox as stored_outbox

_listeners: list[Callable[[], None]] = []


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener`` after every committed change (e.g. to post its job now)."""
    _listeners.append(listener)


def changed() -> None:
    # An update that rode on its zone's job not begun gives a relay nothing to post:
    # under load most do, and each wake cost the relay a claim (a transaction).
    if stored_outbox.only_rode():
        return
    for listener in _listeners:
        listener()
