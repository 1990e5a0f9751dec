"""mdns as its own process on PostgreSQL: what answering on all its threads at once
costs the database.

Each of mdns's threads may hold a connection while it answers. A connection
past the process's pool is closed when it is given back, and PostgreSQL
forks a backend for the next one: under the load benchmark, 16 transfer
threads on a pool of 10 had PostgreSQL begin 0.77 sessions a change, against
0.14 with a connection kept for every thread.
"""

from __future__ import annotations

import concurrent.futures
import pathlib
import signal

import dns.query
import dns.zone

from tests import support
from tests.functional.deployment import Deployment
from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.fixtures.ports import HOST
from tests.functional.fixtures.postgres import PostgresServer
from zoneflow.mdns import options as mdns_options
from zoneflow.storage import db
from zoneflow.storage import pools as stored_pools

ZONES = 48
ROUNDS = 6


def test_transfers_on_every_mdns_thread_at_once_reuse_the_connections_it_keeps(
    tmp_path: pathlib.Path, postgres: PostgresServer, postgres_database: str
) -> None:
    deployment = Deployment(tmp_path, database=postgres_database, zookeeper_hosts=None)
    bind = Bind9Server(workdir=tmp_path / "bind")  # named in the pool, never started
    try:
        deployment.load_pool(
            {
                "name": "default",
                "ns_records": [{"hostname": "ns1.threads.test.", "priority": 1}],
                "nameservers": [bind.nameserver()],
                "targets": [bind.pool_target(deployment.masters())],
            }
        )
        with support.database(postgres_database, migrated=True):
            names = support.bulk_zones(ZONES, pool_id=stored_pools.get_pool("default").id)
            db.get_engine().dispose()  # this process keeps no session of its own
        before = postgres.sessions_begun(postgres_database)
        deployment.start_mdns()

        def transfer(name: str) -> int:
            xfr = dns.query.xfr(HOST, name, port=deployment.mdns_port, timeout=30, lifetime=60)
            return len(dns.zone.from_xfr(xfr).nodes)

        with concurrent.futures.ThreadPoolExecutor(ZONES) as clients:
            for _ in range(ROUNDS):
                assert all(list(clients.map(transfer, names))), "every transfer had the zone"
        deployment.kill("mdns", signal.SIGTERM)
        begun = postgres.sessions_begun(postgres_database) - before
    finally:
        bind.close()
        deployment.close()

    conf = mdns_options.CONF.mdns
    kept = conf.threads + conf.tcp_threads + 1
    # With the pool of 10 every other process keeps, these rounds began 49.
    assert begun <= kept, f"{ZONES * ROUNDS} transfers began {begun} sessions"
