"""Fixtures every test may use, unit and functional."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from oslo_config import cfg


@pytest.fixture
def override() -> Iterator[Callable[..., None]]:
    """``override(group, name=value, ...)`` sets options for this test only."""
    done: list[tuple[str, str]] = []

    def set_options(group: str, **values: object) -> None:
        for name, value in values.items():
            cfg.CONF.set_override(name, value, group=group)
            done.append((name, group))

    yield set_options
    for name, group in done:
        cfg.CONF.clear_override(name, group=group)
