"""`zoneflow pool update` while zones live, with real BIND9s, PostgreSQL and ZooKeeper.

A pool of two BIND9s serving several zones gets a third: every zone must
become served by it (its SOA serial, asked over DNS), and no zone may read
ACTIVE before that. Then one BIND9 is removed: it must stop serving every
zone (REFUSED) and its row must go, while the zones stay ACTIVE and served
by the other two. The zones' statuses are read from PostgreSQL directly, so
they can be sampled as fast as the nameservers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import dns.rcode
import pytest
import sqlalchemy as sa
import yaml

from tests import support
from tests.functional.conftest import Bind9Factory
from tests.functional.deployment import Deployment, answer, soa_serial
from tests.functional.fixtures.bind9 import Bind9Server
from tests.support import eventually
from zoneflow.central import pools
from zoneflow.central import zones as central_zones

ZONES = [f"zone{i}.poolchange.example." for i in range(5)]


def _pool_file(deployment: Deployment, binds: list[Bind9Server]) -> str:
    path = deployment.workdir / "pools.yaml"
    pool = {
        "name": "default",
        "ns_records": [{"hostname": "ns1.poolchange.example.", "priority": 1}],
        "nameservers": [b.nameserver() for b in binds],
        "targets": [b.pool_target(deployment.masters()) for b in binds],
    }
    path.write_text(yaml.safe_dump([pool], sort_keys=False))
    return str(path)


def _target_id(deployment: Deployment, bind: Bind9Server) -> str:
    target = bind.pool_target(deployment.masters())
    return pools.target_id("default", "bind9", target["options"], target)


@pytest.fixture
def database(deployment: Deployment) -> Iterator[sa.engine.Engine]:
    engine = sa.create_engine(deployment.database, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def _zones(database: sa.engine.Engine) -> dict[str, tuple[str, int]]:
    """Every live zone: name -> (status, serial), as PostgreSQL holds them."""
    with database.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT name, status, serial FROM zones WHERE deleted = '0'")
        )
        return {name: (status, serial) for name, status, serial in rows}


def _serves(bind: Bind9Server, zone: str, serial: int) -> bool:
    return soa_serial(zone, bind.host, bind.port) == serial


def _refuses(bind: Bind9Server, zone: str) -> bool:
    return answer(zone, "SOA", bind.host, bind.port)[0] == dns.rcode.REFUSED


def _watch(
    database: sa.engine.Engine,
    done: Callable[[dict[str, tuple[str, int]]], bool],
    check: Callable[[str, int], None],
    *,
    timeout: float = 20,
) -> dict[str, tuple[str, int]]:
    """Sample the zones until ``done``; ``check(zone, serial)`` every zone read ACTIVE.

    The status is read before the nameservers are asked, so a zone whose
    status reads ACTIVE must already be served.
    """

    def sample() -> dict[str, tuple[str, int]] | None:
        zones = _zones(database)
        for name, (status, serial) in zones.items():
            if status == "ACTIVE":
                check(name, serial)
        return zones if done(zones) else None

    return eventually(sample, timeout, what=lambda: f"the zones to settle: {_zones(database)}")


def _all_active(zones: dict[str, tuple[str, int]]) -> bool:
    return len(zones) == len(ZONES) and all(status == "ACTIVE" for status, _ in zones.values())


def test_an_added_bind9_serves_every_zone_before_it_reads_active_and_a_removed_one_is_drained(
    deployment: Deployment, bind9_factory: Bind9Factory, database: sa.engine.Engine
) -> None:
    first, second, third = bind9_factory(3)
    deployment.cli("db", "sync")
    deployment.cli("pool", "update", "--file", _pool_file(deployment, [first, second]))
    deployment.start_mdns()
    deployment.start_conductor()
    # Through central in this process (a CLI call per zone costs seconds); the
    # conductor's relay posts their jobs.
    with support.database(deployment.database):
        for zone in ZONES:
            central_zones.create_zone(zone, "hostmaster@poolchange.example")
    zones = _watch(database, _all_active, lambda zone, serial: None)
    for zone, (_, serial) in zones.items():
        assert _serves(first, zone, serial) and _serves(second, zone, serial)
        assert _refuses(third, zone)

    # A third BIND9: every zone is backfilled onto it, ACTIVE only once it serves it.
    added = deployment.cli(
        "pool", "update", "--file", _pool_file(deployment, [first, second, third])
    ).stdout
    assert added.strip() == (
        f"pool default: 3 target(s), 3 nameserver(s); target local BIND9 on "
        f"{third.host}:{third.port}, nameserver {third.host}:{third.port} added, "
        f"{len(ZONES)} zones to backfill"
    )

    def served_by_third(zone: str, serial: int) -> None:
        assert _serves(third, zone, serial), f"{zone} ACTIVE before the added BIND9 serves it"

    zones = _watch(database, _all_active, served_by_third)
    for zone, (_, serial) in zones.items():
        for bind in (first, second, third):
            assert _serves(bind, zone, serial)
    # Released together, the zones' backfill went in one recover-zones job.
    listed = json.loads(deployment.cli("--json", "job", "list").stdout)
    backfills = [job for job in listed if job["kind"].startswith("recover-zone")]
    assert [job["kind"] for job in backfills] == ["recover-zones"]
    assert sorted(zone["name"] for zone in backfills[0]["zones"]) == sorted(ZONES)

    # The first BIND9 removed: it stops serving every zone, then its row goes.
    removed = deployment.cli(
        "pool", "update", "--file", _pool_file(deployment, [second, third])
    ).stdout
    assert removed.strip() == (
        f"pool default: 2 target(s), 2 nameserver(s); target local BIND9 on "
        f"{first.host}:{first.port} retired, {len(ZONES)} zones to delete from it"
    )
    retired = _target_id(deployment, first)

    def first_is_gone(zones: dict[str, tuple[str, int]]) -> bool:
        with database.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM pool_targets WHERE id = :id)"
                    " + (SELECT count(*) FROM zone_target_status WHERE target_id = :id)"
                ),
                {"id": retired},
            ).scalar_one()
        return rows == 0 and all(_refuses(first, zone) for zone in zones)

    def still_served(zone: str, serial: int) -> None:
        assert _serves(second, zone, serial) and _serves(third, zone, serial)

    zones = _watch(database, first_is_gone, still_served)
    assert zones == {zone: ("ACTIVE", serial) for zone, (_, serial) in zones.items()}
    assert len(zones) == len(ZONES)
    shown = deployment.cli("pool", "show", "default").stdout
    assert "retired targets" not in shown
    assert f"{first.host}:{first.port}" not in shown
