"""Which event driver a process runs: ``auto`` (the default) picks LISTEN/NOTIFY on
PostgreSQL, where every process hears every other's events and mdns's word to the
polls (tests/functional/test_nameserver_word.py shows the word on a real
deployment with the default), and the in-process driver on SQLite."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from zoneflow.events import base
from zoneflow.storage import db


@pytest.mark.parametrize(
    ("url", "driver", "chosen"),
    [
        ("postgresql+psycopg2://zoneflow:secret@127.0.0.1:5432/zoneflow", "auto", "postgres"),
        ("postgresql://127.0.0.1/zoneflow", "auto", "postgres"),
        ("sqlite:////var/lib/zoneflow/zoneflow.sqlite", "auto", "inprocess"),
        ("postgresql://127.0.0.1/zoneflow", "inprocess", "inprocess"),
        ("sqlite:///zoneflow.sqlite", "postgres", "postgres"),  # refused when it starts
    ],
)
def test_auto_is_postgres_on_postgresql_and_inprocess_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
    override: Callable[..., None],
    url: str,
    driver: str,
    chosen: str,
) -> None:
    monkeypatch.setattr(db, "connection_url", lambda: url)
    override("events", driver=driver)
    assert base.driver_name() == chosen
