"""Which event driver a process runs: ``auto`` (the default) picks LISTEN/NOTIFY on
PostgreSQL, where every process hears every other's events and mdns's word to the
polls (tests/functional/test_nameserver_word.py shows the word on a real
deployment with the default), and the in-process driver on SQLite."""

from __future__ import annotations

import pathlib
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


def test_a_process_without_sessions_learns_the_driver_without_making_any(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mdns and the CLI's reads run with ``sessions=False``: asking which driver to run
    (the database's URL) must not build oslo.db's session manager they go without."""
    monkeypatch.setattr(db, "_manager", db._manager)  # noqa: SLF001 (restored after)
    monkeypatch.setattr(db, "_connection", db._connection)  # noqa: SLF001
    monkeypatch.setattr(db, "_sessions", db._sessions)  # noqa: SLF001
    monkeypatch.setattr(db, "_engine", db._engine)  # noqa: SLF001
    db.configure(f"sqlite:///{tmp_path / 'zoneflow.sqlite'}", sessions=False)
    assert base.driver_name() == "inprocess"
    assert db._manager is None  # noqa: SLF001
