"""The process's event bus: its driver and publisher, and the front door
(publish, subscribe, flush) that :mod:`zoneflow.events` hands out."""

from __future__ import annotations

import threading

from stevedore import driver as stevedore_driver

from zoneflow import exceptions, objects
from zoneflow.events import options, served
from zoneflow.events.base import Driver, driver_name
from zoneflow.events.publisher import Merge, Publisher
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
            f"[events] driver = {name!r} cannot be loaded ({exc}): use auto, inprocess, "
            "or postgres on a PostgreSQL database"
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
            _driver = load_driver(driver_name())
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


def publish(event: NewEvent, *, merge: Merge | None = None) -> None:
    """Publish an event that no change of a zoneflow table carries (rate limited;
    ``merge``: see Publisher.publish)."""
    get_publisher().publish(event, merge=merge)


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
    served.forget()
