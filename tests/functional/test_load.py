"""The load benchmark, CI-sized: zone creates, deletes and recordset changes through the
API for 20 s on two BIND9 targets, every change served by both and nothing lost.

The same code as bench/load.py (imported, not copied): real PostgreSQL, ZooKeeper,
BIND9, and ``zoneflow conductor``, ``mdns``, ``producer``, ``inspector`` and
``api`` processes; the load offered open loop; the sweeper, a process of its
own, asking both targets over plain DNS until each serves each change. Then
the database must hold every zone and recordset the API accepted with the
records last accepted (and no zone it deleted), and both targets must answer
every recordset with those records.
"""

from __future__ import annotations

import asyncio
import random

from bench import load, load_report, load_traffic, report
from tests.functional.conftest import Bind9Factory
from tests.functional.deployment import Deployment
from tests.functional.fixtures.ports import HOST
from tests.support import ADMIN

RATE = 4.0
SECONDS = 20.0
SEED = 17
# Designate's mix holds 6 % deletes: 80 changes might hold none (1 run in 140). This one
# holds enough of each to be sure.
MIX = {"create": 30, "update": 55, "delete": 15}
# Generous: a busy machine serves slowly, but a change still waiting this long is lost.
DRAIN = 120.0


async def _offer(rig: load.Rig) -> tuple[load.Run, load_traffic.Load]:
    api = load_traffic.Api(HOST, rig.deployment.api_port, ADMIN, size=8)
    offered = load_traffic.Load(api, random.Random(SEED))
    try:
        steps = [load_traffic.Step(RATE, SECONDS)]
        run = await load.drive(rig, offered, steps, mix=MIX, drain=DRAIN)
    finally:
        await api.close()
    return run, offered


def test_every_change_accepted_under_load_is_served_by_every_target_and_kept(
    deployment: Deployment, bind9_factory: Bind9Factory
) -> None:
    notified = load.notify_listeners(2)
    binds = bind9_factory(
        2, also_notify=[[(HOST, deployment.mdns_port), sock.getsockname()] for sock in notified]
    )
    load.start_zoneflow(deployment, binds, conductors=1)
    rig = load.Rig(deployment, binds, notified=notified)

    run, offered = asyncio.run(_offer(rig))

    refused = [(c.action, c.status, c.error) for c in run.changes if not c.accepted]
    assert not refused, f"the API refused or never answered: {refused[:5]}"
    assert {c.action for c in run.changes} == set(load_report.ACTIONS)
    assert len(run.changes) >= RATE * SECONDS / 2
    unserved = [(c.action, c.zone, c.serial) for c in run.changes if c.served is None]
    assert not unserved, f"not served by every target within {DRAIN:g} s: {unserved[:5]}"
    # A change the sweeper saw superseded was followed by a delete of its zone that
    # every target served; any other change was served at its serial by both.
    deleted = {c.zone for c in run.changes if c.action == "delete"}
    assert all(c.zone in deleted for c in run.changes if c.superseded)
    # The targets' NOTIFYs reached the sweeper, and had it ask in time to see changes
    # served (a delete is always found by asking: no NOTIFY announces it).
    assert run.sweeper["notifies"] > 0
    assert run.sweeper["served_on_notify"] > 0
    assert load.lost(rig, offered) == []
    assert load.unserved_records(rig, offered) == []
    # The report's phases come from the jobs' task events: each job began, and the
    # jobs wrote their statuses.
    phases = load.phases_of_jobs(rig)
    assert phases and all("claimed" in p for p in phases.values()), phases
    assert any("status" in p for p in phases.values()), phases
    served = load_report.latencies(run.changes)
    print(
        f"{len(run.changes)} changes, served by both targets: p50 "
        f"{report.percentile(served, 50):.2f} s, max {max(served):.2f} s"
    )
