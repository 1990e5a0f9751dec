"""``zoneflow api`` as its own process on PostgreSQL: what serving many clients at
once costs the database.

Each request's route runs in a thread and may hold a connection. anyio lends
40 threads, and a connection past the process's pool of 10 is closed when it
is given back: PostgreSQL then forks a backend for the next one. The API now
runs at most ``[api] threads`` requests at once and keeps a connection for
each (zoneflow.api.app._lifespan, zoneflow.api.server.run_forever).
"""

from __future__ import annotations

import concurrent.futures
import pathlib
import signal

import httpx

from tests.functional.deployment import Deployment
from tests.functional.fixtures.postgres import PostgresServer
from zoneflow.api import options as api_options

CLIENTS = 32
UPDATES = 8
PROJECT = {"X-Auth-Project-ID": "threads", "X-Roles": "member"}


def test_updates_from_many_clients_at_once_reuse_the_connections_the_api_keeps(
    tmp_path: pathlib.Path, postgres: PostgresServer, postgres_database: str
) -> None:
    deployment = Deployment(tmp_path, database=postgres_database, zookeeper_hosts=None)
    try:
        deployment.load_pool(
            {
                "name": "default",
                "ns_records": [{"hostname": "ns1.threads.test.", "priority": 1}],
                "targets": [{"type": "fake", "description": "fake"}],
            }
        )
        before = postgres.sessions_begun(postgres_database)
        deployment.start_api()
        with httpx.Client(base_url=deployment.api_url, timeout=60, headers=PROJECT) as client:
            zones = [
                client.post(
                    "/v2/zones",
                    json={"name": f"z{i}.threads.test.", "email": "hostmaster@threads.test"},
                ).json()["id"]
                for i in range(4)
            ]

        def one_client(number: int) -> list[str]:
            """A recordset of its own, then its updates, one after the other."""
            zone_id = zones[number % len(zones)]
            with httpx.Client(base_url=deployment.api_url, timeout=60, headers=PROJECT) as client:
                made = client.post(
                    f"/v2/zones/{zone_id}/recordsets",
                    json={
                        "name": f"c{number}.z{number % 4}.threads.test.",
                        "type": "A",
                        "records": ["192.0.2.1"],
                    },
                )
                assert made.status_code == 202, made.text
                url = f"/v2/zones/{zone_id}/recordsets/{made.json()['id']}"
                for n in range(UPDATES):
                    done = client.put(url, json={"records": [f"192.0.2.{n + 2}"]})
                    assert done.status_code == 202, done.text
                return list(client.get(url).json()["records"])

        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            served = list(pool.map(one_client, range(CLIENTS)))
        assert served == [[f"192.0.2.{UPDATES + 1}"]] * CLIENTS, "each client's last update"
        deployment.kill("api", signal.SIGTERM)
        begun = postgres.sessions_begun(postgres_database) - before
    finally:
        deployment.close()

    # Its pool, and the first connection oslo.db makes to see the database answer.
    kept = api_options.CONF.api.threads + 3 + 1
    assert begun <= kept, f"{CLIENTS * (UPDATES + 1)} changes began {begun} sessions"
