"""What a Knot target costs per zone created or deleted: one at a time, and a batch at once.

Against a real knotd (the test fixtures' KnotServer: its own confdb and control
socket), through ``KnotBackend`` as a create-zones job's task on the target
calls it: ``create_zone`` for each zone (a confdb transaction of its own), and
``create_zones`` for a batch (one transaction, its commands given to one
knotc); then ``delete_zone`` and ``delete_zones`` (freeze, purge and the
transaction, each step one knotc for the zone or the batch).
Wall time and CPU per zone: this process (zoneflow's side), the knotc
processes it starts, and knotd (from /proc).
The zones' master is a port nobody listens on, so knotd's transfer attempts
fail at once. Figures go to doc/benchmarks.md between the ``knot-batch``
markers.

    python bench/knot_batch.py [--zones 60]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench.orchestration import cpu_seconds  # noqa: E402
from tests.functional.fixtures.knot import KnotServer  # noqa: E402
from tests.functional.fixtures.ports import HOST, free_port  # noqa: E402
from tests.support import make_zone, pool_target  # noqa: E402
from zoneflow.backends.impl_knot import KnotBackend  # noqa: E402

BATCHES = (1, 10, 60)


def _cpu(knotd: int) -> tuple[float, float, float]:
    """CPU seconds so far: this process, its reaped children (knotc), knotd."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time(), children.ru_utime + children.ru_stime, cpu_seconds([knotd])


def measure(knot: KnotServer, backend: KnotBackend, batch: int, count: int) -> list[str]:
    """Two table rows: ``count`` zones created, then deleted, ``batch`` at a time (1: one
    call per zone)."""
    zones = [make_zone(name=f"z{i}.b{batch}.knot.example.") for i in range(count)]
    rows = []
    for verb, alone, at_once in (
        ("create", backend.create_zone, backend.create_zones),
        ("delete", backend.delete_zone, backend.delete_zones),
    ):
        assert knot.process is not None
        before, started = _cpu(knot.process.pid), time.perf_counter()
        for start in range(0, count, batch):
            if batch == 1:
                alone(zones[start])
            else:
                at_once(zones[start : start + batch])
        wall = time.perf_counter() - started
        own, knotc, knotd = (b - a for a, b in zip(before, _cpu(knot.process.pid), strict=True))
        how = f"`{verb}_zone` each" if batch == 1 else f"`{verb}_zones`, {batch} at a time"
        per = 1000 / count
        rows.append(
            f"| {how} | {count} | {wall * per:.1f} | {own * per:.2f} | {knotc * per:.2f} | "
            f"{knotd * per:.2f} | {(own + knotc + knotd) * per:.2f} |\n"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, default=60, help="zones created in each row")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="zoneflow-knot-batch-") as tmp,
        KnotServer(workdir=pathlib.Path(tmp)) as knot,
    ):
        backend = KnotBackend(pool_target(knot.pool_target([(HOST, free_port())])))
        load_before = os.getloadavg()[0]
        rows = [row for batch in BATCHES for row in measure(knot, backend, batch, args.zones)]
        load_after = os.getloadavg()[0]
    body = (
        "Through `KnotBackend` against one real knotd (its own confdb and control socket), "
        f"{args.zones} zones created, then deleted, in each pair of rows, one call after "
        "another: `create_zone` for each zone (a confdb transaction of its own: conf-begin, "
        "one knotc reading the master's remote and acl and the zone on its standard input, "
        "conf-commit), or `create_zones` for a batch (one transaction for all its zones), as "
        "a create-zones job's task on a Knot target calls it; `delete_zone` (a check, freeze, "
        "purge and a transaction: 6 one-shot knotc) or `delete_zones` (the batch frozen, "
        "purged and taken out of the configuration: 5 knotc). "
        "CPU per zone: this process (zoneflow's side), the knotc processes it started, and "
        f"knotd. Load average {load_before:.1f} before and {load_after:.1f} after, on "
        f"{os.cpu_count()} cores.\n\n"
        "| calls | zones | wall ms/zone | CPU ms/zone: zoneflow | knotc | knotd | all |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n" + "".join(rows)
    )
    print(body)
    report.write_section("knot-batch", "Knot backend: a batch's zones in one transaction", body)


if __name__ == "__main__":
    main()
