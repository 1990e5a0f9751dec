"""Coalesced and batched jobs against one job per change, in the same run.

One process, as ``zoneflow all-in-one`` runs: SQLite, the in-process zake
board, one conductor (its relay woken by every change) and a pool of
``--targets`` fake targets (no delay, no failures) with no nameservers, so
what is measured is the orchestration alone: the outbox, posting, claiming,
running the flow, writing the status.

* **burst**: ``--zones`` ACTIVE zones, then ``--updates`` recordset creates to
  each, made as fast as ``--posters`` threads can while the conductor runs,
  until every zone is ACTIVE at its last serial and every job has ended. Changes that come while a
  zone's job waits ride on it (zoneflow.storage.outbox): fewer jobs carry
  the same changes. Reported: changes/s, jobs run and jobs/s, and the
  process's CPU per change.
* **one at a time**: ``--single`` changes, each waited for until its zone is
  ACTIVE before the next: what a change costs, and how long it takes, when
  nothing else waits (a job then carries one change, so coalescing must
  not make it slower).

The ways run in the same process one after the other, on fresh databases:
"one job per change" is the outbox as it was before coalescing (every update
writes its own job, a row goes once posted), "coalesced" is zoneflow's outbox
(updates ride on their zone's job until it begins), both with jobs of one
zone (``[conductor] batch_zones = 1``), and "coalesced, batches of N" sets
``batch_zones`` to ``--batch`` (zoneflow.flows.batch: a relay puts the
updates of one pool it claims at once into one job).

    python bench/coalescing.py [--zones 30] [--updates 10] [--single 20] [--no-write]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import pathlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

from oslo_config import cfg

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from tests import support  # noqa: E402
from tests.integration.conftest import fake_pool_yaml  # noqa: E402
from zoneflow import jobs, objects  # noqa: E402
from zoneflow.backends.impl_fake import FakeBackend  # noqa: E402
from zoneflow.central import changes as central_changes  # noqa: E402
from zoneflow.central import recordsets as central_recordsets  # noqa: E402
from zoneflow.central import zones as central_zones  # noqa: E402
from zoneflow.conductor import daemon  # noqa: E402
from zoneflow.jobs import records  # noqa: E402
from zoneflow.storage import outbox as stored_outbox  # noqa: E402
from zoneflow.storage import status as stored_status  # noqa: E402
from zoneflow.storage import zones as stored_zones  # noqa: E402
from zoneflow.taskflow_adapter import jobboard, persistence  # noqa: E402

# The outbox as it was before coalescing: no update rides, a row goes once posted,
# and a job's begin takes none.
AS_BEFORE = {
    "_rides": lambda job: False,
    "kept_until_begun": lambda pending: False,
    "begin_zone_jobs": lambda zone_ids, job_id=None: None,
}
ONE_PER_CHANGE, COALESCED, BATCHED = "one job per change", "coalesced", "coalesced, batches"


@dataclasses.dataclass
class Burst:
    changes: int
    jobs: int
    seconds: float
    cpu: float


@dataclasses.dataclass
class Single:
    latencies: list[float]
    cpu: float


@contextlib.contextmanager
def deployment(
    tmp: pathlib.Path, mode: str, targets: int, batch: int
) -> Iterator[daemon.Conductor]:
    """A fresh database and board, and a running conductor, ``mode``'s way."""
    url = f"sqlite:///{tmp}/{mode.replace(' ', '-').replace(',', '')}.sqlite"
    with support.database(url, pools_yaml=fake_pool_yaml(*({},) * targets)):
        persistence.reset()
        persistence.upgrade()
        jobboard.reset_zake()
        FakeBackend.reset()
        saved = {name: getattr(stored_outbox, name) for name in AS_BEFORE}
        if mode == ONE_PER_CHANGE:
            for name, before in AS_BEFORE.items():
                setattr(stored_outbox, name, before)
        # Batches only where they are measured: a job of one zone otherwise.
        cfg.CONF.set_override("batch_zones", batch if mode == BATCHED else 1, group="conductor")
        conductor = daemon.Conductor("bench")
        assert conductor.relay is not None
        central_changes.on_change(conductor.relay.wake)
        conductor.start()
        try:
            yield conductor
        finally:
            conductor.stop()
            central_changes._listeners.clear()
            for name, kept in saved.items():
                setattr(stored_outbox, name, kept)
            cfg.CONF.clear_override("batch_zones", group="conductor")
            persistence.reset()


def active_zones(count: int) -> list[objects.Zone]:
    """Zones ACTIVE as if their create jobs had run (none posted)."""
    zones = [
        central_zones.create_zone(f"z{i}.bench.example", "hostmaster@bench.example")
        for i in range(count)
    ]
    for pending in stored_outbox.claim_pending_jobs(limit=count):
        stored_outbox.remove_pending_job(pending.id)
    for zone in zones:
        stored_status.set_zone_status(zone.id, serial=zone.serial, status=objects.Status.ACTIVE)
    return zones


