"""Crash safety: zone jobs come out right while conductors are killed and servers restart.

Real PostgreSQL, ZooKeeper and three BIND9 targets; two ``zoneflow
conductor`` processes SIGKILLed at random moments and started again, and
ZooKeeper and PostgreSQL each restarted once in the middle of the run (see
tests/functional/chaos.py for the scenario and what is checked).

A seed gives the workload and the chaos schedule. The suite (CI, ``make
test``) replays the fixed seeds of SEEDS, so that a red run is this change's
doing and replays the same way. ``ZONEFLOW_CHAOS_SEED=new`` draws a new seed
and prints it first; ``ZONEFLOW_CHAOS_SEED=<seed>`` replays one. A drawn
seed that finds a bug joins SEEDS with its fix. bench/chaos.py runs a larger
version, with a new seed each time.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest

from tests.functional import chaos
from tests.functional.conftest import Bind9Factory
from tests.functional.fixtures.postgres import PostgresServer
from tests.functional.fixtures.zookeeper import ZooKeeperServer

REPLAY = "replay: ZONEFLOW_CHAOS_SEED={seed} pytest tests/functional/test_chaos.py"

# Replayed by every run of the suite. 626433 is the seed of the figures in
# doc/benchmarks.md.
SEEDS = (626433,)


def _seeds() -> list[int]:
    """SEEDS, or the one ZONEFLOW_CHAOS_SEED names (``new`` is drawn in tests/conftest.py)."""
    chosen = os.environ.get("ZONEFLOW_CHAOS_SEED", "")
    return [int(chosen)] if chosen else list(SEEDS)


@pytest.fixture
def user_config() -> Iterator[None]:
    """This process plays the users on the deployment's config; default config after."""
    from zoneflow import config

    yield
    config.setup([])


@pytest.mark.parametrize("seed", _seeds())
def test_every_job_ends_right_while_conductors_die_and_servers_restart(
    seed: int,
    tmp_path: pathlib.Path,
    postgres_database: str,
    postgres: PostgresServer,
    zookeeper: ZooKeeperServer,
    bind9_factory: Bind9Factory,
    capsys: pytest.CaptureFixture[str],
    user_config: None,
) -> None:
    # A create and at least two changes per zone: at least 102 jobs. The users post
    # a tenth of their changes; the conductors' relays, looking every second, post
    # the rest, several zones' changes to a job (create-zones, update-zones, ...) as
    # under load.
    plan = chaos.Plan(seed=seed, zones=34, users_post=0.1, relay_interval=1.0)

    def say(text: str) -> None:
        with capsys.disabled():
            print(f"\n{text}")

    binds = bind9_factory(3)
    deployment = chaos.deployment(
        tmp_path, database=postgres_database, zookeeper_hosts=zookeeper.hosts, plan=plan
    )
    try:
        deployment.load_pool(chaos.pool(deployment, binds))
        deployment.start_mdns()
        outcome = chaos.Run(
            plan, deployment, binds, zookeeper, postgres, say=say, replay=REPLAY
        ).run()
    finally:
        deployment.close()

    say(outcome.summary())
    assert outcome.jobs >= 100
    assert outcome.kills >= 3
    assert outcome.batches >= 3, outcome.summary()
    assert outcome.batches_of.get("create-zones", 0) >= 1, outcome.summary()
    assert not outcome.failures, outcome.report() + f"\n(logs in {tmp_path})"
