"""The propagation model: an in-memory picture of which target serves which serial
of which zone, what state each target is in, and when it was last seen.

Built from storage at start (the per-target rows, the transfers mdns served,
the zones' serials) and kept fresh by the event stream: jobs' outcomes, the
audit's and the inspector's findings (all written as per-target rows, each
published as a ``propagation`` event), and mdns seeing a target transfer a
serial or ask for a zone's SOA; and read from storage again now and then (the
sweep), for what came without an event. A long-running process (the API server,
all-in-one) keeps one (:func:`start`); ``zoneflow zone status``, ``zoneflow pool
status`` and their API routes read it through :mod:`zoneflow.central.status`,
and a one-shot process builds the part it needs from storage instead.

- picture: the state, how events change it, and how it is judged when read;
- follower: the running process's model and the thread that feeds it.

This package sits below central (which reads it) and above events and storage
(which feed it): see setup.cfg's layers contract.
"""

from __future__ import annotations

from zoneflow.model.follower import (
    Follower,
    drift_found,
    running,
    start,
    start_when_read,
    stop,
)
from zoneflow.model.picture import Picture, Propagation, Serving, TargetState, TargetSummary

__all__ = [
    "Follower",
    "Picture",
    "Propagation",
    "Serving",
    "TargetState",
    "TargetSummary",
    "drift_found",
    "running",
    "start",
    "start_when_read",
    "stop",
]