def settled_at(zone_id: str, serial: int) -> bool:
    zone = stored_zones.get_zone_any(zone_id)
    return zone is not None and zone.serial == serial and zone.status == objects.Status.ACTIVE


def burst(zones: list[objects.Zone], updates: int, posters: int) -> Burst:
    last: dict[str, int] = {}
    lock = threading.Lock()
    work = [(zone, n) for n in range(updates) for zone in zones]

    def post(share: list[tuple[objects.Zone, int]]) -> None:
        for zone, n in share:
            serial = central_recordsets.create_recordset(
                zone.id, f"h{n}", "A", ["192.0.2.1"]
            ).serial
            with lock:
                last[zone.id] = max(serial, last.get(zone.id, 0))

    jobs_before = len(jobs.list_jobs(persistence.get_backend()))
    cpu, start = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=post, args=(work[i::posters],)) for i in range(posters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    support.eventually(
        lambda: all(settled_at(z, s) for z, s in last.items()),
        600,
        interval=0.05,
        what="every zone ACTIVE at its last serial",
    )
    # Jobs for serials older than a zone's last may still run after it: the work is
    # done when every job has ended.
    support.eventually(all_ended, 600, what="every job to end")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    ran = len(jobs.list_jobs(persistence.get_backend())) - jobs_before
    return Burst(len(work), ran, seconds, cpu)


def all_ended() -> bool:
    ended = records.OVER
    return support.count_pending_jobs() == 0 and all(
        job.state in ended for job in jobs.list_jobs(persistence.get_backend())
    )


def one_at_a_time(zones: list[objects.Zone], count: int) -> Single:
    latencies = []
    cpu = time.process_time()
    for n in range(count):
        zone = zones[n % len(zones)]
        start = time.perf_counter()
        serial = central_recordsets.create_recordset(zone.id, f"s{n}", "A", ["192.0.2.2"]).serial
        support.eventually(
            lambda z=zone.id, s=serial: settled_at(z, s), 60, interval=0.005, what="ACTIVE"
        )
        latencies.append(time.perf_counter() - start)
    return Single(latencies, time.process_time() - cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, default=30)
    parser.add_argument("--updates", type=int, default=10, help="changes to each zone")
    parser.add_argument("--posters", type=int, default=4)
    parser.add_argument("--targets", type=int, default=8)
    parser.add_argument("--single", type=int, default=20, help="changes made one at a time")
    parser.add_argument("--batch", type=int, default=10, help="[conductor] batch_zones")
    parser.add_argument("--no-write", action="store_true", help="do not write doc/benchmarks.md")
    args = parser.parse_args()

    modes = (ONE_PER_CHANGE, COALESCED, BATCHED)
    bursts: dict[str, Burst] = {}
    singles: dict[str, Single] = {}
    with tempfile.TemporaryDirectory(prefix="bench-coalescing-") as tmp:
        for mode in modes:
            with deployment(pathlib.Path(tmp), mode, args.targets, args.batch):
                zones = active_zones(args.zones)
                singles[mode] = one_at_a_time(zones, args.single)
                bursts[mode] = burst(zones, args.updates, args.posters)
            print(mode, bursts[mode], flush=True)

    rows = []
    for mode in modes:
        b, s = bursts[mode], singles[mode]
        name = f"{mode} of {args.batch}" if mode == BATCHED else mode
        rows.append(
            f"| {name} | {b.changes} | {b.jobs} | {b.changes / b.seconds:.0f} "
            f"| {b.jobs / b.seconds:.1f} | {1000 * b.cpu / b.changes:.1f} "
            f"| {1000 * statistics.median(s.latencies):.0f} "
            f"| {1000 * max(s.latencies):.0f} | {1000 * s.cpu / len(s.latencies):.1f} |"
        )
    body = "\n".join(
        [
            f"One process (SQLite, zake, one conductor), {args.targets} fake targets, no "
            f"nameservers: the orchestration alone (`python bench/coalescing.py`). Burst: "
            f"{args.zones} ACTIVE zones, {args.updates} recordset creates to each from "
            f"{args.posters} threads while the conductor runs, until every zone is ACTIVE at "
            f"its last serial. One at a time: {args.single} changes, each waited for until "
            'ACTIVE. All in the same run, one after the other; "one job per change" is the '
            'outbox as before coalescing, "batches" sets `[conductor] batch_zones`.',
            "",
            "| jobs | burst: changes | jobs run | changes/s | jobs/s | CPU ms per change "
            "| one at a time: p50 ms | max ms | CPU ms per change |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            *rows,
        ]
    )
    print(body)
    if not args.no_write:
        report.write_section(
            "coalescing", "Coalesced and batched jobs against one job per change", body
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
