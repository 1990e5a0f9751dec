"""Helpers several test modules share: a process pointed at a fresh database, value objects."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
from collections.abc import Iterator
from typing import Any

from oslo_config import cfg

from zoneflow import config, objects
from zoneflow.central import pools
from zoneflow.storage import api as storage
from zoneflow.storage import db, migration


@contextlib.contextmanager
def database(url: str, *, pools_yaml: str | None = None) -> Iterator[str]:
    """Point this process at ``url``, migrated (and holding ``pools_yaml``), for a block."""
    config.setup([])
    cfg.CONF.set_override("connection", url, group="database")
    db.configure(url)
    migration.upgrade()
    if pools_yaml is not None:
        storage.replace_pools(pools.parse(pools_yaml))
    try:
        yield url
    finally:
        cfg.CONF.clear_override("connection", group="database")


def make_zone(**overrides: Any) -> objects.Zone:
    """A Zone value with sensible fields, for tests that need no database."""
    zone = objects.Zone(
        id="z1",
        name="example.com.",
        email="hostmaster@example.com",
        ttl=300,
        serial=2024010101,
        refresh=3600,
        retry=600,
        expire=86400,
        minimum=60,
        status=objects.ACTIVE,
        action=objects.NONE,
        pool_id="p1",
        project_id=None,
        description=None,
        error=None,
        created_at=datetime.datetime(2024, 1, 1),
        updated_at=None,
    )
    return dataclasses.replace(zone, **overrides)
