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
"""

from __future__ import annotations

import threading

from stevedore import driver as stevedore_driver

from zoneflow import exceptions, objects
from zoneflow.events import options
from zoneflow.events.base import Driver
from zoneflow.events.publisher import Publisher
from zoneflow.events.subscription import Subscription
from zoneflow.storage.events import NewEvent, jsonable

NAMESPACE = "zoneflow.events.drivers"
CONF = options.CONF

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

_lock = threading.Lock()
_driver: Driver | None = None
_publisher: Publisher | None = None


def load_driver(name: str) -> Driver:
    """The driver registered as ``name`` (not started)."""
    try:
        manager: stevedore_driver.DriverManager = stevedore_driver.DriverManager(
            NAMESPACE, name, invoke_on_load=True
        )
    except Exception as exc:  # stevedore raises NoMatches or the driver's own error
        raise exceptions.InvalidConfig(
            f"[events] driver = {name!r} cannot be loaded ({exc}): use inprocess, or "
            "postgres on a PostgreSQL database"
        ) from exc
    loaded = manager.driver
    if not isinstance(loaded, Driver):
        raise exceptions.InvalidConfig(f"[events] driver = {name!r} is not an event driver")
    return loaded


def get_driver() -> Driver:
    """This process's driver, loaded and started on first use."""
    global _driver
    with _lock:
        if _driver is None:
            _driver = load_driver(CONF.events.driver)
            _driver.start()
        return _driver


def subscribe(wanted: objects.EventFilter, *, after: int | None = None) -> Subscription:
    """Follow the events ``wanted`` matches, after event ``after`` (default: from now)."""
    return Subscription(get_driver(), wanted, after=after)


def get_publisher() -> Publisher:
    """This process's publisher, started on first use."""
    global _publisher
    with _lock:
        if _publisher is None:
            _publisher = Publisher()
            _publisher.start()
        return _publisher


def publish(event: NewEvent) -> None:
    """Publish an event that no change of a zoneflow table carries (rate limited)."""
    get_publisher().publish(event)


def flush() -> None:
    """Publish what this process's publisher holds back for its rate limit, now."""
    with _lock:
        publisher = _publisher
    if publisher is not None:
        publisher.flush()


def reset() -> None:
    """Stop this process's driver and publisher (tests, a service stopping)."""
    global _driver, _publisher
    with _lock:
        driver, _driver = _driver, None
        publisher, _publisher = _publisher, None
    if publisher is not None:
        publisher.stop()
    if driver is not None:
        driver.stop()
