"""How long a zone import takes, from POST /v2/zones/tasks/imports to its task COMPLETE.

The API in this process (FastAPI's test client: no network in the timing),
on SQLite (the embedded default) and on a real PostgreSQL 15 started by the
test fixture, a pool of fake targets and no conductor: what is timed is the
import itself (read the body, parse and check every record, write the zone,
its recordsets and its create job in one transaction), which answers once
its task is COMPLETE. Zone files of about 1 MB and 4 MB (the default
``[api] max_import_size``) of A, AAAA, TXT, MX and CNAME records, and an
8 MB file without an SOA, refused at its first record (the issue's case).

    python bench/zone_import.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from oslo_config import cfg  # noqa: E402

from bench import report  # noqa: E402
from tests import support  # noqa: E402
from tests.functional.fixtures.postgres import PostgresServer  # noqa: E402
from tests.integration.conftest import fake_pool_yaml  # noqa: E402
from zoneflow.api import app  # noqa: E402

HEADERS = {"X-Auth-Project-ID": "bench", "X-Roles": "admin,member", "Content-Type": "text/dns"}


def zone_file(name: str, size: int, *, soa: bool = True) -> tuple[str, int]:
    """A zone file of about ``size`` bytes and the records it holds."""
    lines = [f"$ORIGIN {name}", "$TTL 300"]
    if soa:
        lines.append(f"@ 300 IN SOA ns1.example.org. hostmaster.{name} 1 3600 600 86400 300")
    total, n = 0, 0
    while total < size:
        kind = n % 5
        if kind == 0:
            line = f"host{n} IN A 198.51.{n >> 8 & 255}.{n & 255}"
        elif kind == 1:
            line = f"host{n - 1} IN AAAA 2001:db8::{n >> 16:x}:{n & 0xFFFF:x}"
        elif kind == 2:
            line = f'txt{n} 600 IN TXT "v=spf1 include:_spf.example.net ~all" "{n}"'
        elif kind == 3:
            line = f"mx{n} IN MX 10 host{n - 3}"
        else:
            line = f"www{n} IN CNAME host{n - 4}"
        lines.append(line)
        total += len(line) + 1
        n += 1
    text = "\n".join(lines) + "\n"
    return text, n


Samples = list[tuple[float, float]]  # (wall, CPU) seconds per run


def timed(call: Callable[[], None], runs: int) -> Samples:
    """Wall-clock and CPU seconds of each call: the CPU time (this process, all its
    threads; the database server's not counted) says what a loaded machine hides."""
    samples = []
    for _ in range(runs):
        started, cpu = time.perf_counter(), time.process_time()
        call()
        samples.append((time.perf_counter() - started, time.process_time() - cpu))
    return samples


def measure(url: str, runs: int) -> list[tuple[str, Samples]]:
    rows = []
    with (
        support.database(url, pools_yaml=fake_pool_yaml({})),
        TestClient(app.create_app()) as client,
    ):
        counter = iter(range(10_000))

        def import_one(size: int) -> Callable[[], None]:
            # Written beforehand: writing them is not part of the import.
            texts = iter(
                [zone_file(f"import{next(counter)}.example.", size)[0] for _ in range(runs)]
            )

            def run() -> None:
                text = next(texts)
                done = client.post("/v2/zones/tasks/imports", content=text, headers=HEADERS)
                task = done.json()
                assert task["status"] == "COMPLETE", task

            return run

        no_soa, _ = zone_file("nosoa.example.", 8_400_000, soa=False)

        def refuse() -> None:
            done = client.post("/v2/zones/tasks/imports", content=no_soa, headers=HEADERS)
            assert done.json()["status"] == "ERROR", done.text

        for label, size in (("1 MB", 1_000_000), ("4 MB", 4_000_000)):
            records = zone_file("x.example.", size)[1]
            samples = timed(import_one(size), runs)
            rows.append((f"{label} zone file ({records} records) → COMPLETE", samples))
        cfg.CONF.set_override("max_import_size", 9_000_000, group="api")
        try:
            rows.append(("8.4 MB zone file without SOA → ERROR", timed(refuse, runs)))
        finally:
            cfg.CONF.clear_override("max_import_size", group="api")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="imports of each size per database")
    args = parser.parse_args()
    # Designate's default quotas (500 records a zone) would refuse these zones.
    for quota in ("zones", "zone_recordsets", "zone_records"):
        cfg.CONF.set_override(quota, -1, group="quota")
    rows: list[tuple[str, Samples]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, samples in measure(f"sqlite:///{tmp}/bench.sqlite", args.runs):
            rows.append((f"SQLite: {label}", samples))
    with PostgresServer() as postgres:
        postgres.start()
        url = postgres.create_database("bench")
        for label, samples in measure(url, args.runs):
            rows.append((f"PostgreSQL 15: {label}", samples))
    lines = [
        "| import | runs | wall median (s) | wall slowest (s) | CPU median (s) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, samples in rows:
        walls, cpus = [w for w, _ in samples], [c for _, c in samples]
        lines.append(
            f"| {label} | {len(samples)} | {statistics.median(walls):.2f} | "
            f"{max(walls):.2f} | {statistics.median(cpus):.2f} |"
        )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    table = "\n".join(lines) + f"\n\nLoad average (1, 5, 15 min) when done: {load}.\n"
    print(table)
    report.write_section(
        "zone-import",
        "Zone imports: POST to COMPLETE",
        "`python bench/zone_import.py`: the API in the benchmark's process (test client), "
        "a pool of fake targets, no conductor; from sending `POST /v2/zones/tasks/imports` "
        "(`text/dns`) to its answer, the task COMPLETE: body read, every record parsed and "
        "checked once as it is read, the zone, its recordsets and its create job written "
        "in one transaction. Records: A, AAAA, TXT, MX and CNAME in turn. The file "
        "without an SOA is refused at its first record (`[api] max_import_size` raised "
        "for it; by default a body over 4 MiB gets 413 before it is read in full). "
        "CPU is this process's (API and import), without the database server's.\n\n" + table,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
