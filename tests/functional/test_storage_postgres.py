"""Storage on a real PostgreSQL: concurrent changes never lose an update or share a serial."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import pytest

from tests import support
from zoneflow.central import api as central
from zoneflow.storage import api as storage
from zoneflow.storage import migration

POOL = """
- name: default
  ns_records: [{hostname: ns1.example.org., priority: 1}]
  targets: [{type: fake, description: fake}]
"""


@pytest.fixture
def on_postgres(postgres_database: str) -> Iterator[str]:
    with support.database(postgres_database, pools_yaml=POOL) as url:
        yield url


def test_concurrent_changes_to_one_zone_on_postgresql(on_postgres: str) -> None:
    zone = central.create_zone("example.com", "hostmaster@example.com")

    def change(i: int) -> int:
        if i % 5 == 0:
            return central.update_zone("example.com", ttl=300 + i).serial
        return central.create_recordset("example.com", f"h{i}", "A", [f"192.0.2.{i}"]).serial

    with concurrent.futures.ThreadPoolExecutor(16) as workers:
        serials = list(workers.map(change, range(1, 81)))

    assert len(set(serials)) == 80, "no two changes share a serial"
    assert min(serials) > zone.serial
    assert storage.get_zone(zone.id).serial == max(serials)
    assert len(storage.list_recordsets(zone.id)) == 64, "no change was lost"
    assert storage.count_pending_jobs() == 81
    jobs = storage.claim_pending_jobs(limit=1000)
    assert sorted(j.serial for j in jobs if j.kind == "update-zone") == sorted(serials)


def test_migrations_are_idempotent_on_postgresql(on_postgres: str) -> None:
    migration.upgrade()
    assert [p.name for p in storage.list_pools()] == ["default"]
