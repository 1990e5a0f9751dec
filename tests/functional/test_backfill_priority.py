"""A user's change made during a large backfill is served long before the backfill
ends: real BIND9, PostgreSQL, ZooKeeper, mdns, API and conductor processes.

A pool holding hundreds of zones gains a BIND9 target: every zone is
backfilled onto it by an upkeep job, all of them released at once (a pace
above what the conductor gets through, as when the conductors are slower
than ``[central] backfill_jobs_per_second``). A recordset is then created
through the API in the zone whose backfill job comes last. BIND9 itself is
asked when it serves the change, and most of the backfill must still be
waiting then: the change went past it, in the outbox and on the board.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from tests import support
from tests.functional.conftest import Bind9Factory
from tests.functional.deployment import Deployment, answer
from tests.functional.fixtures.bind9 import Bind9Server
from tests.support import ADMIN, eventually
from zoneflow.central import pools
from zoneflow.storage import LIVE, tables

ZONES = 300


@pytest.fixture
def in_process(deployment: Deployment, override: Callable[..., None]) -> Iterator[sa.engine.Engine]:
    """The deployment's database, also reached from this process: pools are loaded
    here, not by a CLI process each (seconds on a busy machine), and a backfill is
    released all at once."""
    override("central", backfill_jobs_per_second=100000)
    engine = sa.create_engine(deployment.database, poolclass=sa.pool.NullPool)
    with support.database(deployment.database):
        yield engine
    engine.dispose()


def backfill_pool(deployment: Deployment, *binds: Bind9Server) -> dict[str, Any]:
    """The pool: a fake target (the zones' first home) and ``binds`` with their nameservers."""
    return {
        "name": "default",
        "ns_records": [{"hostname": "ns1.backfill.example.", "priority": 1}],
        "nameservers": [b.nameserver() for b in binds],
        "targets": [
            {"type": "fake", "description": "first"},
            *(b.pool_target(deployment.masters()) for b in binds),
        ],
    }


def _load(pool: dict[str, Any]) -> int:
    """Load ``pool`` as ``zoneflow pool update`` does; how many zones it backfills."""
    (update,) = pools.store(pools.parse(yaml.safe_dump([pool])))
    return update.backfill


def _insert_active_zones(engine: sa.engine.Engine, count: int) -> list[str]:
    """``count`` ACTIVE zones of the project the API's admin acts for, on the pool's one
    (fake) target, written directly as if long since created: their names, in the order
    their backfill jobs are posted."""
    serial = int(time.time())
    with engine.begin() as connection:
        pool_id = connection.execute(sa.text("SELECT id FROM pools")).scalar_one()
        target_id = connection.execute(sa.text("SELECT id FROM pool_targets")).scalar_one()
        rows = [
            {
                "id": f"00000000-0000-4000-8000-{i:012d}",
                "name": f"zone{i:04d}.backfill.example.",
                "email": "hostmaster@backfill.example",
                "ttl": 300,
                "serial": serial,
                "refresh": 3600,
                "retry": 600,
                "expire": 86400,
                "minimum": 300,
                "status": "ACTIVE",
                "action": "NONE",
                "pool_id": pool_id,
                "project_id": ADMIN["X-Auth-Project-ID"],
                "deleted": LIVE,
            }
            for i in range(count)
        ]
        connection.execute(sa.insert(tables.zones), rows)
        # What the fake target's jobs recorded: it serves each zone.
        connection.execute(
            sa.text(
                "INSERT INTO zone_target_status (zone_id, target_id, serial, status) "
                "VALUES (:zone_id, :target_id, :serial, 'ACTIVE')"
            ),
            [{"zone_id": r["id"], "target_id": target_id, "serial": serial} for r in rows],
        )
    # The backfill posts its jobs in the order of the zones' ids.
    return [row["name"] for row in sorted(rows, key=lambda row: row["id"])]


def _pending(engine: sa.engine.Engine) -> int:
    zones = tables.zones
    with engine.connect() as connection:
        return int(
            connection.execute(
                sa.select(sa.func.count()).where(
                    zones.c.deleted == LIVE, zones.c.status == "PENDING"
                )
            ).scalar_one()
        )


def test_a_change_made_during_a_backfill_is_served_before_the_backfill_ends(
    deployment: Deployment, in_process: sa.engine.Engine, bind9_factory: Bind9Factory
) -> None:
    (bind,) = bind9_factory(1)
    _load(backfill_pool(deployment))
    names = _insert_active_zones(in_process, ZONES)
    deployment.start_conductor()
    deployment.start_mdns()
    deployment.start_api()

    assert _load(backfill_pool(deployment, bind)) == ZONES
    zone = names[-1]  # its backfill job is the last posted
    stored = deployment.stored_zone(zone)
    assert stored is not None
    began = time.monotonic()
    deployment.api(
        "POST",
        f"/v2/zones/{stored['id']}/recordsets",
        {"name": f"www.{zone}", "type": "A", "records": ["192.0.2.80"]},
    )

    def served() -> bool:
        return answer(f"www.{zone}", "A", bind.host, bind.port)[1] == {"192.0.2.80"}

    eventually(served, 60, interval=0.05, what=f"BIND9 to serve the change to {zone}")
    took = time.monotonic() - began
    waiting = _pending(in_process)
    print(f"change served by BIND9 in {took:.2f} s; {waiting} of {ZONES} zones still backfilling")
    assert waiting >= ZONES // 2, f"served after most of the backfill ({took:.1f} s)"
