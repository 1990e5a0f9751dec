"""How many recordset creates the API accepts per second, with 20 clients at once.

A real ``zoneflow api`` process (uvicorn, configured as
tests/functional/deployment.py does) on a real PostgreSQL 15 started by the
test fixture, a pool of fake targets. This script is the 20 clients: 20
asyncio tasks on keep-alive HTTP/1.1 connections (httpx), each sending
``POST /v2/zones/{id}/recordsets`` for a new A recordset as soon as its
previous one was answered. What is timed is the API's accept alone: from
sending the request to its 202 (the change and its job committed to the
database in one transaction); no conductor runs, so nothing competes with
the API for the machine and propagation is not part of it
(bench/orchestration.py and bench/propagation.py measure that).

Two shapes of load:

* **20 zones**: each client writes to its own zone;
* **1 zone**: all 20 write to the same zone; each change takes the next
  serial of that zone, so PostgreSQL queues them on the zone's row lock.

And two jobboards: zake (the changes' jobs stay in the outbox, as when a
conductor's relay posts them) and ZooKeeper (``zoneflow api`` posts each job
itself, in a thread of the same process, right after the change commits).

    python bench/api_write.py [--requests 2000] [--clients 20]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import pathlib
import sys
import tempfile
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench import report  # noqa: E402
from bench.orchestration import CpuMeter, with_children  # noqa: E402
from tests.functional.deployment import Deployment  # noqa: E402
from tests.functional.fixtures.postgres import PostgresServer  # noqa: E402
from tests.functional.fixtures.zookeeper import ZooKeeperServer  # noqa: E402

WARMUP = 200
API = "zoneflow api"
PROJECT = {"X-Auth-Project-ID": "bench", "X-Roles": "member"}


@dataclasses.dataclass(frozen=True)
class Run:
    label: str
    requests: int
    seconds: float
    latencies: list[float]
    failures: int
    cpu: dict[str, float]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


async def _zones(client: httpx.AsyncClient, prefix: str, count: int) -> list[tuple[str, str]]:
    """The zones made: (id, name) each."""
    made = []
    for i in range(count):
        done = await client.post(
            "/v2/zones",
            json={"name": f"{prefix}{i}.bench.example.", "email": "hostmaster@bench.example"},
            headers=PROJECT,
        )
        done.raise_for_status()
        made.append((done.json()["id"], done.json()["name"]))
    return made


async def _load(
    url: str, zones: list[tuple[str, str]], clients: int, requests: int, tag: str
) -> tuple[float, list[float], int]:
    """``requests`` creates from ``clients`` tasks; (wall seconds, latencies, failures)."""
    latencies: list[float] = []
    failures = 0
    sent = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def one_client(number: int) -> None:
            nonlocal sent, failures
            zone_id, zone_name = zones[number % len(zones)]
            while sent < requests:
                n = sent
                sent += 1
                body = {"name": f"{tag}-{n}.{zone_name}", "type": "A", "records": [_address(n)]}
                started = time.perf_counter()
                done = await client.post(
                    f"/v2/zones/{zone_id}/recordsets", json=body, headers=PROJECT
                )
                latencies.append(time.perf_counter() - started)
                if done.status_code != 202:
                    failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(one_client(i) for i in range(clients)))
        return time.perf_counter() - started, latencies, failures


def _address(n: int) -> str:
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def measure(
    deployment: Deployment,
    meter: CpuMeter,
    label: str,
    *,
    zones: int,
    clients: int,
    requests: int,
) -> Run:
    async def setup() -> list[tuple[str, str]]:
        async with httpx.AsyncClient(base_url=deployment.api_url, timeout=60) as client:
            prefix = "".join(c if c.isalnum() else "-" for c in label.lower())
            return await _zones(client, f"{prefix}-", zones)

    made = asyncio.run(setup())
    asyncio.run(_load(deployment.api_url, made, clients, WARMUP, "warm"))
    with meter:
        seconds, latencies, failures = asyncio.run(
            _load(deployment.api_url, made, clients, requests, "rs")
        )
    return Run(label, requests, seconds, latencies, failures, meter.used)


def pool() -> dict[str, Any]:
    return {
        "name": "default",
        "ns_records": [{"hostname": "ns1.bench.example.", "priority": 1}],
        "targets": [{"type": "fake", "description": f"fake{i}"} for i in range(2)],
    }


def run_board(
    postgres: PostgresServer,
    tmp: pathlib.Path,
    board: str,
    zookeeper: ZooKeeperServer | None,
    args: Any,
) -> list[Run]:
    url = postgres.create_database(f"bench_api_{board}")
    workdir = tmp / board
    workdir.mkdir()
    deployment = Deployment(
        workdir,
        database=url,
        zookeeper_hosts=zookeeper.hosts if zookeeper else None,
        # Thousands of creates into one zone, and the zones of every run in
        # one project: past Designate's default quotas.
        extra_conf={"quota": {"zones": -1, "zone_recordsets": -1, "zone_records": -1}},
    )
    deployment.load_pool(pool())
    deployment.start_api()
    assert postgres.process is not None
    pg_pid = postgres.process.pid
    meter = CpuMeter(
        {
            API: lambda: [p.pid for p in deployment.processes.values()],
            "PostgreSQL": lambda: with_children(pg_pid),
            "ZooKeeper": lambda: [zookeeper.process.pid] if zookeeper and zookeeper.process else [],
            "clients (this script)": lambda: [os.getpid()],
        }
    )
    try:
        return [
            measure(
                deployment,
                meter,
                f"{board}, {shape}",
                zones=zones,
                clients=args.clients,
                requests=args.requests,
            )
            for shape, zones in ((f"{args.clients} zones", args.clients), ("1 zone", 1))
        ]
    finally:
        deployment.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="creates per measurement")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="zoneflow-bench-") as tmp,
        PostgresServer() as postgres,
        ZooKeeperServer() as zookeeper,
    ):
        runs = run_board(postgres, pathlib.Path(tmp), "zake", None, args)
        runs += run_board(postgres, pathlib.Path(tmp), "ZooKeeper", zookeeper, args)

    text = describe(args, runs)
    print(text)
    if not args.no_write:
        report.write_section("api_write", "API: recordset creates accepted per second", text)
    failed = sum(run.failures for run in runs)
    return 1 if failed else 0


def describe(args: argparse.Namespace, runs: list[Run]) -> str:
    groups = list(runs[0].cpu)
    lines = [
        "| jobboard, load | creates | accepted/s | p50 (ms) | p99 (ms) | refused | "
        "API's own ceiling (/s) | " + " | ".join(f"CPU ms/create: {g}" for g in groups) + " |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | "
        + " | ".join("---:" for _ in groups)
        + " |",
    ]
    for run in runs:
        lines.append(
            f"| {run.label} | {run.requests} | {run.per_second:.0f} | "
            f"{report.percentile(run.latencies, 50) * 1000:.1f} | "
            f"{report.percentile(run.latencies, 99) * 1000:.1f} | {run.failures} | "
            f"{run.requests / run.cpu[API]:.0f} | "
            + " | ".join(f"{run.cpu[g] / run.requests * 1000:.1f}" for g in groups)
            + " |"
        )
    return (
        f"`POST /v2/zones/{{id}}/recordsets` (a new A recordset each) from {args.clients} "
        "concurrent clients (asyncio tasks of this script on keep-alive connections, "
        "each sending its next request when the previous one is answered) against one "
        "`zoneflow api` process (default settings, access log on) on PostgreSQL 15; no "
        "conductor runs. A create is accepted when its 202 arrives: the recordset, the "
        "zone's new serial and the job that will carry it out are committed together. "
        f"{WARMUP} creates warm each measurement up. Latency is the client's, from "
        "sending to the answer. With ZooKeeper the API process also posts each job to "
        "the board, in a thread beside the requests. CPU per create is from /proc over "
        'the measurement; "other processes" ran outside this benchmark meanwhile, and '
        '"kernel interrupts" is mostly loopback traffic.\n\n' + "\n".join(lines) + "\n"
    )


if __name__ == "__main__":
    sys.exit(main())
