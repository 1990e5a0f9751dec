"""Unit-test fixtures: a fresh SQLite database and zake board per test, no servers."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from tests import support
from zoneflow.backends import impl_fake
from zoneflow.central import pools
from zoneflow.conductor import jobboard, persistence
from zoneflow.storage import api as storage

FAKE_POOL = """
- name: default
  threshold_percentage: {threshold}
  ns_records: [{{hostname: ns1.example.org., priority: 1}}]
  targets:
{targets}
"""


def fake_pool_yaml(*options: dict[str, object], threshold: int = 100) -> str:
    targets = "\n".join(
        f"    - {{type: fake, description: fake{i}, options: {dict(opts) or '{}'}}}"
        for i, opts in enumerate(options or ({},), start=1)
    )
    return FAKE_POOL.format(threshold=threshold, targets=targets)


@pytest.fixture(autouse=True)
def database(tmp_path: pathlib.Path) -> Iterator[str]:
    with support.database(f"sqlite:///{tmp_path}/zoneflow.sqlite") as url:
        persistence.reset()
        persistence.upgrade()
        jobboard.reset_zake()
        impl_fake.FakeBackend.reset()
        yield url
        persistence.reset()


@pytest.fixture
def fake_pool() -> None:
    """A default pool of two healthy fake targets."""
    storage.replace_pools(pools.parse(fake_pool_yaml({}, {})))
