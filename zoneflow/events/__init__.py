"""The event stream: what changed in zoneflow, as it is committed (doc/events.md).

An event is a row of ``events`` (table, key, action, value, topic, and the
project and zone it concerns), written in the transaction of the change it
reports by the write paths of storage (zoneflow.storage.events), or by a
process's :class:`Publisher` for what changes no table of zoneflow's own (a
job's end). Subscribers follow it through a :class:`Subscription`, woken by
the process's driver, picked by ``[events] driver`` among the entry points of
``zoneflow.events.drivers``:

- impl_inprocess: woken by this process's own commits (all-in-one, SQLite);
- impl_postgres: PostgreSQL LISTEN/NOTIFY (a deployment).

This package sits below every layer that publishes (the conductor, flows,
mdns and the inspector report what they see) and above storage, whose
transactions carry the events: see setup.cfg's layers contract.

Everything here is loaded on first use (the front door lives in
:mod:`zoneflow.events.bus`), so that reading ``[events]``'s options, as
every command does, loads neither storage's models nor a driver.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoneflow.events.bus import (
        Driver,
        NewEvent,
        Publisher,
        Subscription,
        flush,
        get_driver,
        jsonable,
        publish,
        reset,
        subscribe,
    )

__all__ = [
    "Driver",
    "NewEvent",
    "Publisher",
    "Subscription",
    "flush",
    "get_driver",
    "jsonable",
    "publish",
    "reset",
    "subscribe",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("zoneflow.events.bus"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
