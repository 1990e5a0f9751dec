"""What runs after a change commits: the functions registered with :func:`on_change`
(the job relay registers itself there to post the job at once).
"""

from __future__ import annotations

from collections.abc import Callable

_listeners: list[Callable[[], None]] = []


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener`` after every committed change (e.g. to post its job now)."""
    _listeners.append(listener)


def changed() -> None:
    for listener in _listeners:
        listener()
