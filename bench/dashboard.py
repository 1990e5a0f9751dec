"""The dashboard's pages with many zones: the zones list, a search, and a zone's matrix.

A SQLite database holding ``--zones`` zones of one project on a pool of
``--targets`` targets, each zone with a per-target row for every target (the
rows jobs write), loaded in bulk (not through central, which would take
minutes). The API is zoneflow's real HTTP server (uvicorn, the ``zoneflow
api`` application, its propagation model built from those rows) in this
process, asked over one keep-alive connection, one request at a time, with
the dashboard's cookie of a member of the project. Each figure is
``--requests`` requests of a whole page as a browser loads it (the HTML;
the script and style sheet are cached by the browser):

* the zones list, first page (25 zones, the total counted);
* the zones list searched by a part of a name;
* a zone's page at random: its matrix of every target, recordsets, jobs.

Goal: p99 at most 300 ms.

    python bench/dashboard.py [--zones 10000] [--targets 8] [--requests 200]
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import pathlib
import random
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench import report  # noqa: E402
from tests import support  # noqa: E402
from zoneflow.api import server  # noqa: E402
from zoneflow.central import pools  # noqa: E402
from zoneflow.storage import db, models, tables  # noqa: E402
from zoneflow.taskflow_adapter import persistence  # noqa: E402

PROJECT = "bench"
COOKIE = f"zoneflow_project={PROJECT}; zoneflow_roles=member"
SERIAL = 2026120401


def pool_yaml(targets: int) -> str:
    entries = "\n".join(
        f"    - {{type: fake, description: fake{i}}}" for i in range(1, targets + 1)
    )
    return (
        "- name: default\n  ns_records: [{hostname: ns1.example.org., priority: 1}]\n"
        f"  targets:\n{entries}\n"
    )


def load(zones: int, pool: object) -> list[str]:
    """``zones`` ACTIVE zones, each served at its serial by every target; their ids."""
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    ids = [str(uuid.uuid4()) for _ in range(zones)]
    rows = [
        {
            "id": zone_id,
            "name": f"zone-{n:06d}.bench.example.",
            "email": "hostmaster@bench.example",
            "ttl": 3600,
            "serial": SERIAL,
            "refresh": 3600,
            "retry": 600,
            "expire": 86400,
            "minimum": 300,
            "status": "ACTIVE",
            "action": "NONE",
            "pool_id": pool.id,  # type: ignore[attr-defined]
            "project_id": PROJECT,
            "description": None,
            "error": None,
            "version": 1,
            "deleted": "0",
            "deleted_at": None,
            "created_at": now,
            "updated_at": now,
        }
        for n, zone_id in enumerate(ids)
    ]
    statuses = [
        {
            "zone_id": zone_id,
            "target_id": target.id,
            "serial": SERIAL,
            "status": "ACTIVE",
            "error": None,
            "updated_at": now,
        }
        for zone_id in ids
        for target in pool.targets  # type: ignore[attr-defined]
    ]
    with db.get_engine().begin() as conn:
        conn.execute(sa.insert(tables.zones), rows)
        conn.execute(sa.insert(models.ZoneTargetStatus.__table__), statuses)
    return ids


def timed(conn: http.client.HTTPConnection, path: str) -> float:
    started = time.perf_counter()
    conn.request("GET", path, headers={"Cookie": COOKIE, "Accept": "text/html"})
    answer = conn.getresponse()
    body = answer.read()
    took = time.perf_counter() - started
    if answer.status != 200:
        raise SystemExit(f"GET {path} answered {answer.status}: {body[:300]!r}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, default=10_000)
    parser.add_argument("--targets", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        url = f"sqlite:///{work}/zoneflow.sqlite"
        with support.database(url):
            # The jobs' logbooks, which a zone's page reads its history from.
            persistence.reset()
            persistence.upgrade()
            (pool,) = support.store_pools(pools.parse(pool_yaml(args.targets)))
            started = time.perf_counter()
            ids = load(args.zones, pool)
            print(
                f"loaded {args.zones} zones x {args.targets} targets in "
                f"{time.perf_counter() - started:.1f} s"
            )
            api = server.ApiServer("127.0.0.1", 0)
            api.start()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
                for _ in range(5):  # warm up: templates compiled, the model settled
                    timed(conn, "/dashboard/zones")
                    timed(conn, f"/dashboard/zones/{ids[0]}")
                rows = [
                    (
                        "zones list, first page",
                        [timed(conn, "/dashboard/zones") for _ in range(args.requests)],
                    ),
                    (
                        "zones list, searched by name",
                        [
                            timed(conn, f"/dashboard/zones?q=zone-{random.randrange(100):02d}")
                            for _ in range(args.requests)
                        ],
                    ),
                    (
                        f"a zone's page (matrix of {args.targets} targets)",
                        [
                            timed(conn, f"/dashboard/zones/{random.choice(ids)}")
                            for _ in range(args.requests)
                        ],
                    ),
                ]
            finally:
                api.stop()
    table = report.latency_table(rows, decimals=1)
    print(table)
    report.write_section(
        "dashboard",
        "Dashboard pages with many zones",
        f"{args.zones} zones of one project on a pool of {args.targets} targets (SQLite), "
        "each page asked by a member of the project through zoneflow's HTTP server, "
        f"{args.requests} requests each, one at a time (`bench/dashboard.py`). "
        "Goal: p99 at most 300 ms.\n\n" + table,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
